"""The local online feature snapshot: a SQLite file, `<home>/online/features.sqlite`.

It is replaced atomically (written beside the target, then renamed), so a reader sees the old snapshot or
the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from playerguard.errors import DataError
from playerguard.features.online.base import feature_columns, parse_features, snapshot_rows

if TYPE_CHECKING:
    import pandas as pd

    from playerguard.settings import Settings

SNAPSHOT_NAME = Path("online") / "features.sqlite"
_CHUNK = 500


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

    @property
    def location(self) -> str:
        return str(self.path)

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
