"""Input handling of the inhuman-play model: labels, a content-defined row order, fold groups, evidence."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.training.feature_columns import Features, column


def labels_array(y: pd.Series | np.ndarray | None, rows: int) -> np.ndarray:
    """Labels as float64: 1.0, 0.0 or NaN (unknown); DataError on other values or a length mismatch."""
    if y is None:
        return np.full(rows, np.nan)
    try:
        values = pd.Series(y).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    except (TypeError, ValueError) as error:
        raise DataError(f"inhuman_play labels must be numbers 0 or 1: {error}") from None
    if values.size != rows:
        raise DataError(f"labels have {values.size} rows but the feature frame has {rows}")
    known = values[~np.isnan(values)]
    if not np.isin(known, (0.0, 1.0)).all():
        raise DataError("inhuman_play labels must be 1 (cheater or bot), 0 (legitimate) or missing")
    return values


def canonical_order(features: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """A row order that depends only on the rows' content, so fitting ignores input order and ids."""
    keys = [features[c].to_numpy() for c in features.columns] + [np.nan_to_num(labels, nan=-1.0)]
    return np.lexsort(keys)


def group_codes(X: pd.DataFrame, group_column: str | None, order: np.ndarray) -> np.ndarray:
    """Group numbers for cross-fitting, numbered by first appearance in `order` (not by name)."""
    if group_column is None or group_column not in X.columns:
        return np.arange(order.size)
    return pd.factorize(X[group_column].iloc[order].reset_index(drop=True))[0]


def check_evidence(min_evidence: Mapping[str, float]) -> dict[str, float]:
    """`min_evidence` as a dict of feature → finite minimum, or ConfigError."""
    checked = {}
    for feature, minimum in min_evidence.items():
        if isinstance(minimum, bool) or not isinstance(minimum, int | float) or not np.isfinite(minimum):
            raise ConfigError(f"minimum evidence for {feature!r} must be a finite number, got {minimum!r}")
        checked[str(feature)] = float(minimum)
    return checked


def has_evidence(features: Features, min_evidence: Mapping[str, float]) -> np.ndarray:
    """Per row: every evidence feature is at least its minimum (a missing value is no evidence)."""
    enough = np.ones(features.shape[0], dtype=bool)
    for feature, minimum in min_evidence.items():
        enough &= column(features, feature) >= minimum
    return enough
