"""Scoring a feature frame with a bundle: scores, policy actions, reasons and model versions per player."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import DataError
from playerguard.inference.bundle import Bundle
from playerguard.model_names import MODEL_NAMES

TABLE_COLUMNS: tuple[str, ...] = (
    "player_id",
    *(f"{name}_score" for name in MODEL_NAMES),
    "actions",
    "reasons",
    "model_versions",
)


EXACT_REASONS: tuple[str, ...] = ("all", "acted")
"""Which rows get exact reasons: every row, or the rows the policy acts on (the others get approximate ones)."""


@dataclass(frozen=True)
class FeatureMatrix:
    """The features of one scoring call, selected once: `values` is rows × `names`, float64, NaN where a
    feature is undefined or absent."""

    names: tuple[str, ...]
    values: np.ndarray
    absent: frozenset[str] = frozenset()

    def select(self, wanted: Sequence[str]) -> np.ndarray:
        """The columns `wanted`, in that order (a copy)."""
        position = {name: i for i, name in enumerate(self.names)}
        return self.values[:, [position[name] for name in wanted]]

    def frame(self, player_ids: Sequence[str]) -> pd.DataFrame:
        """player_id and the features as a frame, for models that take frames only."""
        frame = pd.DataFrame(self.values, columns=list(self.names), copy=False)
        frame.insert(0, "player_id", list(player_ids))
        return frame


def model_feature_names(models: Iterable[Any]) -> tuple[str, ...]:
    """The union of the models' `feature_names_`, in order of first appearance."""
    names: dict[str, None] = {}
    for model in models:
        names.update(dict.fromkeys(getattr(model, "feature_names_", ())))
    return tuple(names)


def frame_matrix(features: pd.DataFrame, names: Sequence[str]) -> FeatureMatrix:
    """`names` from `features` as one float64 matrix (absent columns NaN); DataError for a non-numeric one."""
    present = [name for name in names if name in features.columns]
    for name in present:
        if not pd.api.types.is_numeric_dtype(features[name]):
            raise DataError(f"feature column {name!r} must be numeric, got {features[name].dtype}")
    selected = features.reindex(columns=list(names))
    values = selected.to_numpy(dtype="float64", na_value=np.nan) if len(names) else np.empty((len(features), 0))
    return FeatureMatrix(tuple(names), values, frozenset(names) - frozenset(present))


def feature_values(matrix: FeatureMatrix, frame: pd.DataFrame | None) -> Callable[[str], np.ndarray]:
    """A feature's values for the policy's `where:` conditions: from the matrix, else from the frame, else
    undefined (NaN: a condition on it does not hold)."""
    position = {name: i for i, name in enumerate(matrix.names)}

    def values(name: str) -> np.ndarray:
        if name in position:
            return matrix.values[:, position[name]]
        if frame is not None and name in frame.columns:
            return frame[name].to_numpy(dtype="float64", na_value=np.nan)
        return np.full(len(matrix.values), np.nan)

    return values


def _takes_matrix(model: Any) -> bool:
    return bool(getattr(model, "matrix_input", False)) and hasattr(model, "feature_names_")


def score_frame(
    bundle: Bundle, features: pd.DataFrame, *, top_k: int = 3, exact_reasons: str = "acted"
) -> list[dict]:
    """Score every row of `features` (player_id + feature columns) with every model in `bundle`.

    Returns one dict per row: player_id, scores {model: probability}, actions (policy decisions),
    reasons {model: top reasons}, model_versions {model: version}. One predict and one explain call per
    model for the whole frame; the feature columns are converted to a matrix once, for every model.
    `exact_reasons` (see `score_matrix`) defaults to what the endpoint answers, exact reasons for the rows
    the policy acts on; pass "all" for exact reasons everywhere (batch scoring, reports).
    """
    if "player_id" not in features.columns:
        raise DataError("the feature frame has no player_id column")
    if features["player_id"].isna().any():
        raise DataError(
            f"the feature frame has {int(features['player_id'].isna().sum())} rows without a player_id"
        )
    if len(features) == 0:
        return []
    matrix = frame_matrix(features, model_feature_names(m for m in bundle.models.values() if _takes_matrix(m)))
    player_ids = [str(player) for player in features["player_id"].tolist()]
    return score_matrix(bundle, player_ids, matrix, top_k=top_k, exact_reasons=exact_reasons, frame=features)


def score_matrix(
    bundle: Bundle,
    player_ids: Sequence[str],
    matrix: FeatureMatrix,
    *,
    top_k: int = 3,
    exact_reasons: str = "acted",
    frame: pd.DataFrame | None = None,
) -> list[dict]:
    """`score_frame` on features already selected into a matrix (`frame`, when given, is what models that
    take frames only receive; else one is built from the matrix).

    `exact_reasons`: "all" gives every row exact reasons (TreeSHAP for the boosted models); "acted" gives
    exact reasons to the rows the policy acts on for that model and XGBoost's approximate contributions to
    the others, which costs a fraction. Either way each feature reason of a model that can tell names its
    `method` ("tree_shap", "approx", "linear" or "detector").
    """
    if exact_reasons not in EXACT_REASONS:
        raise ValueError(f"exact_reasons must be one of {EXACT_REASONS}, got {exact_reasons!r}")
    rows = len(player_ids)
    if rows == 0:
        return []
    scores: dict[str, list[float]] = {}
    reasons: dict[str, list[list[dict]]] = {}
    actions: dict[str, list[dict | None]] = {}
    for name, model in bundle.models.items():
        if _takes_matrix(model):
            wanted = model.feature_names_
            if wanted and matrix.absent.issuperset(wanted):
                raise DataError(
                    f"the feature frame has none of the {len(wanted)} features the {name} model was fitted on "
                    f"(e.g. {', '.join(wanted[:3])})"
                )
            inputs: Any = matrix.select(wanted)
        else:
            frame = matrix.frame(player_ids) if frame is None else frame
            inputs = frame
        values = np.asarray(model.predict_score(inputs), dtype="float64")
        if values.shape != (rows,):
            raise DataError(f"the {name} model returned {values.shape} scores for {rows} rows")
        scores[name] = values.tolist()
        actions[name] = bundle.policy.decide(
            name, values, bundle.thresholds.get(name), features=feature_values(matrix, frame)
        )
        if _takes_matrix(model):
            acted = np.array([action is not None for action in actions[name]], dtype=bool)
            exact = acted if exact_reasons == "acted" else np.ones(rows, dtype=bool)
            reasons[name] = model.explain(inputs, top_k=top_k, exact_rows=exact)
        else:
            reasons[name] = model.explain(inputs, top_k=top_k)
    versions = bundle.versions
    return [
        {
            "player_id": player_id,
            "scores": {name: scores[name][i] for name in scores},
            "actions": [actions[name][i] for name in actions if actions[name][i] is not None],
            "reasons": {name: reasons[name][i] for name in reasons},
            "model_versions": dict(versions),
        }
        for i, player_id in enumerate(player_ids)
    ]


def scores_table(results: Sequence[dict]) -> pd.DataFrame:
    """`score_frame` output as a flat table: one score column per model (NaN when absent from the
    bundle) and actions, reasons and model_versions as JSON strings."""
    data = {
        "player_id": [r["player_id"] for r in results],
        **{f"{name}_score": [r["scores"].get(name, np.nan) for r in results] for name in MODEL_NAMES},
        "actions": [json.dumps(r["actions"]) for r in results],
        "reasons": [json.dumps(r["reasons"]) for r in results],
        "model_versions": [json.dumps(r["model_versions"], sort_keys=True) for r in results],
    }
    table = pd.DataFrame(data, columns=list(TABLE_COLUMNS))
    return table.astype({f"{name}_score": "float64" for name in MODEL_NAMES})
