"""The event envelope: the typed columns every event carries, and the checks that keep the lake clean.

Game attributes of any name sit beside the envelope as their own typed columns: numbers as DOUBLE,
everything else as VARCHAR. `conform` types a batch of rows with Arrow compute (no per-row Python on the
happy path) and returns the rows that break a rule with the reason, never dropping one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from playerguard.errors import ConfigError, DataError
from playerguard.lake.event_ids import derive_event_id
from playerguard.lake.parsing import (
    NUMBER,
    STRING,
    UTC_MICROS,
    attribute_kind,
    parse_numbers,
    parse_timestamps,
    to_text,
)

__all__ = [
    "ENVELOPE_COLUMNS",
    "ENVELOPE_DEFAULTS",
    "ENVELOPE_SCHEMA",
    "NULLABLE_COLUMNS",
    "NUMBER",
    "PARTITION_COLUMN",
    "REJECTED_ROWS_SCHEMA",
    "REQUIRED_COLUMNS",
    "RESERVED_NAMES",
    "STRING",
    "Conformed",
    "TimeRange",
    "arrow_type",
    "attribute_columns",
    "check_identifier",
    "conform",
    "conformed_table",
    "derive_event_id",
    "lake_schema",
    "to_arrow",
]

REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "event_timestamp",
    "player_id",
    "game_id",
    "platform",
)
NULLABLE_COLUMNS: tuple[str, ...] = ("session_id", "app_version")
ENVELOPE_DEFAULTS: dict[str, str] = {"game_id": "default", "platform": "unknown"}
"""Required envelope columns a source may leave out, and the value every row then gets."""
ENVELOPE_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + NULLABLE_COLUMNS
PARTITION_COLUMN = "event_date"
RESERVED_NAMES = frozenset(ENVELOPE_COLUMNS) | {PARTITION_COLUMN}
_TEXT_COLUMNS = ("event_type", "player_id", "game_id", "platform")

ENVELOPE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("event_timestamp", pa.timestamp("us", tz="UTC")),
        ("player_id", pa.string()),
        ("game_id", pa.string()),
        ("platform", pa.string()),
        ("session_id", pa.string()),
        ("app_version", pa.string()),
    ]
)
REJECTED_ROWS_SCHEMA = pa.schema([("row_number", pa.int64()), ("row", pa.string()), ("reason", pa.string())])

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_identifier(name: str, what: str = "column") -> str:
    """Return `name` if it is a safe SQL identifier (lower snake case), else raise ConfigError."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ConfigError(
            f"invalid {what} name {name!r}: use lower-case letters, digits and underscores, "
            "starting with a letter or underscore (at most 63 characters)"
        )
    return name


def attribute_columns(columns: list[str] | pd.Index) -> list[str]:
    """The game-specific attribute columns among `columns`."""
    return [c for c in columns if c not in RESERVED_NAMES]


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of an attribute kind (NUMBER or STRING)."""
    return pa.float64() if kind == NUMBER else pa.string()


def lake_schema(attribute_types: dict[str, str]) -> pa.Schema:
    """Envelope, attributes in name order, then the partition column: the layout of a conformed table."""
    attributes = [pa.field(name, arrow_type(attribute_types[name])) for name in sorted(attribute_types)]
    return pa.schema([*ENVELOPE_SCHEMA, *attributes, pa.field(PARTITION_COLUMN, pa.string())])


@dataclass(frozen=True)
class Conformed:
    """The outcome of conforming a batch of rows to the envelope.

    `table` holds the valid rows in `lake_schema` layout; `derived_ids` marks the rows whose `event_id` was
    derived from their content (the lake numbers repeats of identical rows). `rejected_rows` holds the
    others: 1-based `row_number` in the batch's source, the raw `row` as JSON, and the `reason`.
    """

    table: pa.Table
    rejected_rows: pa.Table
    attribute_types: dict[str, str]
    derived_ids: np.ndarray = field(repr=False)

    @cached_property
    def valid(self) -> pd.DataFrame:
        """The valid rows as a DataFrame (timestamps tz-aware UTC)."""
        return self.table.to_pandas()

    @cached_property
    def rejected(self) -> pd.DataFrame:
        """The rejected rows as a DataFrame: `row` (JSON) and `reason`."""
        return self.rejected_rows.select(["row", "reason"]).to_pandas()


def _as_table(rows: pd.DataFrame | pa.Table) -> pa.Table:
    """An Arrow table of `rows`; a pandas column of mixed Python types becomes text, to be typed later."""
    if isinstance(rows, pa.Table):
        return rows
    arrays = {}
    for name in rows.columns:
        column = rows[name]
        try:
            arrays[str(name)] = pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed types, or an int beyond 64 bits
            arrays[str(name)] = pa.array([_text_of(v) for v in column], pa.string())
    return pa.table(arrays)


def _text_of(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


class _Reasons:
    """The first rule each row breaks (earlier checks win), kept as small integer codes."""

    def __init__(self, rows: int) -> None:
        self.code = np.full(rows, -1, dtype=np.int32)
        self.texts: list[str] = []

    def add(self, bad: np.ndarray, reason: str) -> None:
        fresh = bad & (self.code < 0)
        if fresh.any():
            self.code[fresh] = len(self.texts)
            self.texts.append(reason)

    @property
    def valid(self) -> np.ndarray:
        return self.code < 0


def _missing(text: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(pc.equal(text, ""), True))


def _blank_to_null(text: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


@dataclass(frozen=True)
class TimeRange:
    """The event timestamps the lake accepts: from `earliest` to `max_ahead` past the clock (clock skew).

    A timestamp outside it (year 0, a seconds/milliseconds mix-up) would make a partition no tool can read.
    """

    earliest: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    max_ahead: timedelta = timedelta(days=1)

    def outside(self, stamps: pa.Array, now: datetime | None = None) -> tuple[np.ndarray, str]:
        """A mask of the timestamps outside the range, and the reason a rejected row records."""
        latest = (now or datetime.now(UTC)) + self.max_ahead
        low, high = pa.scalar(self.earliest, UTC_MICROS), pa.scalar(latest, UTC_MICROS)
        mask = pc.or_(pc.less(stamps, low), pc.greater(stamps, high))
        reason = (
            f"event_timestamp out of range: before {self.earliest:%Y-%m-%d} or more than "
            f"{self.max_ahead.total_seconds() / 3600:g} h ahead of the clock"
        )
        return np.asarray(pc.fill_null(mask, False), dtype=bool), reason


def _row_numbers(
    positions: np.ndarray, first_row: int, row_numbers: Callable[[], np.ndarray | None] | None
) -> np.ndarray:
    numbers = row_numbers() if row_numbers is not None else None
    return numbers[positions] if numbers is not None else positions + first_row + 1


def _rejected_rows(
    raw: pa.Table,
    reasons: _Reasons,
    first_row: int,
    row_numbers: Callable[[], np.ndarray | None] | None = None,
) -> pa.Table:
    positions = np.flatnonzero(~reasons.valid)
    if len(positions) == 0:
        return REJECTED_ROWS_SCHEMA.empty_table()
    taken = raw.take(pa.array(positions))
    for i, column in enumerate(taken.columns):  # a year-0 timestamp has no Python datetime: keep it as text
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            taken = taken.set_column(i, taken.field(i).name, pc.cast(column, pa.string()))
    records = taken.to_pylist()
    return pa.table(
        {
            "row_number": pa.array(_row_numbers(positions, first_row, row_numbers), pa.int64()),
            "row": pa.array([json.dumps(r, default=str, ensure_ascii=False) for r in records], pa.string()),
            "reason": pa.array([reasons.texts[c] for c in reasons.code[positions]], pa.string()),
        },
        schema=REJECTED_ROWS_SCHEMA,
    )


def conform(
    rows: pd.DataFrame | pa.Table,
    known_types: dict[str, str] | None = None,
    source: str = "",
    *,
    timestamp_format: str | None = None,
    raw: pa.Table | None = None,
    first_row: int = 0,
    time_range: TimeRange | None = None,
    row_numbers: Callable[[], np.ndarray | None] | None = None,
) -> Conformed:
    """Type the envelope and attributes of `rows`, splitting off the rows that break a rule.

    `rows` holds envelope columns and attribute columns under their lake names. An attribute the lake
    already knows (`known_types`) keeps its type; a new one is inferred (`parsing.attribute_kind`); a new
    column with no value in this batch is left out, so a later batch decides its type. `event_id` is derived
    from the row's content where missing. `raw` (default `rows`) is what a rejected row records; `source`
    names the input in errors; `first_row` offsets row numbers when a file arrives in batches, unless
    `row_numbers` gives the source line of each row (asked only when a row is rejected). A timestamp outside
    `time_range` (default: 1970 to a day from now) rejects its row.
    """
    known_types = dict(known_types or {})
    table = _as_table(rows)
    raw = table if raw is None else raw
    where = f" in {source}" if source else ""
    for name in REQUIRED_COLUMNS[1:]:
        if name in ENVELOPE_DEFAULTS and name not in table.column_names:
            table = table.append_column(name, pa.repeat(pa.scalar(ENVELOPE_DEFAULTS[name]), table.num_rows))
        elif name not in table.column_names:
            raise ConfigError(f"missing envelope column {name!r}{where}")
    reasons = _Reasons(table.num_rows)
    columns: dict[str, pa.Array] = {}

    for name in ("player_id", "event_type", "game_id", "platform"):
        text = pc.utf8_trim_whitespace(to_text(table.column(name), name))
        reasons.add(_missing(text), f"missing {name}")
        columns[name] = text
    stamps, unparseable = parse_timestamps(table.column("event_timestamp"), timestamp_format)
    reasons.add(np.asarray(pc.is_null(stamps)) & ~unparseable, "missing event_timestamp")
    reasons.add(unparseable, "unparseable event_timestamp")
    reasons.add(*(time_range or TimeRange()).outside(stamps))
    columns["event_timestamp"] = stamps
    for name in ("event_id", *NULLABLE_COLUMNS):
        if name in table.column_names:
            columns[name] = _blank_to_null(pc.utf8_trim_whitespace(to_text(table.column(name), name)))
        else:
            columns[name] = pa.nulls(table.num_rows, pa.string())

    types: dict[str, str] = {}
    for name in attribute_columns(table.column_names):
        check_identifier(name, "attribute")
        values = table.column(name)
        kind = known_types.get(name) or attribute_kind(values)
        if kind is None:
            continue
        types[name] = kind
        if kind == NUMBER:
            numbers, not_number = parse_numbers(values)
            reasons.add(not_number, f"attribute {name!r}: expected a number")
            columns[name] = numbers
        else:
            columns[name] = to_text(values, name)

    schema = lake_schema(types)
    valid = pa.table({f.name: columns[f.name].cast(f.type) for f in schema if f.name != PARTITION_COLUMN})
    if not reasons.valid.all():
        valid = valid.filter(pa.array(reasons.valid))
    derived = np.asarray(pc.is_null(valid.column("event_id")))
    if derived.any():
        ids = derive_event_id(valid.drop_columns(["event_id"]))
        valid = valid.set_column(
            0, "event_id", ids if derived.all() else pc.coalesce(valid.column("event_id"), ids)
        )
    valid = valid.append_column(PARTITION_COLUMN, _event_dates(valid.column("event_timestamp")))
    return Conformed(valid, _rejected_rows(raw, reasons, first_row, row_numbers), types, derived)


def conformed_table(table: pa.Table) -> Conformed:
    """Check a table already in lake layout (envelope, attributes, `event_date`, ids on every row)."""
    missing = [c for c in (*REQUIRED_COLUMNS, PARTITION_COLUMN) if c not in table.column_names]
    if missing:
        raise DataError(f"the table lacks envelope column(s) {', '.join(missing)}")
    types = {}
    for name in attribute_columns(table.column_names):
        check_identifier(name, "attribute")
        kind = table.schema.field(name).type
        if pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            types[name] = NUMBER
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind):
            types[name] = STRING
        else:
            raise DataError(f"attribute {name!r} has type {kind}; attributes are numbers or strings")
    for name in REQUIRED_COLUMNS + (PARTITION_COLUMN,):
        if table.column(name).null_count:
            raise DataError(f"the table has rows without {name}; conform raw rows with `conform` instead")
    schema = lake_schema(types)
    table = table.select(schema.names).cast(schema)
    return Conformed(table, REJECTED_ROWS_SCHEMA.empty_table(), types, np.zeros(table.num_rows, dtype=bool))


def _event_dates(stamps: pa.ChunkedArray) -> pa.Array:
    """`YYYY-MM-DD` of each UTC timestamp, formatting each distinct day once."""
    micros = np.asarray(pc.cast(stamps, pa.int64()).combine_chunks(), dtype=np.int64)
    if len(micros) == 0:
        return pa.array([], pa.string())
    days = micros // 86_400_000_000
    first, last = int(days.min()), int(days.max())
    if last - first < 100_000:  # label every day of the span, then look each row's day up
        index, distinct = days - first, np.arange(first, last + 1)
    else:
        distinct, index = np.unique(days, return_inverse=True)
    labels = pc.cast(pc.cast(pa.array(distinct.astype(np.int32), pa.int32()), pa.date32()), pa.string())
    return labels.take(pa.array(index))


def to_arrow(valid: pd.DataFrame, attribute_types: dict[str, str]) -> pa.Table:
    """An Arrow table in `lake_schema` layout from a DataFrame of typed rows (partition column included)."""
    schema = lake_schema({name: attribute_types[name] for name in attribute_columns(list(valid.columns))})
    arrays = {}
    for f in schema:
        column = valid[f.name]
        if f.type == pa.string():
            arrays[f.name] = pa.array(column.astype(object).where(column.notna(), None), pa.string())
        elif f.type == pa.float64():
            arrays[f.name] = pa.array(np.asarray(column, dtype="float64"), pa.float64())
        else:
            arrays[f.name] = pa.array(column, f.type)
    return pa.table(arrays, schema=schema)
