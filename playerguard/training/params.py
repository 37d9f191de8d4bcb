"""scikit-learn's parameter conventions for the scoring models, and the JSON form of the parameters a
saved model keeps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator


def json_ready(value: Any) -> Any:
    """`value` with mappings as dicts and tuples as lists, recursively (what JSON round-trips)."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


class ModelParams(BaseEstimator):
    """A scoring model's parameters are its constructor's arguments, stored unchanged and validated in
    `fit`: `get_params`, `set_params` and `sklearn.base.clone` work from the constructor's signature, and
    learned state ends in `_`. `saved_params` is their JSON form, which `save` writes and `load` passes
    back to the constructor."""

    def saved_params(self) -> dict[str, Any]:
        """The parameters, JSON-serialisable."""
        return {name: json_ready(value) for name, value in self.get_params(deep=False).items()}
