"""The online feature snapshot the stream scorer reads: the latest features of every player, by player_id.

Locally it is a SQLite file, `<home>/online/features.sqlite`, replaced atomically (written beside the
target, then renamed), so a reader sees the old snapshot or the new one, never half of one. On AWS the
same rows go to a DynamoDB table (`dynamodb_store.DynamoDBFeatureStore`). Each row holds the cutoff and
the features as JSON; a lookup returns floats, NaN where a feature is undefined.

Reading needs neither numpy nor pandas (the stream handler's path stays light): they are imported by the
functions that write snapshots.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from playerguard.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from playerguard.settings import Settings

SNAPSHOT_NAME = Path("online") / "features.sqlite"
_CHUNK = 500


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a features or training frame: numeric, not player_id/cutoff/label_*."""
    import pandas as pd

    return [
        c
        for c in frame.columns
        if c not in ("player_id", "cutoff")
        and not c.startswith("label_")
        and pd.api.types.is_numeric_dtype(frame[c])
    ]


def snapshot_rows(frame: pd.DataFrame) -> Iterator[tuple[str, str, str]]:
    """(player_id, cutoff ISO text, features JSON with null for NaN) per row; one row per player required."""
    import numpy as np
    import pandas as pd

    if "player_id" not in frame.columns:
        raise DataError("the features frame has no player_id column")
    duplicated = frame["player_id"].duplicated()
    if duplicated.any():
        raise DataError(
            f"player {frame['player_id'][duplicated].iloc[0]!r} appears more than once; "
            "a snapshot takes one row per player (build features at a single cutoff)"
        )
    names = feature_columns(frame)
    values = frame[names].to_numpy(dtype="float64", na_value=np.nan)
    cutoffs = (
        pd.to_datetime(frame["cutoff"], utc=True).map(lambda c: c.isoformat())
        if "cutoff" in frame.columns
        else pd.Series("", index=frame.index)
    )
    for player, cutoff, row in zip(frame["player_id"].astype(str), cutoffs, values, strict=True):
        document = {name: (None if math.isnan(v) else float(v)) for name, v in zip(names, row, strict=True)}
        yield player, cutoff, json.dumps(document, separators=(",", ":"))


def parse_features(document: str) -> dict[str, float]:
    return {
        name: (math.nan if value is None else float(value)) for name, value in orjson.loads(document).items()
    }


class SqliteFeatureStore:
    """A SQLite snapshot of player features; `write` replaces the whole snapshot atomically.

    Reads share one read-only connection (opening one costs more than a lookup). A snapshot replaced
    since it was opened (another inode at the path) is reopened on the next read, so readers follow
    `write` as they did with a connection per call. `close` releases it.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._opened: tuple[int, int] | None = None  # (device, inode) of the file the connection reads
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    @classmethod
    def from_settings(cls, settings: Settings) -> SqliteFeatureStore:
        return cls(settings.home / SNAPSHOT_NAME)

    def write(self, features: pd.DataFrame) -> int:
        """Replace the snapshot with one row per player of `features`; returns the number of players."""
        rows = list(snapshot_rows(features))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".features-", suffix=".sqlite", dir=self.path.parent)
        os.close(handle)
        try:
            with sqlite3.connect(temporary) as con:
                con.execute(
                    "CREATE TABLE features (player_id TEXT PRIMARY KEY, cutoff TEXT, features TEXT NOT NULL)"
                )
                con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                con.executemany("INSERT INTO features VALUES (?, ?, ?)", rows)
                meta = {
                    "feature_names": json.dumps(feature_columns(features)),
                    "written_at": datetime.now(UTC).isoformat(),
                    "players": str(len(rows)),
                }
                con.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
            con.close()
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return len(rows)

    def _connect(self) -> sqlite3.Connection:
        """The shared connection, (re)opened when there is none or the snapshot file was replaced.
        Call with the lock held."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self._close()
            raise DataError(
                f"no feature snapshot at {self.path}; run `playerguard features build --snapshot` first"
            ) from None
        if self._connection is None or self._opened != (stat.st_dev, stat.st_ino):
            self._close()
            self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._opened = (stat.st_dev, stat.st_ino)
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection, self._opened = None, None

    def close(self) -> None:
        """Close the shared read connection (the next read opens a new one)."""
        with self._lock:
            self._close()

    def metadata(self) -> dict[str, str]:
        with self._lock:
            return dict(self._connect().execute("SELECT key, value FROM meta").fetchall())

    def lookup(self, player_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Features of each known player (unknown players are absent from the result)."""
        ids = list(dict.fromkeys(str(p) for p in player_ids))
        found: dict[str, dict[str, float]] = {}
        with self._lock:
            con = self._connect()
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT player_id, features FROM features WHERE player_id IN ({marks})"
                for player, document in con.execute(query, chunk):
                    found[player] = parse_features(document)
        return found


def materialize_snapshot(settings: Settings, features_frame: pd.DataFrame, path: Path | None = None) -> str:
    """Write `features_frame` (one row per player) as the online snapshot of the settings' backend: the
    local SQLite file (or `path`), or the DynamoDB table `online_table` for the aws backend. Returns where."""
    if settings.backend == "aws" and path is None:
        from playerguard.features.online.dynamodb import DynamoDBFeatureStore

        if not settings.online_table:
            raise ConfigError(
                "PLAYERGUARD_ONLINE_TABLE is not set: name the DynamoDB table of the online snapshot"
            )
        written = DynamoDBFeatureStore(settings.online_table, region=settings.region).write(features_frame)
        return f"DynamoDB table {settings.online_table} ({written:,} players)"
    store = SqliteFeatureStore(path) if path is not None else SqliteFeatureStore.from_settings(settings)
    written = store.write(features_frame)
    return f"{store.path} ({written:,} players)"


def lookup(
    settings: Settings, player_ids: Iterable[str], path: Path | None = None
) -> dict[str, dict[str, float]]:
    """Features of each known player from the local snapshot."""
    store = SqliteFeatureStore(path) if path is not None else SqliteFeatureStore.from_settings(settings)
    try:
        return store.lookup(player_ids)
    finally:
        store.close()
