"""Per-row reasons of the inhuman-play model: the features that raise a row's score the most."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb


def _top_positive(
    contributions: np.ndarray, values: np.ndarray, names: list[str], top_k: int
) -> list[list[dict]]:
    """Per row, up to `top_k` features with the largest positive contribution, largest first."""
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :top_k]
    reasons: list[list[dict]] = []
    for row, columns in enumerate(order):
        row_reasons = []
        for column in columns:
            contribution = float(contributions[row, column])
            if not contribution > 0.0:
                break  # only what pushes the score up explains a flag
            value = values[row, column]
            row_reasons.append(
                {
                    "kind": "feature",
                    "name": names[column],
                    "value": None if np.isnan(value) else float(value),
                    "contribution": contribution,
                }
            )
        reasons.append(row_reasons)
    return reasons


def shap_reasons(booster: xgb.Booster, features: pd.DataFrame, weight: float, top_k: int) -> list[list[dict]]:
    """TreeSHAP contributions (XGBoost `pred_contribs`), times the stacker's weight on the booster's log-odds,
    so they are in log-odds of the combined score."""
    names = list(features.columns)
    matrix = xgb.DMatrix(features, feature_names=names)
    contributions = booster.predict(matrix, pred_contribs=True)[:, :-1] * weight  # last column: bias
    return _top_positive(contributions, features.to_numpy(dtype="float64"), names, top_k)


def detector_reasons(detector: Any, features: pd.DataFrame, top_k: int) -> list[list[dict]]:
    """The detector's per-feature deviations on the suspicious side (see `inhuman_detectors`)."""
    names = list(detector.features)
    values = features.reindex(columns=names).to_numpy(dtype="float64", na_value=np.nan)
    return _top_positive(detector.deviations(features), values, names, top_k)
