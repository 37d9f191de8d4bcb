"""Named columns over one float64 matrix: what the scoring path hands the inhuman-play model's rules,
evidence check and detector in place of a feature frame (building a DataFrame per request cost more than
the models' own predictions)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


class FeatureColumns:
    """`values` (rows × `names`, float64, NaN where undefined) read by column name, like a frame."""

    def __init__(self, values: np.ndarray, names: Sequence[str]) -> None:
        self.values = values
        self.names = list(names)
        self._index = {name: i for i, name in enumerate(self.names)}

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[:, self._index[name]]


Features = pd.DataFrame | FeatureColumns
"""A feature frame or named matrix columns: the models' rules and detectors read either."""


def column(features: Features, name: str) -> np.ndarray:
    """One feature as float64, NaN where missing."""
    if isinstance(features, FeatureColumns):
        return features[name]
    return features[name].to_numpy(dtype="float64", na_value=np.nan)


def columns_matrix(features: Features, names: Sequence[str]) -> np.ndarray:
    """`names` as a float64 matrix (rows × names), NaN for a feature `features` lacks."""
    if isinstance(features, FeatureColumns):
        if list(names) == features.names:
            return features.values
        selected = np.full((features.shape[0], len(names)), np.nan)
        for j, name in enumerate(names):
            if name in features:
                selected[:, j] = features[name]
        return selected
    return features.reindex(columns=list(names)).to_numpy(dtype="float64", na_value=np.nan)
