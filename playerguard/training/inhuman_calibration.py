"""Combining the inhuman-play model's parts into one calibrated score, and mapping scores to false
positive rates.

`Stacker` is a logistic regression on [supervised log-odds, detector score in robust units, number of
rules fired], fitted on out-of-fold inputs, so it is also the (Platt) calibration of the combined score.
Its weights are kept non-negative: more suspicion from any part never lowers the score. The rules'
weight is pulled towards a prior (the odds multiplier a fired rule is worth) because rules rarely fire
in training data; the other weights are pulled towards zero, weakly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from playerguard.errors import DataError
from playerguard.training.metrics import threshold_at_fpr

FPR_LEVELS: tuple[float, ...] = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)


class Stacker:
    """logit(score) = intercept + Σ weight × input, weights ≥ 0, L2-penalised towards `prior_weights`."""

    def __init__(self, prior_weights: Sequence[float], penalty: float = 1.0) -> None:
        self.prior_weights = [float(w) for w in prior_weights]
        self.penalty = penalty

    def fit(self, inputs: np.ndarray, y: np.ndarray) -> Self:
        """Fit on rows × len(prior_weights) inputs and 0/1 labels (both classes required)."""
        inputs = np.asarray(inputs, dtype="float64")
        y = np.asarray(y, dtype="float64")
        if y.min() == y.max():
            raise DataError("the stacker needs both positive and negative labels")
        prior = np.asarray(self.prior_weights)
        sign = 2.0 * y - 1.0

        def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
            logits = params[0] + inputs @ params[1:]
            value = -np.sum(log_expit(sign * logits)) + 0.5 * self.penalty * np.sum((params[1:] - prior) ** 2)
            residual = expit(logits) - y
            gradient = np.r_[residual.sum(), inputs.T @ residual + self.penalty * (params[1:] - prior)]
            return float(value), gradient

        start = np.r_[np.log(y.mean() / (1.0 - y.mean())), prior]
        bounds = [(None, None)] + [(0.0, None)] * len(prior)
        result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
        self.intercept_ = float(result.x[0])
        self.weights_ = np.asarray(result.x[1:], dtype="float64")
        return self

    def fixed(self, intercept: float, weights: Sequence[float]) -> Self:
        """Set the coefficients directly (used when there are no labels to fit them on)."""
        self.intercept_ = float(intercept)
        self.weights_ = np.asarray(weights, dtype="float64")
        return self

    def logit(self, inputs: np.ndarray) -> np.ndarray:
        return self.intercept_ + np.asarray(inputs, dtype="float64") @ self.weights_

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        return expit(self.logit(inputs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior_weights": self.prior_weights,
            "penalty": self.penalty,
            "intercept": self.intercept_,
            "weights": self.weights_.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stacker:
        return cls(data["prior_weights"], data["penalty"]).fixed(data["intercept"], data["weights"])


class PopulationPercentile:
    """Where an anomaly score falls in a reference population, as a probability in (0, 1).

    Inside the population's range it is the interpolated empirical CDF, kept within
    [1/(n+2), (n+1)/(n+2)]; beyond the largest score seen it keeps rising towards 1 with an exponential
    tail in units of the population's IQR, so the most unusual rows stay ordered instead of tying.
    """

    MAX_POINTS = 4001

    def fit(self, scores: np.ndarray) -> Self:
        scores = np.sort(np.asarray(scores, dtype="float64"))
        if scores.size == 0:
            raise DataError("a population percentile needs at least one score")
        n = scores.size
        points = min(n, self.MAX_POINTS)
        grid = scores if points == n else np.quantile(scores, np.linspace(0.0, 1.0, points))
        levels = (1.0 + n * np.linspace(0.0, 1.0, points)) / (n + 2.0)
        # Tied scores take the highest level, so np.interp sees strictly increasing points.
        reversed_unique, last = np.unique(grid[::-1], return_index=True)
        self.grid_ = reversed_unique
        self.levels_ = levels[::-1][last]
        self.size_ = n
        q25, q75 = np.quantile(scores, [0.25, 0.75])
        self.tail_scale_ = float(q75 - q25) if q75 > q25 else float(max(np.std(scores), 1.0))
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype="float64")
        inside = np.interp(scores, self.grid_, self.levels_)
        top = self.grid_[-1]
        beyond = 1.0 - (1.0 - self.levels_[-1]) * np.exp(-(scores - top) / self.tail_scale_)
        return np.where(scores > top, beyond, inside)

    def logit(self, scores: np.ndarray) -> np.ndarray:
        p = self.predict(scores)
        return np.log(p) - np.log1p(-p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "grid": self.grid_.tolist(),
            "levels": self.levels_.tolist(),
            "size": self.size_,
            "tail_scale": self.tail_scale_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PopulationPercentile:
        percentile = cls()
        percentile.grid_ = np.asarray(data["grid"], dtype="float64")
        percentile.levels_ = np.asarray(data["levels"], dtype="float64")
        percentile.size_ = int(data["size"])
        percentile.tail_scale_ = float(data["tail_scale"])
        return percentile


def fpr_table(scores: np.ndarray, y: np.ndarray | None, levels: Sequence[float] = FPR_LEVELS) -> pd.DataFrame:
    """Per target false positive rate: the lowest threshold that keeps to it, the rate reached and the recall.

    `scores` must be held out (out-of-fold or a validation window). Without labels (`y` None) every row
    counts as legitimate, so the table reads as flag rates of the population; recall is then NaN.
    """
    scores = np.asarray(scores, dtype="float64")
    labels = np.zeros(scores.size, dtype="int8") if y is None else np.asarray(y, dtype="int8")
    negatives = scores[labels == 0]
    positives = scores[labels == 1]
    if negatives.size == 0:
        raise DataError("an FPR table needs legitimate (label 0) rows")
    rows = []
    for level in sorted(set(levels)):
        threshold = threshold_at_fpr(labels, scores, level)
        rows.append(
            {
                "target_fpr": level,
                "threshold": threshold,
                "fpr": float(np.mean(negatives >= threshold)),
                "recall": float(np.mean(positives >= threshold)) if positives.size else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=["target_fpr", "threshold", "fpr", "recall"])
