"""What happens in each simulated match (combat stats, result, map) and the level-ups it earns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from playerguard.simulator.population import Population
from playerguard.simulator.sessions import Matches, Sessions, segment_cumsum

MAPS = ("citadel", "dunes", "foundry", "glacier", "harbor", "outpost")
RESULTS = ("loss", "win")
_RATE_SPREAD = 60.0  # a human's per-match accuracy and headshot rate vary like a Beta of this concentration
_SHOTS_PER_SECOND = 0.45
_BOT_SHOTS_PER_SECOND = 0.40
_XP_PER_LEVEL = 3000.0  # level = 1 + floor(sqrt(total xp / _XP_PER_LEVEL))
LEVEL_UP_DELAY_SECONDS = 2.0


@dataclass(frozen=True)
class MatchStats:
    """One entry per match, aligned with Matches; counts are whole numbers held as float64."""

    shots: np.ndarray
    hits: np.ndarray
    headshots: np.ndarray
    kills: np.ndarray
    deaths: np.ndarray
    reaction_ms: np.ndarray
    aim_speed: np.ndarray
    win: np.ndarray  # bool
    map: np.ndarray  # index into MAPS


@dataclass(frozen=True)
class LevelUps:
    match: np.ndarray  # index into Matches
    time: np.ndarray
    level: np.ndarray


def _successes(trials: np.ndarray, rate: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Successes out of `trials` at a per-match rate varying around `rate`: the rounded normal
    approximation (mean trials * rate) of a binomial whose rate is Beta(_RATE_SPREAD)-distributed."""
    mean = trials * rate
    spread = trials * np.maximum(trials - 1.0, 0.0) * rate * (1.0 - rate) / (_RATE_SPREAD + 1.0)
    return np.clip(np.round(mean + np.sqrt(mean * (1.0 - rate) + spread) * z), 0.0, trials)


def _count(mean: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A Poisson-like count: the rounded normal approximation, floored at zero (cheaper than Poisson draws)."""
    return np.maximum(np.round(mean + np.sqrt(mean) * z), 0.0)


def play_matches(population: Population, matches: Matches, rng: np.random.Generator) -> MatchStats:
    """Draw each match's stats from its player's ability; bots are steady to within about a percent."""
    player = matches.player
    n = player.size
    kind = population.archetype[player]
    names = population.names
    bot = kind == names.index("bot")
    blatant = kind == names.index("blatant_cheater")
    closet = kind == names.index("closet_cheater")
    skill = np.nan_to_num(population.skill[player])
    minutes = matches.seconds / 60.0
    z = rng.standard_normal((7, n))

    fire_rate = np.where(bot, _BOT_SHOTS_PER_SECOND, _SHOTS_PER_SECOND) * matches.seconds
    shots = np.where(bot, np.round(fire_rate), _count(fire_rate, z[0]))
    accuracy, headshot_rate = population.accuracy[player], population.headshot_rate[player]
    hits = _successes(shots, accuracy, z[1])
    hits = np.where(bot, np.round(shots * accuracy * (1.0 + 0.01 * z[1])), hits)  # bots: a 1% wobble
    headshots = _successes(hits, headshot_rate, z[2])
    headshots = np.where(bot, np.round(hits * headshot_rate * (1.0 + 0.01 * z[2])), headshots)

    reaction_sd = np.select([bot, blatant, closet], [1.5, 8.0, 12.0], 20.0)
    reaction_ms = np.maximum(population.reaction_ms[player] + reaction_sd * z[3], 20.0)
    aim_sd = np.where(bot, 0.005, 0.12)
    aim_speed = population.aim_speed[player] * np.exp(aim_sd * z[4] - aim_sd**2 / 2)

    kills_per_minute = 0.55 * np.exp(0.25 * skill) * np.select([blatant, closet], [2.5, 1.4], 1.0)
    deaths_per_minute = 0.6 * np.exp(-0.15 * skill) * np.select([blatant, closet], [0.4, 0.8], 1.0)
    kills = np.where(bot, np.round(0.45 * minutes), _count(kills_per_minute * minutes, z[5]))
    deaths = np.where(bot, np.round(0.55 * minutes), _count(deaths_per_minute * minutes, z[6]))
    win_logit = 0.35 * skill + np.select([blatant, closet, bot], [1.5, 0.6, -0.2], 0.0)
    win = rng.random(n) < 1.0 / (1.0 + np.exp(-win_logit))
    return MatchStats(
        shots=shots,
        hits=hits,
        headshots=headshots,
        kills=kills,
        deaths=deaths,
        reaction_ms=reaction_ms,
        aim_speed=aim_speed,
        win=win,
        map=rng.integers(0, len(MAPS), n).astype(np.int8),
    )


def _level(xp: np.ndarray) -> np.ndarray:
    return 1 + np.floor(np.sqrt(xp / _XP_PER_LEVEL)).astype(np.int64)


def level_ups(sessions: Sessions, matches: Matches, stats: MatchStats, xp: np.ndarray) -> LevelUps:
    """A level_up after each match that lifts its player's accumulated xp past a level threshold.

    `xp` holds each player's xp before these sessions and is updated in place.
    """
    gained = matches.seconds * np.where(stats.win, 1.5, 1.0)
    per_session = np.bincount(matches.session, weights=gained, minlength=sessions.player.size)
    # xp before each session: the player's xp so far plus their earlier sessions in this chunk
    by_player = np.argsort(sessions.player, kind="stable")
    player, earned = sessions.player[by_player], per_session[by_player]
    first = np.ones(player.size, dtype=bool)
    first[1:] = player[1:] != player[:-1]
    earlier = np.cumsum(earned) - earned
    before = np.empty(player.size)
    before[by_player] = (
        xp[player] + earlier - earlier[np.maximum.accumulate(np.where(first, np.arange(player.size), 0))]
    )
    xp += np.bincount(sessions.player, weights=per_session, minlength=xp.size)

    counts = np.bincount(matches.session, minlength=sessions.player.size)
    level = _level(before[matches.session] + segment_cumsum(gained, counts))
    previous = np.empty_like(level)
    previous[1:] = level[:-1]
    opens = np.cumsum(counts)[counts > 0] - counts[counts > 0]  # each session's first match
    previous[opens] = _level(before[counts > 0])
    up = np.flatnonzero(level > previous)
    return LevelUps(up, matches.end[up] + LEVEL_UP_DELAY_SECONDS, level[up].astype(np.float64))
