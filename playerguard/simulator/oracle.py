"""Oracle churn and purchase probabilities: exact under the simulator's generative model.

Each probability is conditioned on the player's latent parameters (the ground-truth columns) and on
whether the player has already quit before the cutoff (quitting takes effect at the start of the quit
day, so a player whose churn day is on or before the cutoff's day has quit). Everything after the cutoff
is integrated over: the Poisson session and purchase counts, the diurnal timing, bots' jitter and the
daily quitting hazard (memoryless, so a still-active player's quit day is the cutoff day plus a fresh
geometric draw).

Labels the oracles predict, for a window W = [cutoff, cutoff + horizon):
- churn: the player has no `session_start` event in W;
- purchase: the player has at least one `purchase` event in W. Purchases fall 10-110 s after their
  session's start, so a session started just before the cutoff (or just before the window's end) can
  put a purchase inside (or outside) W; the boundary strips are integrated exactly too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError
from playerguard.simulator.model import (
    NEVER,
    PURCHASE_OFFSET_SECONDS,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    UTC_OFFSETS_HOURS,
    day_fraction,
    hour_density,
    scheduled_session_rate,
)

_COLUMNS = (
    "player_id",
    "is_bot",
    "join_day",
    "decline_day",
    "scheduled_churn_day",
    "quit_day",
    "quit_hazard",
    "session_rate",
    "purchase_intent",
    "utc_offset_hours",
    "bot_period_seconds",
    "bot_phase_seconds",
    "bot_jitter_seconds",
    "period_start",
)


@dataclass(frozen=True)
class _Window:
    """A horizon window in seconds from the period start, and the days (lo..hi) it may touch."""

    begin: float
    end: float
    lo: int
    hi: int
    start_weekday: int

    @property
    def days(self) -> np.ndarray:
        return np.arange(self.lo, self.hi + 1)


def _days(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].astype("Float64").fillna(float(NEVER)).to_numpy(np.float64).astype(np.int64)


def _window(ground_truth: pd.DataFrame, cutoff: datetime, horizon_days: int) -> _Window:
    """Check the arguments; the window in seconds from the simulated period's start."""
    missing = [c for c in _COLUMNS if c not in ground_truth.columns]
    if missing:
        raise ConfigError(
            f"ground truth lacks column(s) {', '.join(missing)}: pass SimulatedGame.ground_truth"
        )
    if not isinstance(horizon_days, (int, np.integer)) or isinstance(horizon_days, bool) or horizon_days < 1:
        raise ConfigError(f"horizon_days must be a whole number of days >= 1, got {horizon_days!r}")
    if not isinstance(cutoff, datetime) or cutoff.tzinfo is None:
        raise ConfigError(f"cutoff must be a timezone-aware datetime, got {cutoff!r}")
    starts = pd.to_datetime(ground_truth["period_start"], utc=True).unique()
    if len(starts) > 1:
        raise ConfigError("ground truth mixes simulations with different period starts")
    start = pd.Timestamp(starts[0]) if len(starts) else pd.Timestamp("1970-01-01", tz="UTC")
    begin = (pd.Timestamp(cutoff).tz_convert("UTC") - start).total_seconds()
    end = begin + horizon_days * SECONDS_PER_DAY
    lo = int(np.floor((begin - PURCHASE_OFFSET_SECONDS[1]) / SECONDS_PER_DAY))
    hi = int(np.floor(end / SECONDS_PER_DAY))
    return _Window(begin, end, lo, hi, start.weekday())


def _interval_mass(offset_index: np.ndarray, window: _Window, x0: float, x1: float) -> np.ndarray:
    """Share of each day's sessions (columns: window days) that start in [x0, x1), per player."""
    day_start = window.days * float(SECONDS_PER_DAY)
    s0 = np.clip(x0 - day_start, 0.0, SECONDS_PER_DAY)
    s1 = np.clip(x1 - day_start, 0.0, SECONDS_PER_DAY)
    return day_fraction(offset_index, s1[None, :]) - day_fraction(offset_index, s0[None, :])


def _mean_exp(intent: np.ndarray, g0: float, g1: float) -> np.ndarray:
    """Average of exp(-intent * g) for g running linearly from g0 to g1."""
    x = intent * (g1 - g0)
    safe = np.where(np.abs(x) > 1e-12, x, 1.0)
    ratio = np.where(np.abs(x) > 1e-12, -np.expm1(-x) / safe, 1.0 - x / 2.0)
    return np.exp(-intent * g0) * ratio


def _add_strip(
    hazard: np.ndarray,
    rate: np.ndarray,
    offset_index: np.ndarray,
    intent: np.ndarray,
    window: _Window,
    u: float,
    v: float,
    g_u: float,
    g_v: float,
) -> None:
    """Add the purchase intensity of sessions starting in [u, v], where a session's chance of putting a
    given purchase inside the window runs linearly from g_u to g_v. Split at the UTC hour boundary, if
    any, so the session density is constant on each piece."""
    boundary = float(np.clip(np.ceil(u / SECONDS_PER_HOUR) * SECONDS_PER_HOUR, u, v))
    for s0, s1 in ((u, boundary), (boundary, v)):
        if s1 <= s0:
            continue
        g0 = g_u + (g_v - g_u) * (s0 - u) / (v - u)
        g1 = g_u + (g_v - g_u) * (s1 - u) / (v - u)
        hour = int(np.floor(s0 / SECONDS_PER_HOUR))
        column = hour // 24 - window.lo
        density = hour_density(offset_index, np.array([hour % 24]))[:, 0]
        hazard[:, column] += rate[:, column] * density * (s1 - s0) * (1.0 - _mean_exp(intent, g0, g1))


def _survival(frame: pd.DataFrame, window: _Window, daily_hazard: np.ndarray) -> np.ndarray:
    """E[exp(-sum of daily_hazard over the days before the player quits)], per player."""
    lo, n = window.lo, daily_hazard.shape[1]
    before = np.concatenate([np.zeros((len(frame), 1)), np.cumsum(daily_hazard, axis=1)], axis=1)
    quit_at = np.minimum(_days(frame, "quit_day"), _days(frame, "scheduled_churn_day"))
    cutoff_day = int(np.floor(window.begin / SECONDS_PER_DAY))
    already = quit_at <= cutoff_day
    known = np.exp(-before[np.arange(len(frame)), np.clip(quit_at - lo, 0, n)])
    # Still playing: quits on day m + k (k >= 1) with probability h (1 - h)^(k - 1).
    m = np.maximum(cutoff_day, frame["join_day"].to_numpy(np.int64))[:, None]
    q = lo + np.arange(n + 1)[None, :]
    keep = 1.0 - frame["quit_hazard"].to_numpy(np.float64)[:, None]
    still = keep ** np.maximum(q - m, 0)  # P(quit day > q)
    weight = np.empty_like(still)
    weight[:, 0] = 1.0 - still[:, 0]
    weight[:, 1:-1] = still[:, :-2] - still[:, 1:-1]
    weight[:, -1] = still[:, -2]
    expected = (weight * np.exp(-before)).sum(axis=1)
    return np.where(already, known, expected)


def _bot_no_session(frame: pd.DataFrame, window: _Window) -> np.ndarray:
    """P(no session start in the window) for bots: a product over their jittered periodic starts."""
    period = frame["bot_period_seconds"].to_numpy(np.float64)
    jitter = frame["bot_jitter_seconds"].to_numpy(np.float64)
    first = frame["join_day"].to_numpy(np.float64) * SECONDS_PER_DAY + frame["bot_phase_seconds"].to_numpy(
        np.float64
    )
    k_lo = np.maximum(np.ceil((window.begin - jitter - first) / period), 0.0)
    k_hi = np.floor((window.end + jitter - first) / period)
    count = np.maximum(k_hi - k_lo + 1, 0).astype(np.int64)
    k = k_lo[:, None] + np.arange(max(int(count.max(initial=0)), 1))[None, :]
    nominal = first[:, None] + k * period[:, None]
    low, high = nominal - jitter[:, None], nominal + jitter[:, None]
    overlap = np.minimum(high, window.end) - np.maximum(low, window.begin)
    inside = np.where(
        (low >= window.begin) & (high <= window.end), 1.0, np.clip(overlap / (high - low), 0.0, 1.0)
    )
    inside[np.arange(k.shape[1])[None, :] >= count[:, None]] = 0.0
    return np.prod(1.0 - inside, axis=1)


def _human_rates(frame: pd.DataFrame, window: _Window) -> tuple[np.ndarray, np.ndarray]:
    offsets = frame["utc_offset_hours"].to_numpy(np.int64)
    offset_index = np.searchsorted(UTC_OFFSETS_HOURS, offsets)
    if np.any(UTC_OFFSETS_HOURS[np.minimum(offset_index, len(UTC_OFFSETS_HOURS) - 1)] != offsets):
        raise ConfigError("ground truth has a utc_offset_hours the simulator does not use")
    rate = scheduled_session_rate(
        np.where(frame["is_bot"].to_numpy(bool), 0.0, frame["session_rate"].to_numpy(np.float64)),
        frame["join_day"].to_numpy(np.int64),
        _days(frame, "decline_day"),
        _days(frame, "scheduled_churn_day"),
        window.days,
        window.start_weekday,
    )
    return rate, offset_index


def true_churn_probability(ground_truth: pd.DataFrame, cutoff: datetime, horizon_days: int) -> pd.Series:
    """P(no session starts in [cutoff, cutoff + horizon_days)) per player_id, under the generative model."""
    window = _window(ground_truth, cutoff, horizon_days)
    rate, offset_index = _human_rates(ground_truth, window)
    no_session = _survival(
        ground_truth, window, rate * _interval_mass(offset_index, window, window.begin, window.end)
    )
    bot = ground_truth["is_bot"].to_numpy(bool)
    if bot.any():
        no_session[bot] = _bot_no_session(ground_truth.loc[bot], window)
    return pd.Series(
        no_session, index=pd.Index(ground_truth["player_id"], name="player_id"), name="churn_probability"
    )


def true_purchase_probability(ground_truth: pd.DataFrame, cutoff: datetime, horizon_days: int) -> pd.Series:
    """P(at least one purchase in [cutoff, cutoff + horizon_days)) per player_id, under the generative model."""
    window = _window(ground_truth, cutoff, horizon_days)
    rate, offset_index = _human_rates(ground_truth, window)
    intent = ground_truth["purchase_intent"].to_numpy(np.float64)
    first, last = PURCHASE_OFFSET_SECONDS
    # Sessions starting in [begin - first, end - last] put every shop purchase inside the window.
    interior = _interval_mass(offset_index, window, window.begin - first, window.end - last)
    hazard = rate * interior * -np.expm1(-intent)[:, None]
    _add_strip(
        hazard, rate, offset_index, intent, window, window.begin - last, window.begin - first, 0.0, 1.0
    )
    _add_strip(hazard, rate, offset_index, intent, window, window.end - last, window.end - first, 1.0, 0.0)
    no_purchase = _survival(ground_truth, window, hazard)
    return pd.Series(
        1.0 - no_purchase,
        index=pd.Index(ground_truth["player_id"], name="player_id"),
        name="purchase_probability",
    )
