"""Staging one append before it is committed: per-day Parquet files, duplicate resolution, rejected rows.

Both lakes stage an append the same way in a local directory: each batch is split by `event_date` and
written to one file per day (a day's writer stays open across batches, so a file arriving in chunks still
makes one file per day). At commit, `resolve_day` reads back only the `event_id` column of a day's files
and settles duplicates against the ids already in that day's partition; a day's file is kept as written
unless rows have to go (or the day was spread over several files), in which case it is rewritten once.
Memory stays at about two batches (one being prepared, one being written) plus, at commit, one day's ids,
whatever the size of the file.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playerguard.lake.envelope import PARTITION_COLUMN, REJECTED_ROWS_SCHEMA
from playerguard.lake.event_ids import repeat_id
from playerguard.lake.parsing import single

REJECTED_SCHEMA = pa.schema(
    [
        ("rejected_id", pa.string()),
        ("source", pa.string()),
        ("row_number", pa.int64()),
        ("row", pa.string()),
        ("reason", pa.string()),
        ("rejected_at", pa.timestamp("us", tz="UTC")),
    ]
)


def _write_options(schema: pa.Schema) -> dict:
    """Parquet options for event files: event ids are unique hex, so neither a dictionary nor compression
    would gain anything but CPU time."""
    others = [name for name in schema.names if name != "event_id"]
    return {
        "use_dictionary": others,
        "compression": {name: "snappy" if name in others else "none" for name in schema.names},
    }


@dataclass
class StagedFile:
    """One staged Parquet file of a day, and which of its rows carry derived ids."""

    path: Path
    schema: pa.Schema
    derived: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class DayOutcome:
    """What committing one day of an append comes to: the files to publish and the row counts."""

    files: list[Path]
    added: int
    duplicates: int


class Stage:
    """The staged files of one append, in `directory` (which the caller creates and removes).

    Parquet encoding runs on one background thread while the caller prepares the next batch; at most one
    batch waits for it.
    """

    def __init__(self, directory: Path, batch: str, max_open_files: int = 64) -> None:
        self.directory = Path(directory)
        self.batch = batch
        self.days: dict[str, list[StagedFile]] = {}
        self._open: OrderedDict[str, pq.ParquetWriter] = OrderedDict()
        self._max_open = max_open_files
        self._rejected: list[Path] = []
        self._files = 0
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage-writer")
        self._pending: list[Future] = []

    def add(self, table: pa.Table, derived: np.ndarray) -> None:
        """Stage conformed rows (lake layout, `event_date` included), split by day."""
        self._wait()
        if table.num_rows == 0:
            return
        encoded = pc.dictionary_encode(single(table.column(PARTITION_COLUMN)))
        codes = np.asarray(encoded.indices)
        body = table.drop_columns([PARTITION_COLUMN])
        if np.any(codes[1:] < codes[:-1]):
            order = np.argsort(codes, kind="stable")
            codes, derived = codes[order], derived[order]
            body = body.take(pa.array(order))
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        days = encoded.dictionary.to_pylist()
        for start, end in zip(starts, ends, strict=True):
            day = days[codes[start]]
            rows = body.slice(start, end - start)
            writer = self._writer(day, rows.schema)
            self._pending.append(self._writes.submit(writer.write_table, rows))
            self.days[day][-1].derived.append(derived[start:end])

    def _wait(self) -> None:
        """Wait for the queued writes, raising the first error one of them met."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def _writer(self, day: str, schema: pa.Schema) -> pq.ParquetWriter:
        writer = self._open.get(day)
        if writer is not None and self.days[day][-1].schema.equals(schema):
            self._open.move_to_end(day)
            return writer
        if writer is not None:
            self._pending.append(self._writes.submit(self._open.pop(day).close))
        if len(self._open) >= self._max_open:
            _, oldest = self._open.popitem(last=False)
            self._pending.append(self._writes.submit(oldest.close))
        self._files += 1
        path = self.directory / f"part-{self.batch}-{self._files:05d}.parquet"
        self.days.setdefault(day, []).append(StagedFile(path, schema))
        writer = pq.ParquetWriter(path, schema, **_write_options(schema))
        self._open[day] = writer
        return writer

    def add_rejected(self, rows: pa.Table) -> None:
        """Stage rejected rows (`REJECTED_ROWS_SCHEMA`)."""
        if rows.num_rows:
            path = self.directory / f"rejected-{len(self._rejected):05d}.parquet"
            pq.write_table(rows.cast(REJECTED_ROWS_SCHEMA), path)
            self._rejected.append(path)

    def close(self) -> None:
        """Finish every file (before commit, or before throwing the stage away)."""
        try:
            self._wait()
        finally:
            errors = []
            while self._open:
                try:
                    self._open.popitem()[1].close()
                except Exception as error:  # noqa: BLE001 - close them all, then report the first
                    errors.append(error)
            self._writes.shutdown(wait=True)
        if errors:
            raise errors[0]

    def rejected_rows(self) -> pa.Table:
        if not self._rejected:
            return REJECTED_ROWS_SCHEMA.empty_table()
        return pa.concat_tables(pq.read_table(path) for path in self._rejected)

    def resolve_day(self, day: str, existing_ids: pa.Array) -> DayOutcome:
        """Number repeats of identical rows, drop ids seen before (in this append or in `existing_ids`)."""
        files = self.days[day]
        chunks = [c for f in files for c in pq.read_table(f.path, columns=["event_id"]).column(0).chunks]
        ids = pa.concat_arrays(chunks) if chunks else pa.array([], pa.string())
        derived = np.concatenate([flags for f in files for flags in f.derived])
        encoded = pc.dictionary_encode(ids)
        if len(encoded.dictionary) == len(ids):  # the usual case: every id distinct
            final_ids, renumbered, keep = ids, False, np.ones(len(ids), dtype=bool)
        else:
            final_ids, renumbered = _number_repeats(ids, derived, np.asarray(encoded.indices))
            keep = _first_occurrences(final_ids)
        if len(existing_ids):
            keep &= ~np.asarray(pc.is_in(final_ids, value_set=existing_ids))
        added = int(keep.sum())
        if not renumbered and added == len(ids) and len(files) == 1:
            return DayOutcome([files[0].path], added, 0)
        table = (
            None
            if added == 0
            else pa.concat_tables([pq.read_table(f.path) for f in files], promote_options="default")
        )
        for f in files:
            f.path.unlink()
        if table is None:
            return DayOutcome([], 0, len(ids))
        table = table.set_column(table.column_names.index("event_id"), "event_id", final_ids)
        if added < len(ids):
            table = table.filter(pa.array(keep))
        pq.write_table(table, files[0].path, **_write_options(table.schema))
        return DayOutcome([files[0].path], added, len(ids) - added)


def _number_repeats(ids: pa.Array, derived: np.ndarray, codes: np.ndarray) -> tuple[pa.Array, bool]:
    """Give the k-th repeat (k >= 1) of a derived id `repeat_id(id, k)`: identical rows in one append are
    distinct events (two equal purchases on one day), and re-ingesting numbers them the same way again.
    `codes` are the ids' dictionary codes."""
    counts = np.bincount(codes)
    repeated = np.flatnonzero(derived & (counts[codes] > 1))
    if len(repeated) == 0:
        return ids, False
    seen: dict[str, int] = {}
    positions, replacements = [], []
    for position, value in zip(repeated, ids.take(pa.array(repeated)).to_pylist(), strict=True):
        occurrence = seen.get(value, 0)
        seen[value] = occurrence + 1
        if occurrence:
            positions.append(position)
            replacements.append(repeat_id(value, occurrence))
    if not positions:
        return ids, False
    mask = np.zeros(len(ids), dtype=bool)
    mask[positions] = True
    return pc.replace_with_mask(ids, pa.array(mask), pa.array(replacements, pa.string())), True


def _first_occurrences(ids: pa.Array) -> np.ndarray:
    """True at the first row of each distinct id."""
    encoded = pc.dictionary_encode(ids)
    if len(encoded.dictionary) == len(ids):
        return np.ones(len(ids), dtype=bool)
    _, first = np.unique(np.asarray(encoded.indices), return_index=True)
    keep = np.zeros(len(ids), dtype=bool)
    keep[first] = True
    return keep


def rejected_records(rows: pa.Table, source: str, existing_ids: pa.Array) -> tuple[pa.Table, int]:
    """Rejected rows as records of the rejected table, minus those it already holds; and the count kept.

    A record's id is a hash of the source's file name, row number, raw row, reason and how many identical
    records came before it in this append, so re-ingesting a file records nothing twice.
    """
    name = Path(source).name or source
    seen: dict[tuple, int] = {}
    ids = []
    for number, row, reason in zip(
        *(rows.column(c).to_pylist() for c in ("row_number", "row", "reason")), strict=True
    ):
        key = (number, row, reason)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        text = json.dumps([name, number, row, reason, occurrence])
        ids.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    table = pa.table(
        {
            "rejected_id": pa.array(ids, pa.string()),
            "source": pa.array([source] * rows.num_rows, pa.string()),
            "row_number": rows.column("row_number"),
            "row": rows.column("row"),
            "reason": rows.column("reason"),
            "rejected_at": pa.array(
                [datetime.now(UTC)] * rows.num_rows, REJECTED_SCHEMA.field("rejected_at").type
            ),
        },
        schema=REJECTED_SCHEMA,
    )
    if len(existing_ids) and table.num_rows:
        table = table.filter(pc.invert(pc.is_in(table.column("rejected_id"), value_set=existing_ids)))
    return table, table.num_rows
