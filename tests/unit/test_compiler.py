"""The SQL compiler: valid Athena/Trino SQL, parameters only where Athena allows them, partition pruning,
window bounds as parameters, missing and mistyped attributes, and finishing the raw result (no I/O)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from playerguard.errors import ConfigError
from playerguard.features.compiler import (
    KEY_COLUMN,
    PLAYER_KEY,
    CompiledQuery,
    PlayerKeyCollision,
    compile_features,
    literal,
    normalize_cutoff,
)
from playerguard.features.engines import transpile_to_duckdb
from playerguard.features.labels import compile_last_event, compile_outcomes
from playerguard.features.spec import FeatureSet, LabelSpec, load_feature_set, parse_feature_set

CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
TABLE = ("playerguard", "events")


def small_set(*features: dict) -> FeatureSet:
    return parse_feature_set({"features": list(features)}, default_name="small")


def event_scans(tree: exp.Expression) -> list[exp.Select]:
    """The SELECTs reading the events table directly."""
    scans = []
    for select in tree.find_all(exp.Select):
        source = select.args.get("from_") or select.args.get("from")
        table = source.find(exp.Table) if source else None
        if table is not None and (table.db, table.name) == TABLE:
            scans.append(select)
    return scans


@pytest.mark.parametrize("name", ["default", "combat"])
@pytest.mark.parametrize("dialect", ["athena", "trino"])
def test_packaged_sets_compile_to_sql_both_dialects_parse(name: str, dialect: str) -> None:
    query = compile_features(load_feature_set(name), [CUTOFF], active_within_days=90, with_activity=True)
    tree = sqlglot.parse_one(query.sql, read=dialect)
    placeholders = list(tree.find_all(exp.Placeholder))
    assert len(placeholders) == len(query.params) > 0
    duckdb_sql = transpile_to_duckdb(query.sql)
    sqlglot.parse_one(duckdb_sql, read="duckdb")
    assert "QUANTILE_CONT" in duckdb_sql.upper() or name != "default"
    assert "APPROX" not in duckdb_sql.upper() and "NOT MATERIALIZED" in duckdb_sql


@pytest.mark.parametrize("name", ["default", "combat"])
def test_parameters_sit_only_in_where_clauses_of_event_scans(name: str) -> None:
    # Athena accepts `?` execution parameters only in WHERE clauses.
    query = compile_features(load_feature_set(name), [CUTOFF, CUTOFF + timedelta(days=7)], with_activity=True)
    tree = sqlglot.parse_one(query.sql, read="athena")
    scans = event_scans(tree)
    for placeholder in tree.find_all(exp.Placeholder):
        where = placeholder.find_ancestor(exp.Where)
        assert where is not None and where.parent in scans
        assert placeholder.find_ancestor(exp.AggFunc, exp.Case, exp.Filter) is None


def test_every_scan_prunes_partitions_and_bounds_time_with_parameters() -> None:
    query = compile_features(load_feature_set("default"), [CUTOFF])
    scans = event_scans(sqlglot.parse_one(query.sql, read="athena"))
    assert len(scans) == 3  # [T-7d, T), [T-28d, T-7d), and everything before (lifetime features)
    for scan in scans:
        where = scan.args["where"].sql()
        assert "event_date <= ?" in where and "event_timestamp < CAST(? AS TIMESTAMP)" in where
    assert query.params == (
        "2026-02-22", "2026-02-28", "2026-02-22 00:00:00.000", "2026-03-01 00:00:00.000",
        "2026-02-01", "2026-02-21", "2026-02-01 00:00:00.000", "2026-02-22 00:00:00.000",
        "2026-01-31", "2026-02-01 00:00:00.000",
    )  # fmt: skip
    assert "2026" not in query.sql  # values are parameters, never part of the text


def test_windowed_set_with_active_within_scans_no_older_history() -> None:
    fs = small_set({"name": "n", "kind": "count", "event_type": "s", "window": "7d"})
    bounded = compile_features(fs, [CUTOFF], active_within_days=14)
    scans = event_scans(sqlglot.parse_one(bounded.sql, read="athena"))
    assert len(scans) == 2 and all("event_date >= ?" in s.args["where"].sql() for s in scans)
    assert bounded.params[0] == "2026-02-22" and bounded.params[4] == "2026-02-15"
    assert "HAVING" in bounded.sql
    # Without active_within every player with any earlier event is in the population: history is read.
    everyone = compile_features(fs, [CUTOFF])
    assert any(
        "event_date >=" not in s.args["where"].sql() for s in event_scans(sqlglot.parse_one(everyone.sql))
    )


def test_segments_read_only_the_columns_their_windows_need() -> None:
    fs = small_set(
        {"name": "hits_7d", "kind": "sum", "event_type": "m", "attribute": "hits", "window": "7d"},
        {"name": "spend", "kind": "sum", "event_type": "p", "attribute": "amount"},
    )
    query = compile_features(fs, [CUTOFF], columns={"hits": "double", "amount": "double"})
    recent, older = event_scans(sqlglot.parse_one(query.sql, read="athena"))
    assert '"hits"' in recent.sql(dialect="athena") and 'CAST(NULL AS DOUBLE) AS "hits"' in older.sql(
        "athena"
    )


def test_multiple_cutoffs_make_one_query_with_a_scan_per_cutoff_and_segment() -> None:
    fs = load_feature_set("default")
    one = compile_features(fs, [CUTOFF])
    two = compile_features(fs, [CUTOFF, CUTOFF + timedelta(days=7)])
    assert len(two.params) == 2 * len(one.params)
    assert two.params[len(one.params) + 3] == "2026-03-08 00:00:00.000"
    assert "1 AS cutoff_idx" in two.sql


def test_missing_attribute_reads_as_null_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    fs = small_set({"name": "aim", "kind": "percentile", "attribute": "aim_speed", "quantile": 0.9})
    with caplog.at_level(logging.WARNING):
        query = compile_features(fs, [CUTOFF], columns={"hits": "double"})
    scans = event_scans(sqlglot.parse_one(query.sql, read="athena"))
    assert all('CAST(NULL AS DOUBLE) AS "aim_speed"' in scan.sql(dialect="athena") for scan in scans)
    assert not any(column.name == "aim_speed" for scan in scans for column in scan.find_all(exp.Column))
    assert "'aim_speed' is not in the event table" in caplog.text


@pytest.mark.parametrize(
    ("definition", "columns", "message"),
    [
        ({"name": "m", "kind": "mean", "attribute": "map"}, {"map": "string"}, "feature 'm': attribute 'map' is a"),
        ({"name": "w", "kind": "count", "where": [{"attribute": "hits", "op": "eq", "value": "x"}]},
         {"hits": "double"}, "feature 'w': attribute 'hits' is a double"),
    ],
)  # fmt: skip
def test_attribute_of_the_wrong_type_is_a_config_error(definition: dict, columns: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_features(small_set(definition), [CUTOFF], columns=columns)


def test_attribute_used_as_number_and_string_is_rejected() -> None:
    fs = small_set(
        {"name": "a", "kind": "sum", "attribute": "x"},
        {"name": "b", "kind": "count", "where": [{"attribute": "x", "op": "eq", "value": "y"}]},
    )
    with pytest.raises(ConfigError, match="both as a number and as a string"):
        compile_features(fs, [CUTOFF])


@pytest.mark.parametrize(
    ("options", "message"),
    [({"lookback_days": 0}, "lookback"), ({"active_within_days": -3}, "active_within"),
     ({"lookback_days": 2.5}, "lookback")],
)  # fmt: skip
def test_bad_day_counts(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_features(load_feature_set("default"), [CUTOFF], **options)


def test_constants_are_quoted_literals() -> None:
    assert literal("a'b") == "'a''b'" and literal(0.5) == "0.5"


def test_cutoffs_are_utc_milliseconds() -> None:
    assert normalize_cutoff(datetime(2026, 3, 1, 12, 0, 0, 123456)) == datetime(
        2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC
    )
    east = timezone(timedelta(hours=2))
    assert normalize_cutoff(datetime(2026, 3, 1, 2, tzinfo=east)) == CUTOFF
    with pytest.raises(ConfigError, match="cutoff must be a datetime"):
        normalize_cutoff("2026-03-01")  # type: ignore[arg-type]


def test_finalize_turns_epochs_into_days_and_orders_rows() -> None:
    query = CompiledQuery(
        sql="",
        params=(),
        cutoffs=(CUTOFF, CUTOFF + timedelta(days=1)),
        feature_names=("days_since", "count"),
        epoch_features=("days_since",),
    )
    last_seen = (CUTOFF - timedelta(days=2, hours=12)).timestamp()
    raw = pd.DataFrame(
        {"cutoff_idx": [1, 0, 0], "player_id": ["a", "b", "a"], "days_since": [last_seen, None, last_seen],
         "count": pd.array([3, 1, None], dtype="Int64")}
    )  # fmt: skip
    frame = query.finalize(raw)
    assert list(frame["player_id"]) == ["a", "b", "a"]
    assert list(frame["cutoff"]) == [
        pd.Timestamp(CUTOFF),
        pd.Timestamp(CUTOFF),
        pd.Timestamp(CUTOFF) + pd.Timedelta(days=1),
    ]
    assert frame["days_since"].tolist()[0] == 2.5 and pd.isna(frame["days_since"][1])
    assert frame["days_since"].tolist()[2] == 3.5
    assert frame["count"].dtype == "float64" and pd.isna(frame["count"][0])


def test_label_queries_read_only_the_horizon() -> None:
    query = compile_outcomes(LabelSpec("session_start", "purchase"), [CUTOFF], 14)
    assert query is not None
    tree = sqlglot.parse_one(query.sql, read="athena")
    assert all(p.find_ancestor(exp.Where) is not None for p in tree.find_all(exp.Placeholder))
    assert query.params == ("2026-03-01", "2026-03-14", "2026-03-01 00:00:00.000", "2026-03-15 00:00:00.000")
    assert compile_outcomes(LabelSpec(), [CUTOFF], 14) is None
    with pytest.raises(ConfigError, match="horizon"):
        compile_outcomes(LabelSpec("s"), [CUTOFF], 0)
    last = compile_last_event(CUTOFF)
    sqlglot.parse_one(last.sql, read="trino")
    assert last.params == ("2026-03-01",)


def test_gap_statistics_of_one_selection_share_a_scan_and_active_days_count_utc_dates() -> None:
    fs = small_set(
        {"name": "cv", "kind": "gap_cv", "event_type": "s", "window": "28d"},
        {"name": "mean_gap", "kind": "gap_mean", "event_type": "s", "window": "28d"},
        {"name": "other_gap", "kind": "gap_mean", "event_type": "m", "window": "28d"},
        {"name": "days", "kind": "active_days", "event_type": "s", "window": "7d"},
    )
    query = compile_features(fs, [CUTOFF])
    assert query.sql.count("lag(") == 2  # one window function per selection, not per feature
    assert "g0.gap_cv" in query.sql and "g0.gap_mean" in query.sql and "g1.gap_mean" in query.sql
    assert 'count(DISTINCT date("event_timestamp"))' in query.sql
    assert 'CAST("EVENT_TIMESTAMP" AS DATE)' in transpile_to_duckdb(query.sql).upper()


@pytest.mark.parametrize("dialect", ["athena", "trino"])
def test_player_key_groups_holistic_and_gap_ctes_on_a_hash_and_duckdb_hashes_natively(dialect: str) -> None:
    query = compile_features(load_feature_set("default"), [CUTOFF], with_activity=True, player_key=True)
    tree = sqlglot.parse_one(query.sql, read=dialect)
    assert f"GROUP BY cutoff_idx, {PLAYER_KEY}" in query.sql  # the percentiles' CTE
    assert f"PARTITION BY cutoff_idx, {PLAYER_KEY}" in query.sql  # the session gaps' window
    assert "h0.player_key = a.player_key" in query.sql and tree.selects[-1].alias == KEY_COLUMN
    duckdb_sql = transpile_to_duckdb(query.sql)
    assert "HASH(player_id)" in duckdb_sql and "XXHASH" not in duckdb_sql.upper()
    assert query.exact is not None and PLAYER_KEY not in query.exact.sql
    assert query.exact.params == query.params and query.exact.exact is None


def test_player_key_is_not_used_when_players_are_dropped_or_nothing_is_joined() -> None:
    # active_within drops players from the result: two of them sharing a key would go unseen.
    active = compile_features(load_feature_set("default"), [CUTOFF], active_within_days=7, player_key=True)
    assert PLAYER_KEY not in active.sql and active.exact is None
    plain = compile_features(
        small_set({"name": "n", "kind": "count"}), [CUTOFF], player_key=True
    )
    assert PLAYER_KEY not in plain.sql and KEY_COLUMN not in plain.sql and plain.exact is None


def test_finalize_refuses_players_sharing_a_key() -> None:
    query = CompiledQuery(sql="", params=(), cutoffs=(CUTOFF, CUTOFF + timedelta(days=1)), feature_names=("n",))
    raw = pd.DataFrame({"cutoff_idx": [0, 1, 0], "player_id": ["a", "a", "b"], "n": [1.0, 2.0, 3.0]})
    distinct = raw.assign(**{KEY_COLUMN: [7, 7, 8]})  # the same player at two cutoffs shares its key
    assert KEY_COLUMN not in query.finalize(distinct).columns
    with pytest.raises(PlayerKeyCollision):
        query.finalize(raw.assign(**{KEY_COLUMN: [7, 7, 7]}))
