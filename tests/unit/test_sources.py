"""Source mappings: loading and validation, partition predicates from time ranges, the mapped SELECT, and a
compiled query bound to a source (valid Athena/Trino SQL, values as parameters, identifiers checked)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from playerguard.errors import ConfigError
from playerguard.features.compiler import compile_features
from playerguard.features.engines import transpile_to_duckdb
from playerguard.features.labels import compile_last_event, compile_outcomes
from playerguard.features.source_binding import MappedSource
from playerguard.features.sources import (
    load_source_mapping,
    mapped_select,
    parse_source_mapping,
    partition_days,
    partition_predicate,
    problems_select,
)
from playerguard.features.spec import load_feature_set, parse_feature_set

CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
GAP = load_source_mapping("gap")


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "studio",
        "database": "analytics",
        "table": "raw_events",
        "json_column": "event_data",
        "timestamp": {"column": "event_timestamp"},
        "envelope": {
            "event_id": {"column": "event_id"},
            "event_type": {"column": "event_type"},
            "player_id": {"json": "player_id"},
        },
        "constants": {"game_id": "skyfall", "platform": "pc"},
        "attributes": {"kills": {"json": "stats.kills", "type": "number"}},
        "partitions": {"year": "year", "month": "month", "day": "day"},
    }
    base.update(changes)
    return base


def placeholders_and_where(sql: str, dialect: str) -> tuple[int, bool]:
    """How many `?` the SQL holds, and whether every one sits in a WHERE clause (Athena's rule)."""
    tree = sqlglot.parse_one(sql, read=dialect)
    found = list(tree.find_all(exp.Placeholder))
    return len(found), all(p.find_ancestor(exp.Where) is not None for p in found)


def test_the_packaged_gap_mapping_loads_and_types_its_columns() -> None:
    assert (GAP.database, GAP.table, GAP.json_column) == ("gap", "raw_events", "event_data")
    types = GAP.column_types()
    assert types["kills"] == "double" and types["map"] == "string"
    assert types["event_timestamp"] == "timestamp" and types["player_id"] == "string"
    assert GAP.source_columns() == [
        "event_timestamp", "event_id", "event_type", "application_id", "event_data", "year", "month", "day"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"surprise": 1}, "surprise: unknown key"),
        ({"table": "Raw-Events"}, "invalid table name"),
        ({"json_column": None}, "json: fields need json_column"),
        ({"envelope": {"event_id": {"column": "id", "json": "id"}}}, "exactly one of column: or json:"),
        ({"attributes": {"kills": {"json": "k'ills", "type": "number"}}}, 'json field "k\'ills"'),
        ({"attributes": {"kills": {"json": "kills", "type": "int"}}}, "attributes.kills.type"),
        ({"attributes": {"player_id": {"json": "p", "type": "string"}}}, "reserved"),
        ({"attributes": {"_x": {"json": "p", "type": "string"}}}, "reserved"),
        ({"constants": {"game_id": "it's", "platform": "pc"}}, "constant game_id"),
        ({"constants": {"game_id": "skyfall"}}, "nothing fills envelope column 'platform'"),
        ({"constants": {"game_id": "a", "platform": "b", "event_type": "c"}}, "both under envelope"),
        ({"constants": {"game_id": "a", "platform": "b", "score": "1"}}, "'score' is not an envelope column"),
        ({"timestamp": {"column": "ts", "unit": "hours"}}, "timestamp.unit"),
        ({"partitions": {"year": "year", "month": "month"}}, "all of year, month and day"),
        ({"partitions": {"date": "dt", "year": "year"}}, "either year, month and day, or date"),
    ],
)
def test_mistakes_are_one_line_config_errors(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="source mapping") as caught:
        parse_source_mapping(document(**changes))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_mapping_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read source mapping"):
        load_source_mapping(tmp_path / "nope.yaml")


def test_partition_days_cover_the_range_with_slack() -> None:
    start, end = datetime(2026, 1, 10, 6, tzinfo=UTC), datetime(2026, 1, 17, tzinfo=UTC)
    assert partition_days(GAP, start, end) == (date(2026, 1, 9), date(2026, 1, 17))
    strict = GAP.model_copy(update={"partitions": GAP.partitions.model_copy(update={"slack_days": 0})})
    assert partition_days(strict, start, end) == (date(2026, 1, 10), date(2026, 1, 16))
    assert partition_days(GAP, None, end) == (None, date(2026, 1, 17))


def test_partition_predicates_list_months_and_keep_values_as_parameters() -> None:
    sql, params = partition_predicate(GAP, date(2026, 1, 9), date(2026, 1, 17))
    assert sql == '(("year" = ? AND "month" = ? AND "day" >= ? AND "day" <= ?))'
    assert params == ["2026", "01", "09", "17"]
    sql, params = partition_predicate(GAP, date(2025, 12, 25), date(2026, 2, 3))
    assert sql.count(" OR ") == 2 and params == ["2025", "12", "25", "2026", "01", "2026", "02", "03"]
    sql, params = partition_predicate(GAP, None, date(2026, 2, 3))
    assert sql == '("year" < ? OR ("year" = ? AND ("month" < ? OR ("month" = ? AND "day" <= ?))))'
    assert params == ["2026", "2026", "02", "02", "03"]
    assert partition_predicate(GAP, None, None) == (None, [])


def test_a_single_date_partition_and_no_partitions() -> None:
    dated = parse_source_mapping(document(partitions={"date": "dt"}))
    assert partition_predicate(dated, date(2026, 1, 9), None) == ('"dt" >= ?', ["2026-01-09"])
    flat = parse_source_mapping(document(partitions=None))
    assert partition_predicate(flat, date(2026, 1, 9), date(2026, 1, 10)) == (None, [])
    assert "WHERE" not in mapped_select(flat, CUTOFF, CUTOFF + timedelta(days=1)).sql.split("AS extracted")[0]


@pytest.mark.parametrize("dialect", ["athena", "trino"])
@pytest.mark.parametrize("build", [mapped_select, problems_select])
def test_the_mapped_select_parses_with_its_values_as_parameters(dialect: str, build) -> None:
    query = build(GAP, datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 1, 17, tzinfo=UTC))
    count, in_where = placeholders_and_where(query.sql, dialect)
    assert count == len(query.params) == 4 and in_where
    assert "2026" not in query.sql and "'$.player_id'" in query.sql
    assert "TRY_CAST(json_extract_scalar(\"event_data\", '$.kills') AS DOUBLE)" in query.sql
    assert 'CAST(from_unixtime("_seconds") AS TIMESTAMP)' in query.sql


def test_nested_json_fields_and_milliseconds() -> None:
    mapping = parse_source_mapping(document(timestamp={"json": "ts", "unit": "milliseconds"}))
    sql = mapped_select(mapping).sql
    assert "json_extract_scalar(\"event_data\", '$.stats.kills')" in sql
    assert "TRY_CAST(json_extract_scalar(\"event_data\", '$.ts') AS DOUBLE) / 1000.0" in sql
    assert "'skyfall' AS \"game_id\"" in sql


def test_duckdb_form_keeps_athena_semantics_for_json_and_epochs() -> None:
    duck = transpile_to_duckdb(mapped_select(GAP).sql).upper()
    assert "JSON_VALID(" in duck and "JSON_TYPE(" in duck and "MAKE_TIMESTAMP(" in duck
    assert "TO_TIMESTAMP(" not in duck


@pytest.mark.parametrize("dialect", ["athena", "trino"])
def test_a_bound_feature_query_reads_the_source_pruned_per_scan(dialect: str) -> None:
    week = parse_feature_set(
        {"features": [{"name": "matches_7d", "kind": "count", "event_type": "match_end", "window": "7d"}]},
        default_name="week",
    )
    query = compile_features(week, [CUTOFF], active_within_days=7)
    sql, params = MappedSource(GAP).bind(query.sql, query.params, "playerguard", "events")
    count, in_where = placeholders_and_where(sql, dialect)
    assert count == len(params) and in_where
    tree = sqlglot.parse_one(sql, read=dialect)
    assert [(t.db, t.name) for t in tree.find_all(exp.Table) if t.db] == [("gap", "raw_events")]
    # One scan, [T-7d, T): event dates 2026-02-22 .. 2026-02-28, partitions a day wider on each side.
    assert params[:6] == ["2026", "02", "21", "2026", "03", "01"]
    assert params[6:] == list(query.params)


def test_lifetime_features_and_labels_bind_every_scan() -> None:
    fs = load_feature_set("default")
    query = compile_features(fs, [CUTOFF, CUTOFF + timedelta(days=7)], with_activity=True)
    sql, params = MappedSource(GAP).bind(query.sql, query.params, "playerguard", "events")
    count, in_where = placeholders_and_where(sql, "athena")
    assert count == len(params) and in_where
    scans = sql.count('FROM "gap"."raw_events"')
    assert scans == query.sql.count('"playerguard"."events"') > 2
    assert sql.count("AS extracted") == scans
    outcomes = compile_outcomes(fs.labels, [CUTOFF], 14)
    sql, params = MappedSource(GAP).bind(outcomes.sql, outcomes.params, "playerguard", "events")
    assert params[:6] == ["2026", "02", "28", "2026", "03", "15"]  # dates 03-01 .. 03-14, a day of slack
    last = compile_last_event(CUTOFF)
    sql, params = MappedSource(GAP).bind(last.sql, last.params, "playerguard", "events")
    assert params[:5] == ["2026", "2026", "02", "02", "28"] and placeholders_and_where(sql, "trino")[0] == 6


def test_a_query_without_the_events_table_is_left_alone_and_name_clashes_are_refused() -> None:
    assert MappedSource(GAP).bind("SELECT 1 WHERE 1 = ?", ["1"], "playerguard", "events") == (
        "SELECT 1 WHERE 1 = ?",
        ["1"],
    )
    with pytest.raises(ConfigError, match="cannot be named gap.raw_events"):
        MappedSource(GAP).bind("SELECT 1", [], "gap", "raw_events")


def test_failures_are_counted_once_per_range_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[tuple[str, tuple]] = []

    def run(sql: str, params) -> pd.DataFrame:
        calls.append((sql, tuple(params)))
        return pd.DataFrame(
            {
                "problem": [None, "missing player_id", "event_data is not JSON"],
                "partition": ["2026-02-27"] * 3,
                "event_date": ["2026-02-27", "2026-02-27", None],
                "rows": [90, 7, 3],
            }
        )

    source = MappedSource(GAP)
    query = compile_features(load_feature_set("default"), [CUTOFF])
    with caplog.at_level("WARNING", logger="playerguard.features.source_binding"):
        source.bind(query.sql, query.params, "playerguard", "events", run)
        source.bind(query.sql, query.params, "playerguard", "events", run)
    assert len(calls) == 1 and "GROUP BY 1, 2, 3" in calls[0][0]
    (failures,) = source.failures.values()
    assert (failures.rows, failures.failed) == (100, 10)
    assert failures.reasons == {"missing player_id": 7, "event_data is not JSON": 3}
    assert "10 of 100 rows fail the mapping (missing player_id: 7, event_data is not JSON: 3)" in caplog.text
