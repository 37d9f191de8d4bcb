"""Scoring a feature frame with a bundle: scores, policy actions, reasons and model versions per player."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from playerguard.errors import DataError
from playerguard.inference.bundle import Bundle
from playerguard.training.base import MODEL_NAMES

TABLE_COLUMNS: tuple[str, ...] = (
    "player_id",
    *(f"{name}_score" for name in MODEL_NAMES),
    "actions",
    "reasons",
    "model_versions",
)


def score_frame(bundle: Bundle, features: pd.DataFrame, *, top_k: int = 3) -> list[dict]:
    """Score every row of `features` (player_id + feature columns) with every model in `bundle`.

    Returns one dict per row: player_id, scores {model: probability}, actions (policy decisions),
    reasons {model: top reasons}, model_versions {model: version}. One predict and one explain call per
    model for the whole frame.
    """
    if "player_id" not in features.columns:
        raise DataError("the feature frame has no player_id column")
    if features["player_id"].isna().any():
        raise DataError(
            f"the feature frame has {int(features['player_id'].isna().sum())} rows without a player_id"
        )
    rows = len(features)
    if rows == 0:
        return []
    scores: dict[str, list[float]] = {}
    reasons: dict[str, list[list[dict]]] = {}
    actions: dict[str, list[dict | None]] = {}
    for name, model in bundle.models.items():
        values = np.asarray(model.predict_score(features), dtype="float64")
        if values.shape != (rows,):
            raise DataError(f"the {name} model returned {values.shape} scores for {rows} rows")
        scores[name] = values.tolist()
        reasons[name] = model.explain(features, top_k=top_k)
        actions[name] = bundle.policy.decide(name, values, bundle.thresholds.get(name))
    versions = bundle.versions
    return [
        {
            "player_id": str(player_id),
            "scores": {name: scores[name][i] for name in scores},
            "actions": [actions[name][i] for name in actions if actions[name][i] is not None],
            "reasons": {name: reasons[name][i] for name in reasons},
            "model_versions": dict(versions),
        }
        for i, player_id in enumerate(features["player_id"].tolist())
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
