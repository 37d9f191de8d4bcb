"""What the lake holds: event types with their counts, and per event type the attributes it carries with
their type, null rate, cardinality and range. `features suggest` fits a feature set to this profile.

Two Athena (Trino) SQL queries through the settings' SQL engine (DuckDB locally, Athena on AWS): one
GROUP BY event_type with a few aggregates per column, then the values of the low-cardinality text
attributes. Column names are validated identifiers; the only values, the optional time bound, are `?`
parameters in WHERE clauses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd

from playerguard.errors import DataError
from playerguard.features.compiler import (
    TIMESTAMP,
    date_param,
    literal,
    normalize_cutoff,
    quote,
    table_name,
    timestamp_param,
)
from playerguard.features.engines import SqlEngine
from playerguard.lake.envelope import NUMBER, PARTITION_COLUMN, RESERVED_NAMES, STRING

MAX_LEVELS = 6
MAX_COUNTERS = 12
"""Text attributes with at most this many distinct values (per event type) have their values listed."""
_NOT_PROFILED = frozenset({"event_id", "event_type", "event_timestamp", "player_id", PARTITION_COLUMN})


@dataclass(frozen=True)
class AttributeProfile:
    """One attribute as one event type carries it (only rows of that type count)."""

    name: str
    type: str  # "double", "string" or "timestamp"
    present: int  # rows with a value
    null_rate: float
    distinct: int
    minimum: float | None = None
    maximum: float | None = None
    whole: bool = False  # every value is an integer
    cents: bool = False  # every value has at most two decimals, and some are not integers (prices)
    values: tuple[tuple[str, int], ...] = ()  # text values and their counts, most frequent first
    bounded_by: tuple[str, ...] = ()  # whole-number attributes at least this one on every event with both


@dataclass(frozen=True)
class EventTypeProfile:
    """One event type: how many events, players and sessions, and the attributes it carries."""

    name: str
    events: int
    players: int
    sessions: int  # distinct session ids
    with_session: int  # events carrying a session id
    attributes: tuple[AttributeProfile, ...]
    span_days: float = 0.0  # from its first event in the lake to its last

    def attribute(self, name: str) -> AttributeProfile | None:
        return next((a for a in self.attributes if a.name == name), None)


@dataclass(frozen=True)
class LakeProfile:
    """Every event type of the lake (most frequent first) and the type of every column."""

    event_types: tuple[EventTypeProfile, ...]
    columns: Mapping[str, str]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.event_types]

    def event_type(self, name: str) -> EventTypeProfile | None:
        return next((t for t in self.event_types if t.name == name), None)


@dataclass(frozen=True)
class ProfileQuery:
    """Athena SQL, its parameters, and which result column holds which statistic of which column."""

    sql: str
    params: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (column name, type), in the order of their c<i>_ aliases


def _since(since: datetime | None) -> tuple[str, list[str]]:
    if since is None:
        return "", []
    moment = normalize_cutoff(since)
    return (
        f"\nWHERE {PARTITION_COLUMN} >= ? AND event_timestamp >= CAST(? AS TIMESTAMP)",
        [date_param(moment), timestamp_param(moment)],
    )


def profiled_columns(columns: Mapping[str, str]) -> list[tuple[str, str]]:
    """The columns a profile describes (every column but the event's identity, type, time and partition)."""
    return [(name, kind) for name, kind in sorted(columns.items()) if name not in _NOT_PROFILED]


def compile_profile(
    columns: Mapping[str, str],
    *,
    since: datetime | None = None,
    database: str = "playerguard",
    table: str = "events",
) -> ProfileQuery:
    """One query: per event type, its events, players, sessions, and per column its non-null count and
    distinct values (numbers also min, max and how many are not whole / have more than two decimals)."""
    chosen = profiled_columns(columns)
    select = [
        "event_type",
        "count(*) AS events",
        "count(DISTINCT player_id) AS players",
        (f"count(DISTINCT {quote('session_id')})" if "session_id" in columns else "0") + " AS sessions",
        (f"count({quote('session_id')})" if "session_id" in columns else "0") + " AS with_session",
        "min(event_timestamp) AS first_event",
        "max(event_timestamp) AS last_event",
    ]
    for i, (name, kind) in enumerate(chosen):
        column = quote(name)
        select.append(f"count({column}) AS c{i}_present")
        select.append(
            f"count(DISTINCT {column}) AS c{i}_distinct" if kind != TIMESTAMP else f"0 AS c{i}_distinct"
        )
        if kind == NUMBER:
            select += [
                f"min({column}) AS c{i}_min",
                f"max({column}) AS c{i}_max",
                f"count(CASE WHEN {column} <> round({column}) THEN 1 END) AS c{i}_fraction",
                f"count(CASE WHEN {column} <> round({column}, 2) THEN 1 END) AS c{i}_fine",
            ]
    where, params = _since(since)
    sql = (
        "SELECT\n  " + ",\n  ".join(select) + f"\nFROM {table_name(database, table)}" + where
        + "\nGROUP BY event_type\nORDER BY events DESC, event_type"
    )  # fmt: skip
    return ProfileQuery(sql, tuple(params), tuple(chosen))


def compile_values(
    wanted: Sequence[tuple[str, str]],
    *,
    since: datetime | None = None,
    database: str = "playerguard",
    table: str = "events",
) -> tuple[str, tuple[str, ...]]:
    """The values and counts of each (event type, text attribute) in `wanted`: one scan per attribute."""
    by_attribute: dict[str, list[str]] = {}
    for event_type, attribute in wanted:
        by_attribute.setdefault(attribute, []).append(event_type)
    where, values = _since(since)
    branches, params = [], []
    for attribute, event_types in sorted(by_attribute.items()):
        column = quote(attribute)
        types = ", ".join(literal(t) for t in sorted(event_types))
        condition = f"{column} IS NOT NULL AND event_type IN ({types})"
        condition = f"{where.strip()} AND {condition}" if where else f"WHERE {condition}"
        branches.append(
            f"SELECT event_type, {literal(attribute)} AS attribute, CAST({column} AS VARCHAR) AS value, "
            f"count(*) AS events\nFROM {table_name(database, table)}\n{condition}\n"
            f"GROUP BY event_type, CAST({column} AS VARCHAR)"
        )
        params += values
    return "\nUNION ALL\n".join(branches), tuple(params)


def counter_pairs(profile_types: Sequence[EventTypeProfile]) -> list[tuple[str, str, str]]:
    """(event type, a, b) for every ordered pair of distinct non-negative whole-number attributes of a type:
    the candidates for "a is a part of b" (hits of shots), at most MAX_COUNTERS attributes per type."""
    pairs = []
    for t in profile_types:
        counters = [
            a.name for a in t.attributes
            if a.type == NUMBER and a.whole and (a.minimum or 0) >= 0 and a.distinct > 1
            and a.name not in RESERVED_NAMES
        ][:MAX_COUNTERS]  # fmt: skip
        pairs += [(t.name, a, b) for a in counters for b in counters if a != b]
    return pairs


def compile_bounds(
    pairs: Sequence[tuple[str, str, str]],
    *,
    since: datetime | None = None,
    database: str = "playerguard",
    table: str = "events",
) -> tuple[str, tuple[str, ...]]:
    """Per event type, for each pair (a, b) of `pairs`, the events where a > b (0: a never exceeds b)."""
    where, params = _since(since)
    types = sorted({t for t, _, _ in pairs})
    condition = f"event_type IN ({', '.join(literal(t) for t in types)})"
    condition = f"{where.strip()} AND {condition}" if where else f"WHERE {condition}"
    counts = [
        f"count(CASE WHEN event_type = {literal(t)} AND {quote(a)} > {quote(b)} THEN 1 END) AS p{i}"
        for i, (t, a, b) in enumerate(pairs)
    ]
    sql = "SELECT\n  " + ",\n  ".join(counts) + f"\nFROM {table_name(database, table)}\n{condition}"
    return sql, tuple(params)


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def _attributes(row: Mapping[str, object], chosen: Sequence[tuple[str, str]]) -> list[AttributeProfile]:
    events = int(row["events"])  # type: ignore[call-overload]
    found = []
    for i, (name, kind) in enumerate(chosen):
        present = int(row[f"c{i}_present"])  # type: ignore[call-overload]
        if present == 0:
            continue
        extra: dict[str, object] = {}
        if kind == NUMBER:
            fraction, fine = int(row[f"c{i}_fraction"]), int(row[f"c{i}_fine"])  # type: ignore[call-overload]
            extra = {
                "minimum": _number(row[f"c{i}_min"]),
                "maximum": _number(row[f"c{i}_max"]),
                "whole": fraction == 0,
                "cents": fraction > 0 and fine == 0,
            }
        found.append(
            AttributeProfile(
                name,
                kind,
                present,
                1 - present / events,
                int(row[f"c{i}_distinct"]),
                **extra,  # type: ignore[call-overload, arg-type]
            )
        )
    return found


def _with_values(
    attributes: list[AttributeProfile], values: Mapping[str, list[tuple[str, int]]]
) -> tuple[AttributeProfile, ...]:
    out = []
    for a in attributes:
        listed = sorted(values.get(a.name, []), key=lambda pair: (-pair[1], pair[0]))
        out.append(replace(a, values=tuple(listed)) if listed else a)
    return tuple(out)


def _span_days(first: object, last: object) -> float:
    if first is None or last is None or pd.isna(first) or pd.isna(last):
        return 0.0
    return float((pd.Timestamp(last) - pd.Timestamp(first)).total_seconds() / 86400)


def profile_lake(engine: SqlEngine, *, since: datetime | None = None) -> LakeProfile:
    """The profile of the engine's events table (events from `since` on, or all of them)."""
    columns = engine.column_types()
    query = compile_profile(columns, since=since, database=engine.database, table=engine.table)
    rows = engine.query(query.sql, query.params).to_dict("records")
    if not rows:
        raise DataError("the event table has no events to profile")
    attributes = {str(row["event_type"]): _attributes(row, query.columns) for row in rows}
    wanted = [
        (event_type, a.name)
        for event_type, listed in attributes.items()
        for a in listed
        if a.type == STRING and a.name not in RESERVED_NAMES and a.distinct <= MAX_LEVELS
    ]
    values: dict[tuple[str, str], list[tuple[str, int]]] = {}
    if wanted:
        sql, params = compile_values(wanted, since=since, database=engine.database, table=engine.table)
        for row in engine.query(sql, params).to_dict("records"):
            key = (str(row["event_type"]), str(row["attribute"]))
            values.setdefault(key, []).append((str(row["value"]), int(row["events"])))
    event_types = _with_bounds(
        [
            EventTypeProfile(
                name=str(row["event_type"]),
                events=int(row["events"]),
                players=int(row["players"]),
                sessions=int(row["sessions"]),
                with_session=int(row["with_session"]),
                span_days=_span_days(row.get("first_event"), row.get("last_event")),
                attributes=_with_values(
                    attributes[str(row["event_type"])],
                    {name: v for (t, name), v in values.items() if t == row["event_type"]},
                ),
            )
            for row in sorted(rows, key=lambda r: (-int(r["events"]), str(r["event_type"])))
        ],
        engine,
        since,
    )
    return LakeProfile(tuple(event_types), dict(columns))


def _with_bounds(
    event_types: list[EventTypeProfile], engine: SqlEngine, since: datetime | None
) -> list[EventTypeProfile]:
    """The event types with each whole-number attribute's `bounded_by` filled from one more query."""
    pairs = counter_pairs(event_types)
    if not pairs:
        return event_types
    sql, params = compile_bounds(pairs, since=since, database=engine.database, table=engine.table)
    row = engine.query(sql, params).iloc[0]
    bounds: dict[tuple[str, str], list[str]] = {}
    for i, (t, a, b) in enumerate(pairs):
        if int(row[f"p{i}"]) == 0:
            bounds.setdefault((t, a), []).append(b)
    return [
        replace(
            t,
            attributes=tuple(
                replace(a, bounded_by=tuple(sorted(bounds.get((t.name, a.name), [])))) for a in t.attributes
            ),
        )
        for t in event_types
    ]


def compile_event_types(*, database: str = "playerguard", table: str = "events") -> str:
    """The lake's event types and their counts, most frequent first (no parameters)."""
    return (
        f"SELECT event_type, count(*) AS events\nFROM {table_name(database, table)}\n"
        "GROUP BY event_type\nORDER BY events DESC, event_type"
    )


def event_type_counts(engine: SqlEngine) -> dict[str, int]:
    """Event type -> number of events, most frequent first: the cheap part of a profile."""
    frame = engine.query(compile_event_types(database=engine.database, table=engine.table), ())
    return {str(row["event_type"]): int(row["events"]) for row in frame.to_dict("records")}
