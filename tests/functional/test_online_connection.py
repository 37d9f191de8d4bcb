"""The SQLite snapshot store keeps one read connection and follows a snapshot replaced under it."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.features.online.local import SqliteFeatureStore


def _features(value: float) -> pd.DataFrame:
    return pd.DataFrame({"player_id": ["a", "b"], "sessions_7d": [value, float("nan")]})


def test_one_connection_serves_lookups_and_follows_a_rewrite(tmp_path) -> None:
    store = SqliteFeatureStore(tmp_path / "features.sqlite")
    with pytest.raises(DataError, match="no feature snapshot"):
        store.lookup(["a"])
    store.write(_features(1.0))
    assert store.lookup(["a", "zz"]) == {"a": {"sessions_7d": 1.0}}
    connection = store._connection
    assert store.lookup(["a"])["a"]["sessions_7d"] == 1.0 and store._connection is connection  # reused
    SqliteFeatureStore(store.path).write(_features(2.0))  # another writer replaces the file
    assert store.lookup(["a"])["a"]["sessions_7d"] == 2.0
    assert store.metadata()["players"] == "2"
    store.close()
    assert store._connection is None and math.isnan(store.lookup(["b"])["b"]["sessions_7d"])  # reopened
    store.close()
