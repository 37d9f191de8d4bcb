"""One model's out-of-time fit: split its labelled rows by cutoff, fit the candidates (the model and, for
churn and purchase, its logistic baseline as a model that can ship) and score the held-out rows they are
judged on."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.training.base import (
    binary_labels,
    feature_columns,
    get_model_class,
    kind_of,
    label_column,
)
from playerguard.training.btyd_model import KIND as BTYD_KIND
from playerguard.training.btyd_model import BTYDColumns
from playerguard.training.gate import BASELINE_GATED, BASELINE_KIND
from playerguard.training.logistic import RECENCY_FREQUENCY_FEATURES, LogisticBaseline
from playerguard.training.splits import OutOfTimeSplit, labelled_rows, split_by_cutoff

INHUMAN_PLAY = "inhuman_play"
MIN_INHUMAN_NEGATIVES = 20  # the inhuman-play model's default `min_positives`, for either class


@dataclass
class Candidate:
    """A fitted model that may be registered, with its scores on the evaluation rows."""

    kind: str
    model: Any
    scores: np.ndarray


@dataclass
class FittedModel:
    """Everything one model's evaluation needs. `test` holds the held-out rows the model is judged on:
    for inhuman play, only those with the minimum evidence (`excluded_test_rows` counts the others)."""

    name: str
    split: OutOfTimeSplit
    features: list[str]
    columns: list[str]  # the features, plus player_id when present (for models that group by player)
    test: pd.DataFrame
    y_test: np.ndarray
    candidates: dict[str, Candidate]
    baseline_scores: np.ndarray
    refit_cutoffs: tuple[pd.Timestamp, ...] = ()
    excluded_test_rows: int = 0
    label_regime: str = "supervised"
    candidate_notes: tuple[str, ...] = ()  # why a candidate the run would train is missing


def _both_classes(labels: pd.Series) -> bool:
    return labels.nunique() == 2


def _splits_hold_both_classes(split: OutOfTimeSplit, label: str) -> bool:
    return all(_both_classes(part[label]) for part in (split.train, split.validation, split.test))


def label_regime(model_name: str, labels: pd.Series) -> str:
    """How a model learns from the labels there are: "supervised" (both classes); for inhuman play, only
    with at least `MIN_INHUMAN_NEGATIVES` legitimate players labelled, else "positive_unlabelled" (cheaters
    only, e.g. a ban list: the other players are unlabelled, not legitimate) or "unsupervised" (no labels:
    rules and the anomaly detector). A handful of verdicts then adds to the population instead of
    replacing it."""
    if model_name != INHUMAN_PLAY:
        return "supervised"
    positives, negatives = int((labels == 1).sum()), int((labels == 0).sum())
    if positives and negatives >= MIN_INHUMAN_NEGATIVES:
        return "supervised"
    return "positive_unlabelled" if positives else "unsupervised"


def refit_rows(rows: pd.DataFrame, split: OutOfTimeSplit, horizon_days: int | None) -> pd.DataFrame:
    """Rows of the purged training cutoffs whose label window closes by the test cutoff.

    The split purges them because their labels overlap the validation window, so they cannot steer early
    stopping or calibration; but their labels are complete before the test cutoff, so the final fit may
    use them without seeing anything the test rows' labels depend on.
    """
    if horizon_days is None or not split.purged_cutoffs:
        return rows.iloc[:0]
    horizon = timedelta(days=horizon_days)
    usable = [c for c in split.purged_cutoffs if c + horizon <= split.test_cutoff]
    return rows.loc[rows["cutoff"].isin(usable)]


def judged_rows(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Per row of `frame`, whether `model` judges it: all rows, except for a model with a `judged` method
    (inhuman play, which scores 0 the rows without the minimum evidence). Held-out metrics use only these."""
    judged = getattr(model, "judged", None)
    return np.ones(len(frame), dtype=bool) if judged is None else np.asarray(judged(frame), dtype=bool)


def _accepts_extra(model: Any) -> bool:
    return "X_extra" in inspect.signature(model.fit).parameters


def _fit_one(model: Any, split: OutOfTimeSplit, extra: pd.DataFrame, columns: list[str], label: str) -> Any:
    fit_args: dict[str, Any] = {"X_val": split.validation[columns], "y_val": split.validation[label]}
    if len(extra):
        fit_args |= {"X_extra": extra[columns], "y_extra": extra[label]}
    return model.fit(split.train[columns], split.train[label], **fit_args)


def fit_model(
    model_name: str,
    training_set: pd.DataFrame,
    params: Mapping[str, Any],
    horizon_days: int | None,
    btyd: BTYDColumns | None = None,
) -> FittedModel:
    """Split, fit the candidates and the baseline, score the evaluation rows. DataError means: skip this model.

    For churn and purchase, with `btyd` (the feature columns BG/NBD reads), a BG/NBD candidate joins the
    boosted model and the logistic baseline, fitted on the same training cutoffs."""
    label = label_column(model_name)
    if label not in training_set.columns:
        raise DataError(f"the training set has no {label} column")
    rows, regime = modelled_rows(model_name, training_set)
    if rows.empty:
        raise DataError(f"every {label} is missing")
    split = split_by_cutoff(rows, horizon_days=horizon_days)
    if regime == "supervised" and model_name == INHUMAN_PLAY and not _splits_hold_both_classes(split, label):
        # A few verdicts cannot judge a model out of time: learn from the population instead, the confirmed
        # cheaters as positives and every other player unlabelled.
        rows, regime = training_set, "positive_unlabelled"
        split = split_by_cutoff(rows, horizon_days=horizon_days)
    parts = (("training", split.train), ("validation", split.validation), ("test", split.test))
    for part, frame in parts if regime == "supervised" else ():
        if not _both_classes(frame[label]):
            raise DataError(f"the {part} rows' {label} has a single class ({len(frame)} rows)")
    features = feature_columns(training_set)
    # The player id is not a feature; models may use it to keep a player's rows in one cross-fitting fold.
    columns = (["player_id"] if "player_id" in training_set.columns else []) + features
    try:
        model_class = get_model_class(model_name)
    except ImportError as error:
        raise DataError(f"the {model_name} model is not available ({error})") from error
    try:
        model = model_class(**params)
    except TypeError as error:
        raise ConfigError(f"invalid parameters for the {model_name} model: {error}") from None
    extra = refit_rows(rows, split, horizon_days) if _accepts_extra(model) else rows.iloc[:0]
    model = _fit_one(model, split, extra, columns, label)
    fitted = [model]
    if model_name in BASELINE_GATED:
        # The practitioner's baseline: recency, frequency and tenure, of the label's own event where known.
        chosen = (*RECENCY_FREQUENCY_FEATURES, *(btyd.as_list() if btyd is not None else ()))
        baseline = get_model_class(model_name, BASELINE_KIND)(features=chosen)
        fitted.append(_fit_one(baseline, split, extra, features, label))
        btyd_fitted, btyd_note = _btyd_candidate(model_name, split, btyd, horizon_days, label)
        fitted += btyd_fitted
        reference = None
    elif regime == "supervised":  # a reference only: the same logistic regression on every feature
        reference = LogisticBaseline(features=None).fit(split.train[features], split.train[label])
    elif regime == "positive_unlabelled":  # the reference learns banned against unlabelled, as the model does
        reference = LogisticBaseline(features=None).fit(split.train[features], _banned(split.train[label]))
    else:
        reference = None

    keep = judged_rows(model, split.test)
    test = split.test.loc[keep]
    y_test = held_out_labels(test[label], regime)
    if regime == "supervised" and y_test.min() == y_test.max():
        raise DataError(
            f"the test rows the {model_name} model can judge have a single class ({len(test)} rows)"
        )
    candidates = {
        kind_of(m): Candidate(kind_of(m), m, np.asarray(m.predict_score(test[columns]), dtype="float64"))
        for m in fitted
    }
    if model_name in BASELINE_GATED:
        baseline_scores = candidates[BASELINE_KIND].scores
    elif reference is None:  # no labels to fit a reference on
        baseline_scores = np.zeros(len(test))
    else:
        baseline_scores = reference.predict_score(test[features])
    return FittedModel(
        name=model_name,
        split=split,
        features=features,
        columns=columns,
        test=test,
        y_test=y_test,
        candidates=candidates,
        baseline_scores=baseline_scores,
        refit_cutoffs=tuple(sorted(pd.unique(extra["cutoff"]))) if len(extra) else (),
        excluded_test_rows=int((~keep).sum()),
        label_regime=regime,
        candidate_notes=(btyd_note,) if model_name in BASELINE_GATED and btyd_note else (),
    )


def _btyd_candidate(
    model_name: str, split: OutOfTimeSplit, btyd: BTYDColumns | None, horizon_days: int | None, label: str
) -> tuple[list[Any], str]:
    """The fitted BG/NBD candidate, or none and why: the feature set lacks its inputs, or the fit failed."""
    if btyd is None or any(c not in split.train.columns for c in btyd.as_list()):
        return [], (
            "BG/NBD not trained: the feature set has no lifetime count, days since the last and days since "
            "the first event of the label's type (`features suggest` writes them)"
        )
    model = get_model_class(model_name, BTYD_KIND)(columns=btyd.as_list(), horizon_days=float(horizon_days or 14))
    try:
        return [_fit_one(model, split, split.train.iloc[:0], btyd.as_list(), label)], ""
    except DataError as error:  # e.g. too few histories: the other candidates still run
        return [], f"BG/NBD not trained: {error}"


def modelled_rows(model_name: str, training_set: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows a model learns from and is judged on, and its label regime (`label_regime`). Without
    negatives every row is kept: unlabelled players are the population, not legitimate ones."""
    label = label_column(model_name)
    if label not in training_set.columns:
        raise DataError(f"the training set has no {label} column")
    regime = label_regime(model_name, training_set[label])
    return (labelled_rows(training_set, label) if regime == "supervised" else training_set), regime


def held_out_labels(labels: pd.Series, regime: str, where: str = "label") -> np.ndarray:
    """0/1 labels of held-out rows: as given (supervised), else listed against unlabelled (all 0 without
    labels), so that ranking metrics read as a lower bound, or are undefined."""
    if regime == "supervised":
        return binary_labels(labels, where)
    return _banned(labels).to_numpy()


def _banned(labels: pd.Series) -> pd.Series:
    return (labels == 1).fillna(False).astype("int8")
