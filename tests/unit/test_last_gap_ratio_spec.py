"""last_gap_ratio in the spec (which keys it takes), in the SQL (valid Athena/Trino, computed in the gap
step of its selection: one window pass, on the hashed key or the string) and in `features suggest`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlglot
from sqlglot import exp

from playerguard.errors import ConfigError
from playerguard.features.compiler import PLAYER_KEY, compile_features
from playerguard.features.engines import transpile_to_duckdb
from playerguard.features.profile import EventTypeProfile, LakeProfile
from playerguard.features.spec import load_feature_set, parse_definition, parse_feature_set
from playerguard.features.suggest import WINDOW, suggest_feature_set

CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
GAPS = parse_feature_set(
    {
        "features": [
            {"name": "n", "kind": "count", "event_type": "s", "window": "28d"},
            {"name": "ratio", "kind": "last_gap_ratio", "event_type": "s", "window": "28d"},
            {"name": "mean", "kind": "gap_mean", "event_type": "s", "window": "28d"},
            {"name": "cv", "kind": "gap_cv", "event_type": "s", "window": "28d"},
            {"name": "ratio_big", "kind": "last_gap_ratio", "where": [{"attribute": "y", "op": "ge", "value": 3}]},
            {"name": "cv_m", "kind": "gap_cv", "event_type": "m", "window": "7d"},
        ]
    },
    default_name="gaps",
)  # fmt: skip


def test_last_gap_ratio_takes_a_selection_and_a_window() -> None:
    d = parse_definition({"name": "r", "kind": "last_gap_ratio", "event_type": "s", "window": "28d",
                          "where": [{"attribute": "y", "op": "lt", "value": 2}]})  # fmt: skip
    assert d.kind == "last_gap_ratio" and d.window.seconds == 28 * 86400 and d.selection.where


@pytest.mark.parametrize("key", ["attribute", "baseline", "quantile", "measure"])
def test_last_gap_ratio_with_a_bad_key_is_a_one_line_config_error(key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_definition({"name": "r", "kind": "last_gap_ratio", "event_type": "s", key: "x"})
    message = str(error.value)
    assert message == f"feature 'r': unknown key {key!r} for kind 'last_gap_ratio'" and "\n" not in message


@pytest.mark.parametrize("player_key", [False, True])
@pytest.mark.parametrize("dialect", ["athena", "trino"])
def test_last_gap_ratio_compiles_to_sql_both_dialects_and_duckdb_parse(dialect: str, player_key: bool) -> None:
    query = compile_features(GAPS, [CUTOFF], with_activity=True, player_key=player_key)
    tree = sqlglot.parse_one(query.sql, read=dialect)
    assert len(list(tree.find_all(exp.Placeholder))) == len(query.params) > 0
    sqlglot.parse_one(transpile_to_duckdb(query.sql), read="duckdb")
    assert (f"PARTITION BY cutoff_idx, {PLAYER_KEY}" in query.sql) == player_key
    assert (query.exact is not None) == player_key


def test_last_gap_ratio_shares_the_window_pass_of_its_selection() -> None:
    sql = compile_features(GAPS, [CUTOFF]).sql
    assert sql.count("lag(") == 3  # s in 28d, y >= 3, m in 7d: one window function per selection
    assert "g0.last_gap_ratio" in sql and "g0.gap_mean" in sql and "g0.gap_cv" in sql
    assert "g1.last_gap_ratio" in sql and "g2.gap_cv" in sql
    assert sql.count("AS latest") == 2  # only the selections with a last_gap_ratio read the latest time


def test_sets_without_last_gap_ratio_compile_as_before() -> None:
    sql = compile_features(load_feature_set("default"), [CUTOFF], player_key=True).sql
    assert "latest" not in sql and "last_gap_ratio" not in sql


def test_suggest_proposes_the_last_gap_ratio_next_to_the_gap_features() -> None:
    suggestion = suggest_feature_set(LakeProfile((EventTypeProfile("login", 500, 10, 0, 0, ()),), {}))
    names = suggestion.feature_set.feature_names
    ratio = f"login_last_gap_ratio_{WINDOW}"
    assert names.index(ratio) == names.index(f"login_gap_cv_{WINDOW}") + 1
    d = next(d for d in suggestion.feature_set.definitions if d.name == ratio)
    assert (d.kind, d.selection.event_types, d.window.symbol) == ("last_gap_ratio", ("login",), WINDOW)
    assert "latest gap between login events over the usual gap" in suggestion.text
