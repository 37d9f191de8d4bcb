"""The event lake port: where conformed events and rejected rows are kept.

`LocalLake` is a hive-partitioned Parquet directory (`events/event_date=YYYY-MM-DD/*.parquet`); `S3Lake`
(in `s3_lake.py`) is the same layout on S3, registered in the Glue catalog. Both append idempotently: an
event whose `event_id` is already in the lake is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playerguard.errors import DataError
from playerguard.features.envelope import NUMBER, PARTITION_COLUMN, STRING, Conformed, conform, to_arrow
from playerguard.settings import Settings

REJECTED_SCHEMA = pa.schema(
    [("source", pa.string()), ("row", pa.string()), ("reason", pa.string()), ("rejected_at", pa.timestamp("us", tz="UTC"))]
)


@dataclass(frozen=True)
class AppendResult:
    """What one append did: rows added, rows already present, rows rejected and where they went."""

    added: int
    duplicates: int
    rejected: int
    rejected_location: str | None


class EventLake(Protocol):
    """Where events live. Implementations: LocalLake, S3Lake."""

    def attribute_types(self) -> dict[str, str]: ...

    def append_conformed(self, conformed: Conformed, source: str) -> AppendResult: ...

    def append_table(self, table: pa.Table) -> AppendResult: ...


def _rejected_table(rejected: pd.DataFrame, source: str) -> pa.Table:
    now = datetime.now(UTC)
    return pa.table(
        {
            "source": pa.array([source] * len(rejected), pa.string()),
            "row": pa.array(rejected["row"].astype(object), pa.string()),
            "reason": pa.array(rejected["reason"].astype(object), pa.string()),
            "rejected_at": pa.array([now] * len(rejected), pa.timestamp("us", tz="UTC")),
        },
        schema=REJECTED_SCHEMA,
    )


def _types_of(table: pa.Table) -> dict[str, str]:
    from playerguard.features.envelope import attribute_columns

    return {
        name: NUMBER if pa.types.is_floating(table.schema.field(name).type) else STRING
        for name in attribute_columns(table.column_names)
    }


class LocalLake:
    """A hive-partitioned Parquet lake in a directory, with crash-safe, idempotent appends.

    An append stages its files under `.staging/<batch>/`, writes a commit marker, then moves the files into
    place. A crash before the marker leaves the lake as it was (the stage is discarded on next open); a crash
    after it is rolled forward on next open. Readers only ever glob the `events/` tree.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLake:
        return cls(settings.lake_dir)

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    @property
    def rejected_dir(self) -> Path:
        return self.root / "rejected"

    @property
    def _staging_dir(self) -> Path:
        return self.root / ".staging"

    @property
    def _schema_path(self) -> Path:
        return self.root / "schema.json"

    def events_glob(self) -> str:
        return str(self.events_dir / "*" / "*.parquet")

    def rejected_glob(self) -> str:
        return str(self.rejected_dir / "*.parquet")

    def has_events(self) -> bool:
        return self.events_dir.exists() and any(self.events_dir.glob("*/*.parquet"))

    def attribute_types(self) -> dict[str, str]:
        self.recover()
        if not self._schema_path.exists():
            return {}
        return json.loads(self._schema_path.read_text())

    def recover(self) -> None:
        """Finish or discard appends interrupted by a crash."""
        if not self._staging_dir.exists():
            return
        for stage in sorted(self._staging_dir.iterdir()):
            marker = stage / "COMMIT"
            if marker.exists():
                self._move_into_place(stage, json.loads(marker.read_text()))
            shutil.rmtree(stage, ignore_errors=True)

    def existing_event_ids(self, dates: list[str]) -> set[str]:
        ids: set[str] = set()
        for date in dates:
            for path in (self.events_dir / f"{PARTITION_COLUMN}={date}").glob("*.parquet"):
                ids.update(pq.read_table(path, columns=["event_id"]).column(0).to_pylist())
        return ids

    def append_conformed(self, conformed: Conformed, source: str) -> AppendResult:
        """Append conformed rows and record the rejected ones."""
        result = self._append(to_arrow(conformed.valid, conformed.attribute_types), conformed.rejected, source)
        return result

    def append_table(self, table: pa.Table) -> AppendResult:
        """Append an Arrow table that already has the envelope schema (e.g. from the simulator)."""
        return self._append(table, None, "")

    def _append(self, table: pa.Table, rejected: pd.DataFrame | None, source: str) -> AppendResult:
        self.recover()
        known = self.attribute_types()
        incoming = _types_of(table)
        clashes = {k: v for k, v in incoming.items() if k in known and known[k] != v}
        if clashes:
            name, kind = next(iter(clashes.items()))
            raise DataError(f"attribute {name!r} is {known[name]} in the lake but {kind} in this batch")
        dates = pc.unique(table.column(PARTITION_COLUMN)).to_pylist()
        existing = self.existing_event_ids(dates)
        before = table.num_rows
        if existing:
            table = table.filter(pc.invert(pc.is_in(table.column("event_id"), pa.array(list(existing)))))
        table = _drop_duplicate_ids(table)
        duplicates = before - table.num_rows

        batch = uuid.uuid4().hex
        stage = self._staging_dir / batch
        stage.mkdir(parents=True)
        moves: list[tuple[str, str]] = []
        if table.num_rows:
            pq.write_to_dataset(
                table,
                root_path=stage / "events",
                partition_cols=[PARTITION_COLUMN],
                basename_template=f"part-{batch}-{{i}}.parquet",
            )
            for path in (stage / "events").glob("*/*.parquet"):
                moves.append((str(path), str(self.events_dir / path.parent.name / path.name)))
        rejected_count = 0 if rejected is None else len(rejected)
        rejected_location = None
        if rejected_count:
            rejected_path = stage / f"rejected-{batch}.parquet"
            pq.write_table(_rejected_table(rejected, source), rejected_path)
            target = self.rejected_dir / f"part-{batch}.parquet"
            moves.append((str(rejected_path), str(target)))
            rejected_location = str(target)
        schema = {**known, **incoming}
        schema_stage = stage / "schema.json"
        schema_stage.write_text(json.dumps(schema, sort_keys=True))
        moves.append((str(schema_stage), str(self._schema_path)))
        marker = stage / "COMMIT"
        marker.write_text(json.dumps(moves))
        self._move_into_place(stage, moves)
        shutil.rmtree(stage, ignore_errors=True)
        return AppendResult(table.num_rows, duplicates, rejected_count, rejected_location)

    @staticmethod
    def _move_into_place(stage: Path, moves: list[list[str]] | list[tuple[str, str]]) -> None:
        for source, target in moves:
            if os.path.exists(source):
                Path(target).parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, target)


def _drop_duplicate_ids(table: pa.Table) -> pa.Table:
    ids = table.column("event_id")
    if pc.count_distinct(ids).as_py() == table.num_rows:
        return table
    first = pa.table({"i": pa.array(range(table.num_rows)), "id": ids}).group_by("id").aggregate([("i", "min")])
    return table.take(pc.sort_indices(first.column("i_min")))


def open_lake(settings: Settings) -> EventLake:
    """The lake the settings point at: local directory, or S3 + Glue for the aws backend."""
    if settings.backend == "aws":
        from playerguard.features.s3_lake import S3Lake

        return S3Lake.from_settings(settings)
    return LocalLake.from_settings(settings)


def append_frame(lake: EventLake, frame: pd.DataFrame, source: str) -> AppendResult:
    """Conform a frame of raw rows to the envelope and append it."""
    return lake.append_conformed(conform(frame, lake.attribute_types(), source=source), source)
