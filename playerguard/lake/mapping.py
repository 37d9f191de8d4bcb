"""How a studio's own files map onto the event envelope: the mapping YAML, loaded, checked and applied.

```yaml
columns:            # envelope or attribute name: source column (exactly as in the file)
  player_id: customer_id
  event_timestamp: date
  amount: dollar_value
constants:          # the same value on every row
  event_type: purchase
  game_id: shop
  platform: web
timestamp_format: "%Y%m%d"   # optional strftime codes; ISO 8601 and epoch s/ms (2000-2100) need none
types:              # optional: force an attribute's type (number | string) instead of inferring it
  coupon: string
ignore: [email]     # optional: source columns to leave out of the lake
values:             # optional: rename values of a lake column (after the columns are renamed)
  event_type: {evt_login: session_start}
```
Only player_id, event_type and event_timestamp must be filled; game_id and platform default to
`ENVELOPE_DEFAULTS`, event_id is derived, session_id and app_version stay null.

Source columns not named anywhere are kept as attributes under their own name in lower snake case
("DollarValue" → `dollar_value`); one already named like an envelope column fills it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from playerguard.errors import ConfigError
from playerguard.lake.envelope import (
    ENVELOPE_DEFAULTS,
    NUMBER,
    PARTITION_COLUMN,
    REQUIRED_COLUMNS,
    RESERVED_NAMES,
    STRING,
    check_identifier,
)

_MUST_COVER = tuple(c for c in REQUIRED_COLUMNS[1:] if c not in ENVELOPE_DEFAULTS)  # event_id may be derived
_NEVER_CONSTANT = ("event_id", "event_timestamp")
_KINDS = {"number": NUMBER, "string": STRING}


class Mapping(BaseModel):
    """A mapping file's content. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = {}
    constants: dict[str, str | int | float | bool] = {}
    timestamp_format: str | None = None
    types: dict[str, Literal["number", "string"]] = {}
    ignore: list[str] = []
    values: dict[str, dict[str, str]] = {}

    @field_validator("columns", "constants", "types", "values")
    @classmethod
    def _targets_are_names(cls, value: dict) -> dict:
        for target in value:
            check_identifier(target, "target column")
            if target == PARTITION_COLUMN:
                raise ValueError(f"{PARTITION_COLUMN!r} is derived from event_timestamp and cannot be mapped")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        both = sorted(set(self.columns) & set(self.constants))
        if both:
            raise ValueError(f"{both[0]!r} is both under columns: and under constants:")
        for name in _NEVER_CONSTANT:
            if name in self.constants:
                raise ValueError(f"{name!r} cannot be a constant; map it to a source column")
        for target in ("event_id", "event_timestamp"):
            if target in self.values:
                raise ValueError(f"values: {target!r} cannot be renamed")
        envelope_types = sorted(set(self.types) & RESERVED_NAMES)
        if envelope_types:
            raise ValueError(f"types: {envelope_types[0]!r} is an envelope column, its type is fixed")
        if self.timestamp_format is not None and "%" not in self.timestamp_format:
            raise ValueError(f"timestamp_format {self.timestamp_format!r} has no strftime code such as %Y")
        return self

    @property
    def attribute_types(self) -> dict[str, str]:
        """The attribute types the mapping forces (lake kinds: NUMBER / STRING)."""
        return {name: _KINDS[kind] for name, kind in self.types.items()}


def load_mapping(path: Path | str) -> Mapping:
    """Read and check a mapping file; any problem is a one-line ConfigError naming the file."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"cannot read mapping {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"mapping {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    return parse_mapping(document, f"mapping {path}")


def parse_mapping(document: object, where: str = "mapping") -> Mapping:
    """Check a mapping document (already parsed from YAML); problems are ConfigErrors naming `where`."""
    if not isinstance(document, dict):
        raise ConfigError(f"{where} must be a YAML mapping with columns:, constants:, ...")
    try:
        return Mapping.model_validate(document)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    except ValidationError as error:
        raise ConfigError(f"{where}: {_first_problem(error)}") from None


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    if problem["type"] == "extra_forbidden":
        return f"unknown key {where!r} (expected columns, constants, timestamp_format, types, ignore, values)"
    message = problem["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def normalize_name(name: str) -> str:
    """A source column name in lower snake case ("DollarValue" → "dollar_value", "Map Name" → "map_name").

    Raises ConfigError when no safe name comes out (empty, non-Latin letters, starts with a digit).
    """
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).strip()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    if any(not ch.isascii() for ch in text if ch.isalnum()):
        normalized = ""
    else:
        normalized = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    try:
        return check_identifier(normalized)
    except ConfigError:
        raise ConfigError(
            f"source column {name!r} has no usable attribute name (lower snake case, starting with a letter); "
            "give it one under columns: (new_name: original name) or list it under ignore:"
        ) from None


@dataclass(frozen=True)
class ColumnPlan:
    """The mapping resolved against one file's columns: which source column becomes which lake column."""

    renames: tuple[tuple[str, str], ...]
    """(source column, lake column) pairs."""
    constants: tuple[tuple[str, str | int | float | bool], ...]
    missing: tuple[str, ...] = ()
    """Source columns the mapping names that this batch lacks (JSON lines only; they read as null)."""
    values: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    """(lake column, ((source value, lake value), ...)): values renamed after the columns are."""

    def apply(self, batch: pa.Table) -> pa.Table:
        """`batch` (source columns) as lake columns: selected, renamed, constants added."""
        rows = batch.num_rows
        columns = {
            target: batch.column(source) for source, target in self.renames if source in batch.column_names
        }
        for source, target in self.renames:
            if source not in batch.column_names:
                columns[target] = pa.nulls(rows, pa.string())
        for target, value in self.constants:
            text = isinstance(value, str) or target in RESERVED_NAMES
            scalar = pa.scalar(str(value) if text else float(value), pa.string() if text else pa.float64())
            columns[target] = pa.repeat(scalar, rows)
        for target, renames in self.values:
            columns[target] = _rename_values(columns[target], renames)
        return pa.table(columns)


def _rename_values(column: pa.Array | pa.ChunkedArray, renames: tuple[tuple[str, str], ...]) -> pa.Array:
    """`column` as text with each listed value replaced; other values and nulls unchanged."""
    text = pc.cast(column, pa.string())
    index = pc.index_in(text, value_set=pa.array([old for old, _ in renames], pa.string()))
    renamed = pc.take(pa.array([new for _, new in renames], pa.string()), index)
    return pc.if_else(pc.is_null(index), text, renamed)


def plan_columns(
    mapping: Mapping, source_columns: list[str], source: str, *, partial: bool = False
) -> ColumnPlan:
    """Resolve `mapping` against a file's columns, or raise ConfigError naming the column and the file.

    With `partial` (a batch of JSON lines, whose keys vary), mapped columns the batch lacks are allowed and
    listed in `missing`.
    """
    present = set(source_columns)
    duplicated = sorted({c for c in source_columns if source_columns.count(c) > 1})
    if duplicated:
        raise ConfigError(f"{source} has more than one column named {duplicated[0]!r}")
    missing = [s for s in mapping.columns.values() if s not in present]
    if missing and not partial:
        target = next(t for t, s in mapping.columns.items() if s == missing[0])
        raise ConfigError(
            f"mapping column {target!r} names source column {missing[0]!r}, which {source} does not have "
            f"(it has: {', '.join(source_columns)})"
        )
    unknown_ignored = [c for c in mapping.ignore if c not in present]
    if unknown_ignored and not partial:
        raise ConfigError(
            f"mapping ignore: names column {unknown_ignored[0]!r}, which {source} does not have"
        )
    renames = [(s, t) for t, s in mapping.columns.items()]
    taken = {t: f"the mapping's {t!r}" for t in [*mapping.columns, *mapping.constants]}
    used = set(mapping.columns.values()) | set(mapping.ignore)
    for column in source_columns:
        if column in used:
            continue
        name = normalize_name(column)
        if name == PARTITION_COLUMN:
            raise ConfigError(
                f"{source}: column {column!r} clashes with the partition column; rename or ignore it"
            )
        if name in taken:
            raise ConfigError(
                f"{source}: column {column!r} would become {name!r}, which is already {taken[name]}; "
                "rename it under columns: or list it under ignore:"
            )
        taken[name] = f"source column {column!r}"
        renames.append((column, name))
    uncovered = [c for c in _MUST_COVER if c not in taken]
    if uncovered:
        raise ConfigError(
            f"{source}: nothing fills envelope column {uncovered[0]!r}; map a source column to it under "
            "columns: or set it under constants:"
        )
    unfilled = sorted(set(mapping.values) - set(taken))
    if unfilled:
        raise ConfigError(f"{source}: mapping values: renames values of {unfilled[0]!r}, which nothing fills")
    constants = list(mapping.constants.items())
    constants += [(c, value) for c, value in ENVELOPE_DEFAULTS.items() if c not in taken]
    values = tuple((target, tuple(renames.items())) for target, renames in mapping.values.items())
    return ColumnPlan(tuple(renames), tuple(constants), tuple(missing), values)
