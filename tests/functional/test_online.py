"""The local online snapshot: round trip, missing values, atomic replacement, lookups in chunks."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.features.online.local import SqliteFeatureStore
from playerguard.features.online.snapshot import materialize_snapshot
from playerguard.settings import Settings

CUTOFF = pd.Timestamp(datetime(2026, 3, 1, tzinfo=UTC))


def features(players: int, offset: float = 0.0) -> pd.DataFrame:
    ids = [f"p{i:04d}" for i in range(players)]
    return pd.DataFrame(
        {
            "player_id": ids,
            "cutoff": CUTOFF,
            "sessions_7d": np.arange(players, dtype=float) + offset,
            "accuracy_28d": np.where(np.arange(players) % 3 == 0, np.nan, 0.25),
            "label_churn": pd.array([1] * players, dtype="Int8"),  # labels are not features
        }
    )


def lookup(settings: Settings, player_ids: list[str]) -> dict[str, dict[str, float]]:
    store = SqliteFeatureStore.from_settings(settings)
    try:
        return store.lookup(player_ids)
    finally:
        store.close()


def test_snapshot_round_trip(settings: Settings) -> None:
    where = materialize_snapshot(settings, features(5))
    path = settings.home / "online" / "features.sqlite"
    assert where == f"{path} (5 players)"
    found = lookup(settings, ["p0001", "p0003", "nobody", "p0001"])
    assert set(found) == {"p0001", "p0003"}
    assert found["p0001"] == {"sessions_7d": 1.0, "accuracy_28d": 0.25}
    assert found["p0003"]["sessions_7d"] == 3.0 and math.isnan(found["p0003"]["accuracy_28d"])
    meta = SqliteFeatureStore(path).metadata()
    assert meta["feature_names"] == '["sessions_7d", "accuracy_28d"]' and meta["players"] == "5"


def test_lookup_of_many_players_and_replacement(settings: Settings) -> None:
    materialize_snapshot(settings, features(1200))
    found = lookup(settings, [f"p{i:04d}" for i in range(1200)])
    assert len(found) == 1200 and found["p1199"]["sessions_7d"] == 1199.0
    materialize_snapshot(settings, features(10, offset=100.0))
    found = lookup(settings, ["p0005", "p0500"])
    assert set(found) == {"p0005"} and found["p0005"]["sessions_7d"] == 105.0
    assert [p.name for p in (settings.home / "online").iterdir()] == ["features.sqlite"]


def test_a_failed_write_leaves_the_old_snapshot(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteFeatureStore.from_settings(settings)
    store.write(features(3))
    reader = sqlite3.connect(store.path)  # a reader holding the old file keeps reading it
    duplicated = pd.concat([features(2), features(2)])
    with pytest.raises(DataError, match="appears more than once"):
        store.write(duplicated)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(
        "playerguard.features.online.local.os.replace", broken
    )  # fails after the new file is written
    with pytest.raises(OSError, match="disk full"):
        store.write(features(7))
    monkeypatch.undo()
    assert store.lookup(["p0002"])["p0002"]["sessions_7d"] == 2.0 and store.metadata()["players"] == "3"
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["features.sqlite"]
    store.write(features(4, offset=10.0))
    assert reader.execute("SELECT count(*) FROM features").fetchone() == (3,)
    reader.close()
    assert store.lookup(["p0003"])["p0003"]["sessions_7d"] == 13.0


def test_missing_snapshot_and_bad_frames(settings: Settings, tmp_path) -> None:
    with pytest.raises(DataError, match="no feature snapshot"):
        lookup(settings, ["p0001"])
    with pytest.raises(DataError, match="no player_id column"):
        materialize_snapshot(settings, features(2).drop(columns=["player_id"]), path=tmp_path / "x.sqlite")
