"""The inhuman-play model: cheaters and bots, from rules, an unsupervised detector and, with labels, XGBoost.

Studios rarely have enough confirmed cheaters to train on, so the model combines three parts:

- rules against human limits (`playerguard.training.rules`), each a named reason; rules on features
  absent from the data are skipped, so one configuration serves every game;
- an unsupervised detector fitted on the population without labels (`inhuman_detectors`): by default a
  per-feature tail score in each feature's suspicious direction, or an IsolationForest;
- when there are labels (at least `min_positives` cheaters and as many legitimate players), an XGBoost
  classifier with TreeSHAP reasons.

Only rows with the minimum evidence (`min_evidence`, default five matches in the window) are judged: a
player with too few matches shows too little to judge (a handful of lucky shots is not superhuman) and scores
0. Such rows are left out of fitting too.

With labels ("supervised" mode), a non-negative logistic stacker over [XGBoost log-odds, detector
percentile log-odds, rules fired] is fitted on out-of-fold inputs (folds grouped by `group_column`), so
the score is a calibrated probability; a second round of cross-fitting gives out-of-fold combined scores,
from which `fpr_table_` and `threshold_` are read: the threshold catches the cheaters a false positive
rate of `target_fpr` allows, without spending more of that budget than the catch needs
(`metrics.operating_threshold`). Known cheaters are left out of the detector's reference
population. The rules' weight is pulled towards log(`rule_odds`), since rules rarely fire in training data.

Without labels ("unsupervised" mode), the score is the row's percentile p among the reference population
under the detector; each fired rule moves it to 1 − (1 − p)·target_fpr/2, so a rule breaker is always
flagged. It is not a calibrated probability of cheating (no labels to calibrate on). The threshold is the
(1 − target_fpr) quantile of p over the population rows that break no rule, presumed legitimate: it
holds the false positive rate at the target only if nearly all of them play fair. `fpr_table_` then
reads as flag rates of that population.

With positives only (a ban list: at least `min_positives` cheaters, fewer known legitimate players;
"positive_unlabelled" mode), the same stack learns labelled against unlabelled rows (Elkan–Noto, see
`inhuman_pu`): its odds are divided by the estimated share of cheaters on the list (`label_frequency_`),
and the threshold flags, among unlabelled rows, the estimated share of hidden cheaters (`hidden_share_`)
plus `target_fpr` of the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.special import expit
from scipy.special import logit as _logit
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from playerguard.errors import ConfigError, DataError
from playerguard.training.base import feature_columns, read_model_state, select_features
from playerguard.training.feature_columns import FeatureColumns, Features, column, columns_matrix
from playerguard.training.inhuman_calibration import PopulationPercentile, Stacker, fpr_table
from playerguard.training.inhuman_data import (
    canonical_order,
    check_evidence,
    group_codes,
    has_evidence,
    labels_array,
)
from playerguard.training.inhuman_detectors import check_directions, detector_from_state, make_detector
from playerguard.training.inhuman_explain import (
    DETECTOR,
    TREE_SHAP,
    detector_reasons,
    shap_reasons,
    spread,
    take_rows,
)
from playerguard.training.inhuman_pu import budget_threshold, hidden_share, label_frequency, pu_flag_rate
from playerguard.training.metrics import operating_threshold
from playerguard.training.params import ModelParams
from playerguard.training.rules import applicable_rules, fired_matrix, parse_rules, rules_config

FORMAT_VERSION = 1
STATE_FILE = "model.json"
BOOSTER_FILE = "booster.ubj"

# The suspicious direction of each default (simulator) feature the detector looks at.
DEFAULT_DIRECTIONS: dict[str, str] = {
    "accuracy_28d": "high",
    "headshot_rate_28d": "high",
    "kd_ratio_28d": "high",
    "reaction_ms_p50_28d": "low",
    "reaction_ms_p10_28d": "low",
    "aim_speed_p90_28d": "high",
    "session_gap_cv_28d": "low",
}
DEFAULT_MIN_EVIDENCE: dict[str, float] = {"matches_28d": 5.0}


class InhumanPlayModel(ModelParams):
    """Hybrid cheat and bot detector; see the module docstring for how the parts combine.

    `rules`: a rule config (mapping, YAML text or path; None = DEFAULT_RULES). `directions`: feature →
    "high" | "low" | "both"; the detector looks only at these features (those present), or at every
    feature, both tails, when none is present. `detector`: "tail" or "isolation_forest". `min_evidence`:
    feature → minimum a row needs to be judged (features absent from the data are ignored). The XGBoost
    hyperparameters are fixed up front, not tuned on the data they are judged on. `n_jobs` defaults to
    one thread: per-player frames are small, and on shared machines more threads made XGBoost slower.
    """

    name: ClassVar[str] = "inhuman_play"
    kind: ClassVar[str] = "hybrid"
    # predict_score and explain also take the float64 matrix of `feature_names_` (the scoring hot path),
    # and explain takes `reason_rows`.
    matrix_input: ClassVar[bool] = True

    def __init__(
        self,
        *,
        rules: Mapping[str, Any] | str | Path | None = None,
        directions: Mapping[str, str] | None = None,
        detector: str = "tail",
        min_evidence: Mapping[str, float] | None = None,
        target_fpr: float = 0.01,
        min_positives: int = 20,
        cv_folds: int = 5,
        group_column: str | None = "player_id",
        rule_odds: float = 10.0,
        n_estimators: int = 300,
        max_depth: int = 3,
        learning_rate: float = 0.05,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        min_child_weight: float = 1.0,
        reg_lambda: float = 1.0,
        random_state: int = 0,
        n_jobs: int | None = 1,
    ) -> None:
        self.rules = rules
        self.directions = directions
        self.detector = detector
        self.min_evidence = min_evidence
        self.target_fpr = target_fpr
        self.min_positives = min_positives
        self.cv_folds = cv_folds
        self.group_column = group_column
        self.rule_odds = rule_odds
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.random_state = random_state
        self.n_jobs = n_jobs

    def saved_params(self) -> dict[str, Any]:
        """The parameters, JSON-serialisable, with the rules in their mapping form: a saved model keeps the
        rules it was fitted with, not a path or the defaults of a later release."""
        return {**super().saved_params(), "rules": rules_config(parse_rules(self.rules))}

    # ---- fitting -------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if not 0 < self.target_fpr < 1:
            raise ConfigError(f"target_fpr must be between 0 and 1, got {self.target_fpr}")
        if self.cv_folds < 2:
            raise ConfigError(f"cv_folds must be at least 2, got {self.cv_folds}")
        if self.rule_odds < 1:
            raise ConfigError(
                f"rule_odds must be at least 1 (a fired rule never lowers the score), got {self.rule_odds}"
            )
        if self.detector not in ("tail", "isolation_forest"):
            raise ConfigError(f"unknown detector {self.detector!r}: use tail or isolation_forest")

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | None = None,
        *,
        X_val: pd.DataFrame | None = None,
        y_val: pd.Series | None = None,
    ) -> Self:
        """Fit on feature rows `X` and optional labels `y` (1 cheater/bot, 0 legitimate, missing unknown).

        With `X_val` (and `y_val`), the threshold and FPR table come from the fitted model's scores on the
        validation rows instead of from out-of-fold scores.
        """
        self._check_params()
        names = feature_columns(X)
        if not names:
            raise DataError("the inhuman_play model found no numeric feature columns")
        self.feature_names_ = names
        self.rules_ = parse_rules(self.rules)
        self.active_rules_ = applicable_rules(self.rules_, names)
        directions = check_directions(DEFAULT_DIRECTIONS if self.directions is None else self.directions)
        watched = [name for name in names if name in directions]
        self.detector_directions_ = {name: directions[name] for name in watched}
        self.detector_features_ = watched or list(names)
        evidence = check_evidence(DEFAULT_MIN_EVIDENCE if self.min_evidence is None else self.min_evidence)
        self.evidence_ = {name: minimum for name, minimum in evidence.items() if name in names}

        features = select_features(X, names)
        labels = labels_array(y, len(X))
        judged = has_evidence(features, self.evidence_)
        if not judged.any():
            raise DataError(f"no row has the minimum evidence to be judged ({self.evidence_})")
        order = canonical_order(features, labels)
        order = order[judged[order]]
        groups = group_codes(X, self.group_column, order)
        features, labels = features.iloc[order].reset_index(drop=True), labels[order]

        self.mode_ = self._choose_mode(labels)
        if self.mode_ == "supervised":
            held_out, held_out_labels = self._fit_supervised(features, labels, groups)
        elif self.mode_ == "positive_unlabelled":
            held_out, held_out_labels = self._fit_positive_unlabelled(features, labels, groups)
        else:
            held_out, held_out_labels = self._fit_unsupervised(features, labels)
        if X_val is not None:
            validation = select_features(X_val, names)
            judged_val = has_evidence(validation, self.evidence_)
            held_out = self._score(validation)[judged_val]
            held_out_labels = None if y_val is None else labels_array(y_val, len(X_val))[judged_val]
            if self.mode_ == "unsupervised":  # presumed legitimate: breaking no rule, not known cheaters
                keep = self._rules_fired(validation)[judged_val] == 0
                if held_out_labels is not None:
                    keep &= held_out_labels != 1
                held_out, held_out_labels = held_out[keep], None
            elif self.mode_ == "positive_unlabelled":  # positives vs the rest, as in fitting
                known = held_out_labels if held_out_labels is not None else np.full(held_out.size, np.nan)
                held_out_labels = (known == 1).astype("int8")
        if self.mode_ == "positive_unlabelled":
            self._set_pu_operating_point(held_out, held_out_labels)
        else:
            self._set_operating_point(held_out, held_out_labels)
        return self

    def _choose_mode(self, labels: np.ndarray) -> str:
        """supervised with enough positives and negatives; positive_unlabelled with enough positives only
        (a ban list); unsupervised otherwise."""
        positives, negatives = int(np.sum(labels == 1)), int(np.sum(labels == 0))
        if min(positives, negatives) >= self.min_positives:
            return "supervised"
        if positives >= self.min_positives:
            return "positive_unlabelled"
        return "unsupervised"

    def _fit_reference(self, features: pd.DataFrame, labels: np.ndarray) -> tuple[Any, PopulationPercentile]:
        """Detector and score percentile fitted on the rows not known to be cheaters."""
        reference = features.loc[labels != 1]
        detector = make_detector(
            self.detector, self.detector_features_, self.detector_directions_, self.random_state
        )
        detector.fit(reference)
        return detector, PopulationPercentile().fit(detector.score(reference))

    def _fit_unsupervised(self, features: pd.DataFrame, labels: np.ndarray) -> tuple[np.ndarray, None]:
        self.detector_, self.percentile_ = self._fit_reference(features, labels)
        self.booster_ = None
        self.stacker_ = None
        presumed_legitimate = features.loc[(labels != 1) & (self._rules_fired(features) == 0)]
        return self._score(presumed_legitimate), None

    def _fit_positive_unlabelled(
        self, features: pd.DataFrame, labels: np.ndarray, groups: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Elkan–Noto (see `inhuman_pu`): the stacked booster, detector and rules learn labelled against
        unlabelled on every judged row, then the score's odds are divided by the label frequency c, estimated
        on out-of-fold scores of the labelled positives."""
        labelled = (labels == 1).astype("int8")
        folds = self._folds(labelled, groups)
        inputs = np.zeros((labelled.size, 3))
        inputs[:, 2] = self._rules_fired(features)
        for train, test in folds:
            detector, percentile = self._fit_reference(features.iloc[train], labels[train])
            booster = self._booster(features.iloc[train], labelled[train])
            scored = features.iloc[test]
            inputs[test, 0] = _margin(booster, scored)
            inputs[test, 1] = percentile.logit(detector.score(scored))
        prior = [0.0, 0.0, float(np.log(self.rule_odds))]
        held_out = np.zeros(labelled.size)
        for train, test in folds:
            held_out[test] = Stacker(prior).fit(inputs[train], labelled[train]).predict(inputs[test])
        self.label_frequency_ = label_frequency(held_out, labelled == 1)
        out_of_fold = expit(_logit(held_out) - np.log(self.label_frequency_))
        self.hidden_share_ = hidden_share(out_of_fold[labelled == 0], self.label_frequency_)
        stacker = Stacker(prior).fit(inputs, labelled)
        # odds(score) = odds(P(labelled | x)) / c: the scoring path stays the stacker's.
        self.stacker_ = stacker.fixed(stacker.intercept_ - np.log(self.label_frequency_), stacker.weights_)
        self.detector_, self.percentile_ = self._fit_reference(features, labels)
        self.booster_ = self._booster(features, labelled)
        return out_of_fold, labelled

    def _set_pu_operating_point(self, scores: np.ndarray, labelled: np.ndarray) -> None:
        """Flag `target_fpr` of the players estimated legitimate: among the unlabelled rows, the share
        estimated to be hidden cheaters (`hidden_share_`) and `target_fpr` of the others, by rank."""
        unlabelled = scores[labelled == 0]
        rate = pu_flag_rate(self.hidden_share_, self.target_fpr)
        self.fpr_table_ = fpr_table(unlabelled, None)
        self.threshold_ = budget_threshold(unlabelled, rate)

    def _booster(self, features: pd.DataFrame, labels: np.ndarray) -> xgb.Booster:
        classifier = xgb.XGBClassifier(
            tree_method="hist",
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        classifier.fit(features, labels)
        return classifier.get_booster()

    def _fit_supervised(
        self, features: pd.DataFrame, labels: np.ndarray, groups: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        labelled = np.flatnonzero(~np.isnan(labels))
        y = labels[labelled].astype("int8")
        folds = self._folds(y, groups[labelled])
        # Out-of-fold stacker inputs: neither the booster nor the detector saw the rows they score.
        inputs = np.zeros((labelled.size, 3))
        inputs[:, 2] = self._rules_fired(features.iloc[labelled])
        for train, test in folds:
            train_rows = np.setdiff1d(np.arange(len(features)), labelled[test])
            detector, percentile = self._fit_reference(features.iloc[train_rows], labels[train_rows])
            booster = self._booster(features.iloc[labelled[train]], y[train])
            scored = features.iloc[labelled[test]]
            inputs[test, 0] = _margin(booster, scored)
            inputs[test, 1] = percentile.logit(detector.score(scored))
        prior = [0.0, 0.0, float(np.log(self.rule_odds))]
        held_out = np.zeros(labelled.size)
        for train, test in folds:
            held_out[test] = Stacker(prior).fit(inputs[train], y[train]).predict(inputs[test])
        self.stacker_ = Stacker(prior).fit(inputs, y)
        self.detector_, self.percentile_ = self._fit_reference(features, labels)
        self.booster_ = self._booster(features.iloc[labelled], y)
        return held_out, y

    def _folds(self, y: np.ndarray, groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        n_splits = min(self.cv_folds, np.unique(groups[y == 1]).size, np.unique(groups[y == 0]).size)
        if n_splits < 2:
            raise DataError("cross-fitting needs positives and negatives in at least 2 separate groups")
        rows = np.zeros(y.size)
        if np.unique(groups).size == groups.size:  # one row per group: the plain splitter is much faster
            plain = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
            return list(plain.split(rows, y))
        grouped = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=self.random_state)
        return list(grouped.split(rows, y, groups))

    def _set_operating_point(self, scores: np.ndarray, labels: np.ndarray | None) -> None:
        if labels is not None:
            known = ~np.isnan(labels.astype("float64"))
            scores, labels = scores[known], labels[known].astype("int8")
        if labels is not None and not np.any(labels == 1):
            labels = None
        self.fpr_table_ = fpr_table(scores, labels)
        as_legitimate = np.zeros(scores.size, dtype="int8") if labels is None else labels
        self.threshold_ = float(operating_threshold(as_legitimate, scores, self.target_fpr))

    # ---- scoring -------------------------------------------------------------------------------------

    def _rules_fired(self, features: Features) -> np.ndarray:
        return fired_matrix(self.active_rules_, features).sum(axis=1).astype("float64")

    def _score(self, features: Features) -> np.ndarray:
        """The combined score of rows already reduced to `feature_names_`, evidence not checked."""
        detector_logit = self.percentile_.logit(self.detector_.score(features))
        fired = self._rules_fired(features)
        if self.stacker_ is None:
            return 1.0 - (1.0 - expit(detector_logit)) * (self.target_fpr / 2.0) ** fired
        supervised = _margin(self.booster_, columns_matrix(features, self.feature_names_))
        return self.stacker_.predict(np.column_stack([supervised, detector_logit, fired]))

    def _features(self, X: pd.DataFrame | np.ndarray) -> Features:
        """The features `feature_names_`: selected from a frame, or named columns over an array taken as
        their matrix (no copy, no frame)."""
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != len(self.feature_names_):
                raise DataError(
                    f"the {self.name} model takes {len(self.feature_names_)} feature columns, got {X.shape}"
                )
            return FeatureColumns(np.asarray(X, dtype="float64"), self.feature_names_)
        return select_features(X, self.feature_names_)

    def judged(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Per row, whether it has the minimum evidence to be judged (the others score 0, without reasons)."""
        return has_evidence(self._features(X), self.evidence_)

    def predict_score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Score in [0, 1] per row (a calibrated probability in supervised mode); 0 without enough evidence."""
        features = self._features(X)
        return np.where(has_evidence(features, self.evidence_), self._score(features), 0.0)

    def explain(
        self, X: pd.DataFrame | np.ndarray, top_k: int = 3, *, reason_rows: np.ndarray | None = None
    ) -> list[list[dict]]:
        """Per row: the fired rules, then the features that raise the score most, up to `top_k` reasons.

        Feature contributions are TreeSHAP log-odds scaled by the stacker's weight (supervised mode), or
        the detector's deviations (unsupervised mode): each feature's excess tail score in nats for the
        tail detector, directed robust z-scores for the IsolationForest. Rows without enough evidence to
        be judged get no reasons. With `reason_rows` (a boolean per row), only those rows get feature
        reasons, each naming its method ("tree_shap" or "detector"); the other judged rows get their fired
        rules only.
        """
        features = self._features(X)
        judged = has_evidence(features, self.evidence_)
        wanted = judged if reason_rows is None else judged & np.asarray(reason_rows, dtype=bool)
        rows = np.flatnonzero(wanted)
        explained = features if len(rows) == len(judged) else take_rows(features, rows)
        reasons = spread(self._feature_reasons(explained, top_k, reason_rows is not None), rows, len(judged))
        return self._rules_first(reasons, features, judged, top_k)

    def _rules_first(
        self, reasons: list[list[dict]], features: Features, judged: np.ndarray, top_k: int
    ) -> list[list[dict]]:
        """`reasons` with the rules each judged row breaks put first, up to `top_k` reasons a row."""
        fired = fired_matrix(self.active_rules_, features)
        breakers = np.flatnonzero(judged & fired.any(axis=1))
        hits = fired[breakers].tolist()
        values = [column(features, rule.feature)[breakers].tolist() for rule in self.active_rules_]
        for i, row in enumerate(breakers.tolist()):
            rules = enumerate(self.active_rules_)
            row_rules = [_rule_reason(rule.name, values[j][i]) for j, rule in rules if hits[i][j]]
            reasons[row] = (row_rules + reasons[row])[:top_k]
        return reasons

    def _feature_reasons(self, features: Features, top_k: int, labelled: bool) -> list[list[dict]]:
        """Feature reasons of every row of `features`: TreeSHAP with a booster, else the detector's."""
        if self.booster_ is not None:
            weight = float(self.stacker_.weights_[0])
            method = TREE_SHAP if labelled else None
            return shap_reasons(self.booster_, features, self.feature_names_, weight, top_k, method)
        return detector_reasons(self.detector_, features, top_k, DETECTOR if labelled else None)

    # ---- persistence ---------------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the model: XGBoost UBJ, skops for an IsolationForest, JSON for everything else."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.booster_ is not None:
            self.booster_.save_model(directory / BOOSTER_FILE)
        state = {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "kind": self.kind,
            "params": self.saved_params(),
            "mode": self.mode_,
            "feature_names": self.feature_names_,
            "active_rules": [rule.name for rule in self.active_rules_],
            "detector_features": self.detector_features_,
            "detector_directions": self.detector_directions_,
            "evidence": self.evidence_,
            "detector": self.detector_.state(directory),
            "percentile": self.percentile_.to_dict(),
            "stacker": None if self.stacker_ is None else self.stacker_.to_dict(),
            "threshold": self.threshold_,
            "fpr_table": self.fpr_table_.astype(object)
            .where(self.fpr_table_.notna(), None)
            .to_dict(orient="list"),
            "booster_file": BOOSTER_FILE if self.booster_ is not None else None,
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=1, allow_nan=False))

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a model written by `save`."""
        directory = Path(directory)
        state = read_model_state(directory, STATE_FILE, cls, FORMAT_VERSION)
        model = cls(**state["params"])
        model.mode_ = state["mode"]
        model.feature_names_ = list(state["feature_names"])
        model.rules_ = parse_rules(model.rules)
        by_name = {rule.name: rule for rule in model.rules_}
        model.active_rules_ = [by_name[name] for name in state["active_rules"]]
        model.detector_features_ = list(state["detector_features"])
        model.detector_directions_ = dict(state["detector_directions"])
        model.evidence_ = {name: float(minimum) for name, minimum in state["evidence"].items()}
        model.detector_ = detector_from_state(state["detector"], directory)
        model.percentile_ = PopulationPercentile.from_dict(state["percentile"])
        model.stacker_ = None if state["stacker"] is None else Stacker.from_dict(state["stacker"])
        model.threshold_ = float(state["threshold"])
        model.fpr_table_ = pd.DataFrame(state["fpr_table"]).astype("float64")
        model.booster_ = None
        if state["booster_file"]:
            model.booster_ = xgb.Booster()
            model.booster_.load_model(directory / state["booster_file"])
        return model


def _margin(booster: xgb.Booster, features: pd.DataFrame | np.ndarray) -> np.ndarray:
    # numpy, not the frame: xgboost's pandas conversion costs ten times the prediction on a request
    values = features.to_numpy(dtype="float64", na_value=np.nan) if isinstance(features, pd.DataFrame) else features
    return np.asarray(booster.inplace_predict(values, predict_type="margin"), dtype="float64")


def _rule_reason(name: str, value: float) -> dict:
    return {
        "kind": "rule",
        "name": name,
        "value": None if math.isnan(value) else float(value),
        "contribution": None,
    }
