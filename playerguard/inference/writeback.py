"""Scores and flags written back into the lake, as tables BI tools query beside the events.

Two tables, partitioned by `cutoff_date` (YYYY-MM-DD, a string as in Glue):
- `player_scores`: one row per player scored at a cutoff: `player_id`, `cutoff`, `<model>_score` for
  the three models (NaN when the bundle lacks one), `actions`, `reasons`, `model_versions` (JSON text),
  `scored_at`.
- `player_flags`: one row per action the policy took: `flag_id` (deterministic from the cutoff, player,
  model and model version), `player_id`, `cutoff`, `model`, `action`, `severity`, `score`, `threshold`,
  `model_version`, `reasons` (that model's top reasons as JSON), `scored_at`.

Writing a cutoff replaces that cutoff's partition and leaves the others alone, so scoring a day again is
idempotent (two cutoffs on one day share a partition: the later write wins). Locally the tables are
`<lake>/<table>/cutoff_date=YYYY-MM-DD/part-0.parquet`, swapped in by rename; on AWS they are written with
`awswrangler.s3.to_parquet(mode="overwrite_partitions")` under `<lake_s3_uri>/<table>/` and registered
in the Glue database.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.lake.envelope import check_identifier
from playerguard.inference.flags import make_flag_id
from playerguard.settings import Settings
from playerguard.training.base import MODEL_NAMES

SCORES_TABLE = "player_scores"
FLAGS_TABLE = "player_flags"
PARTITION = "cutoff_date"
SCORE_COLUMNS = ("player_id", "cutoff", *(f"{m}_score" for m in MODEL_NAMES), "actions", "reasons",
                 "model_versions", "scored_at")  # fmt: skip
FLAG_COLUMNS = ("flag_id", "player_id", "cutoff", "model", "action", "severity", "score", "threshold",
                "model_version", "reasons", "scored_at")  # fmt: skip
_GLUE_TYPES = {"cutoff": "timestamp", "scored_at": "timestamp", "score": "double", "threshold": "double"}
_GLUE_TYPES |= {f"{m}_score": "double" for m in MODEL_NAMES}


class ResultsStore(Protocol):
    """Where result tables live: `replace` swaps one cutoff_date partition of a table for `frame`."""

    def replace(self, table: str, cutoff_date: str, frame: pd.DataFrame) -> str: ...


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
                    "model_version": version,
                    "reasons": json.dumps(reasons.get(model) or []),
                    "scored_at": _utc(scored_at),
                }
            )
    frame = pd.DataFrame(rows, columns=list(FLAG_COLUMNS))
    types = {"cutoff": "datetime64[us, UTC]", "scored_at": "datetime64[us, UTC]"}
    return frame.astype(types | {"score": "float64", "threshold": "float64"})


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
    store = store or results_store(settings)
    day = moment.strftime("%Y-%m-%d")
    score_rows, flag_rows = scores_frame(scores, moment, scored_at), flags_frame(scores, moment, scored_at)
    return WritebackResult(
        cutoff_date=day,
        scores=len(score_rows),
        flags=len(flag_rows),
        scores_location=store.replace(SCORES_TABLE, day, score_rows),
        flags_location=store.replace(FLAGS_TABLE, day, flag_rows),
    )


class LocalResults:
    """Result tables as hive-partitioned Parquet under the local lake directory."""

    def __init__(self, lake_root: Path) -> None:
        self.root = Path(lake_root)

    def table_dir(self, table: str) -> Path:
        return self.root / check_identifier(table, "table")

    def replace(self, table: str, cutoff_date: str, frame: pd.DataFrame) -> str:
        """Swap the partition in by renames: a reader sees the old rows or the new ones, never half."""
        target = self.table_dir(table) / f"{PARTITION}={cutoff_date}"
        token = uuid.uuid4().hex
        fresh, stale = (
            target.with_name(f".{target.name}.{token}"),
            target.with_name(f".{target.name}.{token}.old"),
        )
        fresh.mkdir(parents=True)
        frame.to_parquet(fresh / "part-0.parquet", index=False)
        if target.exists():
            target.rename(stale)
        fresh.rename(target)
        shutil.rmtree(stale, ignore_errors=True)
        return str(self.table_dir(table))

    def connect(self) -> Any:
        """A DuckDB connection with views `player_scores` and `player_flags` over the written tables."""
        import duckdb

        con = duckdb.connect()
        for table in (SCORES_TABLE, FLAGS_TABLE):
            pattern = str(self.table_dir(table) / f"{PARTITION}=*" / "*.parquet").replace("'", "''")
            if not any(self.table_dir(table).glob(f"{PARTITION}=*/*.parquet")):
                raise DataError(f"no {table} written yet under {self.root}; score with --to-lake first")
            con.execute(
                f"CREATE VIEW \"{table}\" AS SELECT * FROM read_parquet('{pattern}', "
                f"hive_partitioning = true, hive_types = {{'{PARTITION}': VARCHAR}})"
            )
        return con


class S3Results:
    """Result tables on S3, registered in a Glue database. Builds a boto3 Session on first use if none is
    passed."""

    def __init__(
        self, uri: str, database: str, *, boto3_session: Any = None, region: str | None = None
    ) -> None:
        if not uri.startswith("s3://"):
            raise ConfigError(f"the results location must be an s3:// URI, got {uri!r}")
        self.uri = uri.rstrip("/")
        self.database = check_identifier(database, "Glue database")
        self.region = region
        self._session = boto3_session

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.Session(region_name=self.region)
        return self._session

    def table_uri(self, table: str) -> str:
        return f"{self.uri}/{check_identifier(table, 'table')}/"

    def replace(self, table: str, cutoff_date: str, frame: pd.DataFrame) -> str:
        import awswrangler as wr

        path = self.table_uri(table)
        if frame.empty:  # nothing to write (no flags): clear the partition so old rows do not linger
            wr.s3.delete_objects(f"{path}{PARTITION}={cutoff_date}/", boto3_session=self.session)
            return path
        wr.catalog.create_database(self.database, exist_ok=True, boto3_session=self.session)
        types = {c: _GLUE_TYPES.get(c, "string") for c in frame.columns}
        wr.s3.to_parquet(
            frame.assign(**{PARTITION: cutoff_date}),
            path=path,
            dataset=True,
            partition_cols=[PARTITION],
            mode="overwrite_partitions",
            database=self.database,
            table=table,
            dtype=types | {PARTITION: "string"},
            boto3_session=self.session,
        )
        return path


def results_store(settings: Settings, boto3_session: Any = None) -> ResultsStore:
    """The results store of the settings' backend: the local lake, or `lake_s3_uri` + `glue_database`."""
    if settings.backend == "aws":
        if not settings.lake_s3_uri:
            raise ConfigError("writing results on aws needs PLAYERGUARD_LAKE_S3_URI (s3://bucket/prefix)")
        return S3Results(
            settings.lake_s3_uri, settings.glue_database, boto3_session=boto3_session, region=settings.region
        )
    return LocalResults(settings.lake_dir)
