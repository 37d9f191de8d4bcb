"""Materialise the online snapshot in the store of the settings' backend."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from playerguard.backends import backend_for
from playerguard.features.online.local import SqliteFeatureStore
from playerguard.settings import Settings

if TYPE_CHECKING:
    import pandas as pd


def materialize_snapshot(settings: Settings, features_frame: pd.DataFrame, path: Path | None = None) -> str:
    """Write `features_frame` (one row per player) as the online snapshot: the backend's store (a local
    SQLite file, or the DynamoDB table `online_table` on aws), or the SQLite file `path`. Returns where."""
    store = SqliteFeatureStore(path) if path is not None else backend_for(settings).online_store()
    written = store.write(features_frame)
    return f"{store.location} ({written:,} players)"
