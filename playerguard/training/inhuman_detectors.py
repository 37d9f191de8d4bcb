"""Unsupervised detectors of unusual play, fitted on a population without labels.

Both detectors impute NaN with the population medians and measure each feature in robust units
((value − median) / IQR). A feature has a suspicious direction: "high" (accuracy, headshots), "low"
(reaction time, regularity of the schedule) or "both" when either tail is unusual.

- `TailDetector` (default): for each feature, the empirical probability of a value at least as extreme
  in the suspicious direction; the score is the sum of −log of those tail probabilities over features
  (the ECOD construction of Li et al., 2022, with the tail fixed by the direction instead of guessed
  from skewness). It is additive per feature and needs no tuning.
- `IsolationDetector`: scikit-learn's IsolationForest on the robust units, with the harmless side of
  one-directional features folded to zero, so being unusually bad is not taken as a sign of cheating.

Per-row reasons: for the tail detector, each feature's share of the score above a typical player's; for
the IsolationForest, the directed robust z-scores of the most deviant features.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.ensemble import IsolationForest

from playerguard.errors import ConfigError, DataError
from playerguard.training.feature_columns import Features, columns_matrix

DIRECTIONS = ("high", "low", "both")
# At most this many reference quantiles per feature are stored; below it the sorted values are exact.
MAX_REFERENCE_POINTS = 4001
# The only type in a saved IsolationForest that skops does not trust by default.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = ("sklearn.tree._tree.Tree",)


def check_directions(directions: Mapping[str, str]) -> dict[str, str]:
    """`directions` as a dict, or ConfigError when a direction is not high, low or both."""
    for feature, direction in directions.items():
        if direction not in DIRECTIONS:
            raise ConfigError(f"direction of {feature!r} must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return dict(directions)


class RobustUnits:
    """Medians and IQRs of a population: imputes NaN and expresses values as directed robust z-scores."""

    def __init__(self, features: Sequence[str], directions: Sequence[str]) -> None:
        self.features = list(features)
        self.directions = list(directions)

    def fit(self, X: np.ndarray) -> Self:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: handled just below
            medians = np.nanmedian(X, axis=0)
            q25, q75 = np.nanpercentile(X, [25, 75], axis=0)
            # A feature with no spread in the middle half (mostly zeros) falls back to its mean absolute
            # deviation, then to 1, so a rare non-zero value still registers without dividing by zero.
            fallback = np.nanmean(np.abs(X - medians), axis=0)
        scale = q75 - q25
        scale = np.where(scale > 0, scale, np.where(fallback > 0, fallback, 1.0))
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        self.scales_ = scale
        return self

    def impute(self, X: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(X), self.medians_, X)

    def z(self, X: np.ndarray) -> np.ndarray:
        """Robust z-scores, signed so that positive is the suspicious side ("both": absolute value)."""
        z = (self.impute(X) - self.medians_) / self.scales_
        sign = np.array([-1.0 if d == "low" else 1.0 for d in self.directions])
        directed = z * sign
        both = np.array([d == "both" for d in self.directions])
        return np.where(both, np.abs(z), directed)

    def to_dict(self) -> dict[str, Any]:
        return {"medians": self.medians_.tolist(), "scales": self.scales_.tolist()}

    def load_state(self, state: Mapping[str, Any]) -> Self:
        self.medians_ = np.asarray(state["medians"], dtype="float64")
        self.scales_ = np.asarray(state["scales"], dtype="float64")
        return self


class _Detector:
    """Shared plumbing: feature selection, directions, robust units and reasons."""

    kind: ClassVar[str]

    def __init__(self, features: Sequence[str], directions: Mapping[str, str]) -> None:
        self.features = list(features)
        self.directions = check_directions(directions)

    def _direction_list(self) -> list[str]:
        return [self.directions.get(name, "both") for name in self.features]

    def _matrix(self, X: Features) -> np.ndarray:
        return columns_matrix(X, self.features)

    def fit(self, X: pd.DataFrame) -> Self:
        """Fit on a population frame (no labels); needs at least two rows."""
        if len(X) < 2:
            raise DataError(f"the {self.kind} detector needs at least 2 rows to fit, got {len(X)}")
        matrix = self._matrix(X)
        self.units_ = RobustUnits(self.features, self._direction_list()).fit(matrix)
        self._fit_matrix(self.units_.impute(matrix))
        return self

    def deviations(self, X: Features) -> np.ndarray:
        """How far each feature of each row lies on its suspicious side (rows × features); here the
        directed robust z-score."""
        return self.units_.z(self._matrix(X))

    def score(self, X: Features) -> np.ndarray:
        """Anomaly score per row: higher is more unusual in the suspicious directions."""
        return self._score_matrix(self.units_.impute(self._matrix(X)))

    def _fit_matrix(self, matrix: np.ndarray) -> None:
        raise NotImplementedError

    def _score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def state(self, directory: Path) -> dict[str, Any]:
        """JSON-serialisable state; may write companion files into `directory`."""
        return {
            "kind": self.kind,
            "features": self.features,
            "directions": self.directions,
            "units": self.units_.to_dict(),
        }

    def _load_state(self, state: Mapping[str, Any], directory: Path) -> None:
        self.units_ = RobustUnits(self.features, self._direction_list()).load_state(state["units"])


class TailDetector(_Detector):
    """Sum over features of −log(tail probability in the suspicious direction); see the module docstring."""

    kind: ClassVar[str] = "tail"

    def _fit_matrix(self, matrix: np.ndarray) -> None:
        n = matrix.shape[0]
        points = min(n, MAX_REFERENCE_POINTS)
        if points == n:
            self.reference_ = np.sort(matrix, axis=0)
        else:
            self.reference_ = np.quantile(matrix, np.linspace(0.0, 1.0, points), axis=0)
        self.population_size_ = n
        self.typical_ = np.median(self._tail_matrix(matrix), axis=0)

    def deviations(self, X: Features) -> np.ndarray:
        """Each feature's share of the score above a typical player's: −log tail probability minus its
        population median (nats). Unlike a robust z-score, it stays comparable between a feature that is
        mostly zero and one that is spread out."""
        return self._tail_matrix(self.units_.impute(self._matrix(X))) - self.typical_

    def _tail_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """−log tail probability per feature (rows × features); the score is their row sum."""
        n, points = self.population_size_, self.reference_.shape[0]
        out = np.empty_like(matrix)
        for j, direction in enumerate(self._direction_list()):
            grid = self.reference_[:, j]
            # (count + 1) / (n + 2): a value beyond everything seen is rare, never impossible. Only the tails
            # the direction reads are computed (scoring a request spent half its detector time on the other).
            if direction != "high":
                at_most = np.searchsorted(grid, matrix[:, j], side="right") / points
                low = (at_most * n + 1.0) / (n + 2.0)
            if direction != "low":
                at_least = (points - np.searchsorted(grid, matrix[:, j], side="left")) / points
                high = (at_least * n + 1.0) / (n + 2.0)
            if direction == "high":
                tail = high
            elif direction == "low":
                tail = low
            else:
                tail = np.minimum(1.0, 2.0 * np.minimum(low, high))
            out[:, j] = -np.log(tail)
        return out

    def _score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return self._tail_matrix(matrix).sum(axis=1)

    def state(self, directory: Path) -> dict[str, Any]:
        return super().state(directory) | {
            "reference": self.reference_.T.tolist(),
            "population_size": self.population_size_,
            "typical": self.typical_.tolist(),
        }

    def _load_state(self, state: Mapping[str, Any], directory: Path) -> None:
        super()._load_state(state, directory)
        self.reference_ = np.asarray(state["reference"], dtype="float64").reshape(len(self.features), -1).T
        self.population_size_ = int(state["population_size"])
        self.typical_ = np.asarray(state["typical"], dtype="float64")


class IsolationDetector(_Detector):
    """IsolationForest on directed robust z-scores, the harmless side of one-way features set to zero."""

    kind: ClassVar[str] = "isolation_forest"
    FILE: ClassVar[str] = "isolation_forest.skops"

    def __init__(
        self,
        features: Sequence[str],
        directions: Mapping[str, str],
        *,
        n_estimators: int = 100,
        random_state: int = 0,
    ) -> None:
        super().__init__(features, directions)
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _folded(self, matrix: np.ndarray) -> np.ndarray:
        z = (matrix - self.units_.medians_) / self.units_.scales_
        directions = self._direction_list()
        sign = np.array([-1.0 if d == "low" else 1.0 for d in directions])
        one_way = np.array([d != "both" for d in directions])
        return np.where(one_way, np.maximum(z * sign, 0.0), z)

    def _fit_matrix(self, matrix: np.ndarray) -> None:
        self.forest_ = IsolationForest(n_estimators=self.n_estimators, random_state=self.random_state)
        self.forest_.fit(self._folded(matrix))

    def _score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        return -self.forest_.score_samples(self._folded(matrix))

    def state(self, directory: Path) -> dict[str, Any]:
        sio.dump(self.forest_, Path(directory) / self.FILE)
        return super().state(directory) | {
            "n_estimators": self.n_estimators,
            "random_state": self.random_state,
            "file": self.FILE,
        }

    def _load_state(self, state: Mapping[str, Any], directory: Path) -> None:
        super()._load_state(state, directory)
        path = Path(directory) / state["file"]
        unexpected = set(sio.get_untrusted_types(file=path)) - set(SKOPS_TRUSTED_TYPES)
        if unexpected:
            raise DataError(f"{path} holds types this model never saves: {', '.join(sorted(unexpected))}")
        self.forest_ = sio.load(path, trusted=list(SKOPS_TRUSTED_TYPES))


DETECTORS: dict[str, type[_Detector]] = {"tail": TailDetector, "isolation_forest": IsolationDetector}


def make_detector(
    kind: str, features: Sequence[str], directions: Mapping[str, str], random_state: int = 0
) -> _Detector:
    """A detector of `kind` ("tail" or "isolation_forest") on `features`."""
    if kind == "tail":
        return TailDetector(features, directions)
    if kind == "isolation_forest":
        return IsolationDetector(features, directions, random_state=random_state)
    raise ConfigError(f"unknown detector {kind!r}: use {' or '.join(DETECTORS)}")


def detector_from_state(state: Mapping[str, Any], directory: Path) -> _Detector:
    """Rebuild a fitted detector from `state` (and companion files in `directory`)."""
    kind = state.get("kind")
    if kind == "isolation_forest":
        detector: _Detector = IsolationDetector(
            state["features"],
            state["directions"],
            n_estimators=int(state["n_estimators"]),
            random_state=int(state["random_state"]),
        )
    elif kind == "tail":
        detector = TailDetector(state["features"], state["directions"])
    else:
        raise DataError(f"unknown detector kind {kind!r} in saved model")
    detector._load_state(state, directory)
    return detector
