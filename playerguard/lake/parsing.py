"""Vectorised typing of raw columns: text, numbers and UTC timestamps, with a mask of values that fail.

Sources hand over text (CSV, JSON lines with mixed types) or typed columns (Parquet, JSON, pandas). Each
function takes either, casts the whole column with Arrow in one step when it can, and only when that fails
works out which values are bad (by shape, then by bisection), so one bad value among millions costs a few
extra casts rather than a Python loop.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playerguard.errors import DataError

# Attribute kinds, as the lake's SQL names them (re-exported by envelope).
NUMBER = "double"
STRING = "string"
UTC_MICROS = pa.timestamp("us", tz="UTC")
# Spellings of "no value" that exports write into number columns.
_NULL_WORDS = ["", "na", "n/a", "nan", "null", "none"]
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_LONG_INTEGER = r"^[+-]?\d{16,}$"  # more digits than a double holds: an identifier, not a quantity
_EPOCH = r"^[+-]?\d+(\.\d+)?$"
_ZONED = r"[T ]\d\d(:\d\d)*(\.\d+)?([zZ]|[+-]\d\d(:?\d\d)?)$"  # a zone after a time of day
_ISO = r"^\d{4}-\d\d-\d\d([T ]\d\d(:\d\d(:\d\d(\.\d+)?)?)?)?([zZ]|[+-]\d\d(:?\d\d)?)?$"
# Epoch numbers at or above this are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973).
_MILLISECONDS_FROM = 1e11
# Plausible instants for an epoch number: 2000-01-01 .. 2100-01-01 (rules out e.g. 20240301 read as seconds).
_EPOCH_RANGE_US = (946_684_800_000_000, 4_102_444_800_000_000)
# A new text column is a number attribute when at most this share of its values are not numbers.
STRAY_SHARE = 0.01


def single(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (zero-copy when there is a single chunk)."""
    if isinstance(values, pa.ChunkedArray):
        if values.num_chunks == 1:
            return values.chunk(0)
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values


def _mask(values: pa.Array) -> np.ndarray:
    """A boolean array as numpy, nulls as False."""
    return np.asarray(pc.fill_null(values, False), dtype=bool)


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _decoded(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    values = single(values)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if pa.types.is_large_string(values.type):
        values = values.cast(pa.string())
    return values


def to_text(values: pa.Array | pa.ChunkedArray, name: str = "column") -> pa.Array:
    """Strings of any scalar column (numbers as their shortest form, booleans as true/false).

    Nested values (JSON objects and lists, Parquet structs) become JSON text.
    """
    values = _decoded(values)
    kind = values.type
    if _is_text(kind):
        return values
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_nested(kind):
        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in values.to_pylist()], pa.string()
        )
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        try:
            return values.cast(pa.string())
        except pa.ArrowInvalid:
            raise DataError(f"column {name!r} holds binary data that is not UTF-8 text") from None
    return values.cast(pa.string())


def try_cast(values: pa.Array, target: pa.DataType) -> pa.Array | None:
    """`values` cast to `target`, or None if any value does not cast.

    A failing Arrow cast still walks the whole column, so a sample goes first: most columns that do not
    cast give themselves away in their first rows.
    """
    try:
        values.slice(0, 256).cast(target)
        return values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _cast_each(values: pa.Array, target: pa.DataType, piece: int = 65_536) -> pa.Array:
    """Cast `values`, with null wherever a value does not cast (found by bisecting the pieces that fail)."""
    if len(values) > piece:
        return pa.concat_arrays(
            [_cast_each(values.slice(start, piece), target, piece) for start in range(0, len(values), piece)]
        )
    cast = try_cast(values, target)
    if cast is not None:
        return cast
    if len(values) == 1:
        return pa.nulls(1, target)
    half = len(values) // 2
    return pa.concat_arrays(
        [_cast_each(values.slice(0, half), target), _cast_each(values.slice(half), target)]
    )


def _only(values: pa.Array, keep: np.ndarray) -> pa.Array:
    """`values` with null outside `keep` (same length, so positions stay aligned)."""
    return pc.if_else(pa.array(keep), values, pa.scalar(None, values.type))


def _clean_text(values: pa.Array) -> pa.Array:
    """Trimmed text, with the usual spellings of "no value" as null."""
    trimmed = pc.utf8_trim_whitespace(values)
    blank = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(_NULL_WORDS))
    return pc.if_else(blank, pa.scalar(None, pa.string()), trimmed)


def parse_numbers(values: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Doubles from `values`, and a mask of the values that are present but not finite numbers."""
    values = _decoded(values)
    kind = values.type
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.float64()), np.zeros(len(values), dtype=bool)
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind):  # never NaN or infinite
        return values.cast(pa.float64(), safe=False), np.zeros(len(values), dtype=bool)
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = values.cast(pa.float64(), safe=False)
        if pc.all(pc.is_finite(numbers)).as_py() is not False:  # the usual case: nothing to null
            return numbers, np.zeros(len(values), dtype=bool)
        numbers = pc.if_else(pc.is_nan(numbers), pa.scalar(None, pa.float64()), numbers)
        bad = _mask(pc.is_inf(numbers))
        return _only(numbers, ~bad), bad
    if not _is_text(kind):
        return pa.nulls(len(values), pa.float64()), np.asarray(values.is_valid())
    numbers = try_cast(values, pa.float64())  # the usual case: every value is a plain number
    if numbers is not None and pc.all(pc.is_finite(numbers)).as_py() is not False:
        return numbers, np.zeros(len(values), dtype=bool)
    text = values
    if numbers is None:
        text = _clean_text(values)
        looks_numeric = _mask(pc.match_substring_regex(text, _NUMBER))
        numbers = _cast_each(_only(text, looks_numeric), pa.float64())
    numbers = pc.if_else(pc.is_nan(numbers), pa.scalar(None, pa.float64()), numbers)
    bad = (np.asarray(text.is_valid()) & ~np.asarray(numbers.is_valid())) | _mask(pc.is_inf(numbers))
    return _only(numbers, ~bad), bad


def attribute_kind(values: pa.Array | pa.ChunkedArray) -> str | None:
    """NUMBER or STRING for a column the lake does not know yet; None when it has no value to judge by.

    Numeric columns are numbers (unless their integers outgrow a double: then they are identifiers). A text
    column is a number when all but at most STRAY_SHARE of its values are numbers; the strays are then
    rejected rows. Override the guess with the mapping's `types:`.
    """
    values = _decoded(values)
    kind = values.type
    if values.null_count == len(values):
        return None
    if pa.types.is_integer(kind):
        biggest = pc.max(pc.abs(values.cast(pa.int64(), safe=False))).as_py() or 0
        return STRING if biggest > 2**53 else NUMBER
    if pa.types.is_boolean(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return NUMBER
    if not _is_text(kind):
        return STRING
    if (pc.max(pc.utf8_length(values)).as_py() or 0) < 16 and try_cast(values, pa.float64()) is not None:
        return NUMBER  # the usual case: a column of plain numbers
    if _number_share(values.slice(0, 10_000)) < 0.5:
        return STRING  # clearly text: spare the whole column the careful look
    text = _clean_text(values)
    present = len(text) - text.null_count
    if present == 0:
        return None
    _, bad = parse_numbers(text)
    bad |= _mask(pc.match_substring_regex(text, _LONG_INTEGER))
    return NUMBER if bad.sum() <= STRAY_SHARE * present else STRING


def _number_share(values: pa.Array) -> float:
    text = _clean_text(values)
    present = len(text) - text.null_count
    return 1.0 if present == 0 else 1.0 - parse_numbers(text)[1].sum() / present


def _epoch(numbers: pa.Array) -> pa.Array:
    """UTC timestamps from epoch seconds or, for magnitudes of 1e11 and more, milliseconds."""
    seconds = np.asarray(numbers.cast(pa.float64(), safe=False).fill_null(np.nan), dtype=np.float64)
    scale = np.where(np.abs(seconds) >= _MILLISECONDS_FROM, 1e3, 1e6)
    micros = np.round(seconds * scale)
    plausible = (micros >= _EPOCH_RANGE_US[0]) & (micros < _EPOCH_RANGE_US[1])
    result = pa.array(np.where(plausible, micros, 0).astype(np.int64), mask=~plausible)
    return result.cast(UTC_MICROS)


def _utc(stamps: pa.Array) -> pa.Array:
    """Microsecond UTC timestamps; values without a zone are taken to be UTC already."""
    if stamps.type.tz is None:
        stamps = stamps.cast(pa.timestamp(stamps.type.unit), safe=False)
        return stamps.cast(pa.timestamp(stamps.type.unit, tz="UTC")).cast(UTC_MICROS, safe=False)
    return stamps.cast(UTC_MICROS, safe=False)


def _iso(text: pa.Array) -> pa.Array:
    """ISO 8601 instants: zoned ones converted to UTC, the rest taken as UTC; null where not ISO."""
    for target in (UTC_MICROS, pa.timestamp("us")):
        stamps = try_cast(text, target)
        if stamps is not None:
            return _utc(stamps)
    text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")  # sub-microsecond digits
    text = _only(text, _mask(pc.match_substring_regex(text, f"{_ISO}|{_EPOCH}")))  # the rest cannot parse
    zoned = _mask(pc.match_substring_regex(text, _ZONED))
    epoch = _mask(pc.match_substring_regex(text, _EPOCH))
    with_zone = _cast_each(_only(text, zoned), UTC_MICROS) if zoned.any() else pa.nulls(len(text), UTC_MICROS)
    plain = ~zoned & ~epoch
    without_zone = _utc(_cast_each(_only(text, plain), pa.timestamp("us"))) if plain.any() else with_zone
    stamps = pc.if_else(pa.array(zoned), with_zone, without_zone)
    if epoch.any():
        stamps = pc.if_else(pa.array(epoch), _epoch(_only(text, epoch).cast(pa.float64())), stamps)
    return stamps


def parse_timestamps(
    values: pa.Array | pa.ChunkedArray, timestamp_format: str | None = None
) -> tuple[pa.Array, np.ndarray]:
    """UTC microsecond timestamps, and a mask of values that are present but not timestamps.

    Text is ISO 8601 (with or without a zone; without one it is UTC) or epoch seconds / milliseconds,
    unless `timestamp_format` (strftime codes, e.g. "%Y%m%d") says otherwise. Numbers are epoch
    seconds / milliseconds; dates are midnight UTC.
    """
    values = _decoded(values)
    kind = values.type
    if pa.types.is_null(kind):
        return pa.nulls(len(values), UTC_MICROS), np.zeros(len(values), dtype=bool)
    if pa.types.is_timestamp(kind):
        stamps = _utc(values)
    elif pa.types.is_date(kind):
        stamps = _utc(values.cast(pa.timestamp("us")))
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        stamps = _epoch(values)
    elif _is_text(kind):
        values = pc.ascii_trim_whitespace(values)  # any other character fails to parse anyway
        values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        if timestamp_format:
            stamps = _utc(pc.strptime(values, format=timestamp_format, unit="us", error_is_null=True))
        else:
            stamps = _iso(values)
    else:
        stamps = pa.nulls(len(values), UTC_MICROS)
    bad = np.asarray(values.is_valid()) & ~np.asarray(stamps.is_valid())
    return stamps, bad
