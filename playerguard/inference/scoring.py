"""Scoring a feature frame with a bundle: scores, policy actions, reasons and model versions per player."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.inference.bundle import Bundle
from playerguard.inference.policy import Policy
from playerguard.model_names import MODEL_NAMES
from playerguard.training.inhuman_explain import spread

TABLE_COLUMNS: tuple[str, ...] = (
    "player_id",
    *(f"{name}_score" for name in MODEL_NAMES),
    "actions",
    "reasons",
    "model_versions",
)


REASONS: tuple[str, ...] = ("acted", "all")
"""Which rows get feature reasons: "acted", per model the rows its policy acts on (reasons explain
decisions), or "all", every row. Reasons are exact either way (TreeSHAP for the boosted models)."""


def check_reasons(reasons: str, what: str = "reasons") -> str:
    """`reasons` when it is one of REASONS; else ConfigError naming the choices (`what`: how the caller
    spells the option)."""
    if reasons not in REASONS:
        raise ConfigError(f"{what} must be {' or '.join(REASONS)}, got {reasons!r}")
    return reasons


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
    bundle: Bundle, features: pd.DataFrame, *, top_k: int = 3, reasons: str = "acted"
) -> list[dict]:
    """Score every row of `features` (player_id + feature columns) with every model in `bundle`.

    Returns one dict per row: player_id, scores {model: probability}, actions (policy decisions),
    reasons {model: top reasons}, model_versions {model: version}. One predict and at most one explain
    call per model for the whole frame; the feature columns are converted to a matrix once, for every
    model. `reasons` (see `score_matrix`): "acted" (the default, what the endpoint answers) explains the
    rows the policy acts on; "all" explains every row.
    """
    check_reasons(reasons)
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
    return score_matrix(bundle, player_ids, matrix, top_k=top_k, reasons=reasons, frame=features)


def score_matrix(
    bundle: Bundle,
    player_ids: Sequence[str],
    matrix: FeatureMatrix,
    *,
    top_k: int = 3,
    reasons: str = "acted",
    frame: pd.DataFrame | None = None,
) -> list[dict]:
    """`score_frame` on features already selected into a matrix (`frame`, when given, is what models that
    take frames only receive; else one is built from the matrix).

    Every model scores first, then the policy decides, then the models explain. `reasons`: "acted" gives
    feature reasons to the rows the policy acts on for that model, computed exactly in one call per model
    (TreeSHAP for the boosted models), and none to the other rows (inhuman play still lists the rules a
    judged row breaks); "all" explains every row. Each feature reason of a model that can tell names its
    `method` ("tree_shap", "linear", "detector" or "btyd").
    """
    check_reasons(reasons)
    rows = len(player_ids)
    if rows == 0:
        return []
    inputs = _model_inputs(bundle, player_ids, matrix, frame)
    scores = {name: _scores(name, model, inputs[name], rows) for name, model in bundle.models.items()}
    features = feature_values(matrix, frame)
    actions: dict[str, list[dict | None]] = {}
    for name, values in scores.items():
        actions[name] = bundle.policy.decide(
            name, values, bundle.thresholds.get(name), features=features, model_scores=scores
        )
    explained = {
        name: _reasons(model, inputs[name], _reason_rows(bundle.policy, name, actions[name], reasons), top_k)
        for name, model in bundle.models.items()
    }
    return _predictions(player_ids, scores, actions, explained, bundle.versions)


def _model_inputs(
    bundle: Bundle, player_ids: Sequence[str], matrix: FeatureMatrix, frame: pd.DataFrame | None
) -> dict[str, Any]:
    """What each model scores: its columns of the matrix (selected once per distinct column list, the whole
    matrix when they are all of it), or the frame for models that take frames only."""
    selected: dict[tuple[str, ...], np.ndarray] = {}
    inputs: dict[str, Any] = {}
    for name, model in bundle.models.items():
        if not _takes_matrix(model):
            frame = matrix.frame(player_ids) if frame is None else frame
            inputs[name] = frame
            continue
        wanted = tuple(model.feature_names_)
        if wanted and matrix.absent.issuperset(wanted):
            raise DataError(
                f"the feature frame has none of the {len(wanted)} features the {name} model was fitted on "
                f"(e.g. {', '.join(wanted[:3])})"
            )
        if wanted not in selected:
            selected[wanted] = matrix.values if wanted == matrix.names else matrix.select(wanted)
        inputs[name] = selected[wanted]
    return inputs


def _scores(name: str, model: Any, inputs: Any, rows: int) -> np.ndarray:
    values = np.asarray(model.predict_score(inputs), dtype="float64")
    if values.shape != (rows,):
        raise DataError(f"the {name} model returned {values.shape} scores for {rows} rows")
    return values


def _reason_rows(policy: Policy, model: str, actions: list[dict | None], reasons: str) -> np.ndarray:
    """Per row, whether it gets feature reasons: it does when the policy acts on it with a rule that
    explains (`reasons: exact`, the default), or with "all"."""
    if reasons == "all":
        return np.ones(len(actions), dtype=bool)
    explains = {action: policy.explains(model, action) for action in {a["action"] for a in actions if a}}
    return np.array([action is not None and explains[action["action"]] for action in actions], dtype=bool)


def _reasons(model: Any, inputs: Any, wanted: np.ndarray, top_k: int) -> list[list[dict]]:
    if _takes_matrix(model):
        return model.explain(inputs, top_k=top_k, reason_rows=wanted)
    rows = np.flatnonzero(wanted)  # a model that takes frames explains the rows that get reasons, and no more
    if len(rows) == 0:
        return [[] for _ in range(len(wanted))]
    explained = model.explain(inputs if len(rows) == len(wanted) else inputs.iloc[rows], top_k)
    return spread(explained, rows, len(wanted))


def _predictions(
    player_ids: Sequence[str],
    scores: dict[str, np.ndarray],
    actions: dict[str, list[dict | None]],
    reasons: dict[str, list[list[dict]]],
    versions: dict[str, str],
) -> list[dict]:
    """One answer per row, models in bundle order."""
    names = list(scores)
    rows = zip(
        player_ids,
        _by_row([scores[name].tolist() for name in names], len(player_ids)),
        _by_row([actions[name] for name in names], len(player_ids)),
        _by_row([reasons[name] for name in names], len(player_ids)),
        strict=True,
    )
    return [
        {
            "player_id": player_id,
            "scores": dict(zip(names, row_scores, strict=True)),
            "actions": [action for action in row_actions if action is not None],
            "reasons": dict(zip(names, row_reasons, strict=True)),
            "model_versions": dict(versions),
        }
        for player_id, row_scores, row_actions, row_reasons in rows
    ]


def _by_row(columns: list[list[Any]], rows: int) -> Iterable[tuple[Any, ...]]:
    """Per-model lists as one tuple per row (empty tuples when there is no model)."""
    return zip(*columns, strict=True) if columns else itertools.repeat((), rows)


def scores_table(results: Sequence[dict]) -> pd.DataFrame:
    """`score_frame` output as a flat table: one score column per model (NaN when absent from the
    bundle) and actions, reasons and model_versions as JSON strings."""
    data = {
        "player_id": [r["player_id"] for r in results],
        **{f"{name}_score": [r["scores"].get(name, np.nan) for r in results] for name in MODEL_NAMES},
        "actions": json_strings([r["actions"] for r in results], lambda actions: () if not actions else None),
        "reasons": json_strings([r["reasons"] for r in results], _unexplained),
        "model_versions": json_strings(
            [r["model_versions"] for r in results], lambda versions: tuple(versions.items()), sort_keys=True
        ),
    }
    table = pd.DataFrame(data, columns=list(TABLE_COLUMNS))
    return table.astype({f"{name}_score": "float64" for name in MODEL_NAMES})


def json_strings(values: Sequence[Any], key: Callable[[Any], Hashable | None], **options: Any) -> list[str]:
    """`json.dumps(value, **options)` of each value; values with the same `key` (not None) are encoded once
    (most rows of a population have no action and the same versions: encoding each was a third of scoring)."""
    encoded: dict[Hashable, str] = {}
    strings = []
    for value in values:
        shared = key(value)
        if shared is None:
            strings.append(json.dumps(value, **options))
            continue
        text = encoded.get(shared)
        if text is None:
            text = encoded[shared] = json.dumps(value, **options)
        strings.append(text)
    return strings


def _unexplained(reasons: dict[str, list[dict]]) -> tuple[str, ...] | None:
    """The models of a row without any reason (its JSON is the same as every such row's), else None."""
    return None if any(reasons.values()) else tuple(reasons)
