"""A compiled feature or label query bound to a source mapping, and the source's table on local disk.

`MappedSource.bind` rewrites the query so that each scan of the events table (`"<database>"."events"`)
reads the mapping's SELECT instead, as a subquery whose partition predicates cover the days that scan's
own `event_date >= ?` / `<= ?` bounds reach (its `?` parameters are spliced in at the scan's position, so
every value stays a parameter). A scan without a lower bound (lifetime features) reads every partition up
to its upper one. The rows of those partitions that fail the mapping are counted once per range and logged:
a warning naming the reasons, so they are never dropped silently. A `before` callback learns the days all
of a query's scans reach (both None when it has none) before anything runs: an Iceberg source plans its
files for them.

`register_local_table` defines `"<database>"."<table>"` on a DuckDB connection over the Parquet files
under `<lake>/<table>/` (or over a given list of them: a recorded version), hive partitions read as
strings, as Glue holds them.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.features.compiler import quote
from playerguard.features.sources import (
    Days,
    MappingFailures,
    SourceMapping,
    mapped_select,
    partition_days,
    problems_select,
)

log = logging.getLogger(__name__)

Runner = Callable[[str, Sequence[str]], pd.DataFrame]


@dataclass(frozen=True)
class _Scan:
    start: int  # character span of the events table reference
    end: int
    placeholder: int  # how many `?` come before it
    first: date | None
    last: date | None


def _scans(sql: str, params: Sequence[str], database: str, table: str) -> list[_Scan]:
    """Each reference to the events table, with the `event_date >= ?` / `<= ?` bounds that follow it."""
    from sqlglot.dialects.athena import Athena
    from sqlglot.tokens import TokenType

    tokens = Athena().tokenize(sql)
    names = (TokenType.VAR, TokenType.IDENTIFIER)
    found: list[dict] = []
    placeholders = 0
    for i, token in enumerate(tokens):
        if token.token_type == TokenType.PLACEHOLDER:
            placeholders += 1
        following = tokens[i + 1 : i + 3]
        if (
            token.token_type in names and token.text == database and len(following) == 2
            and following[0].token_type == TokenType.DOT and following[1].token_type in names
            and following[1].text == table
        ):  # fmt: skip
            found.append({"start": token.start, "end": following[1].end, "placeholder": placeholders})
        elif (
            found and token.token_type in names and token.text == "event_date" and len(following) == 2
            and following[0].token_type in (TokenType.GTE, TokenType.LTE)
            and following[1].token_type == TokenType.PLACEHOLDER
        ):  # fmt: skip
            key = "first" if following[0].token_type == TokenType.GTE else "last"
            found[-1][key] = date.fromisoformat(params[placeholders])
    return [_Scan(f["start"], f["end"], f["placeholder"], f.get("first"), f.get("last")) for f in found]


def _union(scans: list[_Scan]) -> Days:
    """The days every scan reaches, together (None: unbounded on that side)."""
    firsts, lasts = [s.first for s in scans], [s.last for s in scans]
    first = None if None in firsts else min(firsts)  # type: ignore[type-var]
    last = None if None in lasts else max(lasts)  # type: ignore[type-var]
    return first, last


def _day_range(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """Days first..last (inclusive) as the instants [start, end)."""
    start = datetime.combine(first, datetime.min.time(), UTC) if first else None
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC) if last else None
    return start, end


class MappedSource:
    """A mapping bound into the queries an engine runs, counting and logging the rows that fail it."""

    def __init__(self, mapping: SourceMapping, *, report_failures: bool = True) -> None:
        self.mapping = mapping
        self.report_failures = report_failures
        self.failures: dict[Days, MappingFailures] = {}

    def bind(
        self,
        sql: str,
        params: Sequence[str],
        database: str,
        table: str,
        run: Runner | None = None,
        before: Callable[[Days], None] | None = None,
    ) -> tuple[str, list[str]]:
        """`sql` with every scan of `"database"."table"` reading the mapping's SELECT over the days that
        scan's `event_date` bounds reach; with `run`, the failing rows of those days are counted (once per
        range) and logged. `before` is called first with the days all scans reach together."""
        if (database, table) == (self.mapping.database, self.mapping.table):
            raise ConfigError(f"source {self.mapping.name}: its table cannot be named {database}.{table}")
        scans = _scans(sql, params, database, table)
        if before is not None:
            before(partition_days(self.mapping, *_day_range(*_union(scans))) if scans else (None, None))
        if not scans:
            return sql, list(params)
        pieces, values, at, used = [], [], 0, 0
        for scan in scans:
            mapped = mapped_select(self.mapping, *_day_range(scan.first, scan.last))
            pieces += [sql[at : scan.start], f"(\n{mapped.sql}\n) AS {quote(table)}"]
            values += [*params[used : scan.placeholder], *mapped.params]
            at, used = scan.end + 1, scan.placeholder
        pieces.append(sql[at:])
        values += params[used:]
        if run is not None and self.report_failures:
            self._count_failures(scans, run)
        return "".join(pieces), values

    def _count_failures(self, scans: list[_Scan], run: Runner) -> None:
        first, last = _union(scans)
        if (first, last) in self.failures:
            return
        query = problems_select(self.mapping, *_day_range(first, last))
        failures = MappingFailures.from_problems(run(query.sql, query.params))
        self.failures[(first, last)] = failures
        low, high = partition_days(self.mapping, *_day_range(first, last))
        days = f"partitions {low or 'from the first'} .. {high or 'to the last'}"
        message = f"source {self.mapping.name} ({self.mapping.database}.{self.mapping.table}), {days}: "
        if failures.failed:
            log.warning("%s%s; they are left out of the features", message, failures.describe())
        else:
            log.info("%s%s", message, failures.describe())


def local_table_glob(mapping: SourceMapping, lake_root: Path) -> str:
    """The Parquet files of the mapping's table in a local lake: `<lake_root>/<table>/<partitions>/*`."""
    depth = len(mapping.partitions.columns) if mapping.partitions else 0
    return str(Path(lake_root).joinpath(mapping.table, *["*"] * depth, "*.parquet"))


def register_local_table(
    con: Any, mapping: SourceMapping, lake_root: Path, files: Sequence[str] | None = None
) -> Any:
    """Define the view `"<database>"."<table>"` over the table's local Parquet files (all of them, or
    `files`) on a DuckDB connection; returns the connection."""
    pattern = local_table_glob(mapping, lake_root)
    if files is not None:
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        pattern = f"[{listed}]"
    elif not glob.glob(pattern):
        raise DataError(
            f"the source table {mapping.database}.{mapping.table} has no Parquet files at {pattern}; "
            "write a GAP-layout lake first (playerguard simulate --layout gap)"
        )
    options = "union_by_name = true"
    if mapping.partitions is not None:
        types = ", ".join(f"'{column}': VARCHAR" for column in mapping.partitions.columns)
        options += f", hive_partitioning = true, hive_types = {{{types}}}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(mapping.database)}")
    con.execute(
        f"CREATE OR REPLACE VIEW {mapping.relation} AS "
        f"SELECT * FROM read_parquet({pattern if files is not None else _literal(pattern)}, {options})"
    )
    return con


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
