"""Bring your own lake on AWS, against moto's server: scores and flags written to S3 and registered in Glue,
one cutoff replaced idempotently; the source mapping checked against a GAP table in the Glue catalog; and
the exact Athena queries a mapped feature build sends (run by DuckDB, as moto's Athena runs no SQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import awswrangler as wr
import boto3
import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import sqlglot
from sqlglot import exp

from playerguard.backends import backend_for
from playerguard.features.api import build_features
from playerguard.features.catalogs import GlueCatalog
from playerguard.features.engines import AthenaEngine, DuckDBEngine, transpile_to_duckdb
from playerguard.features.source_binding import register_local_table
from playerguard.features.source_check import check_source
from playerguard.features.sources import load_source_mapping
from playerguard.inference.results_store import FLAGS_TABLE, SCORES_TABLE, S3Results
from playerguard.inference.writeback import write_results
from playerguard.settings import Settings
from playerguard.simulator.game import simulate
from playerguard.simulator.gap_layout import GAP_TABLE, write_gap_table

pytestmark = pytest.mark.aws

BUCKET = "studio-lake"
DATABASE = "playerguard_results"
GAP = load_source_mapping("gap")
CUTOFF = datetime(2026, 1, 15, 6, tzinfo=UTC)


@pytest.fixture
def session(aws_endpoint: str) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=BUCKET)
    return session


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        backend="aws",
        region="us-east-1",
        lake_s3_uri=f"s3://{BUCKET}/lake",
        glue_database=DATABASE,
        athena_output_s3_uri=f"s3://{BUCKET}/athena-results/",
    )


def scores(players: list[str], churn: float) -> pd.DataFrame:
    offer = {
        "model": "churn",
        "action": "retention_offer",
        "score": churn,
        "threshold": 0.6,
        "severity": "low",
        "value_at_risk": churn * 2,
    }
    return pd.DataFrame(
        {
            "player_id": players,
            "inhuman_play_score": 0.1,
            "churn_score": churn,
            "purchase_score": float("nan"),
            "actions": json.dumps([offer] if churn >= 0.6 else []),
            "reasons": json.dumps({"churn": [{"feature": "sessions_7d", "value": 0.0}]}),
            "model_versions": json.dumps({"churn": "4", "inhuman_play": "2"}),
        }
    )


def test_results_land_in_glue_partitions_and_a_cutoff_is_replaced_not_added(
    settings: Settings, session: boto3.Session
) -> None:
    store = backend_for(settings).results_store(boto3_session=session)
    assert isinstance(store, S3Results) and store.database == DATABASE
    first, second = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 8, tzinfo=UTC)
    write_results(settings, scores(["a", "b", "c"], 0.7), cutoff=first, store=store)
    write_results(settings, scores(["a", "b"], 0.8), cutoff=second, store=store)
    again = write_results(settings, scores(["a", "b"], 0.8), cutoff=second, store=store)
    assert (again.scores, again.flags) == (2, 2)
    assert again.scores_location == f"s3://{BUCKET}/lake/{SCORES_TABLE}/"

    types = wr.catalog.get_table_types(DATABASE, SCORES_TABLE, boto3_session=session)
    assert types["cutoff"] == "timestamp" and types["churn_score"] == "double"
    assert types["actions"] == "string" and types["cutoff_date"] == "string"
    partitions = wr.catalog.get_partitions(DATABASE, SCORES_TABLE, boto3_session=session)
    assert sorted(v for values in partitions.values() for v in values) == ["2026-02-01", "2026-02-08"]
    table = wr.s3.read_parquet_table(SCORES_TABLE, DATABASE, boto3_session=session)
    assert table.groupby("cutoff_date")["player_id"].count().to_dict() == {"2026-02-01": 3, "2026-02-08": 2}
    assert table["purchase_score"].isna().all()

    # Rescored: nobody crosses the churn threshold now, so that cutoff's flags go and its scores are replaced.
    write_results(settings, scores(["a"], 0.1), cutoff=second, store=store)
    table = wr.s3.read_parquet_table(SCORES_TABLE, DATABASE, boto3_session=session)
    assert table.groupby("cutoff_date")["player_id"].count().to_dict() == {"2026-02-01": 3, "2026-02-08": 1}
    flags = wr.s3.read_parquet(store.table_uri(FLAGS_TABLE), dataset=True, boto3_session=session)
    assert flags["cutoff_date"].tolist() == ["2026-02-01"] * 3 and flags["flag_id"].is_unique
    assert set(flags["model_version"]) == {"4"} and flags["value_at_risk"].tolist() == [1.4] * 3
    assert wr.catalog.get_table_types(DATABASE, FLAGS_TABLE, boto3_session=session)["value_at_risk"] == "double"


def gap_tables(session: boto3.Session, local: Path) -> None:
    """One simulated game (with faulty rows) as a GAP table in a local directory and in moto (S3 + Glue)."""
    events = simulate(players=40, days=20, seed=11, start=datetime(2026, 1, 1, tzinfo=UTC)).events
    write_gap_table(events, local / GAP_TABLE, faults=4)
    parts = ds.partitioning(pa.schema([(c, pa.string()) for c in ("year", "month", "day")]), flavor="hive")
    rows = ds.dataset(local / GAP_TABLE, partitioning=parts).to_table().to_pandas()
    wr.catalog.create_database(GAP.database, exist_ok=True, boto3_session=session)
    wr.s3.to_parquet(
        rows,
        path=f"s3://{BUCKET}/gap/{GAP_TABLE}/",
        dataset=True,
        partition_cols=["year", "month", "day"],
        database=GAP.database,
        table=GAP.table,
        dtype={"year": "string", "month": "string", "day": "string"},
        boto3_session=session,
    )


class AthenaStandIn:
    """Records `read_sql_query` calls and answers them as Athena would, from DuckDB over the local copy."""

    def __init__(self, local: Path) -> None:
        self.con = register_local_table(duckdb.connect(), GAP, local)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sql: str, **kwargs: Any) -> pd.DataFrame:
        self.calls.append({"sql": sql, **kwargs})
        values = iter(kwargs["params"])
        tree = sqlglot.parse_one(sql, read="athena").transform(
            lambda node: (
                sqlglot.parse_one(next(values), read="athena") if isinstance(node, exp.Placeholder) else node
            )
        )
        assert next(values, None) is None, "more parameters than placeholders"
        return self.con.execute(transpile_to_duckdb(tree.sql(dialect="athena"))).df()


@pytest.fixture
def gap_on_aws(session: boto3.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AthenaStandIn:
    gap_tables(session, tmp_path / "local")
    stand_in = AthenaStandIn(tmp_path / "local")
    monkeypatch.setattr(wr.athena, "read_sql_query", stand_in)
    return stand_in


def test_the_source_check_reads_columns_and_partitions_from_glue(
    settings: Settings, session: boto3.Session, gap_on_aws: AthenaStandIn
) -> None:
    catalog = GlueCatalog(GAP, session)
    assert {"event_id", "event_data", "event_timestamp", "year", "month", "day"} <= set(catalog.columns())
    assert catalog.partitions()[0] == ("2026", "01", "01")
    report = check_source(settings, GAP, days=None, boto3_session=session)
    assert report.ok, report.lines()
    assert report.partitions == len(catalog.partitions()) and report.first_partition == "2026-01-01"
    assert report.failures.failed == 4 and sum(report.failures.reasons.values()) == 4
    assert all(call["boto3_session"] is session for call in gap_on_aws.calls)
    assert GlueCatalog(GAP.model_copy(update={"table": "missing"}), session).columns() is None


def test_features_through_athena_and_the_mapping_equal_duckdbs(
    settings: Settings, session: boto3.Session, gap_on_aws: AthenaStandIn, tmp_path: Path
) -> None:
    athena = AthenaEngine(settings, boto3_session=session, source=GAP)
    remote = build_features(settings, CUTOFF, engine=athena)
    local = build_features(settings, CUTOFF, engine=DuckDBEngine(tmp_path / "local", source=GAP))
    pd.testing.assert_frame_equal(remote, local)
    assert len(remote) > 25
    features, problems = gap_on_aws.calls[-1], gap_on_aws.calls[0]  # failures are counted first
    assert "GROUP BY 1, 2, 3" in problems["sql"] and '"gap"."raw_events"' in features["sql"]
    assert '"playerguard_results"."events"' not in features["sql"] and features["database"] == DATABASE
    assert all(p.startswith("'") and p.endswith("'") for p in features["params"])
    for dialect in ("athena", "trino"):
        tree = sqlglot.parse_one(features["sql"], read=dialect)
        placeholders = list(tree.find_all(exp.Placeholder))
        assert len(placeholders) == len(features["params"])
        assert all(p.find_ancestor(exp.Where) is not None for p in placeholders)
    (failures,) = athena.source.failures.values()
    assert failures.failed == 4
