"""Churn and purchase propensity: gradient-boosted trees (XGBoost), calibrated on an out-of-time window,
with TreeSHAP reasons; and the logistic baseline every run is compared against."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.special import expit
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from playerguard.errors import ConfigError, DataError
from playerguard.training.base import binary_labels, feature_columns, select_features

FORMAT_VERSION = 1
BOOSTER_FILE = "booster.json"
PARAMS_FILE = "model.json"

# Recency/frequency features the logistic baseline uses when present.
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


class Calibrator:
    """Maps booster margins to probabilities. Fitted on a held-out window, never on training rows.

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


class _PropensityModel:
    """XGBoost (hist) with early stopping and calibration on a validation window, TreeSHAP reasons.

    `monotone` maps feature name → +1 (score never falls as the feature rises), −1 (never rises) or 0;
    None uses the class default, features absent from the data are ignored. With `balance_classes`,
    positives are up-weighted (neg/pos) while fitting; the calibrator then undoes the distortion.
    Without `X_val`, a stratified `validation_fraction` of the rows is held out of fitting instead.
    """

    name: ClassVar[str]
    default_monotone: ClassVar[Mapping[str, int]] = {}

    def __init__(
        self,
        *,
        monotone: Mapping[str, int] | None = None,
        n_estimators: int = 400,
        learning_rate: float = 0.05,
        max_depth: int = 4,
        min_child_weight: float = 1.0,
        subsample: float = 0.9,
        colsample_bytree: float = 0.9,
        reg_lambda: float = 1.0,
        early_stopping_rounds: int = 30,
        balance_classes: bool = True,
        calibration: str = "auto",
        validation_fraction: float = 0.2,
        random_state: int = 0,
        n_jobs: int | None = None,
    ) -> None:
        self.monotone = monotone
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.balance_classes = balance_classes
        self.calibration = calibration
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.n_jobs = n_jobs

    _PARAM_NAMES: ClassVar[tuple[str, ...]] = (
        "monotone", "n_estimators", "learning_rate", "max_depth", "min_child_weight", "subsample",
        "colsample_bytree", "reg_lambda", "early_stopping_rounds", "balance_classes", "calibration",
        "validation_fraction", "random_state", "n_jobs",
    )  # fmt: skip

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, JSON-serialisable."""
        params = {name: getattr(self, name) for name in self._PARAM_NAMES}
        if params["monotone"] is not None:
            params["monotone"] = dict(params["monotone"])
        return params

    def _monotone_constraints(self, names: Sequence[str]) -> dict[str, int]:
        mapping = dict(self.default_monotone if self.monotone is None else self.monotone)
        for feature, direction in mapping.items():
            if direction not in (-1, 0, 1):
                raise ConfigError(
                    f"monotone constraint for {feature!r} must be -1, 0 or 1, got {direction!r}"
                )
        return {name: int(mapping[name]) for name in names if mapping.get(name, 0) != 0}

    def _holdout(self, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """A stratified boolean mask of rows kept out of fitting, used when no validation window is given."""
        rng = np.random.default_rng(self.random_state)
        mask = np.zeros(y.size, dtype=bool)
        for value in (0, 1):
            rows = np.flatnonzero(y == value)
            take = max(1, round(self.validation_fraction * rows.size))
            mask[rng.choice(rows, size=min(take, rows.size), replace=False)] = True
        return mask

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | None = None,
        *,
        X_val: pd.DataFrame | None = None,
        y_val: pd.Series | None = None,
    ) -> Self:
        """Fit the booster on (X, y), early-stopping and calibrating on (X_val, y_val)."""
        if y is None:
            raise DataError(f"the {self.name} model needs labels")
        names = feature_columns(X)
        if not names:
            raise DataError(f"the {self.name} model found no numeric feature columns")
        X_train, y_train = select_features(X, names), binary_labels(y, f"{self.name} label")
        if X_val is None:
            held_out = self._holdout(X_train, y_train)
            X_train, X_valid = X_train.loc[~held_out], X_train.loc[held_out]
            y_train, y_valid = y_train[~held_out], y_train[held_out]
        else:
            if y_val is None:
                raise DataError("X_val was given without y_val")
            X_valid, y_valid = select_features(X_val, names), binary_labels(y_val, f"{self.name} label")
        for part, labels in (("training", y_train), ("validation", y_valid)):
            if labels.size == 0 or labels.min() == labels.max():
                raise DataError(f"the {self.name} {part} rows need both positive and negative labels")

        monotone = self._monotone_constraints(names)
        positives = float(y_train.sum())
        classifier = xgb.XGBClassifier(
            tree_method="hist",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            early_stopping_rounds=self.early_stopping_rounds,
            eval_metric="auc",  # ranking metric: unaffected by the class weighting's shift in probabilities
            monotone_constraints=tuple(monotone.get(name, 0) for name in names),
            scale_pos_weight=(y_train.size - positives) / positives if self.balance_classes else 1.0,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        classifier.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
        self.best_iteration_ = int(classifier.best_iteration)
        self.booster_ = classifier.get_booster()[: self.best_iteration_ + 1]
        self.feature_names_ = names
        self.monotone_constraints_ = monotone
        self.calibrator_ = Calibrator(self.calibration).fit(self._margin(X_valid), y_valid)
        return self

    def _margin(self, X_selected: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster_.inplace_predict(X_selected, predict_type="margin"), dtype="float64")

    def predict_score(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of the positive class per row."""
        return self.calibrator_.predict(self._margin(select_features(X, self.feature_names_)))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contribution of each feature to each row's margin (log-odds, before calibration)."""
        selected = select_features(X, self.feature_names_)
        matrix = xgb.DMatrix(selected, feature_names=self.feature_names_)
        contribs = self.booster_.predict(matrix, pred_contribs=True)[:, :-1]  # last column is the bias
        return pd.DataFrame(contribs, columns=self.feature_names_)

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[dict]]:
        """Per row, the `top_k` features with the largest |TreeSHAP contribution|, largest first."""
        contribs = self.contributions(X).to_numpy()
        values = select_features(X, self.feature_names_).to_numpy()
        order = np.argsort(-np.abs(contribs), axis=1, kind="stable")[:, :top_k]
        reasons: list[list[dict]] = []
        for row, columns in enumerate(order):
            row_reasons = []
            for column in columns:
                contribution = float(contribs[row, column])
                if contribution == 0.0:
                    break  # the feature played no part in this row's score
                value = values[row, column]
                row_reasons.append(
                    {
                        "kind": "feature",
                        "name": self.feature_names_[column],
                        "value": None if np.isnan(value) else float(value),
                        "contribution": contribution,
                    }
                )
            reasons.append(row_reasons)
        return reasons

    def save(self, directory: Path) -> None:
        """Write the booster (XGBoost JSON) and the rest (JSON) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(directory / BOOSTER_FILE)
        state = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "monotone_constraints": self.monotone_constraints_,
            "best_iteration": self.best_iteration_,
            "calibrator": self.calibrator_.to_dict(),
        }
        (directory / PARAMS_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a model written by `save`."""
        directory = Path(directory)
        try:
            state = json.loads((directory / PARAMS_FILE).read_text())
        except (OSError, ValueError) as error:
            raise DataError(f"cannot read {cls.name} model in {directory}: {error}") from error
        if state.get("name") != cls.name or state.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"{directory} holds a {state.get('name')!r} model (format {state.get('format_version')}), "
                f"not a {cls.name!r} model (format {FORMAT_VERSION})"
            )
        model = cls(**state["params"])
        model.booster_ = xgb.Booster()
        model.booster_.load_model(directory / BOOSTER_FILE)
        model.feature_names_ = list(state["feature_names"])
        model.monotone_constraints_ = dict(state["monotone_constraints"])
        model.best_iteration_ = int(state["best_iteration"])
        model.calibrator_ = Calibrator.from_dict(state["calibrator"])
        return model


class ChurnModel(_PropensityModel):
    """Probability that a player has no session in the label horizon after the cutoff."""

    name: ClassVar[str] = "churn"
    # More recent activity never raises churn risk; a longer absence never lowers it.
    default_monotone: ClassVar[Mapping[str, int]] = {
        "sessions_7d": -1,
        "sessions_28d": -1,
        "matches_28d": -1,
        "purchases_28d": -1,
        "days_since_last_session": 1,
        "days_since_last_event": 1,
    }


class PurchaseModel(_PropensityModel):
    """Probability that a player makes a purchase in the label horizon after the cutoff."""

    name: ClassVar[str] = "purchase"
    default_monotone: ClassVar[Mapping[str, int]] = {
        "purchases_28d": 1,
        "spend_28d": 1,
        "purchases_lifetime": 1,
    }


class LogisticBaseline:
    """Logistic regression on standardised features, NaN imputed by the median plus a missing flag.

    `features` lists the columns to use when present (default: recency/frequency features); when none
    of them is in the data, all feature columns are used.
    """

    def __init__(self, features: Sequence[str] | None = RECENCY_FREQUENCY_FEATURES, C: float = 1.0) -> None:
        self.features = features
        self.C = C

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        available = feature_columns(X)
        chosen = [f for f in (self.features or ()) if f in available]
        self.feature_names_ = chosen or available
        if not self.feature_names_:
            raise DataError("the logistic baseline found no numeric feature columns")
        self.pipeline_: Pipeline = make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=2000),
        )
        self.pipeline_.fit(select_features(X, self.feature_names_), binary_labels(y, "baseline label"))
        return self

    def predict_score(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.predict_proba(select_features(X, self.feature_names_))[:, 1]
