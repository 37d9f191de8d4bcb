"""The contract every scoring model follows, the name → class registry, and feature-frame helpers."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from playerguard.errors import DataError
from playerguard.model_names import check_model_name

# Per model, the classes a saved model of it may be, by kind; the first kind is the default. Classes are
# imported on first use so that loading one model never imports the others' dependencies, and only these
# classes are ever imported for a model (a bundle's manifest names one of them).
_MODEL_CLASSES: dict[str, dict[str, str]] = {
    "inhuman_play": {"hybrid": "playerguard.training.inhuman_play:InhumanPlayModel"},
    "churn": {
        "xgboost": "playerguard.training.propensity:ChurnModel",
        "logistic_baseline": "playerguard.training.logistic:LogisticChurnModel",
        "btyd": "playerguard.training.btyd_model:BTYDChurnModel",
    },
    "purchase": {
        "xgboost": "playerguard.training.propensity:PurchaseModel",
        "logistic_baseline": "playerguard.training.logistic:LogisticPurchaseModel",
        "btyd": "playerguard.training.btyd_model:BTYDPurchaseModel",
    },
}
# Every model class writes its state here; its "kind" key names the class (absent: the default kind).
STATE_FILE = "model.json"

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


def model_kinds(model_name: str) -> tuple[str, ...]:
    """The kinds of model that may serve `model_name`, the default first."""
    return tuple(_MODEL_CLASSES[check_model_name(model_name)])


def class_path(model_name: str, kind: str | None = None) -> str:
    """The `module:Class` path registered for `model_name` and `kind` (default: the model's default kind)."""
    classes = _MODEL_CLASSES[check_model_name(model_name)]
    if kind is None:
        return next(iter(classes.values()))
    if kind not in classes:
        raise DataError(f"unknown kind {kind!r} of {model_name} model: expected one of {', '.join(classes)}")
    return classes[kind]


def known_class_paths(model_name: str) -> tuple[str, ...]:
    """Every `module:Class` path a saved `model_name` model may name."""
    return tuple(_MODEL_CLASSES[check_model_name(model_name)].values())


def kind_of(model: ScoringModel) -> str:
    """The kind of a model instance (its class's `kind`, or its model's default kind)."""
    return getattr(type(model), "kind", None) or model_kinds(model.name)[0]


def class_path_of(model: ScoringModel) -> str:
    """The registered `module:Class` path of a model instance; DataError for an unregistered class."""
    path = f"{type(model).__module__}:{type(model).__qualname__}"
    if path not in known_class_paths(model.name):
        raise DataError(f"{path} is not a registered class of the {model.name} model")
    return path


def read_model_state(directory: Path, filename: str, model: type[Any], format_version: int) -> dict[str, Any]:
    """The JSON state a model class's `save` wrote into `directory`, checked to be of that class's name, kind
    and format; DataError otherwise. A state saved before kinds existed counts as the class's own kind."""
    try:
        state = json.loads((Path(directory) / filename).read_text())
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {model.name} model in {directory}: {error}") from error
    found = (state.get("name"), state.get("kind", model.kind), state.get("format_version"))
    if found != (model.name, model.kind, format_version):
        raise DataError(
            f"{directory} holds a {found[0]!r} model of kind {found[1]!r} (format {found[2]}), "
            f"not a {model.name!r} model of kind {model.kind!r} (format {format_version})"
        )
    return state


def saved_kind(model_name: str, directory: Path) -> str:
    """The kind a saved model directory holds, from its state file (default kind when it names none)."""
    try:
        state = json.loads((Path(directory) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return model_kinds(model_name)[0]  # the class's own load reports what is wrong with the directory
    kind = state.get("kind") if isinstance(state, dict) else None
    return kind if isinstance(kind, str) else model_kinds(model_name)[0]


def get_model_class(model_name: str, kind: str | None = None, *, path: str | None = None) -> type[ScoringModel]:
    """Import and return the class of `model_name`: the one registered for `kind`, or `path` when given,
    which must be one of the model's registered class paths (DataError otherwise)."""
    if path is None:
        path = class_path(model_name, kind)
    elif path not in known_class_paths(model_name):
        raise DataError(f"{path!r} is not a registered class of the {model_name} model")
    module_name, _, class_name = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)


def load_model(model_name: str, directory: Path, *, path: str | None = None) -> ScoringModel:
    """Load a saved model of `model_name` from `directory`, with the class `path` names when given, else
    the class of the kind the directory records."""
    if path is None:
        return get_model_class(model_name, saved_kind(model_name, directory)).load(Path(directory))
    return get_model_class(model_name, path=path).load(Path(directory))


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
