"""The lake profile's SQL: valid Athena/Trino SQL that DuckDB runs after transpiling, the optional time
bound as `?` parameters in WHERE clauses only, and names as validated identifiers (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlglot
from sqlglot import exp

from playerguard.features.engines import transpile_to_duckdb
from playerguard.features.profile import compile_bounds, compile_event_types, compile_profile, compile_values

COLUMNS = {
    "event_id": "string", "event_type": "string", "event_timestamp": "timestamp", "player_id": "string",
    "session_id": "string", "event_date": "string", "amount": "double", "result": "string",
}  # fmt: skip
SINCE = datetime(2026, 1, 1, tzinfo=UTC)


def queries(since: datetime | None) -> list[tuple[str, tuple[str, ...]]]:
    profile = compile_profile(COLUMNS, since=since)
    return [
        (profile.sql, profile.params),
        compile_values([("match_end", "result"), ("round", "result")], since=since),
        compile_bounds([("match_end", "hits", "shots"), ("match_end", "shots", "hits")], since=since),
        (compile_event_types(), ()),
    ]


@pytest.mark.parametrize("since", [None, SINCE])
@pytest.mark.parametrize("dialect", ["athena", "trino"])
def test_profile_queries_parse_with_parameters_only_in_where(since: datetime | None, dialect: str) -> None:
    for sql, params in queries(since):
        tree = sqlglot.parse_one(sql, read=dialect)
        placeholders = list(tree.find_all(exp.Placeholder))
        assert len(placeholders) == len(params)
        for placeholder in placeholders:
            assert placeholder.find_ancestor(exp.Where) is not None
            assert placeholder.find_ancestor(exp.AggFunc, exp.Case) is None
        sqlglot.parse_one(transpile_to_duckdb(sql), read="duckdb")
        assert "2026" not in sql  # the bound is a parameter, never text


def test_profile_reads_every_attribute_but_identity_time_and_partition() -> None:
    query = compile_profile(COLUMNS, since=SINCE)
    assert [name for name, _ in query.columns] == ["amount", "result", "session_id"]
    assert query.params == ("2026-01-01", "2026-01-01 00:00:00.000")
    assert 'min("amount") AS c0_min' in query.sql and 'count(DISTINCT "result") AS c1_distinct' in query.sql
    assert "c1_min" not in query.sql  # text attributes have no range


def test_values_and_bounds_quote_event_types_as_literals() -> None:
    sql, _ = compile_values([("it's", "result")])
    assert "event_type IN ('it''s')" in sql and "'result' AS attribute" in sql
    bounds, _ = compile_bounds([("match_end", "hits", "shots")])
    assert 'event_type = \'match_end\' AND "hits" > "shots"' in bounds
