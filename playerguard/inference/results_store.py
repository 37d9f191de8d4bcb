"""The results store port: where scores and flags are written back, partition by partition.

`LocalResults` writes hive-partitioned Parquet under the local lake; `S3Results` writes through
awswrangler to S3 and registers the tables in Glue. Writing a partition replaces it.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.lake.envelope import check_identifier
from playerguard.model_names import MODEL_NAMES
from playerguard.settings import Settings

SCORES_TABLE = "player_scores"
FLAGS_TABLE = "player_flags"
PARTITION = "cutoff_date"
_GLUE_TYPES = {"cutoff": "timestamp", "scored_at": "timestamp", "score": "double", "threshold": "double",
               "value_at_risk": "double"}
_GLUE_TYPES |= {f"{m}_score": "double" for m in MODEL_NAMES}


class ResultsStore(Protocol):
    """Where result tables live: `replace` swaps one cutoff_date partition of a table for `frame`."""

    def replace(self, table: str, cutoff_date: str, frame: pd.DataFrame) -> str: ...


class LocalResults:
    """Result tables as hive-partitioned Parquet under the local lake directory."""

    def __init__(self, lake_root: Path) -> None:
        self.root = Path(lake_root)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalResults:
        return cls(settings.lake_dir)

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
                f"CREATE VIEW \"{table}\" AS SELECT * FROM read_parquet('{pattern}', union_by_name = true, "
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

    @classmethod
    def from_settings(cls, settings: Settings, boto3_session: Any = None) -> S3Results:
        """`lake_s3_uri` + `glue_database`; a ConfigError when the lake's URI is not set."""
        if not settings.lake_s3_uri:
            raise ConfigError("writing results on aws needs PLAYERGUARD_LAKE_S3_URI (s3://bucket/prefix)")
        return cls(settings.lake_s3_uri, settings.glue_database, boto3_session=boto3_session, region=settings.region)

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
