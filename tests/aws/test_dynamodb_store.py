"""The online snapshot in DynamoDB against moto's server: writes, overwrites, chunked lookups, NaN."""

from __future__ import annotations

import math

import boto3
import numpy as np
import pandas as pd
import pytest

from playerguard.errors import ConfigError, DataError
from playerguard.features.online.dynamodb import DynamoDBFeatureStore
from playerguard.features.online.snapshot import materialize_snapshot
from playerguard.settings import Settings

pytestmark = pytest.mark.aws


def features(players: int, offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "player_id": [f"p{i:04d}" for i in range(players)],
            "cutoff": pd.Timestamp("2026-03-01", tz="UTC"),
            "sessions_7d": np.arange(players, dtype=float) + offset,
            "accuracy_28d": np.where(np.arange(players) % 2 == 0, np.nan, 0.5),
        }
    )


@pytest.fixture
def store(aws_endpoint: str) -> DynamoDBFeatureStore:
    created = DynamoDBFeatureStore(
        "playerguard-features", resource=boto3.resource("dynamodb", region_name="us-east-1")
    )
    created.create_table()
    return created


def test_write_and_lookup_more_than_one_batch(store: DynamoDBFeatureStore) -> None:
    assert store.write(features(230)) == 230
    found = store.lookup([f"p{i:04d}" for i in range(230)] + ["nobody"])
    assert len(found) == 230
    assert found["p0101"] == {"sessions_7d": 101.0, "accuracy_28d": 0.5}
    assert math.isnan(found["p0100"]["accuracy_28d"])


def test_a_second_write_overwrites_players(store: DynamoDBFeatureStore) -> None:
    store.write(features(3))
    store.write(features(2, offset=10.0))
    found = store.lookup(["p0000", "p0002"])
    assert found["p0000"]["sessions_7d"] == 10.0 and found["p0002"]["sessions_7d"] == 2.0
    item = (
        boto3.resource("dynamodb", region_name="us-east-1")
        .Table("playerguard-features")
        .get_item(Key={"player_id": "p0001"})["Item"]
    )
    assert item["cutoff"] == "2026-03-01T00:00:00+00:00"


def test_builds_its_resource_lazily_and_rejects_duplicates(aws_endpoint: str) -> None:
    lazy = DynamoDBFeatureStore("lazy-features", region="us-east-1")
    assert lazy._resource is None
    lazy.create_table()
    assert lazy._resource is not None
    with pytest.raises(DataError, match="appears more than once"):
        lazy.write(pd.concat([features(2), features(2)]))
    assert lazy.lookup(["p0000"]) == {}


def test_the_aws_backend_materialises_the_snapshot_into_its_online_table(store: DynamoDBFeatureStore) -> None:
    settings = Settings(backend="aws", region="us-east-1", online_table=store.table_name)
    assert materialize_snapshot(settings, features(12)) == "DynamoDB table playerguard-features (12 players)"
    assert store.lookup(["p0011"])["p0011"]["sessions_7d"] == 11.0
    with pytest.raises(ConfigError, match="PLAYERGUARD_ONLINE_TABLE"):
        materialize_snapshot(Settings(backend="aws", region="us-east-1"), features(1))
