"""The game attribute behind a feature, day by day: for an inhuman-play flag, what the top reason is made
of (headshots / hits on match_end for `headshot_rate_28d`, reaction_ms for `reaction_ms_p50_28d`), for the
player and for everyone, so a reviewer sees whether the player stands out every day or on one day.

Only simple definitions have a daily view: a ratio of two sums or counts without conditions, or one
attribute of one event type (shown as its daily mean). Pure: builds the SQL, runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from playerguard.features.compiler import quote
from playerguard.features.spec import FeatureDefinition, Measure


@dataclass(frozen=True)
class TrendQuery:
    """Athena SQL (for the SQL engine port) with `{table}` left to fill, and what it shows."""

    feature: str
    label: str
    sql: str
    event_type: str


@dataclass(frozen=True)
class AttributeTrend:
    """Per day: the player's value and everyone's (None where there were no events)."""

    query: TrendQuery
    days: list[str]
    player: list[float | None]
    everyone: list[float | None]


def _measure(measure: Measure, mine: bool) -> str | None:
    if measure.selection.where or len(measure.selection.event_types) != 1:
        return None
    column = quote(measure.attribute) if measure.attribute else "1"
    value = f"CASE WHEN player_id = ? THEN {column} END" if mine else column
    if measure.kind == "sum":
        return f"CAST(sum({value}) AS DOUBLE)"
    if measure.kind == "count":
        return f"CAST(count({value if mine else '*'}) AS DOUBLE)"
    return None


def _describe(measure: Measure) -> str:
    return f"{measure.kind}({measure.attribute})" if measure.attribute else measure.kind


def trend_query(definition: FeatureDefinition) -> TrendQuery | None:
    """The daily query behind `definition`, or None when it has no simple daily view."""
    if definition.kind == "ratio" and definition.numerator and definition.denominator:
        top, bottom = definition.numerator, definition.denominator
        if top.selection.event_types != bottom.selection.event_types:
            return None
        parts = [_measure(m, mine) for mine in (True, False) for m in (top, bottom)]
        if None in parts:
            return None
        event_type = top.selection.event_types[0]
        label = f"{_describe(top)} / {_describe(bottom)} on {event_type}"
        player = f"{parts[0]} / nullif({parts[1]}, 0)"
        everyone = f"{parts[2]} / nullif({parts[3]}, 0)"
    elif (
        definition.attribute and len(definition.selection.event_types) == 1 and not definition.selection.where
    ):
        event_type = definition.selection.event_types[0]
        column = quote(definition.attribute)
        label = f"{definition.attribute} on {event_type} (daily mean)"
        player = f"avg(CASE WHEN player_id = ? THEN CAST({column} AS DOUBLE) END)"
        everyone = f"avg(CAST({column} AS DOUBLE))"
    else:
        return None
    sql = (
        f"SELECT event_date, {player} AS player, {everyone} AS everyone\n"
        "FROM {table}\nWHERE event_type = ? AND event_date >= ? AND event_date <= ?\n"
        "GROUP BY event_date\nORDER BY event_date"
    )
    return TrendQuery(definition.name, label, sql, event_type)


def player_params(query: TrendQuery) -> int:
    """How many times the query takes the player_id (before the event type and the two days)."""
    return query.sql.count("player_id = ?")
