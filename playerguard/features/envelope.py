"""The event envelope: the typed columns every event carries, and the checks that keep the lake clean.

Game attributes of any name sit beside the envelope as their own typed columns: numbers as DOUBLE,
everything else as VARCHAR. Rows that break a rule are returned with the reason, never dropped.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from playerguard.errors import ConfigError

REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_type",
    "event_timestamp",
    "player_id",
    "game_id",
    "platform",
)
NULLABLE_COLUMNS: tuple[str, ...] = ("session_id", "app_version")
ENVELOPE_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + NULLABLE_COLUMNS
PARTITION_COLUMN = "event_date"
RESERVED_NAMES = frozenset(ENVELOPE_COLUMNS) | {PARTITION_COLUMN}

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

NUMBER = "double"
STRING = "string"
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


def derive_event_id(frame: pd.DataFrame, source: str) -> pd.Series:
    """A deterministic id per row from its source and content, so re-ingesting a file adds nothing."""
    canonical = frame.astype("string").fillna("\x00")
    joined = canonical.apply(lambda col: col.name + "=" + col).agg("\x1f".join, axis=1)
    return (source + "\x1e" + joined).map(lambda text: hashlib.sha1(text.encode()).hexdigest()[:32])


@dataclass(frozen=True)
class Conformed:
    """The outcome of conforming a batch of rows to the envelope."""

    valid: pd.DataFrame
    rejected: pd.DataFrame
    attribute_types: dict[str, str]


def _reject(rejected: list[pd.DataFrame], raw: pd.DataFrame, mask: pd.Series, reason: str) -> None:
    if mask.any():
        rows = raw.loc[mask]
        rejected.append(
            pd.DataFrame(
                {
                    "row": [json.dumps(r, default=str) for r in rows.to_dict(orient="records")],
                    "reason": reason,
                },
                index=rows.index,
            )
        )


def _parse_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers from `values`, and a mask of the non-null values that are not numbers."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64"), pd.Series(False, index=values.index)
    parsed = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = parsed.isna() & values.notna() & (values.astype("string").str.strip() != "")
    return parsed, bad


def infer_attribute_type(values: pd.Series) -> str:
    """NUMBER when the column is numeric (or every non-empty value parses as one), else STRING."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return NUMBER
    non_null = values.dropna()
    if len(non_null) == 0:
        return STRING
    _, bad = _parse_numbers(non_null)
    return STRING if bad.any() else NUMBER


def conform(
    frame: pd.DataFrame,
    known_types: dict[str, str] | None = None,
    source: str = "",
) -> Conformed:
    """Type the envelope and attributes of `frame`, splitting off rows that break a rule.

    `frame` holds envelope columns (event_timestamp already parsed to UTC, NaT where it failed) and
    attribute columns. An attribute the lake already knows keeps its type; a new one is inferred.
    `event_id` is derived from the row when missing.
    """
    known_types = dict(known_types or {})
    raw = frame.reset_index(drop=True)
    work = raw.copy()
    rejected: list[pd.DataFrame] = []
    bad = pd.Series(False, index=work.index)

    for column in ("player_id", "event_type", "game_id", "platform"):
        if column not in work:
            raise ConfigError(f"missing envelope column {column!r}")
        text = work[column].astype("string").str.strip()
        missing = (text.isna() | (text == "")) & ~bad
        _reject(rejected, raw, missing, f"missing {column}")
        bad |= missing
        work[column] = text

    if "event_timestamp" not in work:
        raise ConfigError("missing envelope column 'event_timestamp'")
    timestamps = work["event_timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(timestamps):
        timestamps = pd.to_datetime(timestamps, utc=True, errors="coerce", format="ISO8601")
    timestamps = timestamps.dt.tz_convert("UTC") if timestamps.dt.tz is not None else timestamps.dt.tz_localize("UTC")
    unparsed = timestamps.isna() & ~bad
    _reject(rejected, raw, unparsed, "unparseable event_timestamp")
    bad |= unparsed
    work["event_timestamp"] = timestamps.dt.as_unit("us")

    for column in NULLABLE_COLUMNS:
        work[column] = work[column].astype("string") if column in work else pd.Series(
            pd.NA, index=work.index, dtype="string"
        )

    types: dict[str, str] = {}
    for column in attribute_columns(list(work.columns)):
        check_identifier(column, "attribute")
        kind = known_types.get(column) or infer_attribute_type(work[column])
        types[column] = kind
        if kind == NUMBER:
            parsed, not_number = _parse_numbers(work[column])
            not_number &= ~bad
            _reject(rejected, raw, not_number, f"attribute {column!r}: expected a number")
            bad |= not_number
            work[column] = parsed
        else:
            work[column] = work[column].astype("string")

    if "event_id" in work and work["event_id"].notna().all():
        work["event_id"] = work["event_id"].astype("string")
    else:
        derived = derive_event_id(raw.drop(columns=["event_id"], errors="ignore"), source)
        given = work["event_id"].astype("string") if "event_id" in work else derived.astype("string")
        work["event_id"] = given.fillna(derived)

    valid = work.loc[~bad].drop_duplicates("event_id").reset_index(drop=True)
    valid[PARTITION_COLUMN] = valid["event_timestamp"].dt.strftime("%Y-%m-%d")
    ordered = list(ENVELOPE_COLUMNS) + sorted(types) + [PARTITION_COLUMN]
    rejected_frame = (
        pd.concat(rejected).sort_index().reset_index(drop=True)
        if rejected
        else pd.DataFrame({"row": pd.Series(dtype="string"), "reason": pd.Series(dtype="string")})
    )
    return Conformed(valid=valid[ordered], rejected=rejected_frame, attribute_types=types)


def to_arrow(valid: pd.DataFrame, attribute_types: dict[str, str]) -> pa.Table:
    """An Arrow table with the envelope schema plus typed attributes (partition column included)."""
    fields = list(ENVELOPE_SCHEMA)
    for name in attribute_columns(list(valid.columns)):
        fields.append(pa.field(name, pa.float64() if attribute_types[name] == NUMBER else pa.string()))
    fields.append(pa.field(PARTITION_COLUMN, pa.string()))
    schema = pa.schema(fields)
    arrays = {}
    for field in schema:
        column = valid[field.name]
        if field.type == pa.string():
            arrays[field.name] = pa.array(column.astype(object).where(column.notna(), None), pa.string())
        elif field.type == pa.float64():
            arrays[field.name] = pa.array(np.asarray(column, dtype="float64"), pa.float64())
        else:
            arrays[field.name] = pa.array(column, field.type)
    return pa.table(arrays, schema=schema)
