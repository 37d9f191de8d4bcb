"""The S3 + Glue lake against moto's server: ingest, read back, catalog, idempotency, finishing a partial write."""

from __future__ import annotations

from pathlib import Path

import awswrangler as wr
import boto3
import pytest

from playerguard.backends import backend_for
from playerguard.errors import ConfigError
from playerguard.lake.ingest import ingest_file
from playerguard.lake.mapping import load_mapping
from playerguard.lake.s3 import EVENTS_TABLE, REJECTED_TABLE, S3Lake
from playerguard.settings import Settings

pytestmark = pytest.mark.aws

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ingest"
SHOP_CSV = FIXTURES / "shop_purchases.csv"
DATABASE = "playerguard_test"
BUCKET = "studio-lake"


@pytest.fixture
def session(aws_endpoint: str) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=BUCKET)
    return session


@pytest.fixture
def lake(session: boto3.Session) -> S3Lake:
    return S3Lake(f"s3://{BUCKET}/lake", DATABASE, boto3_session=session)


def ingest_shop(lake: S3Lake):
    return ingest_file(lake, SHOP_CSV, load_mapping(FIXTURES / "shop_purchases.yaml"))


def test_ingest_lands_in_s3_partitions_registered_in_glue(lake: S3Lake, session: boto3.Session) -> None:
    result = ingest_shop(lake)
    assert (result.added, result.duplicates, result.rejected) == (115, 0, 4)
    events = wr.s3.read_parquet(lake.events_uri, dataset=True, boto3_session=session)
    assert len(events) == 115 and events["event_id"].is_unique
    assert set(events["event_type"]) == {"purchase"}
    types = wr.catalog.get_table_types(DATABASE, EVENTS_TABLE, boto3_session=session)
    assert (
        types["amount"] == "double"
        and types["event_timestamp"] == "timestamp"
        and types["country"] == "string"
    )
    partitions = wr.catalog.get_partitions(DATABASE, EVENTS_TABLE, boto3_session=session)
    days = sorted(value for values in partitions.values() for value in values)
    assert days == sorted(events["event_date"].astype(str).unique())
    assert lake.attribute_types() == {
        "amount": "double",
        "country": "string",
        "coupon_code": "string",
        "sku": "string",
    }
    rejected = wr.s3.read_parquet(lake.rejected_uri, dataset=True, boto3_session=session)
    assert sorted(rejected["reason"]) == [
        "attribute 'amount': expected a number",
        "malformed CSV row: 7 fields, expected 6",
        "missing player_id",
        "unparseable event_timestamp",
    ]
    assert wr.catalog.does_table_exist(DATABASE, REJECTED_TABLE, boto3_session=session)


def test_ingesting_the_same_file_again_writes_nothing(lake: S3Lake, session: boto3.Session) -> None:
    ingest_shop(lake)
    again = ingest_shop(lake)
    assert (again.added, again.duplicates, again.rejected) == (0, 115, 4)
    assert len(wr.s3.read_parquet(lake.events_uri, dataset=True, boto3_session=session)) == 115
    assert len(wr.s3.read_parquet(lake.rejected_uri, dataset=True, boto3_session=session)) == 4


def test_a_write_cut_short_is_completed_by_running_it_again(
    session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = S3Lake(f"s3://{BUCKET}/lake", DATABASE, boto3_session=session, rows_per_write=1)  # one write a day
    real_to_parquet = wr.s3.to_parquet
    calls = {"n": 0}

    def dies_on_the_third_write(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise ConnectionError("network gone")
        return real_to_parquet(*args, **kwargs)

    with monkeypatch.context() as patch, pytest.raises(ConnectionError):
        patch.setattr(wr.s3, "to_parquet", dies_on_the_third_write)
        ingest_shop(lake)
    partial = wr.s3.read_parquet(lake.events_uri, dataset=True, boto3_session=session)
    assert 0 < len(partial) < 115
    finished = ingest_shop(lake)
    assert finished.added == 115 - len(partial) and finished.duplicates == len(partial)
    events = wr.s3.read_parquet(lake.events_uri, dataset=True, boto3_session=session)
    assert len(events) == 115 and events["event_id"].is_unique


def test_open_lake_builds_an_s3_lake_from_settings(aws_endpoint: str, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path, backend="aws", lake_s3_uri=f"s3://{BUCKET}/lake", glue_database=DATABASE
    )
    lake = backend_for(settings).lake()
    assert isinstance(lake, S3Lake) and lake.attribute_types() == {}
    with pytest.raises(ConfigError, match="PLAYERGUARD_LAKE_S3_URI"):
        backend_for(Settings(home=tmp_path, backend="aws")).lake()
