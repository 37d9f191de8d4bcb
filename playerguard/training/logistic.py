"""The logistic baseline: logistic regression on standardised recency/frequency features.

Every churn and purchase run is measured against it, and when it beats the boosted model out of time it is
the model that ships (`LogisticChurnModel`, `LogisticPurchaseModel`, registered with the tag
`model.kind = logistic_baseline`). It is saved as JSON and scored with numpy: no pickle, no skops.

A feature's NaN is replaced by its training median; a feature that had NaN in training also gets a
missing-value indicator. Both are standardised with the training mean and standard deviation, so a feature's
contribution to a row's log-odds is coefficient × standardised value (plus its indicator's share), and the
contributions of the average player are zero.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from playerguard.errors import DataError
from playerguard.training.base import binary_labels, feature_columns, read_model_state, select_features
from playerguard.training.calibration import Calibrator
from playerguard.training.inhuman_explain import chosen_rows, spread, top_reasons
from playerguard.training.params import ModelParams

FORMAT_VERSION = 1
STATE_FILE = "model.json"
KIND = "logistic_baseline"

# Recency/frequency features the baseline uses when present.
RECENCY_FREQUENCY_FEATURES: tuple[str, ...] = (
    "tenure_days",
    "days_since_last_event",
    "days_since_last_session",
    "days_since_last_purchase",
    "sessions_7d",
    "sessions_28d",
    "matches_28d",
    "purchases_28d",
    "purchases_lifetime",
    "spend_28d",
    "spend_lifetime",
)


def _scale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


class LogisticBaseline(ModelParams):
    """Logistic regression on standardised features, NaN imputed by the median plus a missing flag.

    `features` lists the columns to use when present (default: recency/frequency features); when it is
    None or none of them is in the data, every feature column is used. With `X_val`, the log-odds are
    recalibrated on the validation window (`calibration`: "platt", "isotonic" or "auto"), which corrects a
    base rate that moved since the training cutoffs; without it, the fitted probabilities are used as they
    are. `X_extra` rows join the fit (see `ChurnModel.fit`).
    """

    name: ClassVar[str] = "baseline"
    kind: ClassVar[str] = KIND
    # predict_score and explain also take the float64 matrix of `feature_names_` (the scoring hot path),
    # and explain takes `reason_rows`.
    matrix_input: ClassVar[bool] = True

    def __init__(
        self,
        features: Sequence[str] | None = RECENCY_FREQUENCY_FEATURES,
        C: float = 1.0,
        calibration: str = "platt",
    ) -> None:
        self.features = features
        self.C = C
        self.calibration = calibration

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | None = None,
        *,
        X_val: pd.DataFrame | None = None,
        y_val: pd.Series | None = None,
        X_extra: pd.DataFrame | None = None,
        y_extra: pd.Series | None = None,
    ) -> Self:
        """Fit on (X, y) and the optional (X_extra, y_extra); calibrate on (X_val, y_val) when given."""
        if y is None:
            raise DataError(f"the {self.name} logistic model needs labels")
        available = feature_columns(X)
        chosen = [f for f in (self.features or ()) if f in available]
        self.feature_names_ = chosen or available
        if not self.feature_names_:
            raise DataError(f"the {self.name} logistic model found no numeric feature columns")
        X_fit = select_features(X, self.feature_names_)
        y_fit = binary_labels(y, f"{self.name} label")
        if X_extra is not None and len(X_extra):
            if y_extra is None:
                raise DataError("X_extra was given without y_extra")
            X_fit = pd.concat([X_fit, select_features(X_extra, self.feature_names_)], ignore_index=True)
            y_fit = np.r_[y_fit, binary_labels(y_extra, f"{self.name} label")]
        if y_fit.size == 0 or y_fit.min() == y_fit.max():
            raise DataError(f"the {self.name} training rows need both positive and negative labels")

        values = X_fit.to_numpy(dtype="float64")
        missing = np.isnan(values)
        with np.errstate(all="ignore"):
            medians = np.nanmedian(np.where(missing.all(axis=0), 0.0, values), axis=0)
        self.medians_ = np.nan_to_num(medians)
        self.flagged_ = missing.any(axis=0)
        self.mean_, self.scale_ = _scale(np.where(missing, self.medians_, values))
        self.flag_mean_, self.flag_scale_ = _scale(missing[:, self.flagged_].astype("float64"))
        design = np.hstack(self._standardised(X_fit))
        regression = LogisticRegression(C=self.C, max_iter=2000).fit(design, y_fit)
        width = len(self.feature_names_)
        self.coef_ = regression.coef_[0, :width].astype("float64")
        self.flag_coef_ = regression.coef_[0, width:].astype("float64")
        self.intercept_ = float(regression.intercept_[0])

        self.calibrator_: Calibrator | None = None
        if X_val is not None:
            if y_val is None:
                raise DataError("X_val was given without y_val")
            y_valid = binary_labels(y_val, f"{self.name} label")
            if y_valid.size == 0 or y_valid.min() == y_valid.max():
                raise DataError(f"the {self.name} validation rows need both positive and negative labels")
            self.calibrator_ = Calibrator(self.calibration).fit(self.margin(X_val), y_valid)
        return self

    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The float64 matrix of `feature_names_`: selected from a frame, or an array taken as that matrix."""
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != len(self.feature_names_):
                raise DataError(f"the {self.name} model takes {len(self.feature_names_)} feature columns, got {X.shape}")
            return np.asarray(X, dtype="float64")
        return select_features(X, self.feature_names_).to_numpy(dtype="float64")

    def _standardised(self, selected: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(standardised imputed values, standardised missing flags of the flagged features)."""
        values = np.asarray(selected, dtype="float64")
        missing = np.isnan(values)
        z = (np.where(missing, self.medians_, values) - self.mean_) / self.scale_
        flags = (missing[:, self.flagged_].astype("float64") - self.flag_mean_) / self.flag_scale_
        return z, flags

    def _shares(self, values: np.ndarray) -> np.ndarray:
        z, flags = self._standardised(values)
        shares = z * self.coef_
        shares[:, self.flagged_] += flags * self.flag_coef_
        return shares

    def contributions(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Each feature's share of each row's log-odds (before calibration): coefficient × standardised value,
        plus coefficient × standardised missing flag for features that can be missing."""
        return pd.DataFrame(self._shares(self._matrix(X)), columns=self.feature_names_)

    def margin(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The fitted log-odds per row, before calibration."""
        return self.intercept_ + self._shares(self._matrix(X)).sum(axis=1)

    def predict_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Probability of the positive class per row (recalibrated when fitted with a validation window)."""
        margin = self.margin(X)
        return expit(margin) if self.calibrator_ is None else self.calibrator_.predict(margin)

    def explain(
        self, X: pd.DataFrame | np.ndarray, top_k: int = 3, *, reason_rows: np.ndarray | None = None
    ) -> list[list[dict]]:
        """Per row, the `top_k` features with the largest |contribution| to the log-odds, largest first.
        With `reason_rows` (a boolean per row), only those rows are explained and each reason names its
        method, "linear"; the other rows get no reasons."""
        values = self._matrix(X)
        rows = chosen_rows(reason_rows, len(values))
        chosen = values if len(rows) == len(values) else values[rows]
        method = None if reason_rows is None else "linear"
        reasons = top_reasons(self._shares(chosen), chosen, self.feature_names_, top_k, method=method)
        return spread(reasons, rows, len(values))

    def save(self, directory: Path) -> None:
        """Write the coefficients, the imputation and scaling, and the calibrator as JSON."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "params": self.saved_params(),
            "feature_names": self.feature_names_,
            "medians": self.medians_.tolist(),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "flagged": self.flagged_.tolist(),
            "flag_mean": self.flag_mean_.tolist(),
            "flag_scale": self.flag_scale_.tolist(),
            "coef": self.coef_.tolist(),
            "flag_coef": self.flag_coef_.tolist(),
            "intercept": self.intercept_,
            "calibrator": None if self.calibrator_ is None else self.calibrator_.to_dict(),
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2, allow_nan=False))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a model written by `save`."""
        directory = Path(directory)
        state = read_model_state(directory, STATE_FILE, cls, FORMAT_VERSION)
        model = cls(**state["params"])
        model.feature_names_ = list(state["feature_names"])

        def array(key: str, dtype: str = "float64") -> np.ndarray:
            return np.asarray(state[key], dtype=dtype).reshape(-1)

        model.medians_, model.mean_, model.scale_ = array("medians"), array("mean"), array("scale")
        model.flagged_ = array("flagged", "bool")
        model.flag_mean_, model.flag_scale_ = array("flag_mean"), array("flag_scale")
        model.coef_, model.flag_coef_ = array("coef"), array("flag_coef")
        model.intercept_ = float(state["intercept"])
        model.calibrator_ = None if state["calibrator"] is None else Calibrator.from_dict(state["calibrator"])
        return model


class LogisticChurnModel(LogisticBaseline):
    """The churn logistic baseline as a model that can ship."""

    name: ClassVar[str] = "churn"


class LogisticPurchaseModel(LogisticBaseline):
    """The purchase logistic baseline as a model that can ship."""

    name: ClassVar[str] = "purchase"
