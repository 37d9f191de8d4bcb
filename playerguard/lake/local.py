"""The local event lake: a hive-partitioned Parquet directory.

Layout: `events/event_date=YYYY-MM-DD/*.parquet` (the date only in the directory name), `rejected/*.parquet`
and `schema.json` (attribute types). Read `events/` with `union_by_name`: files written before an attribute
existed lack its column. `S3Lake` (s3.py) is the same layout on S3.

Commit protocol: batches are staged under `.staging/<batch>/`; commit settles duplicates, writes a `COMMIT`
marker listing the moves, then renames the files into place. A crash before the marker leaves the lake as it
was (the stage is discarded by the next `recover`); a crash after it is rolled forward by the next `recover`
(every reader of the lake calls it). Appends hold an exclusive lock on `<lake>/.lock`, so two writers never
interleave. Renames are not fsync'ed: this protects against a crashed process, not a lost disk cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from playerguard.lake.base import AppendResult, AppendsInOneGo, StagedAppend
from playerguard.lake.envelope import PARTITION_COLUMN
from playerguard.lake.staging import Stage, rejected_records
from playerguard.settings import Settings

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer at a time is then the user's business
    fcntl = None  # type: ignore[assignment]

class _FileLock:
    """An exclusive advisory lock on a file (a no-op where fcntl does not exist)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def acquire(self, blocking: bool = True) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a")  # noqa: SIM115 - held for the length of an append
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                handle.close()
                return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            if fcntl is not None:
                fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


class LocalLake(AppendsInOneGo):
    """A hive-partitioned Parquet lake in a directory, with crash-safe, idempotent appends."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLake:
        return cls(settings.lake_dir)

    def event_days(self) -> list[str]:
        """The `event_date=…` partitions that hold events."""
        if not self.events_dir.exists():
            return []
        return [p.name for p in self.events_dir.glob("event_date=*") if any(p.glob("*.parquet"))]

    def fingerprint(self) -> str:
        """A hash of the event files (name, size, mtime) and the schema, for the pipeline's step cache."""
        files = sorted([*self.root.glob("events/*/*.parquet"), self.schema_path])
        listing = [
            (str(p.relative_to(self.root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.exists()
        ]
        return hashlib.sha256(json.dumps(listing).encode("utf-8")).hexdigest()

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    @property
    def rejected_dir(self) -> Path:
        return self.root / "rejected"

    @property
    def staging_dir(self) -> Path:
        return self.root / ".staging"

    @property
    def schema_path(self) -> Path:
        return self.root / "schema.json"

    def events_glob(self) -> str:
        return str(self.events_dir / "*" / "*.parquet")

    def rejected_glob(self) -> str:
        return str(self.rejected_dir / "*.parquet")

    def has_events(self) -> bool:
        return self.events_dir.exists() and any(self.events_dir.glob("*/*.parquet"))

    def has_rejected(self) -> bool:
        return self.rejected_dir.exists() and any(self.rejected_dir.glob("*.parquet"))

    def attribute_types(self) -> dict[str, str]:
        """Attribute name → NUMBER or STRING, for every attribute the lake has."""
        self.recover()
        return self._read_types()

    def _read_types(self) -> dict[str, str]:
        if not self.schema_path.exists():
            return {}
        return json.loads(self.schema_path.read_text())

    def recover(self) -> None:
        """Finish appends that crashed after their commit point, discard those that crashed before it.

        Does nothing while another process is appending (its stage is live, not crashed).
        """
        if not self.staging_dir.exists():
            return
        lock = _FileLock(self.root / ".lock")
        if not lock.acquire(blocking=False):
            return
        try:
            self._recover()
        finally:
            lock.release()

    def _recover(self) -> None:
        if not self.staging_dir.exists():
            return
        for stage in sorted(self.staging_dir.iterdir()):
            marker = stage / "COMMIT"
            if marker.exists():
                _apply_moves(self.root, stage, json.loads(marker.read_text()))
            shutil.rmtree(stage, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.staging_dir.rmdir()

    def partition_ids(self, day: str) -> pa.Array:
        """The event ids already in one day's partition."""
        files = sorted((self.events_dir / f"{PARTITION_COLUMN}={day}").glob("*.parquet"))
        return _column_of(files, "event_id")

    def rejected_ids(self) -> pa.Array:
        """The ids of every rejected row recorded so far."""
        return _column_of(
            sorted(self.rejected_dir.glob("*.parquet")) if self.rejected_dir.exists() else [], "rejected_id"
        )

    def begin(self, source: str) -> LocalAppend:
        """Start an append (takes the lake's lock until commit or abort)."""
        return LocalAppend(self, source)


def _column_of(files: list[Path], column: str) -> pa.Array:
    chunks = [chunk for path in files for chunk in pq.read_table(path, columns=[column]).column(0).chunks]
    return pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())


def _apply_moves(root: Path, stage: Path, moves: list[list[str]]) -> None:
    for source, target in moves:
        if (stage / source).exists():
            (root / target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / source, root / target)


class LocalAppend(StagedAppend):
    """An append to a LocalLake, staged under `.staging/<batch>/` while holding the lake's lock."""

    def __init__(self, lake: LocalLake, source: str) -> None:
        self.lake = lake
        self._lock = _FileLock(lake.root / ".lock")
        self._lock.acquire()
        try:
            lake._recover()
            batch = uuid.uuid4().hex
            directory = lake.staging_dir / batch
            directory.mkdir(parents=True)
            super().__init__(source, lake._read_types(), Stage(directory, batch))
        except BaseException:
            self._lock.release()
            raise

    def _publish(self) -> AppendResult:
        directory = self.stage.directory
        moves: list[tuple[str, str]] = []
        added = duplicates = 0
        for day in sorted(self.stage.days):
            outcome = self.stage.resolve_day(day, self.lake.partition_ids(day))
            added += outcome.added
            duplicates += outcome.duplicates
            moves += [(p.name, f"events/{PARTITION_COLUMN}={day}/{p.name}") for p in outcome.files]
        rows = self.stage.rejected_rows()
        records, recorded = rejected_records(rows, self.source, self.lake.rejected_ids())
        if recorded:
            pq.write_table(records, directory / "rejected.parquet")
            moves.append(("rejected.parquet", f"rejected/part-{self.stage.batch}.parquet"))
        types = self.attribute_types()
        if types != self._known:
            (directory / "schema.json").write_text(json.dumps(types, sort_keys=True, indent=1))
            moves.append(("schema.json", "schema.json"))
        marker = directory / "COMMIT.tmp"
        marker.write_text(json.dumps(moves))
        os.replace(marker, directory / "COMMIT")  # the commit point
        _apply_moves(self.lake.root, directory, [list(m) for m in moves])
        self._remove_stage()
        location = str(self.lake.rejected_dir) if rows.num_rows else None
        return AppendResult(added, duplicates, rows.num_rows, location)

    def _discard(self) -> None:
        if (self.stage.directory / "COMMIT").exists():
            return  # past the commit point: the next recover() finishes the moves
        self._remove_stage()

    def _remove_stage(self) -> None:
        shutil.rmtree(self.stage.directory, ignore_errors=True)
        with contextlib.suppress(OSError):  # left in place while another stage is in it
            self.lake.staging_dir.rmdir()

    def _release(self) -> None:
        self._lock.release()
