"""The Athena engine against moto's server: column types from the Glue catalog written by the S3 lake, the
exact awswrangler call (moto's Athena does not run SQL, so `read_sql_query` is replaced by a stand-in
that substitutes the qmark parameters the way Athena does and runs the statement in DuckDB), and the
same features as the local engine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import awswrangler as wr
import boto3
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from playerguard.errors import DataError
from playerguard.features.api import build_features, build_training_set, profile_lake, suggest_features
from playerguard.features.engines import AthenaEngine, DuckDBEngine, transpile_to_duckdb
from playerguard.lake.local import LocalLake
from playerguard.lake.s3 import S3Lake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate

pytestmark = pytest.mark.aws

DATABASE = "playerguard_test"
BUCKET = "studio-lake"
CUTOFF = datetime(2026, 1, 15, 6, tzinfo=UTC)


class AthenaStandIn:
    """Records `read_sql_query` calls; answers them like Athena would, from DuckDB over the same events."""

    def __init__(self, engine: DuckDBEngine) -> None:
        self.engine = engine
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sql: str, **kwargs: Any) -> pd.DataFrame:
        self.calls.append({"sql": sql, **kwargs})
        values = iter(kwargs["params"])
        # Athena puts each execution parameter, a SQL literal, where its `?` is, in order.
        tree = sqlglot.parse_one(sql, read="athena").transform(
            lambda node: (
                sqlglot.parse_one(next(values), read="athena") if isinstance(node, exp.Placeholder) else node
            )
        )
        assert next(values, None) is None, "more parameters than placeholders"
        statement = tree.sql(dialect="athena")
        return self.engine._connection().execute(transpile_to_duckdb(statement)).df()


@pytest.fixture
def session(aws_endpoint: str) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=BUCKET)
    return session


@pytest.fixture
def settings(tmp_path, session: boto3.Session) -> Settings:
    return Settings(
        home=tmp_path / "home",
        backend="aws",
        region="us-east-1",
        lake_s3_uri=f"s3://{BUCKET}/lake",
        glue_database=DATABASE,
        athena_workgroup="analytics",
        athena_output_s3_uri=f"s3://{BUCKET}/athena-results/",
    )


@pytest.fixture
def lakes(settings: Settings, session: boto3.Session, tmp_path) -> DuckDBEngine:
    """The same simulated events in the moto S3/Glue lake and in a local lake; the local engine."""
    events = simulate(players=50, days=23, seed=3, start=datetime(2026, 1, 1, tzinfo=UTC)).events
    S3Lake.from_settings(settings, boto3_session=session).append_table(events)
    LocalLake(tmp_path / "local").append_table(events)
    return DuckDBEngine(tmp_path / "local", database=DATABASE)


def test_features_through_athena_equal_local_ones(
    settings: Settings, session: boto3.Session, lakes: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = AthenaStandIn(DuckDBEngine(lakes.lake.root, database=DATABASE))
    monkeypatch.setattr(wr.athena, "read_sql_query", stand_in)
    athena = AthenaEngine(settings, boto3_session=session)
    types = athena.column_types()  # from moto's Glue catalog
    assert (
        types["amount"] == "double"
        and types["result"] == "string"
        and types["event_timestamp"] == "timestamp"
    )

    remote = build_features(settings, CUTOFF, engine=athena)
    local = build_features(settings, CUTOFF, engine=lakes)
    pd.testing.assert_frame_equal(remote, local)
    assert len(remote) > 30

    (call,) = stand_in.calls
    assert call["database"] == DATABASE and call["workgroup"] == "analytics"
    assert call["s3_output"] == f"s3://{BUCKET}/athena-results/"
    assert call["paramstyle"] == "qmark" and call["ctas_approach"] is False
    assert call["boto3_session"] is session
    assert all(p.startswith("'") and p.endswith("'") for p in call["params"])
    assert "'2026-01-15 06:00:00.000'" in call["params"]
    for dialect in ("athena", "trino"):
        tree = sqlglot.parse_one(call["sql"], read=dialect)
        assert len(list(tree.find_all(exp.Placeholder))) == len(call["params"])


def test_training_set_through_athena_equals_local(
    settings: Settings, session: boto3.Session, lakes: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = AthenaStandIn(DuckDBEngine(lakes.lake.root, database=DATABASE))
    monkeypatch.setattr(wr.athena, "read_sql_query", stand_in)
    cutoffs = [datetime(2026, 1, 8, tzinfo=UTC), CUTOFF]
    remote = build_training_set(
        settings, cutoffs, horizon_days=7, engine=AthenaEngine(settings, boto3_session=session)
    )
    local = build_training_set(settings, cutoffs, horizon_days=7, engine=lakes)
    pd.testing.assert_frame_equal(remote, local)
    # On Athena all cutoffs go in one query: the lake's event types (checked against the feature set), the
    # horizon check, then the features and the labels.
    assert len(stand_in.calls) == 4 and "1 AS cutoff_idx" in stand_in.calls[2]["sql"]


def test_session_is_built_on_first_use_and_missing_table_is_a_data_error(settings: Settings) -> None:
    engine = AthenaEngine(settings)
    assert engine._boto3_session is None
    with pytest.raises(DataError, match=f"Glue table {DATABASE}.events does not exist"):
        engine.column_types()
    assert isinstance(engine._boto3_session, boto3.Session)
    assert engine._boto3_session.region_name == "us-east-1"


def test_lake_profile_and_auto_feature_set_through_athena_equal_local(
    settings: Settings, session: boto3.Session, lakes: DuckDBEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = AthenaStandIn(DuckDBEngine(lakes.lake.root, database=DATABASE))
    monkeypatch.setattr(wr.athena, "read_sql_query", stand_in)
    athena = AthenaEngine(settings, boto3_session=session)
    assert profile_lake(settings, engine=athena) == profile_lake(settings, engine=lakes)
    assert all(call["paramstyle"] == "qmark" for call in stand_in.calls)
    remote = suggest_features(settings, engine=athena)
    assert remote.text == suggest_features(settings, engine=lakes).text
    assert remote.feature_set.labels.purchase_event == "purchase"
    auto = build_features(settings, CUTOFF, feature_set="auto", engine=athena)
    pd.testing.assert_frame_equal(auto, build_features(settings, CUTOFF, feature_set="auto", engine=lakes))
    assert auto.shape[1] == len(remote.feature_set.definitions) + 2
