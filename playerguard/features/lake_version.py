"""Which version of a lake a query read, recorded so that the same rows can be read again.

Two kinds. An Iceberg table has versions of its own: the snapshot id, which time travel reads again while
the snapshot is kept. A plain Parquet directory (the native lake, a GAP v2 table) has none, so its version
is the list of files read, with each one's size and modification time, and their digest: reading that
list again gives the same rows as long as no listed file was removed or rewritten, and files added since
(new events) are simply not in it. `check_files` says which listed files changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from playerguard.errors import DataError

FileStamp = tuple[str, int, int]
"""A file's path relative to the lake root, its size in bytes and its modification time (ns)."""


@dataclass(frozen=True)
class LakeVersion:
    """The version of `table` a query read: an Iceberg snapshot, or a list of Parquet files."""

    kind: Literal["iceberg", "files"]
    table: str
    snapshot_id: int | None = None
    files: tuple[FileStamp, ...] = ()

    @property
    def digest(self) -> str:
        """The snapshot id, or a sha256 of the file list (partition directory, name, size, mtime)."""
        if self.kind == "iceberg":
            return str(self.snapshot_id)
        return hashlib.sha256(json.dumps([list(f) for f in self.files]).encode("utf-8")).hexdigest()

    def describe(self) -> str:
        if self.kind == "iceberg":
            return f"Iceberg table {self.table}, snapshot {self.snapshot_id}"
        return f"{self.table}: {len(self.files):,} Parquet files, digest {self.digest[:12]}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "snapshot_id": self.snapshot_id,
                "files": [list(f) for f in self.files], "digest": self.digest}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LakeVersion:
        """From `to_dict`'s output; DataError when it is not one."""
        try:
            files = tuple((str(p), int(s), int(m)) for p, s, m in data.get("files", ()))
            snapshot = data.get("snapshot_id")
            version = cls(
                data["kind"], str(data["table"]), None if snapshot is None else int(snapshot), files
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"not a recorded lake version: {error}") from None
        if version.kind not in ("iceberg", "files"):
            raise DataError(f"not a recorded lake version: unknown kind {version.kind!r}")
        return version


def list_files(root: Path, pattern: str, table: str) -> LakeVersion:
    """The Parquet files under `root` matching `pattern` (a glob relative to it), as a version of `table`."""
    root = Path(root)
    stamps = []
    for path in sorted(root.glob(pattern)):
        stat = path.stat()
        stamps.append((path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns))
    return LakeVersion("files", table, files=tuple(stamps))


def check_files(root: Path, version: LakeVersion) -> list[str]:
    """The absolute paths of `version`'s files; DataError naming the files that are gone or changed."""
    gone, changed, paths = [], [], []
    for relative, size, mtime in version.files:
        path = Path(root) / relative
        paths.append(str(path))
        if not path.exists():
            gone.append(relative)
        elif (path.stat().st_size, path.stat().st_mtime_ns) != (size, mtime):
            changed.append(relative)
    if gone or changed:
        first = (gone or changed)[0]
        raise DataError(
            f"the lake changed without history since version {version.digest[:12]} of {version.table}: "
            f"{len(gone)} of its {len(version.files)} files are gone and {len(changed)} rewritten "
            f"(e.g. {first}); those rows cannot be read again"
        )
    if not paths:
        raise DataError(f"version {version.digest[:12]} of {version.table} lists no files")
    return paths
