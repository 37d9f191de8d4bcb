"""The online snapshot in DynamoDB against moto's server: writes, overwrites, chunked lookups, NaN."""

from __future__ import annotations

import math

import boto3
import numpy as np
import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.features.dynamodb_store import DynamoDBFeatureStore

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
