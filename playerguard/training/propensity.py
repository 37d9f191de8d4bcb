"""Churn and purchase propensity: gradient-boosted trees (XGBoost), calibrated on an out-of-time window,
with TreeSHAP reasons. The logistic baseline every run is compared against lives in `logistic`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import xgboost as xgb

from playerguard.errors import ConfigError, DataError
from playerguard.training.base import binary_labels, feature_columns, read_model_state, select_features
from playerguard.training.calibration import Calibrator
from playerguard.training.inhuman_explain import (
    TREE_SHAP,
    chosen_rows,
    spread,
    top_reasons,
    tree_contributions,
)
from playerguard.training.logistic import LogisticBaseline
from playerguard.training.params import ModelParams

__all__ = ["Calibrator", "ChurnModel", "LogisticBaseline", "PurchaseModel"]

FORMAT_VERSION = 1
BOOSTER_FILE = "booster.json"
PARAMS_FILE = "model.json"
KIND = "xgboost"


class _PropensityModel(ModelParams):
    """XGBoost (hist) with early stopping and calibration on a validation window, TreeSHAP reasons.

    `monotone` maps feature name → +1 (score never falls as the feature rises), −1 (never rises) or 0;
    None uses the class default, features absent from the data are ignored. With `balance_classes`,
    positives are up-weighted (neg/pos) while fitting; the calibrator then undoes the distortion.
    Without `X_val`, a stratified `validation_fraction` of the rows is held out of fitting instead.
    """

    name: ClassVar[str]
    kind: ClassVar[str] = KIND
    default_monotone: ClassVar[Mapping[str, int]] = {}
    # predict_score and explain also take the float64 matrix of `feature_names_` (the scoring hot path),
    # and explain takes `reason_rows`.
    matrix_input: ClassVar[bool] = True

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
        X_extra: pd.DataFrame | None = None,
        y_extra: pd.Series | None = None,
    ) -> Self:
        """Fit the booster on (X, y), early-stopping and calibrating on (X_val, y_val).

        `X_extra` holds later rows whose labels are complete before the test window but overlap the
        validation window (the cutoffs an out-of-time split purges): they cannot take part in early
        stopping, so the booster is refit on X ∪ X_extra with the number of rounds early stopping chose,
        scaled by the growth in rows, and then calibrated on the validation window.
        """
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
        classifier = self._classifier(names, monotone, y_train, self.n_estimators, early_stopping=True)
        classifier.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
        self.best_iteration_ = int(classifier.best_iteration)
        self.booster_ = classifier.get_booster()[: self.best_iteration_ + 1]
        self.refit_rows_ = 0
        if X_extra is not None and len(X_extra):
            if y_extra is None:
                raise DataError("X_extra was given without y_extra")
            X_all = pd.concat([X_train, select_features(X_extra, names)], ignore_index=True)
            y_all = np.r_[y_train, binary_labels(y_extra, f"{self.name} label")]
            rounds = max(1, round((self.best_iteration_ + 1) * y_all.size / y_train.size))
            refit = self._classifier(names, monotone, y_all, rounds, early_stopping=False)
            self.booster_ = refit.fit(X_all, y_all, verbose=False).get_booster()
            self.refit_rows_ = int(y_all.size - y_train.size)
        self.feature_names_ = names
        self.monotone_constraints_ = monotone
        self.calibrator_ = Calibrator(self.calibration).fit(self._margin(X_valid), y_valid)
        return self

    def _classifier(
        self, names: Sequence[str], monotone: Mapping[str, int], y: np.ndarray, rounds: int, *, early_stopping: bool
    ) -> xgb.XGBClassifier:
        positives = float(y.sum())
        return xgb.XGBClassifier(
            tree_method="hist",
            n_estimators=rounds,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            early_stopping_rounds=self.early_stopping_rounds if early_stopping else None,
            eval_metric="auc",  # ranking metric: unaffected by the class weighting's shift in probabilities
            monotone_constraints=tuple(monotone.get(name, 0) for name in names),
            scale_pos_weight=(y.size - positives) / positives if self.balance_classes else 1.0,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _margin(self, X_selected: pd.DataFrame | np.ndarray) -> np.ndarray:
        return np.asarray(self.booster_.inplace_predict(X_selected, predict_type="margin"), dtype="float64")

    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The float64 matrix of `feature_names_`: selected from a frame, or an array taken as that matrix."""
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != len(self.feature_names_):
                raise DataError(f"the {self.name} model takes {len(self.feature_names_)} feature columns, got {X.shape}")
            return np.asarray(X, dtype="float64")
        return select_features(X, self.feature_names_).to_numpy(dtype="float64")

    def predict_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated probability of the positive class per row."""
        return self.calibrator_.predict(self._margin(self._matrix(X)))

    def contributions(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """TreeSHAP contribution of each feature to each row's margin (log-odds, before calibration)."""
        return pd.DataFrame(tree_contributions(self.booster_, self._matrix(X)), columns=self.feature_names_)

    def explain(
        self, X: pd.DataFrame | np.ndarray, top_k: int = 3, *, reason_rows: np.ndarray | None = None
    ) -> list[list[dict]]:
        """Per row, the `top_k` features with the largest |TreeSHAP contribution|, largest first.

        With `reason_rows` (a boolean per row), only those rows are explained, in one TreeSHAP call, and
        each reason names its method (`"method": "tree_shap"`); the other rows get no reasons.
        """
        values = self._matrix(X)
        rows = chosen_rows(reason_rows, len(values))
        chosen = values if len(rows) == len(values) else values[rows]
        method = None if reason_rows is None else TREE_SHAP
        contributions = tree_contributions(self.booster_, chosen)
        reasons = top_reasons(contributions, chosen, self.feature_names_, top_k, method=method)
        return spread(reasons, rows, len(values))

    def save(self, directory: Path) -> None:
        """Write the booster (XGBoost JSON) and the rest (JSON) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(directory / BOOSTER_FILE)
        state = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "params": self.saved_params(),
            "feature_names": self.feature_names_,
            "monotone_constraints": self.monotone_constraints_,
            "best_iteration": self.best_iteration_,
            "refit_rows": self.refit_rows_,
            "calibrator": self.calibrator_.to_dict(),
        }
        (directory / PARAMS_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a model written by `save`."""
        directory = Path(directory)
        state = read_model_state(directory, PARAMS_FILE, cls, FORMAT_VERSION)
        model = cls(**state["params"])
        model.booster_ = xgb.Booster()
        model.booster_.load_model(directory / BOOSTER_FILE)
        model.feature_names_ = list(state["feature_names"])
        model.monotone_constraints_ = dict(state["monotone_constraints"])
        model.best_iteration_ = int(state["best_iteration"])
        model.refit_rows_ = int(state.get("refit_rows", 0))
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
