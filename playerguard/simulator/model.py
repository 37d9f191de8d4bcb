"""The simulator's generative model: its constants and the rate functions that the generator and the
oracle share, so that the oracle's probabilities come from exactly the rates that made the events.

Time is measured from the period start (a UTC midnight); day `d` is `[d, d + 1)` days from it.

Human sessions form an inhomogeneous Poisson process: on day `d` a player starts Poisson(r_d) sessions,
each at a time drawn from the player's diurnal profile (a local-time hourly profile shifted by the
player's whole-hour UTC offset, so the density is constant within each UTC hour). The daily rate is

    r_d = session_rate * weekend(d) * decline(d) * [join_day <= d] * [d < quit_day]

`decline(d)` is 1 except for churners: from `decline_day` it falls linearly, reaching 0 at
`scheduled_churn_day`. `quit_day = join_day + Geometric(quit_hazard)` is the day from which a human
quits for good (the daily quitting hazard every human archetype has). Bots instead start sessions at a
fixed period with a small uniform jitter, round the clock, and never quit.

Human limits (per-player means; a human's single match may stray past them, a human's mean never does):
reaction time at least HUMAN_MIN_REACTION_MS, headshot rate (headshots / hits) at most
HUMAN_MAX_HEADSHOT_RATE, peak flick speed at most HUMAN_MAX_AIM_SPEED. Blatant cheaters' means lie far
beyond them; closet cheaters' only slightly (their matches overlap the best humans' matches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600
US_PER_SECOND = 1_000_000
NEVER = 1 << 40
"""Day index standing for "never" (no decline, no quitting) inside numpy arrays."""

HUMAN_MIN_REACTION_MS = 150.0
HUMAN_MAX_HEADSHOT_RATE = 0.45
HUMAN_MAX_AIM_SPEED = 1000.0
"""Degrees per second."""

WEEKEND_MULTIPLIER = 1.3
"""Session rate on Saturdays and Sundays (UTC) relative to weekdays."""

LOCAL_HOUR_WEIGHTS = np.array(
    [3.0, 2.0, 1.2, 0.7, 0.5, 0.5, 0.7, 1.2, 2.0, 2.5, 3.0, 3.5,
     4.0, 4.0, 4.0, 4.5, 5.0, 6.0, 7.5, 9.0, 9.5, 8.5, 6.5, 4.5]
)  # fmt: skip
"""Relative share of a human's sessions starting in each local hour: a quiet night, an evening peak."""

UTC_OFFSETS_HOURS = np.array([-8, -5, -3, 0, 1, 3, 8, 9])
UTC_OFFSET_SHARES = np.array([0.12, 0.20, 0.08, 0.12, 0.18, 0.08, 0.12, 0.10])

SHOP_SECONDS = 120.0
"""Every session opens with a shop phase; its purchases fall in PURCHASE_OFFSET_SECONDS after the start."""
PURCHASE_OFFSET_SECONDS = (10.0, 110.0)

INITIAL_PLAYER_SHARE = 0.35
"""Share of players who join on day 0; the rest join on a uniformly drawn later day."""
DECLINE_DAYS = (7, 21)
"""A churner's session rate falls to zero over this many days (inclusive range)."""


@dataclass(frozen=True)
class Archetype:
    """The population-level parameters of one kind of player."""

    share: float
    session_rate: float
    """Mean sessions per weekday (players vary around it, gamma-distributed)."""
    quit_hazard: float
    """Daily probability that a still-active player quits for good."""
    purchase_intent: float
    """Mean purchases per session (players vary around it, gamma-distributed)."""
    matches_per_session: float
    skill_mean: float
    item_weights: tuple[float, ...]
    """Relative chance of buying each CATALOG item."""


CATALOG: tuple[tuple[str, float], ...] = (
    ("coins_100", 0.99),
    ("coins_550", 4.99),
    ("skin_common", 4.99),
    ("battle_pass", 9.99),
    ("skin_rare", 19.99),
    ("coins_6500", 49.99),
    ("bundle_legendary", 99.99),
)
_CHEAP_BUYER = (0.35, 0.25, 0.2, 0.15, 0.04, 0.01, 0.0)
_REGULAR_BUYER = (0.15, 0.2, 0.2, 0.3, 0.1, 0.04, 0.01)

ARCHETYPES: dict[str, Archetype] = {
    "casual": Archetype(0.40, 0.5, 0.012, 0.015, 1.8, -0.3, _CHEAP_BUYER),
    "core": Archetype(0.25, 2.2, 0.003, 0.04, 3.5, 0.4, _REGULAR_BUYER),
    "whale": Archetype(0.05, 2.0, 0.004, 0.35, 3.0, 0.2, (0.02, 0.05, 0.05, 0.18, 0.3, 0.25, 0.15)),
    "churner": Archetype(0.15, 1.2, 0.006, 0.02, 2.5, 0.0, _CHEAP_BUYER),
    "bot": Archetype(0.04, 0.0, 0.0, 0.0, 0.0, 0.0, _CHEAP_BUYER),
    "blatant_cheater": Archetype(0.03, 1.4, 0.010, 0.01, 2.5, 0.0, _CHEAP_BUYER),
    "closet_cheater": Archetype(0.08, 1.6, 0.005, 0.02, 3.0, 0.2, _REGULAR_BUYER),
}
CHEATERS = ("blatant_cheater", "closet_cheater")

_LOCAL_HOUR_SHARES = LOCAL_HOUR_WEIGHTS / LOCAL_HOUR_WEIGHTS.sum()
# UTC_HOUR_DENSITY[i, h]: share of a day's sessions that a player at UTC_OFFSETS_HOURS[i] starts in UTC
# hour h (local hour = UTC hour + offset).
UTC_HOUR_DENSITY = np.stack([np.roll(_LOCAL_HOUR_SHARES, -int(o)) for o in UTC_OFFSETS_HOURS])
_UTC_HOUR_CDF = np.concatenate([np.zeros((len(UTC_OFFSETS_HOURS), 1)), UTC_HOUR_DENSITY.cumsum(1)], 1)
_UTC_HOUR_CDF[:, -1] = 1.0


def draw_utc_seconds(offset_index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Seconds after UTC midnight at which sessions start, one per entry of `offset_index`."""
    local_cdf = np.cumsum(_LOCAL_HOUR_SHARES)
    local_hour = np.minimum(np.searchsorted(local_cdf, rng.random(len(offset_index)), side="right"), 23)
    utc_hour = (local_hour - UTC_OFFSETS_HOURS[offset_index]) % 24
    return (utc_hour + rng.random(len(offset_index))) * SECONDS_PER_HOUR


def day_fraction(offset_index: np.ndarray, seconds_of_day: np.ndarray) -> np.ndarray:
    """Share of a day's sessions that start before `seconds_of_day` (in [0, 86400]), per player.

    `offset_index` has shape (P,) and `seconds_of_day` broadcasts against (P, K).
    """
    seconds = np.clip(seconds_of_day, 0.0, SECONDS_PER_DAY)
    hour = np.minimum((seconds // SECONDS_PER_HOUR).astype(np.int64), 23)
    within = (seconds - hour * SECONDS_PER_HOUR) / SECONDS_PER_HOUR
    row = offset_index[:, None]
    return _UTC_HOUR_CDF[row, hour] + UTC_HOUR_DENSITY[row, hour] * within


def hour_density(offset_index: np.ndarray, hour_of_day: np.ndarray) -> np.ndarray:
    """Share of a day's sessions started per second within UTC hour `hour_of_day`, per player."""
    return UTC_HOUR_DENSITY[offset_index[:, None], hour_of_day] / SECONDS_PER_HOUR


def weekend_factor(day: np.ndarray, start_weekday: int) -> np.ndarray:
    """WEEKEND_MULTIPLIER on Saturdays and Sundays, 1 otherwise (`start_weekday`: Monday = 0)."""
    return np.where((start_weekday + day) % 7 >= 5, WEEKEND_MULTIPLIER, 1.0)


def scheduled_session_rate(
    session_rate: np.ndarray,
    join_day: np.ndarray,
    decline_day: np.ndarray,
    scheduled_churn_day: np.ndarray,
    day: np.ndarray,
    start_weekday: int,
) -> np.ndarray:
    """Expected human sessions per player (rows) and day (columns), before any quitting.

    Bots have session_rate 0 here: their sessions are periodic, not Poisson. NEVER marks "no decline".
    """
    d = day[None, :].astype(np.float64)
    decline = decline_day[:, None].astype(np.float64)
    churn = scheduled_churn_day[:, None].astype(np.float64)
    falling = (churn - d) / (churn - decline + 1.0)
    factor = np.where(d < decline, 1.0, np.clip(falling, 0.0, 1.0))
    joined = d >= join_day[:, None]
    return session_rate[:, None] * weekend_factor(day, start_weekday)[None, :] * factor * joined
