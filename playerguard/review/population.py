"""Where a player's feature value sits in the population: the online feature snapshot
(`<home>/online/features.sqlite`, one row per player) read one feature at a time."""

from __future__ import annotations

import bisect
import math
import re
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_FEATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
QUANTILES: tuple[int, ...] = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class Placement:
    """A value against the population: its percentile (0–100), a few quantiles and how many players."""

    feature: str
    value: float
    percentile: float
    quantiles: dict[int, float]
    players: int


def place(values: list[float], value: float, feature: str = "") -> Placement | None:
    """`value` placed among sorted `values` (ties count half); None when there is nothing to compare."""
    if not values or value is None or math.isnan(value):
        return None
    below = bisect.bisect_left(values, value)
    equal = bisect.bisect_right(values, value) - below
    percentile = 100.0 * (below + 0.5 * equal) / len(values)
    last = len(values) - 1
    quantiles = {q: values[min(last, round(q / 100 * last))] for q in QUANTILES}
    return Placement(feature, float(value), percentile, quantiles, len(values))


class SnapshotPopulation:
    """Feature distributions from the snapshot; each feature's sorted values are cached until the
    snapshot file is replaced (it is swapped atomically, so a new inode or mtime means new values)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._cache: dict[tuple[str, int, int], list[float]] = {}
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.path.exists()

    def values(self, feature: str) -> list[float]:
        """The feature's non-missing values over all players, sorted; [] without a snapshot."""
        if not _FEATURE.match(feature) or not self.path.exists():
            return []
        stat = self.path.stat()
        key = (feature, stat.st_ino, stat.st_mtime_ns)
        with self._lock:
            if key not in self._cache:
                self._cache = {k: v for k, v in self._cache.items() if k[1:] == key[1:]}
                self._cache[key] = self._read(feature)
            return self._cache[key]

    def _read(self, feature: str) -> list[float]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT value FROM (SELECT json_extract(features, ?) AS value FROM features) "
                "WHERE value IS NOT NULL ORDER BY value",
                (f'$."{feature}"',),
            ).fetchall()
        except sqlite3.DatabaseError:
            return []
        finally:
            db.close()
        return [float(v) for (v,) in rows if isinstance(v, int | float)]

    def place(self, feature: str, value: float | None) -> Placement | None:
        if value is None:
            return None
        return place(self.values(feature), float(value), feature)
