"""The SQL engine port: run the compiled Athena SQL, locally with DuckDB or on AWS with Athena.

Both engines take the same SQL text (Athena/Trino dialect, `?` placeholders) and the same parameter
values. `DuckDBEngine` transpiles the SQL with sqlglot and runs it over a view named like the Glue table
(`"<database>"."events"`) on the local Parquet lake (or a source mapping's table: Parquet files, or an
Iceberg table whose files Iceberg plans per query). `DuckDBEngine.lake_version()` is the version it reads;
given one (`lake_version=`), it reads that version again. `AthenaEngine` hands it to
`awswrangler.athena.read_sql_query` with server-side (qmark) execution parameters.

Percentiles: Athena's `approx_percentile` is approximate; locally it becomes DuckDB's exact
`quantile_cont` (linear interpolation, numpy's default), so local results are reproducible.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, Self

import pandas as pd
import sqlglot
from sqlglot import exp

from playerguard.errors import DataError
from playerguard.features.compiler import TIMESTAMP, quote
from playerguard.features.lake_version import LakeVersion, check_files, list_files
from playerguard.features.source_binding import MappedSource, local_table_glob, register_local_table
from playerguard.features.sources import Days, SourceMapping
from playerguard.lake.envelope import NUMBER, STRING
from playerguard.lake.local import LocalLake
from playerguard.lake.s3 import EVENTS_TABLE  # the Glue table; the local view takes its name
from playerguard.settings import Settings

_NUMERIC_TYPES = re.compile(r"^(double|float|real|bigint|int|integer|smallint|tinyint|decimal.*)$")


class SqlEngine(Protocol):
    """Runs Athena-dialect SQL with `?` parameters against the events table."""

    database: str
    table: str

    def column_types(self) -> dict[str, str]:
        """The events table's columns: "double", "string" or "timestamp"."""
        ...

    def query(self, sql: str, params: Sequence[str]) -> pd.DataFrame: ...


def _kind_of(sql_type: str) -> str:
    sql_type = sql_type.strip().lower()
    if sql_type.startswith("timestamp"):
        return TIMESTAMP
    return NUMBER if _NUMERIC_TYPES.match(sql_type) else STRING


def _player_key(node: exp.Expression) -> exp.Expression | None:
    """DuckDB's `hash(x)` for the compiler's PLAYER_KEY `from_big_endian_64(xxhash64(to_utf8(x)))`, which
    DuckDB lacks (any 64-bit hash serves: the key is checked for collisions)."""
    if not (isinstance(node, exp.Anonymous) and node.name.lower() == "from_big_endian_64"):
        return None
    inner = node.expressions[0] if len(node.expressions) == 1 else None
    if not (isinstance(inner, exp.Anonymous) and inner.name.lower() == "xxhash64" and len(inner.expressions) == 1):
        return None
    utf8 = inner.expressions[0]
    return exp.Anonymous(this="hash", expressions=[utf8.this.copy()]) if isinstance(utf8, exp.Encode) else None


def _for_duckdb(node: exp.Expression) -> exp.Expression:
    key = _player_key(node)
    if key is not None:
        return key
    if isinstance(node, exp.ApproxQuantile):
        quantiles = node.args["quantile"]
        if isinstance(quantiles, exp.Array):  # DuckDB's list literal, not an ARRAY constructor
            quantiles = exp.Array(expressions=quantiles.expressions)
        return exp.Anonymous(this="quantile_cont", expressions=[node.this, quantiles])
    if isinstance(node, exp.CTE) and node.args.get("materialized") is None:
        # Trino inlines every CTE; DuckDB would otherwise materialize one read twice (`scoped`: every event).
        node.set("materialized", False)
    if isinstance(node, exp.JSONExtractScalar):
        # Athena gives NULL for malformed JSON and for objects/arrays; DuckDB's ->> raises or gives the text.
        valid = exp.Anonymous(this="json_valid", expressions=[node.this.copy()])
        kind = exp.Anonymous(this="json_type", expressions=[node.this.copy(), node.expression.copy()])
        nested = [exp.Literal.string("OBJECT"), exp.Literal.string("ARRAY")]
        scalar = exp.not_(exp.In(this=kind, expressions=nested))
        return exp.Case(ifs=[exp.If(this=exp.and_(valid, scalar), true=node)])
    if isinstance(node, exp.UnixToTime):
        # from_unixtime is UTC in Athena; DuckDB's to_timestamp is a TIMESTAMPTZ shown in the session's zone.
        micros = exp.Mul(this=exp.Paren(this=node.this), expression=exp.Literal.number(1_000_000))
        return exp.Anonymous(this="make_timestamp", expressions=[exp.cast(exp.Round(this=micros), "BIGINT")])
    return node


@lru_cache(maxsize=64)
def transpile_to_duckdb(sql: str) -> str:
    """The DuckDB form of Athena SQL: approx_percentile made exact (quantile_cont), CTEs inlined, JSON
    extraction and from_unixtime with Athena's semantics, the player key hashed with DuckDB's `hash`."""
    tree = sqlglot.parse_one(sql, read="athena")
    return tree.transform(_for_duckdb).sql(dialect="duckdb")


class DuckDBEngine:
    """DuckDB over the local lake. The connection and view are made on first use, not at construction."""

    def __init__(
        self,
        lake_root: Path,
        *,
        database: str = "playerguard",
        table: str = EVENTS_TABLE,
        memory_limit: str | None = None,
        threads: int | None = None,
        temp_directory: Path | None = None,
        source: SourceMapping | None = None,
        lake_version: LakeVersion | None = None,
    ) -> None:
        self.lake = LocalLake(lake_root)
        # A mapped source reads the studio's table at <lake_root>/<its table>/ in place of the lake's events.
        self.source = MappedSource(source) if source is not None else None
        self._version = lake_version
        self._iceberg: Any = None  # an Iceberg source's file planner, made with the connection
        self.database = database
        self.table = table
        self._config: dict[str, Any] = {}
        if memory_limit:
            self._config["memory_limit"] = memory_limit
        if threads:
            self._config["threads"] = threads
        if temp_directory:
            self._config["temp_directory"] = str(temp_directory)
        self._con: Any = None

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> DuckDBEngine:
        options.setdefault("temp_directory", settings.home / "tmp" / "duckdb")
        return cls(settings.lake_dir, database=settings.glue_database, **options)

    def _connection(self) -> Any:
        if self._con is None:
            import duckdb

            if self.source is None:
                self.lake.recover()
                if not self.lake.has_events():
                    raise DataError(
                        f"the event lake at {self.lake.root} has no events; ingest or simulate some first"
                    )
            if "temp_directory" in self._config:
                Path(self._config["temp_directory"]).mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(config=self._config)
            pinned = self._pinned_files()
            if self.source is not None and self.source.mapping.format == "iceberg":
                from playerguard.features.iceberg_source import IcebergSource

                snapshot = self._version.snapshot_id if self._version is not None else None
                self._iceberg = IcebergSource(self.source.mapping, self.lake.root, snapshot_id=snapshot)
                self._con = self._iceberg.register(con)
                return self._con
            if self.source is not None:
                self._con = register_local_table(con, self.source.mapping, self.lake.root, pinned)
                return self._con
            glob = self.lake.events_glob().replace("'", "''")  # a view cannot take parameters: quoted path
            if pinned is not None:
                glob = "', '".join(path.replace("'", "''") for path in pinned)
            # The lake keeps UTC instants (TIMESTAMPTZ); Athena's column is a plain TIMESTAMP holding UTC.
            # Rebuilding it from epoch microseconds avoids DuckDB's time-zone machinery (10x slower).
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.database)}")
            con.execute(
                f"CREATE OR REPLACE VIEW {quote(self.database)}.{quote(self.table)} AS "
                "SELECT * REPLACE (make_timestamp(epoch_us(event_timestamp)) AS event_timestamp) "
                f"FROM read_parquet(['{glob}'], hive_partitioning = true, union_by_name = true, "
                "hive_types = {'event_date': VARCHAR})"
            )
            self._con = con
        return self._con

    def _pinned_files(self) -> list[str] | None:
        """The files of the version given to read again (None: read the lake as it is)."""
        if self._version is None:
            return None
        iceberg = self.source is not None and self.source.mapping.format == "iceberg"
        name = self._table_name()
        if self._version.kind != ("iceberg" if iceberg else "files") or self._version.table != name:
            raise DataError(f"the recorded version ({self._version.describe()}) is not of {name}")
        return None if iceberg else check_files(self.lake.root, self._version)

    def _table_name(self) -> str:
        if self.source is not None:
            return f"{self.source.mapping.database}.{self.source.mapping.table}"
        return f"{self.database}.{self.table}"

    def lake_version(self) -> LakeVersion:
        """The version this engine reads: the one it was given, or the Iceberg snapshot it pinned, or the
        Parquet files (with sizes and times) its table has now."""
        if self._version is not None:
            return self._version
        if self.source is not None and self.source.mapping.format == "iceberg":
            self._connection()
            return LakeVersion("iceberg", self._table_name(), snapshot_id=self._iceberg.snapshot_id)
        if self.source is not None:
            pattern = local_table_glob(self.source.mapping, Path("."))
            return list_files(self.lake.root, pattern, self._table_name())
        return list_files(self.lake.root, "events/*/*.parquet", self._table_name())

    def column_types(self) -> dict[str, str]:
        if self.source is not None:
            return self.source.mapping.column_types()
        rows = self._connection().execute(f"DESCRIBE {quote(self.database)}.{quote(self.table)}").fetchall()
        return {name: _kind_of(sql_type) for name, sql_type, *_ in rows}

    def query(self, sql: str, params: Sequence[str]) -> pd.DataFrame:
        if self.source is not None:
            plan = self._plan if self.source.mapping.format == "iceberg" else None
            sql, params = self.source.bind(sql, params, self.database, self.table, self._run, plan)
        return self._run(sql, params)

    def _plan(self, days: Days) -> None:
        """Point the Iceberg source's view at the files Iceberg plans for the days a query reads."""
        con = self._connection()  # makes the source's planner on first use
        self._iceberg.register(con, days)

    def _run(self, sql: str, params: Sequence[str]) -> pd.DataFrame:
        return self._connection().execute(transpile_to_duckdb(sql), list(params)).df()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def athena_literal(value: str) -> str:
    """A parameter value as Athena expects it: a quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


class AthenaEngine:
    """Athena through awswrangler. The boto3 session is built on first use if none is passed."""

    def __init__(
        self,
        settings: Settings,
        *,
        boto3_session: Any = None,
        table: str = EVENTS_TABLE,
        ctas_approach: bool = False,
        source: SourceMapping | None = None,
        lake_version: LakeVersion | None = None,
    ) -> None:
        self.settings = settings
        self.database = settings.glue_database
        self.table = table
        # Results are one row per player: reading Athena's CSV output is enough, and it needs no rights to
        # create temporary Glue tables (which the CTAS approach does).
        self.ctas_approach = ctas_approach
        self._boto3_session = boto3_session
        self.source = MappedSource(source) if source is not None else None
        iceberg = source is not None and source.format == "iceberg"
        if lake_version is not None and (not iceberg or lake_version.kind != "iceberg"):
            raise DataError(
                f"Athena reads a recorded version only of an Iceberg source, not {lake_version.describe()}"
            )
        self._version = lake_version

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> AthenaEngine:
        return cls(settings, **options)

    def lake_version(self) -> LakeVersion | None:
        """An Iceberg source's snapshot this engine reads, pinned on first call (the table's current one,
        from Glue) so that every later query reads it; None for other tables (no versions to name)."""
        mapping = self.source.mapping if self.source is not None else None
        if mapping is None or mapping.format != "iceberg":
            return None
        if self._version is None:
            from playerguard.features.glue_iceberg import glue_iceberg_table

            current = glue_iceberg_table(mapping.database, mapping.table, self._session()).current_snapshot()
            if current is None:
                raise DataError(f"the Iceberg table {mapping.database}.{mapping.table} has no snapshot yet")
            name = f"{mapping.database}.{mapping.table}"
            self._version = LakeVersion("iceberg", name, snapshot_id=current.snapshot_id)
        return self._version

    def _at_version(self, sql: str) -> str:
        """`sql` reading the pinned snapshot of the Iceberg source (Athena's time travel)."""
        if self._version is None or self.source is None:
            return sql
        relation = self.source.mapping.relation
        # A snapshot id is an integer of the table's own metadata; Athena takes no parameter there.
        pinned = f"FROM {relation} FOR VERSION AS OF {int(self._version.snapshot_id)}"  # type: ignore[arg-type]
        return re.sub(rf"FROM {re.escape(relation)}(?=\s|$)", lambda _: pinned, sql)

    def _session(self) -> Any:
        if self._boto3_session is None:
            import boto3

            self._boto3_session = boto3.Session(region_name=self.settings.region)
        return self._boto3_session

    def column_types(self) -> dict[str, str]:
        if self.source is not None:
            return self.source.mapping.column_types()
        import awswrangler as wr

        types = wr.catalog.get_table_types(
            database=self.database, table=self.table, boto3_session=self._session()
        )
        if types is None:
            raise DataError(f"Glue table {self.database}.{self.table} does not exist; ingest events first")
        return {name: _kind_of(sql_type) for name, sql_type in types.items()}

    def query(self, sql: str, params: Sequence[str]) -> pd.DataFrame:
        if self.source is not None:
            sql, params = self.source.bind(sql, params, self.database, self.table, self._run)
        return self._run(sql, params)

    def _run(self, sql: str, params: Sequence[str]) -> pd.DataFrame:
        import awswrangler as wr

        return wr.athena.read_sql_query(
            self._at_version(sql),
            database=self.database,
            workgroup=self.settings.athena_workgroup,
            s3_output=self.settings.athena_output_s3_uri,
            params=[athena_literal(p) for p in params],
            paramstyle="qmark",
            ctas_approach=self.ctas_approach,
            boto3_session=self._session(),
        )
