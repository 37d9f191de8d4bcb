"""Probability calibration of a model's log-odds, fitted on a held-out window and saved as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from playerguard.errors import ConfigError


class Calibrator:
    """Maps a model's margins (log-odds) to probabilities. Fitted on a held-out window, never on training rows.

    `method` is "isotonic", "platt" or "auto" (isotonic when both classes have at least
    `isotonic_min_per_class` rows, else Platt scaling, which needs far fewer).
    """

    def __init__(self, method: str = "auto", isotonic_min_per_class: int = 1000) -> None:
        if method not in ("auto", "isotonic", "platt"):
            raise ConfigError(f"unknown calibration method {method!r}: use auto, isotonic or platt")
        self.method = method
        self.isotonic_min_per_class = isotonic_min_per_class

    def fit(self, margin: np.ndarray, y: np.ndarray) -> Self:
        positives = int(y.sum())
        smallest_class = min(positives, y.size - positives)
        method = self.method
        if method == "auto":
            method = "isotonic" if smallest_class >= self.isotonic_min_per_class else "platt"
        if method == "platt":
            logistic = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
            slope = float(logistic.coef_[0, 0])
            if slope > 0:
                self.method_, self.slope_, self.intercept_ = "platt", slope, float(logistic.intercept_[0])
                return self
            # A non-positive slope would invert the ranking (and the monotone constraints); isotonic cannot.
            method = "isotonic"
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        isotonic.fit(margin, y)
        self.method_ = "isotonic"
        self.x_ = np.asarray(isotonic.X_thresholds_, dtype="float64")
        self.y_ = np.asarray(isotonic.y_thresholds_, dtype="float64")
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        if self.method_ == "platt":
            return expit(self.slope_ * margin + self.intercept_)
        return np.interp(margin, self.x_, self.y_)

    def to_dict(self) -> dict[str, Any]:
        if self.method_ == "platt":
            return {"method": "platt", "slope": self.slope_, "intercept": self.intercept_}
        return {"method": "isotonic", "x": self.x_.tolist(), "y": self.y_.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibrator:
        calibrator = cls(method=data["method"])
        calibrator.method_ = data["method"]
        if calibrator.method_ == "platt":
            calibrator.slope_, calibrator.intercept_ = float(data["slope"]), float(data["intercept"])
        else:
            calibrator.x_ = np.asarray(data["x"], dtype="float64")
            calibrator.y_ = np.asarray(data["y"], dtype="float64")
        return calibrator
