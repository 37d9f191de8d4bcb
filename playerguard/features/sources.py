"""A studio's own event table, read where it is: the source mapping YAML and the Athena SQL it becomes.

A source mapping says how each row of an existing table (for instance the `raw_events` table of the AWS
Game Analytics Pipeline) becomes an envelope event: which column or JSON field of `json_column` fills
each envelope column, how the timestamp converts, which JSON fields become typed attributes, constants,
and how the table is partitioned (so a time range becomes partition predicates Athena prunes with).
See `definitions/gap_source.yaml`. A mapping with `format: iceberg` (`definitions/gap-v3_source.yaml`) names
an Apache Iceberg table: its partitions are hidden, so a time range becomes a predicate on the timestamp
column itself, which Athena (and, locally, Iceberg's file planning) prunes files with.

`mapped_select` is the SELECT of envelope events (`event_date` included) over the partitions a time range
needs; rows that fail the mapping (no player id, a bad timestamp, ...) are left out of it and counted,
with their reasons, by `problems_select`. Values (partition bounds) are `?` parameters; column names,
JSON paths and constants are validated and written into the SQL. `source_binding.MappedSource` puts the
mapped SELECT in place of the events table in the compiled feature and label queries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from playerguard.errors import ConfigError
from playerguard.features.compiler import TIMESTAMP, literal, quote, table_name
from playerguard.lake.envelope import (
    ENVELOPE_COLUMNS,
    NUMBER,
    REQUIRED_COLUMNS,
    RESERVED_NAMES,
    STRING,
    check_identifier,
)

EPOCH_RANGE = (946_684_800, 4_102_444_800)
"""Epoch seconds outside [2000-01-01, 2100-01-01) UTC are bad (a 0, a clock in year 3000, milliseconds)."""
_JSON_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62}){0,7}$")
_SAFE_CONSTANT = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_TEXT_ENVELOPE = tuple(c for c in ENVELOPE_COLUMNS if c != "event_timestamp")
_MONTHS_ENUMERATED = 24
"""Ranges up to this many months list each month (Athena prunes on the year and month domains); longer
ones use lexicographic (year, month, day) bounds."""
_PACKAGED_DIR = Path(__file__).parent / "definitions"


class SourceField(BaseModel):
    """Where a value comes from: a column of the table, or a field of its JSON column."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    column: str | None = None
    json_path: str | None = Field(default=None, alias="json")

    @model_validator(mode="after")
    def _one_place(self) -> SourceField:
        if (self.column is None) == (self.json_path is None):
            raise ValueError("give exactly one of column: or json:")
        if self.column is not None:
            check_identifier(self.column, "source column")
        if self.json_path is not None and not _JSON_PATH.match(self.json_path):
            raise ValueError(f"json field {self.json_path!r}: use letters, digits and '_', nested with '.'")
        return self


class TimestampField(SourceField):
    """`unit`: epoch seconds or milliseconds, or `timestamp` for a column already holding a UTC timestamp."""

    unit: Literal["seconds", "milliseconds", "timestamp"] = "seconds"


class AttributeField(SourceField):
    type: Literal["number", "string"]


class Partitions(BaseModel):
    """Hive partition columns: `year`/`month`/`day` (zero-padded strings) or one `date` (YYYY-MM-DD).

    `slack_days`: an event may sit in a partition up to this many days from its own UTC date (Firehose
    partitions by arrival time), so a range reads that many extra days of partitions on each side.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: str | None = None
    month: str | None = None
    day: str | None = None
    date: str | None = None
    slack_days: int = Field(default=1, ge=0, le=31)

    @model_validator(mode="after")
    def _one_style(self) -> Partitions:
        ymd = [self.year, self.month, self.day]
        if self.date is not None and any(ymd):
            raise ValueError("partitions: give either year, month and day, or date")
        if self.date is None and not all(ymd):
            raise ValueError("partitions: give all of year, month and day (or date)")
        for name in self.columns:
            check_identifier(name, "partition column")
        return self

    @property
    def columns(self) -> list[str]:
        return [self.date] if self.date else [self.year, self.month, self.day]  # type: ignore[list-item]


class SourceMapping(BaseModel):
    """A source mapping file's content. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    format: Literal["hive", "iceberg"] = "hive"
    database: str
    table: str
    json_column: str | None = None
    timestamp: TimestampField
    envelope: dict[str, SourceField]
    constants: dict[str, str] = {}
    attributes: dict[str, AttributeField] = {}
    partitions: Partitions | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SourceMapping:
        for value, what in ((self.name, "mapping"), (self.database, "database"), (self.table, "table")):
            check_identifier(value, what)
        if self.json_column is not None:
            check_identifier(self.json_column, "json_column")
        for target in [*self.envelope, *self.constants]:
            if target not in _TEXT_ENVELOPE:
                raise ValueError(f"{target!r} is not an envelope column ({', '.join(_TEXT_ENVELOPE)})")
        both = sorted(set(self.envelope) & set(self.constants))
        if both:
            raise ValueError(f"{both[0]!r} is both under envelope: and under constants:")
        if "event_id" not in self.envelope:
            raise ValueError("envelope: event_id must name the table's event id column or JSON field")
        uncovered = [c for c in REQUIRED_COLUMNS if c != "event_timestamp" and c not in self.covered]
        if uncovered:
            raise ValueError(f"nothing fills envelope column {uncovered[0]!r}: map it or give a constant")
        for target, value in self.constants.items():
            if not _SAFE_CONSTANT.match(value):
                raise ValueError(f"constant {target}: use up to 64 letters, digits, '_', '.', ':' or '-'")
        for name in self.attributes:
            check_identifier(name, "attribute")
            if name in RESERVED_NAMES or name.startswith("_"):
                raise ValueError(
                    f"attribute {name!r}: envelope names and names starting with '_' are reserved"
                )
        if self.json_column is None and any(f.json_path for f in self.fields()):
            raise ValueError("json: fields need json_column (the column holding the JSON document)")
        if self.timestamp.unit == "timestamp" and self.timestamp.column is None:
            raise ValueError("timestamp: unit timestamp needs column: (a JSON field holds no timestamp type)")
        if self.format == "iceberg":
            if self.partitions is not None:
                raise ValueError("partitions: an Iceberg table's partitions are hidden; leave partitions out")
            if self.timestamp.column is None:
                raise ValueError("timestamp: an Iceberg source needs column: (time ranges prune on it)")
        return self

    @property
    def covered(self) -> set[str]:
        return set(self.envelope) | set(self.constants)

    def fields(self) -> list[SourceField]:
        return [self.timestamp, *self.envelope.values(), *self.attributes.values()]

    def source_columns(self) -> list[str]:
        """Every column of the table the mapping reads, partition columns included."""
        named = [f.column for f in self.fields() if f.column]
        named += [self.json_column] if self.json_column else []
        named += self.partitions.columns if self.partitions else []
        return list(dict.fromkeys(named))  # type: ignore[arg-type]

    def column_types(self) -> dict[str, str]:
        """The mapped relation's columns as the compiler sees them: "double", "string" or "timestamp"."""
        types = {name: STRING for name in _TEXT_ENVELOPE} | {"event_timestamp": TIMESTAMP}
        types |= {name: NUMBER if a.type == "number" else STRING for name, a in self.attributes.items()}
        return types | {"event_date": STRING}

    @property
    def relation(self) -> str:
        return table_name(self.database, self.table)


def parse_source_mapping(document: object, where: str = "source mapping") -> SourceMapping:
    """Check a mapping document (parsed YAML); any problem is a one-line ConfigError naming `where`."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where} must be a YAML mapping with name:, database:, table:, ...")
    try:
        return SourceMapping.model_validate(document)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    except ValidationError as error:
        problem = error.errors()[0]
        location = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown key"
        raise ConfigError(f"{where}: {location + ': ' if location else ''}{message}") from None


def load_source_mapping(name_or_path: str | Path) -> SourceMapping:
    """A packaged mapping by name (`gap`: definitions/gap_source.yaml) or a YAML file by path."""
    text = str(name_or_path)
    packaged = _PACKAGED_DIR / f"{text}_source.yaml"
    path = packaged if packaged.is_file() and "/" not in text else Path(name_or_path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read source mapping {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"source mapping {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_source_mapping(document, f"source mapping {path}")


@dataclass(frozen=True)
class SourceQuery:
    """Athena SQL with `?` placeholders and its parameter values in order."""

    sql: str
    params: tuple[str, ...]


# ---- partitions --------------------------------------------------------------------------------------

Days = tuple[date | None, date | None]
"""First and last partition day, inclusive (None: unbounded)."""


def partition_days(mapping: SourceMapping, start: datetime | None, end: datetime | None) -> Days:
    """First and last partition day holding events of [start, end) (None: unbounded), slack included."""
    slack = timedelta(days=mapping.partitions.slack_days if mapping.partitions else 0)
    first = (_utc(start) - slack).date() if start is not None else None
    last = (_utc(end) - timedelta(microseconds=1) + slack).date() if end is not None else None
    return first, last


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _bound(columns: Sequence[str], values: Sequence[str], op: str) -> tuple[str, list[str]]:
    """(columns) op (values) compared lexicographically, as nested ORs Athena's planner can read."""
    head, *rest = columns
    if not rest:
        return f"{quote(head)} {op}= ?", [values[0]]
    inner, params = _bound(rest, values[1:], op)
    return f"({quote(head)} {op} ? OR ({quote(head)} = ? AND {inner}))", [values[0], values[0], *params]


def _months(first: date, last: date) -> list[tuple[int, int]]:
    months, (year, month) = [], (first.year, first.month)
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def partition_predicate(
    mapping: SourceMapping, first: date | None, last: date | None
) -> tuple[str | None, list[str]]:
    """The WHERE condition selecting partitions first..last (inclusive) and its parameters."""
    if mapping.format == "iceberg":
        return _timestamp_predicate(mapping, first, last)
    parts = mapping.partitions
    if parts is None or (first is None and last is None):
        return None, []
    if parts.date is not None:
        conditions = [(f"{quote(parts.date)} >= ?", d.isoformat()) for d in [first] if d]
        conditions += [(f"{quote(parts.date)} <= ?", d.isoformat()) for d in [last] if d]
        return " AND ".join(c for c, _ in conditions), [v for _, v in conditions]
    year, month, day = (quote(c) for c in parts.columns)
    if first is not None and last is not None and len(_months(first, last)) <= _MONTHS_ENUMERATED:
        branches, params = [], []
        for y, m in _months(first, last):
            branch, values = [f"{year} = ?", f"{month} = ?"], [f"{y:04d}", f"{m:02d}"]
            if (y, m) == (first.year, first.month) and first.day > 1:
                branch.append(f"{day} >= ?")
                values.append(f"{first.day:02d}")
            if (y, m) == (last.year, last.month):
                branch.append(f"{day} <= ?")
                values.append(f"{last.day:02d}")
            branches.append("(" + " AND ".join(branch) + ")")
            params += values
        return "(" + " OR ".join(branches) + ")", params
    conditions, params = [], []
    for moment, op in ((first, ">"), (last, "<")):
        if moment is not None:
            values = [f"{moment.year:04d}", f"{moment.month:02d}", f"{moment.day:02d}"]
            condition, values = _bound(parts.columns, values, op)
            conditions.append(condition)
            params += values
    return " AND ".join(conditions), params


def _timestamp_predicate(
    mapping: SourceMapping, first: date | None, last: date | None
) -> tuple[str | None, list[str]]:
    """Days first..last (inclusive) as bounds on the timestamp column: [first 00:00, last + 1 day 00:00)."""
    column, unit = quote(mapping.timestamp.column), mapping.timestamp.unit  # type: ignore[arg-type]
    conditions, params = [], []
    for day, op in ((first, ">="), (last + timedelta(days=1) if last else None, "<")):
        if day is None:
            continue
        moment = datetime.combine(day, datetime.min.time(), UTC)
        if unit == "timestamp":
            conditions.append(f"{column} {op} CAST(? AS TIMESTAMP)")
            params.append(moment.strftime("%Y-%m-%d %H:%M:%S"))
        else:
            conditions.append(f"{column} {op} CAST(? AS BIGINT)")
            seconds = int(moment.timestamp())
            params.append(str(seconds * 1000 if unit == "milliseconds" else seconds))
    return (" AND ".join(conditions) or None), params


# ---- the mapped SELECT -------------------------------------------------------------------------------


def raw_value(mapping: SourceMapping, field: SourceField) -> str:
    """The SQL reading one field's raw value (a JSON field is read as text)."""
    if field.column is not None:
        return quote(field.column)
    path = literal(f"$.{field.json_path}")
    return f"json_extract_scalar({quote(mapping.json_column)}, {path})"  # type: ignore[arg-type]


def _text(mapping: SourceMapping, field: SourceField) -> str:
    return f"NULLIF(trim(CAST({raw_value(mapping, field)} AS VARCHAR)), '')"


def _extracted(mapping: SourceMapping, where: str | None) -> str:
    """Level 1: every value read from the raw row, still untyped where it can fail."""
    ts = mapping.timestamp
    seconds = f"TRY_CAST({raw_value(mapping, ts)} AS DOUBLE)"
    seconds = f"{seconds} / 1000.0" if ts.unit == "milliseconds" else seconds
    if ts.unit == "timestamp":
        seconds = f"to_unixtime(CAST({raw_value(mapping, ts)} AS TIMESTAMP))"
    columns = [f'{raw_value(mapping, ts)} IS NULL AS "_ts_missing"', f'{seconds} AS "_seconds"']
    if mapping.json_column is not None:
        document = quote(mapping.json_column)
        columns += [
            f'{document} IS NULL AS "_json_missing"',
            f'try(json_parse({document})) IS NULL AS "_json_bad"',
        ]
    for name in _TEXT_ENVELOPE:
        if name in mapping.envelope:
            value = _text(mapping, mapping.envelope[name])
        elif name in mapping.constants:
            value = literal(mapping.constants[name])
        else:
            value = "CAST(NULL AS VARCHAR)"
        columns.append(f"{value} AS {quote(name)}")
    for name, attribute in sorted(mapping.attributes.items()):
        kind = "DOUBLE" if attribute.type == "number" else "VARCHAR"
        cast = "TRY_CAST" if attribute.type == "number" else "CAST"
        columns.append(f"{cast}({raw_value(mapping, attribute)} AS {kind}) AS {quote(name)}")
    columns.append(f'{_partition_label(mapping)} AS "_partition"')
    return (
        "SELECT\n      "
        + ",\n      ".join(columns)
        + f"\n    FROM {mapping.relation}"
        + (f"\n    WHERE {where}" if where else "")
    )


def _partition_label(mapping: SourceMapping) -> str:
    parts = mapping.partitions
    if parts is None:  # also Iceberg: its day partition is derived from the timestamp, never misplaced
        return "CAST(NULL AS VARCHAR)"
    return "concat(" + ", '-', ".join(f"CAST({quote(c)} AS VARCHAR)" for c in parts.columns) + ")"


def _checked(mapping: SourceMapping, where: str | None) -> str:
    """Level 2: the typed timestamp and the first rule each row breaks (`_problem`, NULL when none)."""
    low, high = EPOCH_RANGE
    rules = [
        ('"_ts_missing"', "missing event_timestamp"),
        ('"_seconds" IS NULL', "unparseable event_timestamp"),
        (f'"_seconds" < {low} OR "_seconds" >= {high}', "event_timestamp outside 2000-2100"),
    ]
    if mapping.json_column is not None:
        rules += [('"_json_missing"', f"missing {mapping.json_column}"),
                  ('"_json_bad"', f"{mapping.json_column} is not JSON")]  # fmt: skip
    rules += [(f"{quote(c)} IS NULL", f"missing {c}") for c in REQUIRED_COLUMNS if c != "event_timestamp"]
    problem = "CASE " + " ".join(f"WHEN {c} THEN {literal(r)}" for c, r in rules) + " END"
    stamp = (
        f'CASE WHEN "_seconds" >= {low} AND "_seconds" < {high} '
        'THEN CAST(from_unixtime("_seconds") AS TIMESTAMP) END'
    )
    return (
        f'SELECT *, {problem} AS "_problem", {stamp} AS "_timestamp"\n'
        f"  FROM (\n    {_extracted(mapping, where)}\n  ) AS extracted"
    )


def envelope_columns(mapping: SourceMapping) -> list[str]:
    """The mapped relation's columns, in order."""
    return [*ENVELOPE_COLUMNS, *sorted(mapping.attributes), "event_date"]


def mapped_select(
    mapping: SourceMapping,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    days: Days | None = None,
) -> SourceQuery:
    """Envelope events (with `event_date`) from the partitions holding [start, end) (or the partition
    `days`); failing rows left out. The bounds only prune partitions: rows of the slack days outside
    [start, end) are returned too.
    """
    where, params = partition_predicate(mapping, *(days or partition_days(mapping, start, end)))
    select = []
    for name in envelope_columns(mapping):
        if name == "event_timestamp":
            select.append('"_timestamp" AS "event_timestamp"')
        elif name == "event_date":
            select.append('date_format("_timestamp", \'%Y-%m-%d\') AS "event_date"')
        else:
            select.append(quote(name))
    sql = (
        "SELECT " + ", ".join(select) + f"\nFROM (\n  {_checked(mapping, where)}\n) AS checked\n"
        'WHERE "_problem" IS NULL'
    )
    return SourceQuery(sql, tuple(params))


def problems_select(
    mapping: SourceMapping,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    days: Days | None = None,
) -> SourceQuery:
    """Row counts of the partitions holding [start, end) (or the partition `days`) by problem (NULL: the
    row maps), partition and event date: `problem`, `partition`, `event_date`, `rows`."""
    where, params = partition_predicate(mapping, *(days or partition_days(mapping, start, end)))
    sql = (
        'SELECT "_problem" AS "problem", "_partition" AS "partition", '
        'date_format("_timestamp", \'%Y-%m-%d\') AS "event_date", count(*) AS "rows"\n'
        f"FROM (\n  {_checked(mapping, where)}\n) AS checked\nGROUP BY 1, 2, 3"
    )
    return SourceQuery(sql, tuple(params))


@dataclass(frozen=True)
class MappingFailures:
    """How many rows of a range were read and how many failed the mapping, by reason."""

    rows: int
    reasons: dict[str, int]

    @property
    def failed(self) -> int:
        return sum(self.reasons.values())

    @classmethod
    def from_problems(cls, problems: pd.DataFrame) -> MappingFailures:
        """From a `problems_select` result."""
        counts = problems.groupby(problems["problem"].fillna(""), sort=True)["rows"].sum()
        reasons = {str(k): int(v) for k, v in counts.items() if k}
        return cls(int(problems["rows"].sum()), dict(sorted(reasons.items(), key=lambda kv: -kv[1])))

    def describe(self) -> str:
        listed = ", ".join(f"{reason}: {count:,}" for reason, count in self.reasons.items())
        return f"{self.failed:,} of {self.rows:,} rows fail the mapping" + (f" ({listed})" if listed else "")
