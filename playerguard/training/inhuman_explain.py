"""Per-row reasons: the features with the largest contributions, and tree contributions computed exactly
(TreeSHAP) or approximately (Saabas), per row. Shared by the inhuman-play and propensity models.

Exact TreeSHAP costs about 0.2 ms per row for a few hundred trees; XGBoost's approximate contributions
(`approx_contribs`, Saabas: each split's change in the node's expected value, credited to its feature) cost
20 to 30 times less, but in our measurements (synthetic bundle, 2,000 rows) their top three features differed
from TreeSHAP's on 40 to 80% of rows (the top one on 1 to 25%). So when a caller
names the rows that need exact reasons (those the policy acts on, which a reviewer reads), only those get
TreeSHAP, and every reason says which method produced it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from playerguard.training.feature_columns import Features, columns_matrix

if TYPE_CHECKING:
    import xgboost as xgb

TREE_SHAP = "tree_shap"
APPROX = "approx"


def top_reasons(
    contributions: np.ndarray,
    values: np.ndarray,
    names: list[str],
    top_k: int,
    *,
    positive_only: bool = False,
    methods: np.ndarray | None = None,
) -> list[list[dict]]:
    """Per row, up to `top_k` features with the largest |contribution| (with `positive_only`: the largest
    positive contribution), largest first; a zero contribution is never a reason. With `methods` (one
    string per row), each reason also carries `"method"`."""
    order = np.argsort(-contributions if positive_only else -np.abs(contributions), axis=1, kind="stable")
    order = order[:, :top_k]
    top = np.take_along_axis(contributions, order, axis=1)
    # a feature that played no part (or, positive_only, lowered the score) explains nothing; in this order
    # every later one is no better, so a row keeps the leading run of those that do
    keep = top > 0.0 if positive_only else top != 0.0
    counts = np.cumprod(keep, axis=1).sum(axis=1).tolist()
    shown = np.take_along_axis(values, order, axis=1)
    shown = np.where(np.isnan(shown), None, shown).tolist()  # NaN: undefined feature
    labels = [None] * len(counts) if methods is None else list(methods)
    reasons: list[list[dict]] = []
    for columns, row_contributions, row_values, count, method in zip(
        order.tolist(), top.tolist(), shown, counts, labels, strict=True
    ):
        row = zip(columns[:count], row_contributions[:count], row_values[:count], strict=True)
        if method is None:
            reasons.append(
                [{"kind": "feature", "name": names[c], "value": v, "contribution": x} for c, x, v in row]
            )
        else:
            reasons.append(
                [{"kind": "feature", "name": names[c], "value": v, "contribution": x, "method": method} for c, x, v in row]
            )
    return reasons


def tree_contributions(
    booster: xgb.Booster, matrix: np.ndarray, names: list[str], exact_rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-feature contributions to the booster's margin (rows × features, bias dropped), and the method
    per row: exact TreeSHAP everywhere when `exact_rows` is None (methods None), else TreeSHAP on the rows
    it marks and approximate contributions on the others."""
    import xgboost as xgb

    def contribs(rows: np.ndarray, approx: bool) -> np.ndarray:
        # no feature names: the columns are the booster's, in its order, and naming them costs more than
        # the approximate contributions themselves
        data = xgb.DMatrix(rows)
        contributions = booster.predict(data, pred_contribs=True, approx_contribs=approx, validate_features=False)
        return contributions[:, :-1]  # last column: bias

    if exact_rows is None:
        return contribs(matrix, approx=False), None
    exact_rows = np.asarray(exact_rows, dtype=bool)
    out = np.zeros((matrix.shape[0], len(names)), dtype="float32")
    if exact_rows.any():
        out[exact_rows] = contribs(matrix[exact_rows], approx=False)
    if not exact_rows.all():
        out[~exact_rows] = contribs(matrix[~exact_rows], approx=True)
    return out, np.where(exact_rows, TREE_SHAP, APPROX)


def shap_reasons(
    booster: xgb.Booster,
    features: Features,
    names: list[str],
    weight: float,
    top_k: int,
    exact_rows: np.ndarray | None = None,
) -> list[list[dict]]:
    """Tree contributions (see `tree_contributions`) of the features `names`, times the stacker's weight on
    the booster's log-odds, so they are in log-odds of the combined score."""
    values = columns_matrix(features, names)
    contributions, methods = tree_contributions(booster, values, names, exact_rows)
    return top_reasons(contributions * weight, values, names, top_k, positive_only=True, methods=methods)


def detector_reasons(
    detector: Any, features: Features, top_k: int, method: str | None = None
) -> list[list[dict]]:
    """The detector's per-feature deviations on the suspicious side (see `inhuman_detectors`); with
    `method`, each reason carries it."""
    names = list(detector.features)
    values = columns_matrix(features, names)
    methods = None if method is None else np.full(features.shape[0], method)
    return top_reasons(detector.deviations(features), values, names, top_k, positive_only=True, methods=methods)
