"""The event lake on S3, registered in the Glue catalog (the aws backend), written with awswrangler.

Layout as the local lake: `<lake>/events/event_date=YYYY-MM-DD/*.parquet` in Glue table `events`
(partitioned by `event_date`) and `<lake>/rejected/*.parquet` in table `events_rejected`, both in
`settings.glue_database` (created on the first append if missing). Attribute types come from the Glue
table; new attributes are added to it (`schema_evolution`).

What "atomic" means on S3: there is no rename to commit with. An append is staged on local disk and
settled there, day by day, against the ids already in that day's S3 partition, so only rows that are new
are written (`mode="append"`). If the process dies part-way through writing, some days are written and
some are not; running the same ingest again completes it: the days already written now hold those ids,
their rows count as duplicates, and the missing days are written. Until then, readers may see the append
in part. Rejected rows are written last, deduplicated the same way.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from playerguard.errors import ConfigError
from playerguard.lake.envelope import NUMBER, PARTITION_COLUMN, STRING, attribute_columns
from playerguard.lake.local import AppendResult, AppendsInOneGo, StagedAppend
from playerguard.lake.staging import REJECTED_SCHEMA, Stage, rejected_records
from playerguard.settings import Settings

EVENTS_TABLE = "events"
REJECTED_TABLE = "events_rejected"
_GLUE_KINDS = {"double": NUMBER, "float": NUMBER, "bigint": NUMBER, "int": NUMBER, "string": STRING}
_GLUE_TYPES = {NUMBER: "double", STRING: "string"}


class S3Lake(AppendsInOneGo):
    """An S3 + Glue event lake. Takes an optional boto3 Session; builds one (region from settings) if not."""

    def __init__(
        self,
        uri: str,
        database: str,
        *,
        boto3_session: Any = None,
        region: str | None = None,
        rows_per_write: int = 1_000_000,
    ) -> None:
        if not uri.startswith("s3://"):
            raise ConfigError(f"the S3 lake location must be an s3:// URI, got {uri!r}")
        self.uri = uri.rstrip("/")
        self.database = database
        self.region = region
        self.rows_per_write = rows_per_write
        self._session = boto3_session

    @classmethod
    def from_settings(cls, settings: Settings, boto3_session: Any = None) -> S3Lake:
        if not settings.lake_s3_uri:
            raise ConfigError(
                "the aws backend needs PLAYERGUARD_LAKE_S3_URI (s3://bucket/prefix of the lake)"
            )
        return cls(
            settings.lake_s3_uri, settings.glue_database, boto3_session=boto3_session, region=settings.region
        )

    def event_days(self) -> list[str]:
        """The `event_date=…` partitions under the lake's events prefix."""
        import awswrangler as wr

        prefixes = wr.s3.list_directories(self.events_uri, boto3_session=self.session)
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in prefixes]

    def fingerprint(self) -> None:
        """None: S3 listings are not fingerprinted, so pipeline steps that read the lake always run."""
        return

    @property
    def session(self) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.Session(region_name=self.region)
        return self._session

    @property
    def events_uri(self) -> str:
        return f"{self.uri}/events/"

    @property
    def rejected_uri(self) -> str:
        return f"{self.uri}/rejected/"

    def attribute_types(self) -> dict[str, str]:
        """Attribute name → NUMBER or STRING, from the Glue table (empty before the first append)."""
        import awswrangler as wr

        types = wr.catalog.get_table_types(
            database=self.database, table=EVENTS_TABLE, boto3_session=self.session
        )
        if types is None:
            return {}
        return {
            name: _GLUE_KINDS.get(kind, STRING)
            for name, kind in types.items()
            if name in attribute_columns(list(types))
        }

    def _column(self, prefix: str, column: str) -> pa.Array:
        import awswrangler as wr

        paths = [p for p in wr.s3.list_objects(prefix, boto3_session=self.session) if p.endswith(".parquet")]
        if not paths:
            return pa.array([], pa.string())
        frame = wr.s3.read_parquet(paths, columns=[column], boto3_session=self.session)
        return pa.array(frame[column].astype(object), pa.string())

    def partition_ids(self, day: str) -> pa.Array:
        """The event ids already in one day's partition."""
        return self._column(f"{self.events_uri}{PARTITION_COLUMN}={day}/", "event_id")

    def rejected_ids(self) -> pa.Array:
        """The ids of every rejected row recorded so far."""
        return self._column(self.rejected_uri, "rejected_id")

    def begin(self, source: str) -> S3Append:
        return S3Append(self, source)


class S3Append(StagedAppend):
    """An append to an S3Lake: staged in a local temporary directory, then written day by day."""

    def __init__(self, lake: S3Lake, source: str) -> None:
        self.lake = lake
        self._directory = tempfile.TemporaryDirectory(prefix="playerguard-stage-")
        batch = uuid.uuid4().hex
        super().__init__(source, lake.attribute_types(), Stage(Path(self._directory.name), batch))

    def _publish(self) -> AppendResult:
        import awswrangler as wr

        wr.catalog.create_database(self.lake.database, exist_ok=True, boto3_session=self.lake.session)
        added = duplicates = 0
        pending: list[pa.Table] = []
        for day in sorted(self.stage.days):
            outcome = self.stage.resolve_day(day, self.lake.partition_ids(day))
            added += outcome.added
            duplicates += outcome.duplicates
            for path in outcome.files:
                table = pq.read_table(path)
                pending.append(
                    table.append_column(PARTITION_COLUMN, pa.repeat(pa.scalar(day), table.num_rows))
                )
            if sum(t.num_rows for t in pending) >= self.lake.rows_per_write:
                self._write_events(pending)
                pending = []
        if pending:
            self._write_events(pending)
        rows = self.stage.rejected_rows()
        records, recorded = rejected_records(rows, self.source, self.lake.rejected_ids())
        if recorded:
            wr.s3.to_parquet(
                records.to_pandas(),
                path=self.lake.rejected_uri,
                dataset=True,
                mode="append",
                database=self.lake.database,
                table=REJECTED_TABLE,
                schema_evolution=True,
                dtype={f.name: _glue_type(f.type) for f in REJECTED_SCHEMA},
                boto3_session=self.lake.session,
            )
        return AppendResult(
            added, duplicates, rows.num_rows, self.lake.rejected_uri if rows.num_rows else None
        )

    def _write_events(self, tables: list[pa.Table]) -> None:
        import awswrangler as wr

        table = pa.concat_tables(tables, promote_options="default")
        types = self.attribute_types()
        dtype = {name: _glue_type(table.schema.field(name).type) for name in table.column_names}
        dtype.update({name: _GLUE_TYPES[types[name]] for name in attribute_columns(table.column_names)})
        wr.s3.to_parquet(
            table.to_pandas(),
            path=self.lake.events_uri,
            dataset=True,
            partition_cols=[PARTITION_COLUMN],
            mode="append",
            database=self.lake.database,
            table=EVENTS_TABLE,
            schema_evolution=True,
            dtype=dtype,
            boto3_session=self.lake.session,
        )

    def _discard(self) -> None:
        """Nothing reached S3 before `_publish`; the local stage goes with the temporary directory."""

    def _release(self) -> None:
        self._directory.cleanup()


def _glue_type(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "timestamp"
    if pa.types.is_floating(kind):
        return "double"
    if pa.types.is_integer(kind):
        return "bigint"
    return "string"
