"""A telemetry simulator with known ground truth: the test bed for the inhuman-play, churn and purchase models.

`simulate` draws a population of players (casual, core, whale, churner, bot, blatant and closet
cheaters), lets them play for `days` days and returns the events (envelope + typed attributes +
event_date) and one ground-truth row per player. It is deterministic for a seed and vectorised.

The generative model (details and constants in `simulator_model`):
- Players join on day 0 (INITIAL_PLAYER_SHARE) or on a uniform later day, so tenure varies.
- Humans start Poisson(r_d) sessions on day d, at times from a diurnal profile in their own time zone;
  r_d is higher on weekends, falls linearly to zero for churners from `decline_day` to
  `scheduled_churn_day`, and is zero from `quit_day` on (a daily quitting hazard for every human).
- Bots start sessions at a fixed period (5-9 h) with a small uniform jitter, at any hour; long sessions
  (10-16 matches), steady mediocre aim; they never buy or quit.
- Each session opens with a shop phase (Poisson(purchase_intent) purchases, 10-110 s after the start),
  then plays matches back to back, and ends before the player's next session begins.
- Skill drives a human's accuracy, headshot rate, reaction time and flick speed; each match adds noise.
  Per-player means respect the human limits below; blatant cheaters are far beyond them, closet cheaters
  slightly beyond (HUMAN_MIN_REACTION_MS = 150, HUMAN_MAX_HEADSHOT_RATE = 0.45, HUMAN_MAX_AIM_SPEED = 1000).

Ids are deterministic: players `sim-<seed>-p<n>`, sessions `sim-<seed>-s<n>` (numbered in start order),
events `sim-<seed>-<n>` (numbered in timestamp order), with n zero-padded.

Ground truth day columns (`join_day`, `churn_day`, `decline_day`, `scheduled_churn_day`, `quit_day`) are
integer day indices from `period_start` (a UTC midnight), nullable where the thing does not happen.
`churn_day` = min(`quit_day`, `scheduled_churn_day`): the day from which the model gives the player no
more sessions, if it falls inside the simulated period (a low-rate player may also go quiet earlier by
chance). `true_churn_probability` and `true_purchase_probability` give the exact label probabilities of
any window under the model (see `simulator_oracle`).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playerguard.errors import ConfigError
from playerguard.simulator.combat import level_ups, play_matches
from playerguard.simulator.model import (
    ARCHETYPES,
    HUMAN_MAX_AIM_SPEED,
    HUMAN_MAX_HEADSHOT_RATE,
    HUMAN_MIN_REACTION_MS,
)
from playerguard.simulator.oracle import true_churn_probability, true_purchase_probability
from playerguard.simulator.population import Population, draw_population, ground_truth_frame
from playerguard.simulator.sessions import (
    Schedule,
    bot_session_starts,
    draw_purchases,
    human_session_starts,
    lay_out_sessions,
    schedule_sessions,
)
from playerguard.simulator.table import EventAssembler

_CHUNK_SESSIONS = 20_000
"""Sessions whose matches are drawn together: bounds memory; fixed, so results never depend on the machine."""
_BATCH_WORKERS = 2
"""Threads building record batches (numpy and Arrow release the GIL) while the next chunk is simulated."""
_PENDING_BATCHES = 3
"""Chunks whose record batches may still be building while the next chunk is simulated."""

__all__ = [
    "ARCHETYPES",
    "HUMAN_MAX_AIM_SPEED",
    "HUMAN_MAX_HEADSHOT_RATE",
    "HUMAN_MIN_REACTION_MS",
    "SimulatedGame",
    "default_archetype_shares",
    "simulate",
    "true_churn_probability",
    "true_purchase_probability",
]


@dataclass(frozen=True)
class SimulatedGame:
    """Simulated telemetry and the truth behind it."""

    events: pa.Table
    """Envelope columns, attributes in alphabetical order, then event_date; sorted by event_timestamp."""
    ground_truth: pd.DataFrame
    """One row per player; never part of the events."""


def default_archetype_shares() -> dict[str, float]:
    """The default population mix."""
    return {name: kind.share for name, kind in ARCHETYPES.items()}


def _whole_number(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _shares(mix: Mapping[str, float] | None) -> np.ndarray:
    if mix is None:
        mix = default_archetype_shares()
    unknown = sorted(set(mix) - set(ARCHETYPES))
    if unknown:
        raise ConfigError(f"unknown archetype {unknown[0]!r}; known: {', '.join(ARCHETYPES)}")
    shares = np.array([float(mix.get(name, 0.0)) for name in ARCHETYPES])
    if not np.all(np.isfinite(shares)) or np.any(shares < 0) or shares.sum() <= 0:
        raise ConfigError("archetype shares must be non-negative numbers with a positive sum")
    return shares / shares.sum()


def _period_start(start: datetime) -> datetime:
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise ConfigError(f"start must be a timezone-aware datetime, got {start!r}")
    start = start.astimezone(UTC)
    if start.time() != time(0):
        raise ConfigError(f"start must be a UTC midnight, got {start.isoformat()}")
    return start


def _player_ids(seed: int, players: int) -> pa.Array:
    numbers = pa.array(np.arange(players, dtype=np.int64)).cast(pa.string())
    padded = pc.utf8_lpad(numbers, len(str(max(players - 1, 99_999))), "0")
    return pc.binary_join_element_wise(pa.scalar(f"sim-{seed}-p"), padded, "")


def _events(
    population: Population,
    schedule: Schedule,
    player_ids: pa.Array,
    *,
    seed: int,
    start: datetime,
    game_id: str,
) -> pa.Table:
    """Play the scheduled sessions chunk by chunk; worker threads build the chunks' record batches."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 1]).spawn(3)]
    xp = np.zeros(len(player_ids))
    batches: list[Future[pa.RecordBatch]] = []
    with ThreadPoolExecutor(max_workers=_BATCH_WORKERS, thread_name_prefix="simulator") as executor:
        assembler = EventAssembler(population, player_ids, executor, seed=seed, start=start, game_id=game_id)
        for first, stop in schedule.chunks(_CHUNK_SESSIONS):
            sessions, matches = lay_out_sessions(population, schedule, first, stop, streams[0])
            purchases = draw_purchases(population, sessions, streams[1])
            stats = play_matches(population, matches, streams[2])
            levels = level_ups(sessions, matches, stats, xp)
            next_start = schedule.start[stop] if stop < schedule.start.size else np.inf
            batches.append(assembler.add(sessions, matches, stats, purchases, levels, next_start))
            if len(batches) > _PENDING_BATCHES:
                batches[-_PENDING_BATCHES - 1].result()  # bound the chunks held in memory
        last = assembler.finish()
        done = [b.result() for b in batches + ([last] if last else [])]
    return pa.Table.from_batches([b for b in done if b.num_rows], schema=assembler.schema)


def simulate(
    players: int = 2000,
    days: int = 60,
    seed: int = 7,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    game_id: str = "skyfall",
    *,
    archetype_shares: Mapping[str, float] | None = None,
) -> SimulatedGame:
    """Simulate `players` players over `days` days from `start` (a UTC midnight).

    `archetype_shares` replaces the default mix (see `default_archetype_shares`); archetypes it leaves
    out do not occur, and the shares are normalized to sum to 1.
    """
    players = _whole_number(players, "players", 1)
    days = _whole_number(days, "days", 1)
    seed = _whole_number(seed, "seed", 0)
    start = _period_start(start)
    if not isinstance(game_id, str) or not game_id.strip():
        raise ConfigError(f"game_id must be a non-empty string, got {game_id!r}")
    shares = _shares(archetype_shares)

    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0]).spawn(3)]
    population = draw_population(players, days, shares, streams[0])
    human_player, human_start = human_session_starts(population, days, start.weekday(), streams[1])
    bot_player, bot_start = bot_session_starts(population, days, streams[2])
    schedule = schedule_sessions(
        np.concatenate([human_player, bot_player]), np.concatenate([human_start, bot_start])
    )

    player_ids = _player_ids(seed, players)
    events = _events(population, schedule, player_ids, seed=seed, start=start, game_id=game_id)
    truth = ground_truth_frame(population, player_ids.to_pylist(), start, days)
    return SimulatedGame(events=events, ground_truth=truth)
