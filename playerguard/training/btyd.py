"""BG/NBD, the buy-till-you-die baseline: purchase counts and P(alive) from each player's own history.

Fader, Hardie and Lee (2005), "Counting your customers the easy way". While alive, a player buys as a
Poisson process with rate λ ~ Gamma(r, α); after each purchase they leave for good with probability
p ~ Beta(a, b). A player's history is three numbers at the cutoff: `frequency` (repeat purchases after the
first), `recency` (time from the first purchase to the last) and `age` (time from the first purchase to the
cutoff), all in the same unit (days here). Fitted by maximum likelihood with scipy; the log-likelihood is
computed in log space (gammaln, logaddexp), so players with no repeat purchase and long histories stay finite.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1
from sklearn.base import BaseEstimator

from playerguard.errors import DataError

PARAMETER_NAMES = ("r", "alpha", "a", "b")


def _histories(
    frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (frequency, recency, age))
    if not (x.shape == t_x.shape == T.shape) or x.ndim != 1:
        raise DataError("frequency, recency and age must be one-dimensional and of one length")
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
        raise DataError("BG/NBD histories must be finite numbers")
    if (x < 0).any() or (t_x < 0).any() or (t_x > T + 1e-9).any() or ((x == 0) & (t_x > 0)).any():
        raise DataError("BG/NBD histories need frequency >= 0 and 0 <= recency <= age (recency 0 without repeats)")
    return x, t_x, T


def log_likelihood(
    params: np.ndarray, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """Each player's BG/NBD log-likelihood under `params` = (r, α, a, b)."""
    r, alpha, a, b = params
    x, t_x, T = frequency, recency, age
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + betaln(a, b + x) - betaln(a, b)
    still_alive = -(r + x) * np.log(alpha + T)
    repeated = x > 0
    # log(a / (b + x - 1)) is only defined for players with a repeat purchase; the others add nothing.
    safe = np.where(repeated, b + x - 1, 1.0)
    left = np.where(repeated, np.log(a) - np.log(safe) - (r + x) * np.log(alpha + t_x), -np.inf)
    return common + np.logaddexp(still_alive, left)


class BGNBD(BaseEstimator):
    """The BG/NBD model: `fit(frequency, recency, age)`, then `p_alive`, `expected_purchases` and
    `purchase_probability` for any histories at their own cutoff."""

    def __init__(self, penalty: float = 1e-4, max_iter: int = 2000) -> None:
        self.penalty = penalty
        self.max_iter = max_iter

    def fit(self, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray) -> BGNBD:
        """Maximum likelihood over log-parameters (all four stay positive), with a small L2 penalty on them
        that keeps a flat likelihood (few buyers) from running off to infinity."""
        x, t_x, T = _histories(frequency, recency, age)
        if len(x) < 10:
            raise DataError(f"BG/NBD needs the histories of at least 10 players, got {len(x)}")
        scale = max(float(T.mean()), 1e-9)

        def objective(log_params: np.ndarray) -> float:
            params = np.exp(log_params)
            total = log_likelihood(params, x, t_x, T).sum()
            return -total / len(x) + self.penalty * float(log_params @ log_params)

        start = np.log([1.0, scale, 1.0, 1.0])
        result = minimize(objective, start, method="Nelder-Mead", options={"maxiter": self.max_iter, "xatol": 1e-6, "fatol": 1e-10})
        result = minimize(objective, result.x, method="L-BFGS-B")
        if not np.isfinite(result.fun):
            raise DataError("the BG/NBD fit did not converge to a finite likelihood")
        self.params_ = np.exp(result.x)
        self.log_likelihood_ = float(log_likelihood(self.params_, x, t_x, T).sum())
        return self

    def _check(self) -> np.ndarray:
        if not hasattr(self, "params_"):
            raise DataError("BGNBD is not fitted: call fit first")
        return self.params_

    def p_alive(self, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray) -> np.ndarray:
        """P(the player has not left) at their cutoff; 1 for a player with no repeat purchase."""
        r, alpha, a, b = self._check()
        x, t_x, T = _histories(frequency, recency, age)
        repeated = x > 0
        safe = np.where(repeated, b + x - 1, 1.0)
        log_odds_dead = np.log(a) - np.log(safe) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(repeated, 1.0 / (1.0 + np.exp(np.minimum(log_odds_dead, 700.0))), 1.0)

    def purchase_probability(
        self, horizon: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
    ) -> np.ndarray:
        """P(at least one purchase in the next `horizon`): alive, and the first Poisson arrival comes in
        time, with λ drawn from its posterior Gamma(r + x, α + age)."""
        r, alpha, _, _ = self._check()
        x, t_x, T = _histories(frequency, recency, age)
        none_in_window = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon)))
        return self.p_alive(x, t_x, T) * (1.0 - none_in_window)

    def expected_purchases(
        self, horizon: float, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray
    ) -> np.ndarray:
        """E[purchases in the next `horizon`] given the history (equation 10 of the paper)."""
        r, alpha, a, b = self._check()
        x, t_x, T = _histories(frequency, recency, age)
        if a <= 1:  # the closed form needs a > 1; below that the count is dominated by early dropout
            return self.purchase_probability(horizon, x, t_x, T)
        z = horizon / (alpha + T + horizon)
        ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon)))
        body = (a + b + x - 1) / (a - 1) * (1 - ratio * hyp2f1(r + x, b + x, a + b + x - 1, z))
        repeated = x > 0
        safe = np.where(repeated, b + x - 1, 1.0)
        odds = np.where(repeated, a / safe * np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x))), 0.0)
        return np.clip(body / (1 + odds), 0.0, None)
