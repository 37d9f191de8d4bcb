"""When simulated players play: session starts, the matches inside each session, and shop purchases.

All times are float seconds from the period start. Session starts are drawn for the whole period at
once; their matches and purchases are drawn for a chunk of consecutive session starts at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from playerguard.simulator.model import (
    ARCHETYPES,
    CATALOG,
    PURCHASE_OFFSET_SECONDS,
    SECONDS_PER_DAY,
    SHOP_SECONDS,
    draw_utc_seconds,
    scheduled_session_rate,
)
from playerguard.simulator.population import BOT_MATCH_SECONDS, BOT_QUEUE_SECONDS, Population

_MATCH_GUARD_SECONDS = 10.0  # a match (and its level-up) ends at least this long before the next session
_ITEM_CDF = np.cumsum([np.array(a.item_weights) / sum(a.item_weights) for a in ARCHETYPES.values()], axis=1)


@dataclass(frozen=True)
class Sessions:
    number: np.ndarray  # position in the Schedule, which numbers the session id
    player: np.ndarray
    start: np.ndarray
    end: np.ndarray


@dataclass(frozen=True)
class Matches:
    session: np.ndarray  # index into the Sessions it belongs to
    player: np.ndarray
    end: np.ndarray
    seconds: np.ndarray


@dataclass(frozen=True)
class Purchases:
    session: np.ndarray
    time: np.ndarray
    item: np.ndarray  # index into CATALOG
    amount: np.ndarray


def human_session_starts(
    population: Population, days: int, start_weekday: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(player, start) of every human session: Poisson counts per day, diurnal times within the day."""
    rate = scheduled_session_rate(
        np.where(population.is_bot, 0.0, population.session_rate),
        population.join_day,
        population.decline_day,
        population.scheduled_churn_day,
        np.arange(days),
        start_weekday,
    )
    rate *= np.arange(days)[None, :] < population.quit_day[:, None]
    counts = rng.poisson(rate).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    player, day = np.divmod(cell, days)
    seconds = draw_utc_seconds(population.offset_index[player], rng)
    return player, day * float(SECONDS_PER_DAY) + seconds


def bot_session_starts(
    population: Population, days: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(player, start) of every bot session: a fixed period from the join day, with uniform jitter."""
    bots = np.flatnonzero(population.is_bot)
    period = population.bot_period[bots]
    jitter = population.bot_jitter[bots]
    first = population.join_day[bots] * float(SECONDS_PER_DAY) + population.bot_phase[bots]
    horizon = days * float(SECONDS_PER_DAY)
    counts = np.maximum(np.floor((horizon + jitter - first) / period).astype(np.int64) + 1, 0)
    which = np.repeat(np.arange(len(bots)), counts)
    k = _segment_positions(counts)
    start = first[which] + k * period[which] + rng.uniform(-1.0, 1.0, which.size) * jitter[which]
    inside = start < horizon
    return bots[which][inside], start[inside]


def _segment_positions(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., n-1 for each segment length n in `counts`, concatenated."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def segment_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Running sums of `values` restarting at each segment (segment lengths in `counts`)."""
    running = np.cumsum(values)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return running - (running - values)[first]


@dataclass(frozen=True)
class Schedule:
    """Every session start, sorted by time (a session's number is its position here)."""

    player: np.ndarray
    start: np.ndarray
    next_start: np.ndarray  # the same player's next session start, inf if none

    def chunks(self, size: int) -> list[tuple[int, int]]:
        """[first, stop) ranges of at most `size` consecutive sessions."""
        edges = list(range(0, self.start.size, size)) + [self.start.size]
        return list(pairwise(edges))


def schedule_sessions(player: np.ndarray, start: np.ndarray) -> Schedule:
    """Order sessions by time and find when each player's next session begins."""
    # One float key orders by (player, start): starts span less than `span`. Sessions arrive grouped by
    # player, so the stable sort mostly finds runs that are already in order.
    span = float(np.ceil(start.max(initial=0.0)) + 1.0)
    by_player = np.argsort(player * span + start, kind="stable")
    following = np.full(start.size, np.inf)
    same = player[by_player][1:] == player[by_player][:-1]
    following[by_player[:-1][same]] = start[by_player][1:][same]
    by_time = np.argsort(start, kind="stable")
    return Schedule(player[by_time], start[by_time], following[by_time])


def lay_out_sessions(
    population: Population, schedule: Schedule, first: int, stop: int, rng: np.random.Generator
) -> tuple[Sessions, Matches]:
    """Fill sessions first..stop-1 of the schedule with matches, each ending before the player's next session."""
    player, start, next_start = (
        a[first:stop] for a in (schedule.player, schedule.start, schedule.next_start)
    )
    bot = population.is_bot[player]
    wanted = population.matches_per_session[player]
    human_matches = 1 + rng.poisson(np.maximum(wanted - 1.0, 0.0))
    n_matches = np.where(bot, wanted, human_matches).astype(np.int64)
    session = np.repeat(np.arange(start.size), n_matches)
    is_bot_match = bot[session]
    noise = rng.standard_normal((2, session.size))
    seconds = np.where(
        is_bot_match, BOT_MATCH_SECONDS + 3.0 * noise[0], np.clip(540.0 + 120.0 * noise[0], 180.0, 1200.0)
    )
    queue = np.where(
        is_bot_match, BOT_QUEUE_SECONDS + 0.5 * noise[1], 20.0 + rng.exponential(40.0, session.size)
    )
    end = start[session] + SHOP_SECONDS + segment_cumsum(seconds + queue, n_matches)
    keep = end + _MATCH_GUARD_SECONDS <= next_start[session]
    session, end, seconds = session[keep], end[keep], seconds[keep]

    kept = np.bincount(session, minlength=start.size)
    last_end = start + SHOP_SECONDS
    last_end[kept > 0] = end[np.cumsum(kept)[kept > 0] - 1]
    exit_gap = np.where(bot, 10.0 + rng.normal(0.0, 0.2, start.size), 5.0 + rng.exponential(25.0, start.size))
    session_end = np.minimum(last_end + exit_gap, next_start - 1.0)
    session_end = np.maximum(session_end, start + PURCHASE_OFFSET_SECONDS[1] + 1.0)
    number = np.arange(first, stop)
    return Sessions(number, player, start, session_end), Matches(session, player[session], end, seconds)


def draw_purchases(population: Population, sessions: Sessions, rng: np.random.Generator) -> Purchases:
    """Poisson(purchase_intent) purchases per session, in its opening shop phase."""
    counts = rng.poisson(population.purchase_intent[sessions.player])
    session = np.repeat(np.arange(counts.size), counts)
    low, high = PURCHASE_OFFSET_SECONDS
    time = sessions.start[session] + rng.uniform(low, high, session.size)
    cdf = _ITEM_CDF[population.archetype[sessions.player[session]]]
    item = np.minimum((rng.random(session.size)[:, None] > cdf).sum(1), len(CATALOG) - 1)
    prices = np.array([price for _, price in CATALOG])
    return Purchases(session, time, item, prices[item])
