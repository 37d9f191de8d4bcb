"""Draw the simulated players: archetype, join day, engagement, quitting, spending and combat ability."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from playerguard.simulator.model import (
    ARCHETYPES,
    CHEATERS,
    DECLINE_DAYS,
    HUMAN_MAX_AIM_SPEED,
    HUMAN_MAX_HEADSHOT_RATE,
    HUMAN_MIN_REACTION_MS,
    INITIAL_PLAYER_SHARE,
    NEVER,
    SECONDS_PER_DAY,
    UTC_OFFSET_SHARES,
    UTC_OFFSETS_HOURS,
)

PLATFORMS = ("pc", "ps5", "xbox", "ios", "android")
_HUMAN_PLATFORM_SHARES = (0.35, 0.2, 0.15, 0.15, 0.15)
_PC_HEAVY_PLATFORM_SHARES = (0.9, 0.04, 0.03, 0.015, 0.015)
_RATE_SHAPE = 4.0  # gamma shape of a player's session rate around the archetype mean
_INTENT_SHAPE = 1.5  # gamma shape of a player's purchase intent around the archetype mean
BOT_PERIOD_HOURS = (5.0, 9.0)
BOT_MATCHES_PER_SESSION = (10, 16)
BOT_JITTER_SECONDS = (20.0, 90.0)
BOT_MATCH_SECONDS = 600.0
BOT_QUEUE_SECONDS = 30.0


@dataclass(frozen=True)
class Population:
    """Per-player parameters as numpy arrays (index = player number)."""

    archetype: np.ndarray  # int index into ARCHETYPES
    join_day: np.ndarray
    offset_index: np.ndarray  # index into UTC_OFFSETS_HOURS
    platform: np.ndarray  # index into PLATFORMS
    session_rate: np.ndarray
    quit_hazard: np.ndarray
    quit_day: np.ndarray  # NEVER for bots
    decline_day: np.ndarray  # NEVER unless churner
    scheduled_churn_day: np.ndarray  # NEVER unless churner
    purchase_intent: np.ndarray
    matches_per_session: np.ndarray
    skill: np.ndarray
    accuracy: np.ndarray
    headshot_rate: np.ndarray
    reaction_ms: np.ndarray
    aim_speed: np.ndarray
    bot_period: np.ndarray  # seconds; NaN for humans
    bot_phase: np.ndarray
    bot_jitter: np.ndarray
    update_lag_days: np.ndarray  # days before the player installs a new app version
    names: tuple[str, ...] = field(default=tuple(ARCHETYPES))

    @property
    def is_bot(self) -> np.ndarray:
        return self.archetype == self.names.index("bot")


def draw_population(players: int, days: int, shares: np.ndarray, rng: np.random.Generator) -> Population:
    """Draw `players` players; `shares` gives each ARCHETYPES entry's probability (summing to 1)."""
    kinds = list(ARCHETYPES.values())
    names = tuple(ARCHETYPES)
    archetype = rng.choice(len(kinds), size=players, p=shares)

    def per_archetype(attribute: str) -> np.ndarray:
        return np.array([getattr(k, attribute) for k in kinds])[archetype]

    is_bot = archetype == names.index("bot")
    is_churner = archetype == names.index("churner")
    is_blatant = archetype == names.index("blatant_cheater")
    is_closet = archetype == names.index("closet_cheater")
    is_cheater = is_blatant | is_closet

    later = rng.integers(1, days, size=players) if days > 1 else np.zeros(players, dtype=np.int64)
    join_day = np.where(rng.random(players) < INITIAL_PLAYER_SHARE, 0, later).astype(np.int64)

    session_rate = per_archetype("session_rate") * rng.gamma(_RATE_SHAPE, 1.0 / _RATE_SHAPE, players)
    quit_hazard = per_archetype("quit_hazard")
    quits = join_day + rng.geometric(np.where(is_bot, 0.5, quit_hazard))  # bots' draw is discarded
    quit_day = np.where(is_bot, NEVER, quits).astype(np.int64)
    decline_start = join_day + 3 + (rng.random(players) * max(days * 0.8, 1.0)).astype(np.int64)
    decline_day = np.where(is_churner, decline_start, NEVER).astype(np.int64)
    decline_length = rng.integers(DECLINE_DAYS[0], DECLINE_DAYS[1] + 1, size=players)
    scheduled_churn_day = np.where(is_churner, decline_start + decline_length, NEVER).astype(np.int64)
    intent_mean = per_archetype("purchase_intent")
    purchase_intent = intent_mean * rng.gamma(_INTENT_SHAPE, 1.0 / _INTENT_SHAPE, players)

    skill = rng.normal(per_archetype("skill_mean"), 1.0)
    accuracy = np.clip(0.22 + 0.05 * skill, 0.08, 0.40)
    headshot_rate = np.clip(0.18 + 0.07 * skill, 0.04, HUMAN_MAX_HEADSHOT_RATE - 0.05)
    reaction_ms = np.clip(265.0 - 30.0 * skill, HUMAN_MIN_REACTION_MS + 25.0, 420.0)
    aim_speed = np.clip(520.0 + 110.0 * skill, 250.0, HUMAN_MAX_AIM_SPEED - 50.0)
    # Cheats lift aim far (blatant) or a little (closet) past what the player's hands could do.
    u = rng.random((4, players))
    accuracy = np.where(is_blatant, 0.55 + 0.2 * u[0], np.where(is_closet, accuracy + 0.06, accuracy))
    headshot_rate = np.select(
        [is_blatant, is_closet],
        [0.70 + 0.25 * u[1], HUMAN_MAX_HEADSHOT_RATE + 0.02 + 0.09 * u[1]],
        headshot_rate,
    )
    reaction_ms = np.select(
        [is_blatant, is_closet], [45.0 + 50.0 * u[2], HUMAN_MIN_REACTION_MS - 32.0 + 24.0 * u[2]], reaction_ms
    )
    aim_speed = np.select(
        [is_blatant, is_closet],
        [2500.0 + 3500.0 * u[3], HUMAN_MAX_AIM_SPEED + 20.0 + 180.0 * u[3]],
        aim_speed,
    )
    # Bots: mediocre, machine-steady aim.
    accuracy = np.where(is_bot, 0.18 + 0.04 * u[0], accuracy)
    headshot_rate = np.where(is_bot, 0.10 + 0.04 * u[1], headshot_rate)
    reaction_ms = np.where(is_bot, 240.0 + 20.0 * u[2], reaction_ms)
    aim_speed = np.where(is_bot, 350.0 + 100.0 * u[3], aim_speed)

    period = rng.uniform(*BOT_PERIOD_HOURS, players) * 3600.0
    jitter = rng.uniform(*BOT_JITTER_SECONDS, players)
    phase = jitter + rng.random(players) * (period - jitter)
    bot_period = np.where(is_bot, period, np.nan)
    bot_matches = rng.integers(BOT_MATCHES_PER_SESSION[0], BOT_MATCHES_PER_SESSION[1] + 1, players)
    matches_per_session = np.where(is_bot, bot_matches, per_archetype("matches_per_session"))
    session_rate = np.where(is_bot, SECONDS_PER_DAY / period, session_rate)

    platform_shares = np.where(
        (is_bot | is_cheater)[:, None], _PC_HEAVY_PLATFORM_SHARES, _HUMAN_PLATFORM_SHARES
    )
    platform = (rng.random(players)[:, None] > platform_shares.cumsum(1)).sum(1).clip(0, len(PLATFORMS) - 1)
    return Population(
        archetype=archetype,
        join_day=join_day,
        offset_index=rng.choice(len(UTC_OFFSETS_HOURS), size=players, p=UTC_OFFSET_SHARES),
        platform=platform,
        session_rate=session_rate,
        quit_hazard=np.where(is_bot, 0.0, quit_hazard),
        quit_day=quit_day,
        decline_day=decline_day,
        scheduled_churn_day=scheduled_churn_day,
        purchase_intent=np.where(is_bot, 0.0, purchase_intent),
        matches_per_session=matches_per_session,
        skill=np.where(is_bot, np.nan, skill),
        accuracy=accuracy,
        headshot_rate=headshot_rate,
        reaction_ms=reaction_ms,
        aim_speed=aim_speed,
        bot_period=bot_period,
        bot_phase=np.where(is_bot, phase, np.nan),
        bot_jitter=np.where(is_bot, jitter, np.nan),
        update_lag_days=rng.geometric(0.4, players) - 1,
        names=names,
    )


def _nullable_day(values: np.ndarray, days: int | None = None) -> pd.Series:
    limit = NEVER if days is None else days
    return pd.Series(pd.array(np.where(values < limit, values, 0), dtype="Int64")).mask(values >= limit)


def ground_truth_frame(
    population: Population, player_ids: list[str], start: datetime, days: int
) -> pd.DataFrame:
    """One row per player with everything the oracles and the tests need (never part of the events)."""
    p = population
    names = np.array(p.names)[p.archetype]
    is_bot = names == "bot"
    is_cheater = np.isin(names, CHEATERS)
    churn = np.minimum(p.quit_day, p.scheduled_churn_day)
    weekday_rate = np.where(is_bot, 0.0, p.session_rate)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_active_day = np.where(weekday_rate > 0, weekday_rate / -np.expm1(-weekday_rate), 1.0)
    return pd.DataFrame(
        {
            "player_id": pd.array(player_ids, dtype="string"),
            "archetype": pd.array(names, dtype="string"),
            "is_cheater": is_cheater,
            "is_bot": is_bot,
            "is_inhuman": is_cheater | is_bot,
            "join_day": p.join_day,
            "churn_day": _nullable_day(churn, days),
            "decline_day": _nullable_day(p.decline_day),
            "scheduled_churn_day": _nullable_day(p.scheduled_churn_day),
            "quit_day": _nullable_day(p.quit_day),
            "quit_hazard": p.quit_hazard,
            "session_rate": p.session_rate,
            "purchase_intent": p.purchase_intent,
            "purchase_rate": p.purchase_intent * per_active_day,
            "utc_offset_hours": UTC_OFFSETS_HOURS[p.offset_index],
            "platform": pd.array(np.array(PLATFORMS)[p.platform], dtype="string"),
            "skill": p.skill,
            "mean_accuracy": p.accuracy,
            "mean_headshot_rate": p.headshot_rate,
            "mean_reaction_ms": p.reaction_ms,
            "mean_aim_speed": p.aim_speed,
            "bot_period_seconds": p.bot_period,
            "bot_phase_seconds": p.bot_phase,
            "bot_jitter_seconds": p.bot_jitter,
            "period_start": pd.Series(pd.Timestamp(start), index=range(len(names))).astype(
                "datetime64[us, UTC]"
            ),
            "period_days": days,
        }
    )
