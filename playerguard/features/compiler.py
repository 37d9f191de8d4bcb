"""Feature definitions → one Athena (Trino) SQL query per feature set.

Athena accepts `?` execution parameters only in WHERE clauses, so the query is shaped around that. The
time before each cutoff is cut into disjoint segments at every window boundary (T-7d, T-28d, ...); each
segment is one scan of the events table whose WHERE holds the cutoff/bound parameters and the
`event_date` partition predicates; the scans are stacked (UNION ALL, CTE `scoped`) with a literal segment
number, so "inside a 28-day window" is `segment <= k`. Event types and `where` values are validated
constants of the definitions, written as SQL literals; cutoffs, bounds and dates are parameters.

Every additive feature (counts, sums, means, min/max, ratios, trends, recency) is one conditional
aggregate (`CASE WHEN segment <= k AND event_type = ... THEN x END`) in a single GROUP BY player over
`scoped`. Percentiles, standard deviations and distinct counts need every value; each group of them
sharing a selection reads `scoped` again in its own CTE, filtered to its events (percentiles of one
attribute share one call with an ARRAY of quantiles), as does each selection of gap features (gap_cv,
gap_mean, last_gap_ratio: a window function over successive events). Trino inlines CTEs; DuckDB is told
to (see engines.py).

Recency and tenure need the cutoff inside an expression, which a parameter cannot be: the query returns
the epoch seconds of the last/first event and `CompiledQuery.finalize` turns them into days.

With `player_key`, the holistic and gap CTEs group, partition and join on a 64-bit hash of the player id
(PLAYER_KEY; DuckDB's `hash` locally) instead of the string, which is cheaper. The main aggregation keeps
the string, so the key is exact only if no two of its players share a hash: the query returns the key and
`finalize` raises `PlayerKeyCollision` otherwise; `CompiledQuery.exact` is then the same query on the string.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.features.spec import HOLISTIC_KINDS, NUMERIC_KINDS, FeatureDefinition, FeatureSet, Selection
from playerguard.lake.envelope import NUMBER, STRING, check_identifier

log = logging.getLogger(__name__)

TIMESTAMP = "timestamp"
ENVELOPE_TYPES: dict[str, str] = {
    name: STRING
    for name in ("event_id", "event_type", "player_id", "game_id", "platform", "session_id", "app_version")
} | {"event_timestamp": TIMESTAMP}
SQL_TYPES = {NUMBER: "DOUBLE", STRING: "VARCHAR", TIMESTAMP: "TIMESTAMP"}
ACTIVE_COLUMN = "_active_in_lookback"
"""1 if the player had an event in [T - lookback, T), else 0 (churn is only defined for active players)."""
_OPS = {"eq": "=", "ne": "<>", "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "in": "IN", "not_in": "NOT IN"}
_EPOCH_KINDS = frozenset({"recency", "tenure"})
GAP_KINDS = frozenset({"gap_cv", "gap_mean", "last_gap_ratio"})
PLAYER_KEY = "from_big_endian_64(xxhash64(to_utf8(player_id)))"
KEY_COLUMN = "_player_key"


class PlayerKeyCollision(DataError):
    """Two players of one cutoff share a hashed key: the keyed query's holistic and gap values are unusable."""


def normalize_cutoff(cutoff: datetime) -> datetime:
    """The cutoff in UTC at millisecond precision (Athena's); a naive datetime is taken as UTC."""
    if not isinstance(cutoff, datetime):
        raise ConfigError(f"cutoff must be a datetime, got {cutoff!r}")
    cutoff = cutoff.replace(tzinfo=UTC) if cutoff.tzinfo is None else cutoff.astimezone(UTC)
    return cutoff.replace(microsecond=cutoff.microsecond // 1000 * 1000)


def timestamp_param(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def date_param(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def quote(identifier: str) -> str:
    return '"' + check_identifier(identifier, "SQL") + '"'


def table_name(database: str, table: str) -> str:
    return f"{quote(database)}.{quote(table)}"


def literal(value: str | float) -> str:
    if isinstance(value, float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def check_days(value: int | None, what: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a whole number of days >= 1, got {value!r}")


@dataclass(frozen=True)
class CompiledQuery:
    """Athena SQL with `?` placeholders, its parameter values in order, and how to finish its result."""

    sql: str
    params: tuple[str, ...]
    cutoffs: tuple[datetime, ...]
    feature_names: tuple[str, ...]
    epoch_features: tuple[str, ...] = ()
    internal_columns: tuple[str, ...] = ()
    exact: CompiledQuery | None = None  # the query on the string player id, when this one groups on a hash

    def check_key(self, raw: pd.DataFrame) -> None:
        """Raise PlayerKeyCollision if two players of one cutoff share the hashed key (see the module doc)."""
        if KEY_COLUMN in raw.columns and raw.duplicated(["cutoff_idx", KEY_COLUMN]).any():
            raise PlayerKeyCollision("two player ids share a 64-bit key; run the query on the string id")

    def finalize(self, raw: pd.DataFrame) -> pd.DataFrame:
        """player_id, cutoff (UTC), the features as float64 (NaN where undefined), then internal columns."""
        self.check_key(raw)
        index = raw["cutoff_idx"].astype("int64").to_numpy()
        cutoffs = pd.DatetimeIndex(list(self.cutoffs)).as_unit("us")
        epochs = np.array([c.timestamp() for c in self.cutoffs])[index]
        columns: dict[str, object] = {
            "player_id": raw["player_id"].astype(str).to_numpy(),
            "cutoff": cutoffs[index],
        }
        for name in self.feature_names:
            values = pd.to_numeric(raw[name], errors="raise").astype("float64").to_numpy()
            columns[name] = (epochs - values) / 86400.0 if name in self.epoch_features else values
        for name in self.internal_columns:
            columns[name] = raw[name].astype("int64").to_numpy()
        out = pd.DataFrame(columns)  # built at once: a wide set inserted column by column fragments the frame
        return out.sort_values(["cutoff", "player_id"], kind="stable").reset_index(drop=True)


def where_sql(selection: Selection) -> list[str]:
    """The `where` conditions of a selection as SQL (constants as literals)."""
    parts = []
    for c in selection.where:
        if isinstance(c.value, tuple):
            parts.append(f"{quote(c.attribute)} {_OPS[c.op]} ({', '.join(literal(v) for v in c.value)})")
        else:
            parts.append(f"{quote(c.attribute)} {_OPS[c.op]} {literal(c.value)}")
    return parts


def type_sql(event_types: Sequence[str]) -> list[str]:
    if not event_types:
        return []
    if len(event_types) == 1:
        return [f"event_type = {literal(event_types[0])}"]
    return [f"event_type IN ({', '.join(literal(t) for t in event_types)})"]


def _and(parts: Sequence[str | None]) -> str | None:
    kept = [p for p in parts if p]
    return " AND ".join(kept) if kept else None


def _case(condition: str | None, value: str) -> str:
    return f"CASE WHEN {condition} THEN {value} END" if condition else value


@dataclass(frozen=True)
class _Segment:
    index: int
    newer: int  # seconds before the cutoff where the segment ends (exclusive); 0 = the cutoff
    older: int | None  # seconds before the cutoff where it starts (inclusive); None = no lower bound


class _Plan:
    """The segments for a set of window lengths, and the columns each segment must read."""

    def __init__(self, offsets: set[int], needs_history: bool) -> None:
        self.offsets = sorted(offsets)
        self.segments = [_Segment(i, self.offsets[i - 1] if i else 0, o) for i, o in enumerate(self.offsets)]
        if needs_history or not self.offsets:
            self.segments.append(_Segment(len(self.offsets), self.offsets[-1] if self.offsets else 0, None))
        self.needed: dict[int, set[str]] = {s.index: {"player_id"} for s in self.segments}

    @property
    def last(self) -> int:
        return self.segments[-1].index

    def through(self, seconds: int | None) -> int:
        """Index of the oldest segment inside a window of `seconds` (None: all history)."""
        return self.last if seconds is None else self.offsets.index(seconds)

    def read(self, first: int, last: int, columns: set[str]) -> str | None:
        """Record that segments first..last are read for `columns`; the SQL condition selecting them."""
        for index in range(first, last + 1):
            self.needed[index] |= columns
        if first == 0 and last == self.last:
            return None
        if first == 0:
            return f"segment <= {last}"
        return f"segment = {first}" if first == last else f"segment BETWEEN {first} AND {last}"


@dataclass
class _HolisticGroup:
    """Aggregates over one selection that need every value: percentiles (per attribute) and the rest."""

    values: list[str] = field(default_factory=list)
    quantiles: dict[str, list[float]] = field(default_factory=dict)


class _Compiler:
    def __init__(
        self,
        feature_set: FeatureSet,
        lookback_days: int,
        active_within_days: int | None,
        with_activity: bool,
        columns: Mapping[str, str] | None,
        warn_missing: bool = True,
        player_key: bool = False,
    ) -> None:
        self.fs = feature_set
        self.key = PLAYER_KEY if player_key else "player_id"
        self.warn_missing = warn_missing
        self.lookback_days = lookback_days
        self.active_within = active_within_days * 86400 if active_within_days else None
        self.activity = lookback_days * 86400 if with_activity else None
        self.types = self._column_types(columns)
        offsets: set[int] = {s for s in (self.active_within, self.activity) if s}
        needs_history = self.active_within is None
        for d in feature_set.definitions:
            window = self.window(d)
            if window is None:
                needs_history = True
            else:
                offsets.add(window)
            if d.kind == "trend":
                offsets.add(window + d.baseline.seconds)  # type: ignore[operator, union-attr]
        self.plan = _Plan(offsets, needs_history)
        self.holistic: dict[str | None, _HolisticGroup] = {}
        self.gaps: dict[str | None, bool] = {}  # the row condition of each gap CTE: does it need the last gap

    def window(self, d: FeatureDefinition) -> int | None:
        return d.window.resolve(self.lookback_days)

    def _column_types(self, columns: Mapping[str, str] | None) -> dict[str, str]:
        """Type of every attribute the definitions read; an attribute the lake lacks reads as NULL."""
        wanted: dict[str, set[str]] = {}
        for d in self.fs.definitions:
            measures = [m for m in (d.numerator, d.denominator) if m]
            numeric = d.kind in NUMERIC_KINDS or d.measure == "sum"
            if d.attribute:
                wanted.setdefault(d.attribute, set()).add(NUMBER if numeric else "any")
            for m in measures:
                if m.attribute:
                    wanted.setdefault(m.attribute, set()).add(NUMBER)
            for selection in [d.selection] + [m.selection for m in measures]:
                for c in selection.where:
                    wanted.setdefault(c.attribute, set()).add(NUMBER if c.is_numeric else STRING)
        known = dict(ENVELOPE_TYPES) | dict(columns or {})
        types: dict[str, str] = {}
        self.missing: set[str] = set()
        for name, uses in sorted(wanted.items()):
            concrete = uses - {"any"}
            if len(concrete) > 1:
                raise ConfigError(f"attribute {name!r} is used both as a number and as a string")
            expected = next(iter(concrete), None)
            actual = known.get(name)
            if actual is None:
                if columns is not None:
                    self.missing.add(name)
                    if self.warn_missing:
                        log.warning(
                            "attribute %r is not in the event table; features reading it see NULL", name
                        )
                types[name] = expected or STRING
            elif expected and actual != expected:
                user = next(d.name for d in self.fs.definitions if name in d.attributes())
                raise ConfigError(
                    f"feature {user!r}: attribute {name!r} is a {actual} in the event table, "
                    f"but the definition needs a {expected}"
                )
            else:
                types[name] = actual
        return types

    def rows(self, selection: Selection, first: int, last: int, *columns: str | None) -> str | None:
        """The condition on `scoped` picking segments first..last and `selection` (None: every row); records
        the columns those segments must read."""
        needed = {c.attribute for c in selection.where} | {c for c in columns if c}
        needed |= {"event_type"} if selection.event_types else set()
        segments = self.plan.read(first, last, needed)
        return _and([segments, *type_sql(selection.event_types), *where_sql(selection)])

    def measure(self, kind: str, selection: Selection, attribute: str | None, first: int, last: int) -> str:
        """One aggregate over `scoped` rows of segments first..last matching `selection`."""
        stamp = "event_timestamp" if kind in _EPOCH_KINDS else None
        condition = self.rows(selection, first, last, attribute, stamp)
        if kind == "count":
            return f"count({_case(condition, '1')})" if condition else "count(*)"
        if kind in _EPOCH_KINDS:
            edge = "max" if kind == "recency" else "min"
            return f"to_unixtime({edge}({_case(condition, 'event_timestamp')}))"
        value = _case(condition, quote(attribute))  # type: ignore[arg-type]
        if kind == "sum":
            return f"coalesce(sum({value}), 0)"
        return f"{ {'mean': 'avg', 'min': 'min', 'max': 'max'}[kind] }({value})"

    def aggregate(self, d: FeatureDefinition) -> str:
        last = self.plan.through(self.window(d))
        if d.kind == "ratio":
            num, den = (
                self.measure(m.kind, m.selection, m.attribute, 0, last) for m in (d.numerator, d.denominator)
            )  # type: ignore[union-attr]
            return f"CAST({num} AS DOUBLE) / nullif(CAST({den} AS DOUBLE), 0)"
        if d.kind == "trend":
            recent = self.window(d)
            older = self.plan.through(recent + d.baseline.seconds)  # type: ignore[operator, union-attr]
            now = self.measure(d.measure, d.selection, d.attribute, 0, last)  # type: ignore[arg-type]
            before = self.measure(d.measure, d.selection, d.attribute, last + 1, older)  # type: ignore[arg-type]
            recent_days, baseline_days = recent / 86400, d.baseline.seconds / 86400  # type: ignore[operator, union-attr]
            return (
                f"(CAST({now} AS DOUBLE) / {literal(recent_days)}) "
                f"/ nullif(CAST({before} AS DOUBLE) / {literal(baseline_days)}, 0)"
            )
        return self.measure(d.kind, d.selection, d.attribute, 0, last)

    def holistic_value(self, d: FeatureDefinition) -> str:
        """Reference to a percentile/stddev/distinct count computed in the holistic CTE of its selection."""
        column = "event_timestamp" if d.kind == "active_days" else d.attribute
        where = self.rows(d.selection, 0, self.plan.through(self.window(d)), column)
        group = self.holistic.setdefault(where, _HolisticGroup())
        prefix = f"h{list(self.holistic).index(where)}"
        attribute = quote(column)  # type: ignore[arg-type]
        if d.kind == "percentile":
            quantiles = group.quantiles.setdefault(attribute, [])
            if d.quantile not in quantiles:
                quantiles.append(d.quantile)  # type: ignore[arg-type]
            column = list(group.quantiles).index(attribute)
            return f"{prefix}.q{column}[{quantiles.index(d.quantile) + 1}]"  # type: ignore[arg-type]
        value = {
            "stddev": f"stddev_samp({attribute})",
            "distinct_count": f"count(DISTINCT {attribute})",
            "active_days": f"count(DISTINCT date({attribute}))",  # UTC days: the column holds UTC
        }[d.kind]
        if value not in group.values:
            group.values.append(value)
        reference = f"{prefix}.v{group.values.index(value)}"
        return reference if d.kind == "stddev" else f"coalesce({reference}, 0)"

    def holistic_ctes(self) -> list[str]:
        ctes = []
        for number, (where, group) in enumerate(self.holistic.items()):
            listed = [f"    {value} AS v{j}" for j, value in enumerate(group.values)]
            listed += [
                f"    approx_percentile({attribute}, ARRAY[{', '.join(literal(q) for q in quantiles)}]) AS q{j}"
                for j, (attribute, quantiles) in enumerate(group.quantiles.items())
            ]
            ctes.append(
                f"holistic_{number} AS (\n  SELECT cutoff_idx, {self.key} AS player_key,\n"
                + ",\n".join(listed)
                + "\n  FROM scoped"
                + (f"\n  WHERE {where}" if where else "")
                + f"\n  GROUP BY cutoff_idx, {self.key}\n)"
            )
        return ctes

    def gap_value(self, d: FeatureDefinition) -> str:
        """Reference to a gap statistic (`gap_cv`, `gap_mean`, `last_gap_ratio`) in the gap CTE of the
        feature's selection."""
        where = self.rows(d.selection, 0, self.plan.through(self.window(d)), "event_timestamp")
        self.gaps[where] = self.gaps.get(where, False) or d.kind == "last_gap_ratio"
        return f"g{list(self.gaps).index(where)}.{d.kind}"

    def gap_ctes(self) -> list[str]:
        return [self.gap_cte(where, number, last) for number, (where, last) in enumerate(self.gaps.items())]

    def gap_cte(self, where: str | None, number: int, last: bool) -> str:
        """Successive gaps (seconds) of the selection's events, then their statistics per player; with
        `last`, also the latest gap over the mean gap (from the same window pass)."""
        stamp = "to_unixtime(event_timestamp)"
        partition = f"PARTITION BY cutoff_idx, {self.key}"
        # The latest gap is the smallest gap among the rows at the latest timestamp: 0 when that timestamp
        # is tied, whatever order the window gave the tied rows.
        ratio = latest = ""
        if last:
            ratio = (
                ",\n    CASE WHEN count(gap) >= 2 THEN min(CASE WHEN event_timestamp = latest THEN gap END)"
                " / nullif(avg(gap), 0) END AS last_gap_ratio"
            )
            latest = f",\n      event_timestamp, max(event_timestamp) OVER ({partition}) AS latest"
        return (
            f"gaps_{number} AS (\n"
            "  SELECT cutoff_idx, player_key, stddev_samp(gap) / nullif(avg(gap), 0) AS gap_cv,\n"
            f"    avg(gap) / 86400 AS gap_mean{ratio}\n"
            "  FROM (\n"
            f"    SELECT cutoff_idx, {self.key} AS player_key, {stamp}\n"
            f"      - lag({stamp}) OVER ({partition} ORDER BY event_timestamp) AS gap{latest}\n"
            "    FROM scoped" + (f"\n    WHERE {where}" if where else "") + "\n  ) AS successive\n"
            "  GROUP BY cutoff_idx, player_key\n)"
        )

    def _union_columns(self) -> list[str]:
        order = ["player_id", "event_type", "event_timestamp"]
        everything = set().union(*self.plan.needed.values())
        return [c for c in order if c in everything] + sorted(everything - set(order))

    def scoped(self, cutoffs: Sequence[datetime], table: str) -> tuple[str, list[str]]:
        """The UNION ALL of one WHERE-bounded scan per (cutoff, segment), and its parameters."""
        union = self._union_columns()
        branches, params = [], []
        for k, cutoff in enumerate(cutoffs):
            for s in self.plan.segments:
                select = [f"{k} AS cutoff_idx", f"{s.index} AS segment"]
                for c in union:
                    if c in self.plan.needed[s.index] and c not in self.missing:
                        select.append(quote(c))
                    else:
                        column_type = SQL_TYPES[self.types.get(c, ENVELOPE_TYPES.get(c, STRING))]
                        select.append(f"CAST(NULL AS {column_type}) AS {quote(c)}")
                where, values = _bounds(cutoff, s)
                params += values
                branches.append(f"  SELECT {', '.join(select)}\n  FROM {table}\n  WHERE {where}")
        return "\n  UNION ALL\n".join(branches), params

    def scoped_in_one_scan(self, cutoffs: Sequence[datetime], table: str) -> tuple[str, list[str]]:
        """`scoped` for a small unpartitioned table: one scan per cutoff, each row's segment a CASE on the
        segment bounds (parameters outside WHERE: DuckDB, not Athena). Every segment reads every column; the
        aggregates read a column only in the segments that need it, so the values are those of `scoped`."""
        read = [
            f"CAST(NULL AS {SQL_TYPES[self.types.get(c, ENVELOPE_TYPES.get(c, STRING))]}) AS {quote(c)}"
            if c in self.missing else quote(c)
            for c in self._union_columns()
        ]
        bounded = [s for s in self.plan.segments if s.older is not None]
        history = self.plan.segments[-1].older is None
        branches, params = [], []
        for k, cutoff in enumerate(cutoffs):
            cases = " ".join(f"WHEN event_timestamp >= CAST(? AS TIMESTAMP) THEN {s.index}" for s in bounded)
            segment = f"CASE {cases}{f' ELSE {self.plan.last}' if history else ''} END" if cases else "0"
            starts = [timestamp_param(cutoff - timedelta(seconds=s.older)) for s in bounded]  # type: ignore[operator]
            where = "event_timestamp < CAST(? AS TIMESTAMP)"
            if not history:  # nothing older than the oldest window is read
                where = f"event_timestamp >= CAST(? AS TIMESTAMP) AND {where}"
            params += [*starts, *([] if history else starts[-1:]), timestamp_param(cutoff)]
            branches.append(f"  SELECT {k} AS cutoff_idx, {segment} AS segment, {', '.join(read)}\n  FROM {table}\n"
                            f"  WHERE {where}")
        return "\n  UNION ALL\n".join(branches), params


def _bounds(cutoff: datetime, segment: _Segment) -> tuple[str, list[str]]:
    """Partition and timestamp predicates of one segment: [cutoff - older, cutoff - newer)."""
    newer = cutoff - timedelta(seconds=segment.newer)
    older = None if segment.older is None else cutoff - timedelta(seconds=segment.older)
    conditions, values = [], []
    if older is not None:
        conditions.append("event_date >= ?")
        values.append(date_param(older))
    conditions.append("event_date <= ?")
    values.append(date_param(newer - timedelta(milliseconds=1)))
    if older is not None:
        conditions.append("event_timestamp >= CAST(? AS TIMESTAMP)")
        values.append(timestamp_param(older))
    conditions.append("event_timestamp < CAST(? AS TIMESTAMP)")
    values.append(timestamp_param(newer))
    return " AND ".join(conditions), values


def compile_features(
    feature_set: FeatureSet,
    cutoffs: Sequence[datetime],
    *,
    lookback_days: int = 28,
    active_within_days: int | None = None,
    with_activity: bool = False,
    columns: Mapping[str, str] | None = None,
    database: str = "playerguard",
    table: str = "events",
    warn_missing: bool = True,
    player_key: bool = False,
    one_scan: bool = False,
) -> CompiledQuery:
    """One query computing every feature of `feature_set` for every player with an event before each cutoff.

    `columns` maps the event table's columns to "double"/"string" (from the engine); attributes it lacks
    read as NULL, each with a warning unless `warn_missing` is False (the caller reports them). With
    `active_within_days`, only players with an event in that many days before the cutoff
    are returned. `with_activity` adds the internal column ACTIVE_COLUMN (for the churn label).
    `player_key` groups the holistic and gap CTEs on a hashed key (see the module doc; ignored with
    `active_within_days`, whose dropped players could share a key unseen). `one_scan` is for a small
    unpartitioned table in DuckDB (a request's events): `scoped` is one scan per cutoff, computed once
    (MATERIALIZED) and read by every CTE, instead of one partition-pruned scan per segment read by each.
    """
    check_days(lookback_days, "lookback")
    check_days(active_within_days, "active_within", allow_none=True)
    if not cutoffs:
        raise ConfigError("at least one cutoff is needed")
    cutoffs = tuple(normalize_cutoff(c) for c in cutoffs)
    keyed = player_key and active_within_days is None
    compiler = _Compiler(
        feature_set, lookback_days, active_within_days, with_activity, columns, warn_missing, keyed
    )
    plan = compiler.plan
    aggregates, selects = [], []
    for d in feature_set.definitions:
        if d.kind in GAP_KINDS:
            selects.append(f"CAST({compiler.gap_value(d)} AS DOUBLE) AS {quote(d.name)}")
        elif d.kind in HOLISTIC_KINDS:
            selects.append(f"CAST({compiler.holistic_value(d)} AS DOUBLE) AS {quote(d.name)}")
        else:
            aggregates.append(f"    CAST({compiler.aggregate(d)} AS DOUBLE) AS {quote(d.name)}")
            selects.append(f"a.{quote(d.name)}")
    internal: tuple[str, ...] = ()
    if compiler.activity:
        recent = f"count(CASE WHEN segment <= {plan.through(compiler.activity)} THEN 1 END)"
        aggregates.append(f"    CASE WHEN {recent} > 0 THEN 1 ELSE 0 END AS {quote(ACTIVE_COLUMN)}")
        selects.append(f"a.{quote(ACTIVE_COLUMN)}")
        internal = (ACTIVE_COLUMN,)
    having = ""
    if compiler.active_within:
        having = (
            f"\n  HAVING count(CASE WHEN segment <= {plan.through(compiler.active_within)} THEN 1 END) > 0"
        )
    holistic, gaps = compiler.holistic_ctes(), compiler.gap_ctes()
    scan = compiler.scoped_in_one_scan if one_scan else compiler.scoped
    scoped, params = scan(cutoffs, table_name(database, table))
    joined = bool(holistic or gaps)
    keys = ["    cutoff_idx", "    player_id"] + ([f"    {compiler.key} AS player_key"] if joined else [])
    aggregate_list = ",\n".join([*keys, *aggregates])
    joins = [f"LEFT JOIN holistic_{i} AS h{i} ON h{i}.cutoff_idx = a.cutoff_idx AND h{i}.player_key = a.player_key"
             for i in range(len(holistic))]  # fmt: skip
    joins += [f"LEFT JOIN gaps_{i} AS g{i} ON g{i}.cutoff_idx = a.cutoff_idx AND g{i}.player_key = a.player_key"
              for i in range(len(gaps))]  # fmt: skip
    keyed = keyed and joined
    if keyed:
        selects.append(f"a.player_key AS {quote(KEY_COLUMN)}")
    sql = (
        f"WITH scoped AS {'MATERIALIZED ' if one_scan else ''}(\n{scoped}\n),\n"
        f"aggregates AS (\n  SELECT\n{aggregate_list}\n  FROM scoped\n  GROUP BY cutoff_idx, player_id{having}\n)"
        + "".join(f",\n{cte}" for cte in holistic + gaps)
        + "\nSELECT a.cutoff_idx, a.player_id,\n  "
        + ",\n  ".join(selects)
        + "\nFROM aggregates AS a"
        + "".join(f"\n{join}" for join in joins)
    )
    return CompiledQuery(
        sql=sql,
        params=tuple(params),
        cutoffs=cutoffs,
        feature_names=tuple(feature_set.feature_names),
        epoch_features=tuple(d.name for d in feature_set.definitions if d.kind in _EPOCH_KINDS),
        internal_columns=internal,
        exact=_exact(feature_set, cutoffs, lookback_days, with_activity, columns, database, table) if keyed else None,
    )


def _exact(
    feature_set: FeatureSet,
    cutoffs: Sequence[datetime],
    lookback_days: int,
    with_activity: bool,
    columns: Mapping[str, str] | None,
    database: str,
    table: str,
) -> CompiledQuery:
    """The keyed query's twin on the string player id (its warnings were given already)."""
    return compile_features(
        feature_set, cutoffs, lookback_days=lookback_days, with_activity=with_activity, columns=columns,
        database=database, table=table, warn_missing=False,
    )  # fmt: skip
