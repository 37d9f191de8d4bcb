"""BG/NBD as a churn or purchase model that can ship: the buy-till-you-die baseline every run trains beside
the boosted model, on the same cutoffs, judged on the same test cutoff.

Its inputs are three features of the label's event type the feature set computes (`features suggest` writes
them for every type): how many such events a player had over all history, the days since the last one and
the days since the first one. As in the paper, the first event is the birth: x = count − 1 repeat events,
t_x = days since the first − days since the last, T = days since the first. Purchase scores P(at least one
purchase in the horizon); churn scores 1 − P(at least one session in the horizon). A player with no such
event yet has no BG/NBD history: they get the training rows' rate for players like them. No label enters
the BG/NBD fit; the validation window recalibrates the log-odds (as for the logistic baseline).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from playerguard.errors import DataError
from playerguard.training.base import STATE_FILE, binary_labels, read_model_state
from playerguard.training.btyd import BGNBD
from playerguard.training.calibration import Calibrator
from playerguard.training.inhuman_explain import chosen_rows, spread, top_reasons
from playerguard.training.params import ModelParams

KIND = "btyd"
FORMAT_VERSION = 1
_FIT_ROWS = 20_000  # the likelihood is smooth: a sample this size pins the four parameters


@dataclass(frozen=True)
class BTYDColumns:
    """The feature columns BG/NBD reads: lifetime count, days since the last one, days since the first."""

    count: str
    recency: str
    tenure: str

    def as_list(self) -> list[str]:
        return [self.count, self.recency, self.tenure]


def btyd_columns(feature_set: Any, event_type: str | None) -> BTYDColumns | None:
    """The features of `feature_set` BG/NBD needs for `event_type`, or None when it lacks one of them."""
    if feature_set is None or event_type is None:
        return None
    count = recency = tenure = None
    for d in getattr(feature_set, "definitions", ()):
        plain = not d.selection.where and d.attribute is None
        only = d.selection.event_types == (event_type,)
        lifetime = d.window.symbol == "lifetime"
        if d.kind == "count" and only and plain and lifetime:
            count = count or d.name
        elif d.kind == "recency" and only and plain:
            recency = recency or d.name
        elif d.kind == "tenure" and only and plain:
            tenure = tenure or d.name
    return BTYDColumns(count, recency, tenure) if count and recency and tenure else None


def _sigmoid_logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(clipped) - np.log1p(-clipped)


class BTYDModel(ModelParams):
    """BG/NBD on (count, recency, tenure) columns, scoring the label over `horizon_days`."""

    name: ClassVar[str] = "btyd"
    kind: ClassVar[str] = KIND
    matrix_input: ClassVar[bool] = True
    absent_event_is_positive: ClassVar[bool] = False  # churn: no event in the horizon is the positive class

    def __init__(
        self,
        columns: Sequence[str] = (),
        horizon_days: float = 14.0,
        calibration: str = "platt",
        random_state: int = 0,
    ) -> None:
        self.columns = columns
        self.horizon_days = horizon_days
        self.calibration = calibration
        self.random_state = random_state

    def _values(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            missing = [c for c in self.feature_names_ if c not in X.columns]
            if missing:
                raise DataError(f"the {self.name} BG/NBD model needs the feature {missing[0]!r}")
            return X[self.feature_names_].to_numpy(dtype="float64", na_value=np.nan)
        return np.asarray(X, dtype="float64")

    def _histories(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(has a history, x, t_x, T) per row; rows without one get a placeholder history."""
        count, since_last, since_first = values[:, 0], values[:, 1], values[:, 2]
        known = (np.nan_to_num(count) > 0) & np.isfinite(since_last) & np.isfinite(since_first)
        age = np.where(known, np.maximum(since_first, 0.0), 1.0)
        recency = np.where(known, np.clip(since_first - since_last, 0.0, age), 0.0)
        repeats = np.where(known, np.maximum(np.nan_to_num(count) - 1, 0.0), 0.0)
        return known, repeats, np.where(repeats > 0, recency, 0.0), age

    def _raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        known, x, t_x, T = self._histories(self._values(X))
        p_event = self.bgnbd_.purchase_probability(float(self.horizon_days), x, t_x, T)
        p = 1.0 - p_event if self.absent_event_is_positive else p_event
        return np.where(known, p, self.no_history_rate_)

    def margin(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        return _sigmoid_logit(self._raw(X))

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | None = None,
        *,
        X_val: pd.DataFrame | None = None,
        y_val: pd.Series | None = None,
    ) -> Self:
        """Fit BG/NBD on the histories of `X` (no labels needed); recalibrate on the validation window."""
        if len(self.columns) != 3:
            raise DataError("BTYDModel needs three columns: lifetime count, days since the last one, tenure")
        self.feature_names_ = list(self.columns)
        known, x, t_x, T = self._histories(self._values(X))
        if y is not None and (~known).any():
            labels = binary_labels(pd.Series(y).iloc[np.flatnonzero(~known)], f"{self.name} label")
            self.no_history_rate_ = float(np.mean(labels))
        else:
            self.no_history_rate_ = 1.0 if self.absent_event_is_positive else 0.0
        x, t_x, T = x[known], t_x[known], T[known]
        if len(x) > _FIT_ROWS:
            pick = np.random.default_rng(self.random_state).choice(len(x), _FIT_ROWS, replace=False)
            x, t_x, T = x[pick], t_x[pick], T[pick]
        self.bgnbd_ = BGNBD().fit(x, t_x, T)
        self.calibrator_: Calibrator | None = None
        if X_val is not None and y_val is not None:
            labels = binary_labels(y_val, f"{self.name} label")
            if labels.size and labels.min() != labels.max():
                self.calibrator_ = Calibrator(self.calibration).fit(self.margin(X_val), labels)
        values = X[self.feature_names_].to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(all="ignore"):
            self.medians_ = np.nan_to_num(np.nanmedian(values, axis=0))
        return self

    def predict_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        margin = self.margin(X)
        if self.calibrator_ is not None:
            return self.calibrator_.predict(margin)
        return 1.0 / (1.0 + np.exp(-margin))

    def explain(
        self, X: pd.DataFrame | np.ndarray, top_k: int = 3, *, reason_rows: np.ndarray | None = None
    ) -> list[list[dict]]:
        """Each input's pull on the log-odds: the change when it is set to the training median. With
        `reason_rows` (a boolean per row), only those rows are explained and each reason names its method,
        "btyd"; the other rows get no reasons."""
        everything = self._values(X)
        rows = chosen_rows(reason_rows, len(everything))
        values = everything if len(rows) == len(everything) else everything[rows]
        base = self.margin(values)
        contributions = np.empty_like(values)
        for i in range(values.shape[1]):
            typical = values.copy()
            typical[:, i] = self.medians_[i]
            contributions[:, i] = base - self.margin(typical)
        method = None if reason_rows is None else KIND
        reasons = top_reasons(contributions, values, self.feature_names_, top_k, method=method)
        return spread(reasons, rows, len(everything))

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "params": self.saved_params(),
            "feature_names": self.feature_names_,
            "bgnbd": self.bgnbd_.params_.tolist(),
            "no_history_rate": self.no_history_rate_,
            "medians": self.medians_.tolist(),
            "calibrator": None if self.calibrator_ is None else self.calibrator_.to_dict(),
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2, allow_nan=False))

    @classmethod
    def load(cls, directory: Path) -> Self:
        state = read_model_state(Path(directory), STATE_FILE, cls, FORMAT_VERSION)
        model = cls(**state["params"])
        model.feature_names_ = list(state["feature_names"])
        model.bgnbd_ = BGNBD()
        model.bgnbd_.params_ = np.asarray(state["bgnbd"], dtype="float64")
        model.medians_ = np.asarray(state["medians"], dtype="float64")
        model.no_history_rate_ = float(state["no_history_rate"])
        model.calibrator_ = None if state["calibrator"] is None else Calibrator.from_dict(state["calibrator"])
        return model


class BTYDChurnModel(BTYDModel):
    """Churn: no session in the horizon."""

    name: ClassVar[str] = "churn"
    absent_event_is_positive: ClassVar[bool] = True


class BTYDPurchaseModel(BTYDModel):
    """Purchase: at least one purchase in the horizon."""

    name: ClassVar[str] = "purchase"
