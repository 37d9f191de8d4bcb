"""A GAP v3 Iceberg table in the Glue catalog (written with pyiceberg's Glue catalog to moto's S3 and Glue):
its columns and day partitions for `source check`, the snapshot an Athena build pins and records, and the
rebuild that time-travels to it after new events were appended. moto's Athena runs no SQL, so
`read_sql_query` is a stand-in that reads the snapshot the SQL names (`FOR VERSION AS OF`) with pyiceberg
and answers with DuckDB."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import awswrangler as wr
import boto3
import duckdb
import pandas as pd
import pytest
import sqlglot
from sqlglot import exp

from playerguard.features.api import build_training_set, rebuild_training_set
from playerguard.features.catalogs import GlueCatalog
from playerguard.features.engines import AthenaEngine, transpile_to_duckdb
from playerguard.features.glue_iceberg import glue_iceberg_table
from playerguard.features.rebuild import recipe_of
from playerguard.features.sources import load_source_mapping
from playerguard.settings import Settings
from playerguard.simulator.game import simulate
from playerguard.simulator.gap_v3_layout import append_gap_v3_events, create_gap_v3_table_in

pytestmark = pytest.mark.aws

BUCKET = "studio-analytics"
GAP_V3 = load_source_mapping("gap-v3")
CUTOFFS = [datetime(2026, 1, 6, tzinfo=UTC) + timedelta(days=5 * k) for k in range(3)]
_VERSION = re.compile(r" FOR VERSION AS OF (\d+)")


class AthenaOnIceberg:
    """Answers `read_sql_query` like Athena: the snapshot the SQL names, read by pyiceberg, run in DuckDB."""

    def __init__(self, session: boto3.Session) -> None:
        self.session = session
        self.sql: list[str] = []

    def __call__(self, sql: str, **kwargs: Any) -> pd.DataFrame:
        self.sql.append(sql)
        snapshots = {int(s) for s in _VERSION.findall(sql)}
        assert len(snapshots) == 1, "every read of the source names one snapshot"
        values = iter(kwargs["params"])
        tree = sqlglot.parse_one(_VERSION.sub("", sql), read="athena").transform(
            lambda node: (
                sqlglot.parse_one(next(values), read="athena") if isinstance(node, exp.Placeholder) else node
            )
        )
        table = glue_iceberg_table("gap", "raw_events", self.session)
        con = duckdb.connect()
        con.register("snapshot", table.scan(snapshot_id=snapshots.pop()).to_arrow())
        con.execute('CREATE SCHEMA gap; CREATE VIEW gap.raw_events AS SELECT * FROM "snapshot"')
        return con.execute(transpile_to_duckdb(tree.sql(dialect="athena"))).df()


@pytest.fixture
def glue(aws_endpoint: str, tmp_path: Any) -> dict:
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=BUCKET)
    from pyiceberg.catalog.glue import GlueCatalog as IcebergGlue

    catalog = IcebergGlue(
        "glue", client=session.client("glue"), **{"s3.endpoint": aws_endpoint, "s3.region": "us-east-1"}
    )
    table = create_gap_v3_table_in(catalog, location=f"s3://{BUCKET}/raw_events")
    game = simulate(players=60, days=20, seed=4)
    append_gap_v3_events(table, game.events)
    settings = Settings(home=tmp_path / "home", backend="aws", source_mapping="gap-v3")
    settings.home.mkdir(parents=True)
    game.ground_truth.to_parquet(settings.ground_truth_path, index=False)
    return {"session": session, "table": table, "settings": settings}


def test_the_glue_catalog_gives_an_iceberg_tables_columns_and_day_partitions(glue: dict) -> None:
    catalog = GlueCatalog(GAP_V3, glue["session"])
    assert "event_data" in catalog.columns() and "year" not in catalog.columns()
    days = [day for (day,) in catalog.partitions()]
    assert days[0] == "2026-01-01" and len(days) >= 20


def test_an_athena_build_pins_its_snapshot_and_is_rebuilt_by_time_travel(
    glue: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    athena = AthenaOnIceberg(glue["session"])
    monkeypatch.setattr(wr.athena, "read_sql_query", athena)
    settings, session = glue["settings"], glue["session"]
    original = build_training_set(
        settings, CUTOFFS, horizon_days=5, engine=AthenaEngine(settings, boto3_session=session, source=GAP_V3)
    )
    recipe = recipe_of(original)
    first = glue["table"].current_snapshot().snapshot_id
    assert recipe.lake.snapshot_id == first and all(f"FOR VERSION AS OF {first}" in sql for sql in athena.sql)

    append_gap_v3_events(glue_iceberg_table("gap", "raw_events", session), simulate(20, 20, 9).events)
    now = build_training_set(
        settings, CUTOFFS, horizon_days=5, engine=AthenaEngine(settings, boto3_session=session, source=GAP_V3)
    )
    assert len(now) > len(original) and recipe_of(now).lake.snapshot_id != first
    # The settings' backend (aws): an Athena engine pinned to the recorded snapshot.
    pd.testing.assert_frame_equal(rebuild_training_set(settings, recipe), original)
    assert f"FOR VERSION AS OF {first}" in athena.sql[-1]
