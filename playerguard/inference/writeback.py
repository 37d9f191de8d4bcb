"""Scores and flags written back into the lake, as tables BI tools query beside the events.

Two tables, partitioned by `cutoff_date` (YYYY-MM-DD, a string as in Glue):
- `player_scores`: one row per player scored at a cutoff: `player_id`, `cutoff`, `<model>_score` for
  the three models (NaN when the bundle lacks one), `actions`, `reasons`, `model_versions` (JSON text),
  `scored_at`.
- `player_flags`: one row per action the policy took: `flag_id` (deterministic from the cutoff, player,
  model and model version), `player_id`, `cutoff`, `model`, `action`, `severity`, `score`, `threshold`,
  `value_at_risk` (a ranked offer's, else null), `model_version`, `reasons` (that model's top reasons as
  JSON), `scored_at`. Partitions written before `value_at_risk` existed read it as null.

Writing a cutoff replaces that cutoff's partition and leaves the others alone, so scoring a day again is
idempotent (two cutoffs on one day share a partition: the later write wins). Locally the tables are
`<lake>/<table>/cutoff_date=YYYY-MM-DD/part-0.parquet`, swapped in by rename; on AWS they are written with
`awswrangler.s3.to_parquet(mode="overwrite_partitions")` under `<lake_s3_uri>/<table>/` and registered
in the Glue database.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from playerguard.backends import backend_for
from playerguard.errors import DataError
from playerguard.inference.flags import make_flag_id
from playerguard.inference.offers import VALUE_AT_RISK
from playerguard.inference.results_store import FLAGS_TABLE, SCORES_TABLE, ResultsStore
from playerguard.model_names import MODEL_NAMES
from playerguard.settings import Settings

SCORE_COLUMNS = ("player_id", "cutoff", *(f"{m}_score" for m in MODEL_NAMES), "actions", "reasons",
                 "model_versions", "scored_at")  # fmt: skip
FLAG_COLUMNS = ("flag_id", "player_id", "cutoff", "model", "action", "severity", "score", "threshold",
                "value_at_risk", "model_version", "reasons", "scored_at")  # fmt: skip


def _utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _cutoff_of(scores: pd.DataFrame, cutoff: datetime | None) -> pd.Timestamp:
    """The one cutoff of a scores table: its `cutoff` column or the argument (naive: UTC); they must agree."""
    values = pd.to_datetime(scores["cutoff"], utc=True).unique() if "cutoff" in scores.columns else []
    if len(values) > 1:
        raise DataError(f"the scores hold {len(values)} cutoffs; write one cutoff at a time")
    if cutoff is None and not len(values):
        raise DataError("the scores have no cutoff column; pass the cutoff they were scored at")
    moment = _utc(cutoff) if cutoff is not None else _utc(values[0])
    if len(values) and _utc(values[0]) != moment:
        raise DataError(f"the scores were made at {_utc(values[0]).isoformat()}, not {moment.isoformat()}")
    return moment


def scores_frame(scores: pd.DataFrame, cutoff: pd.Timestamp, scored_at: datetime) -> pd.DataFrame:
    """The `player_scores` rows of a scores table (`inference.batch.score_cutoff(...).table`)."""
    needed = [c for c in SCORE_COLUMNS if c not in ("cutoff", "scored_at")]
    missing = [c for c in needed if c not in scores.columns]
    if missing:
        raise DataError(f"the scores table has no column {missing[0]!r}")
    frame = scores[needed].copy()
    frame.insert(1, "cutoff", cutoff)
    frame["scored_at"] = _utc(scored_at)
    return frame.astype({"cutoff": "datetime64[us, UTC]", "scored_at": "datetime64[us, UTC]"})


def flags_frame(scores: pd.DataFrame, cutoff: pd.Timestamp, scored_at: datetime) -> pd.DataFrame:
    """One `player_flags` row per action in the scores table's `actions`."""
    rows = []
    stamp = cutoff.isoformat()
    columns = scores[["player_id", "actions", "reasons", "model_versions"]]
    for player, actions, reasons_text, versions_text in columns.itertuples(index=False):
        reasons, versions = json.loads(reasons_text), json.loads(versions_text)
        for taken in json.loads(actions):
            model, version = taken["model"], str(versions.get(taken["model"], ""))
            rows.append(
                {
                    "flag_id": make_flag_id(f"batch:{stamp}:{player}", model, version),
                    "player_id": player,
                    "cutoff": cutoff,
                    "model": model,
                    "action": taken["action"],
                    "severity": taken.get("severity") or "medium",
                    "score": float(taken["score"]),
                    "threshold": float(taken["threshold"]),
                    "value_at_risk": float(taken.get(VALUE_AT_RISK, math.nan)),
                    "model_version": version,
                    "reasons": json.dumps(reasons.get(model) or []),
                    "scored_at": _utc(scored_at),
                }
            )
    frame = pd.DataFrame(rows, columns=list(FLAG_COLUMNS))
    types = {"cutoff": "datetime64[us, UTC]", "scored_at": "datetime64[us, UTC]"}
    return frame.astype(types | {"score": "float64", "threshold": "float64", "value_at_risk": "float64"})


@dataclass(frozen=True)
class WritebackResult:
    cutoff_date: str
    scores: int
    flags: int
    scores_location: str
    flags_location: str

    def __str__(self) -> str:
        return (
            f"wrote {self.scores:,} scores to {self.scores_location} and {self.flags:,} flags to "
            f"{self.flags_location} (cutoff_date={self.cutoff_date})"
        )


def write_results(
    settings: Settings,
    scores: pd.DataFrame,
    *,
    cutoff: datetime | None = None,
    store: ResultsStore | None = None,
    scored_at: datetime | None = None,
) -> WritebackResult:
    """Write a cutoff's scores and flags into `player_scores` and `player_flags`, replacing that cutoff.

    `scores` is a scores table (`score_cutoff(...).table`); its cutoff comes from its `cutoff` column
    unless given. `store` defaults to the settings' backend (local lake directory, or S3 + Glue).
    """
    moment = _cutoff_of(scores, cutoff)
    scored_at = scored_at or datetime.now(UTC)
    store = store or backend_for(settings).results_store()
    day = moment.strftime("%Y-%m-%d")
    score_rows, flag_rows = scores_frame(scores, moment, scored_at), flags_frame(scores, moment, scored_at)
    return WritebackResult(
        cutoff_date=day,
        scores=len(score_rows),
        flags=len(flag_rows),
        scores_location=store.replace(SCORES_TABLE, day, score_rows),
        flags_location=store.replace(FLAGS_TABLE, day, flag_rows),
    )


