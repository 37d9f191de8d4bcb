"""`check_source`: does a source mapping fit the table it names, and which rows fail it, and why.

The check reads the table's columns and partitions from its catalog (the local directory, or Glue), then
runs three queries over the most recent partitions (all of them with `days=None`) on the settings'
engine: the problem counts (`sources.problems_select`), a few mapped rows, and how often each attribute
is present (and, for numbers, parses). Structural faults (no table, missing columns, no partitions, no
row that maps) are `problems`; rows that fail the mapping and doubtful data are `warnings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from playerguard.backends import backend_for
from playerguard.errors import ConfigError
from playerguard.features.catalogs import SourceCatalog
from playerguard.features.engines import SqlEngine
from playerguard.features.sources import (
    MappingFailures,
    SourceMapping,
    mapped_select,
    partition_predicate,
    problems_select,
    raw_value,
)
from playerguard.settings import Settings

_PARTITION_FORMATS = {"year": r"\d{4}", "month": r"\d{2}", "day": r"\d{2}", "date": r"\d{4}-\d{2}-\d{2}"}
SAMPLE_ROWS = 5


@dataclass
class SourceReport:
    """What `check_source` found. `ok` when there are no problems (warnings do not fail the check)."""

    mapping: str
    table: str
    columns: list[str] = field(default_factory=list)
    partitions: int = 0
    first_partition: str | None = None
    last_partition: str | None = None
    checked: tuple[str | None, str | None] = (None, None)
    failures: MappingFailures | None = None
    sample: pd.DataFrame | None = None
    attribute_rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The report as text lines."""
        out = [f"source {self.mapping}: table {self.table}, {len(self.columns)} columns"]
        if self.partitions:
            out.append(f"partitions: {self.partitions:,} ({self.first_partition} .. {self.last_partition})")
        if self.failures is not None:
            left_out = "; they are left out of the features" if self.failures.failed else ""
            checked = f"checked partitions {self.checked[0]} .. {self.checked[1]}"
            out.append(f"{checked}: {self.failures.describe()}{left_out}")
        out += [f"problem: {p}" for p in self.problems] + [f"warning: {w}" for w in self.warnings]
        out.append("ok" if self.ok else "the mapping does not fit the table")
        return out


def check_source(
    settings: Settings,
    mapping: SourceMapping,
    *,
    days: int | None = 7,
    engine: SqlEngine | None = None,
    catalog: SourceCatalog | None = None,
    boto3_session: Any = None,
) -> SourceReport:
    """Check `mapping` against its table over the last `days` partition days (None: every partition).

    The catalog and engine default to the settings' backend: the local directory and DuckDB, or Glue and
    Athena (with `boto3_session`, or a default one)."""
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise ConfigError(f"days must be a whole number >= 1, got {days!r}")
    report = SourceReport(mapping.name, f"{mapping.database}.{mapping.table}")
    backend = backend_for(settings)
    if catalog is None:
        catalog = backend.catalog(mapping, boto3_session=boto3_session)
    if not _check_catalog(report, mapping, catalog):
        return report
    first, last = _checked_days(report, days)
    close = engine is None
    options = {"boto3_session": boto3_session} if boto3_session is not None else {}
    engine = engine or backend.sql_engine(source=mapping, **options)
    try:
        _check_rows(report, mapping, engine, first, last)
    finally:
        if close and hasattr(engine, "close"):
            engine.close()
    return report


def _check_catalog(report: SourceReport, mapping: SourceMapping, catalog: SourceCatalog) -> bool:
    columns = catalog.columns()
    if columns is None:
        report.problems.append(f"table {report.table} not found")
        return False
    report.columns = columns
    missing = [c for c in mapping.source_columns() if c not in columns]
    if missing:
        report.problems.append(f"the table has no column {', '.join(missing)} (it has: {', '.join(columns)})")
        return False
    if mapping.partitions is None and mapping.format != "iceberg":
        return True
    values = catalog.partitions()
    names = ["year", "month", "day"] if mapping.partitions and not mapping.partitions.date else ["date"]
    pattern = re.compile("^" + "-".join(_PARTITION_FORMATS[n] for n in names) + "$")
    labels = ["-".join(v) for v in values]
    malformed = [label for label in labels if not pattern.match(label)]
    if malformed:
        report.warnings.append(
            f"{len(malformed)} partition(s) not zero-padded like 2026-01-05 (e.g. {malformed[0]}): "
            "time-range predicates compare zero-padded text and miss or misplace them"
        )
    wellformed = sorted(label for label in labels if pattern.match(label))
    if not wellformed:
        report.problems.append("no partitions found")
        return False
    report.partitions = len(wellformed)
    report.first_partition, report.last_partition = wellformed[0], wellformed[-1]
    return True


def _checked_days(report: SourceReport, days: int | None) -> tuple[date | None, date | None]:
    if report.last_partition is None:
        return None, None
    last = date.fromisoformat(report.last_partition)
    first = None if days is None else last - timedelta(days=days - 1)
    report.checked = (first.isoformat() if first else report.first_partition, last.isoformat())
    return first, last


def _check_rows(
    report: SourceReport, mapping: SourceMapping, engine: SqlEngine, first: date | None, last: date | None
) -> None:
    problems = problems_select(mapping, days=(first, last))
    counted = engine.query(problems.sql, problems.params)
    report.failures = MappingFailures.from_problems(counted)
    if report.failures.rows == 0:
        report.problems.append(f"no rows in partitions {report.checked[0]} .. {report.checked[1]}")
        return
    if report.failures.failed == report.failures.rows:
        report.problems.append("every row fails the mapping: " + report.failures.describe())
    outside = _outside_slack(counted, mapping)
    if outside:
        slack = mapping.partitions.slack_days if mapping.partitions else 0
        report.warnings.append(
            f"{outside:,} rows sit more than {slack} day(s) from their event date's partition: "
            "raise partitions.slack_days or time-range queries miss them"
        )
    sample = mapped_select(mapping, days=(last, last))
    report.sample = engine.query(
        f"SELECT * FROM (\n{sample.sql}\n) AS sample LIMIT {SAMPLE_ROWS}", sample.params
    )
    _check_attributes(report, mapping, engine, first, last)


def _outside_slack(counted: pd.DataFrame, mapping: SourceMapping) -> int:
    if mapping.partitions is None:
        return 0
    valid = counted[counted["problem"].isna() & counted["event_date"].notna()]
    partition = pd.to_datetime(valid["partition"], format="%Y-%m-%d", errors="coerce")
    distance = (pd.to_datetime(valid["event_date"], format="%Y-%m-%d") - partition).dt.days.abs()
    return int(valid.loc[distance > mapping.partitions.slack_days, "rows"].sum())


def _check_attributes(
    report: SourceReport, mapping: SourceMapping, engine: SqlEngine, first: date | None, last: date | None
) -> None:
    """How many rows carry each attribute, and how many number attributes fail to parse."""
    if not mapping.attributes:
        return
    where, params = partition_predicate(mapping, first, last)
    attributes = sorted(mapping.attributes.items())
    counts = []
    for i, (_, attribute) in enumerate(attributes):  # positional aliases: attribute names may be 63 long
        raw = raw_value(mapping, attribute)
        counts += [f'count({raw}) AS "p{i}"', f'count(TRY_CAST({raw} AS DOUBLE)) AS "n{i}"']
    sql = f"SELECT {', '.join(counts)}\nFROM {mapping.relation}" + (f"\nWHERE {where}" if where else "")
    row = engine.query(sql, params).iloc[0]
    absent, unparsed = [], []
    for i, (name, attribute) in enumerate(attributes):
        present, numbers = int(row[f"p{i}"]), int(row[f"n{i}"])
        report.attribute_rows[name] = present
        if present == 0:
            absent.append(name)
        elif attribute.type == "number" and numbers < present:
            unparsed.append(f"{name} ({present - numbers:,})")
    if absent:
        report.warnings.append(f"attributes never present (a misspelt field?): {', '.join(absent)}")
    if unparsed:
        report.warnings.append(
            f"number attributes with values that are not numbers (read as missing): {', '.join(unparsed)}"
        )
