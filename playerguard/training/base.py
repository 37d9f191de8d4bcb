"""The contract every scoring model follows, the name → class registry, and feature-frame helpers."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError, DataError

MODEL_NAMES: tuple[str, ...] = ("inhuman_play", "churn", "purchase")

# Imported on first use so that loading one model never imports the others' dependencies.
_MODEL_CLASSES: dict[str, str] = {
    "inhuman_play": "playerguard.training.inhuman_play:InhumanPlayModel",
    "churn": "playerguard.training.propensity:ChurnModel",
    "purchase": "playerguard.training.propensity:PurchaseModel",
}

NON_FEATURE_COLUMNS = frozenset({"player_id", "cutoff"})
LABEL_PREFIX = "label_"


@runtime_checkable
class ScoringModel(Protocol):
    """A model that turns a feature frame into calibrated scores with reasons (see the model contract)."""

    name: ClassVar[str]
    feature_names_: list[str]

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | None = None,
        *,
        X_val: pd.DataFrame | None = None,
        y_val: pd.Series | None = None,
    ) -> Self: ...

    def predict_score(self, X: pd.DataFrame) -> np.ndarray: ...

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[dict]]: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...


def label_column(model_name: str) -> str:
    """The training-set column holding the label of `model_name`."""
    check_model_name(model_name)
    return f"{LABEL_PREFIX}{model_name}"


def check_model_name(model_name: str) -> str:
    """Return `model_name` if it names a known model, else raise ConfigError."""
    if model_name not in _MODEL_CLASSES:
        raise ConfigError(f"unknown model {model_name!r}: expected one of {', '.join(MODEL_NAMES)}")
    return model_name


def class_path(model_name: str) -> str:
    """The `module:Class` path registered for `model_name`."""
    return _MODEL_CLASSES[check_model_name(model_name)]


def get_model_class(model_name: str) -> type[ScoringModel]:
    """Import and return the class registered for `model_name`."""
    module_name, _, class_name = class_path(model_name).partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def load_model(model_name: str, directory: Path) -> ScoringModel:
    """Load a saved model of kind `model_name` from `directory`."""
    return get_model_class(model_name).load(Path(directory))


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every numeric column of `frame` that is not player_id, cutoff or a label."""
    return [
        str(column)
        for column in frame.columns
        if column not in NON_FEATURE_COLUMNS
        and not str(column).startswith(LABEL_PREFIX)
        and pd.api.types.is_numeric_dtype(frame[column])
    ]


def select_features(frame: pd.DataFrame, feature_names: Sequence[str]) -> pd.DataFrame:
    """The float64 matrix of `feature_names` from `frame`: absent columns become NaN, extra ones are ignored.

    Raises DataError when none of the features is present (almost surely the wrong frame) or when a
    present feature column is not numeric.
    """
    names = list(feature_names)
    present = [name for name in names if name in frame.columns]
    if names and not present:
        raise DataError(
            f"the feature frame has none of the {len(names)} features the model was fitted on "
            f"(e.g. {', '.join(names[:3])})"
        )
    for name in present:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise DataError(f"feature column {name!r} must be numeric, got {frame[name].dtype}")
    selected = frame.reindex(columns=names)
    return selected.astype("float64").set_axis(pd.RangeIndex(len(selected)), axis=0)


def binary_labels(y: pd.Series | np.ndarray, what: str = "label") -> np.ndarray:
    """`y` as an int8 array of 0/1; missing or other values raise DataError."""
    values = pd.Series(y).astype("Float64")
    if values.isna().any():
        raise DataError(f"{what} has {int(values.isna().sum())} missing values; drop unlabelled rows first")
    array = values.to_numpy(dtype="float64")
    if not np.isin(array, (0.0, 1.0)).all():
        raise DataError(f"{what} must contain only 0 and 1")
    return array.astype("int8")
