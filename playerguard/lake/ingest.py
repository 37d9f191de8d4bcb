"""`playerguard ingest`: a studio's own CSV, JSON lines or Parquet files into the lake.

Each file is read in batches (CSV and JSON lines by ~64 MB blocks, Parquet by row batches), each batch is
mapped (`mapping.py`), conformed (`envelope.conform`) and staged, and the file is committed as one append:
a crash or a bad mapping part-way leaves the lake as it was, and memory stays at a couple of batches
whatever the file's size. Rows that cannot even be parsed (a CSV row with the wrong number of fields, a line that is
not a JSON object) are rejected like any other bad row; every row read is added, a duplicate, or rejected.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq

from playerguard.backends import backend_for
from playerguard.errors import ConfigError, DataError
from playerguard.lake.base import EventLake
from playerguard.lake.envelope import REJECTED_ROWS_SCHEMA, Conformed, TimeRange, conform
from playerguard.lake.mapping import ColumnPlan, Mapping, load_mapping, plan_columns
from playerguard.lake.source_lines import (
    csv_row_lines,
    newline_count,
    nonblank_lines,
    split_swallowed_row,
    valid_row_lines,
)
from playerguard.settings import Settings

BLOCK_BYTES = 64 << 20
PARQUET_BATCH_ROWS = 1 << 20
FORMATS = {
    ".csv": "csv",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class IngestResult:
    """What ingesting one file did. `rows_read == added + duplicates + rejected`."""

    path: str
    rows_read: int
    added: int
    duplicates: int
    rejected: int
    rejected_location: str | None


@dataclass(frozen=True)
class SourceBatch:
    """Rows read from a file (source columns) and rows that could not be parsed at all. `row_numbers`, when
    the file has lines, works out the line each row starts on (called only if a row is rejected)."""

    rows: pa.Table
    unparsed: pa.Table
    row_numbers: Callable[[], np.ndarray | None] | None = None


def file_format(path: Path) -> str:
    """csv, json or parquet, from the file name (a trailing .gz is allowed for csv and json)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and FORMATS.get(suffixes[-1]) == "parquet":
            suffixes = []
    kind = FORMATS.get(suffixes[-1]) if suffixes else None
    if kind is None:
        raise ConfigError(
            f"{path}: unknown file type; use .csv, .jsonl / .ndjson / .json or .parquet (csv/json may be .gz)"
        )
    return kind


def _unparsed(texts: list[str], reasons: list[str], numbers: list[int | None] | None = None) -> pa.Table:
    """Rejected rows for raw text that never became a row (kept as a JSON string)."""
    return pa.table(
        {
            "row_number": pa.array(numbers or [None] * len(texts), pa.int64()),
            "row": pa.array([json.dumps(t, ensure_ascii=False) for t in texts], pa.string()),
            "reason": pa.array(reasons, pa.string()),
        },
        schema=REJECTED_ROWS_SCHEMA,
    )


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise DataError(f"{path} is empty (no header row)")
    return header


def _csv_blocks(path: Path, block_bytes: int) -> Iterator[memoryview]:
    """The file in blocks of whole rows: each cut at a line end outside quotes (an even number of quote
    marks before it; doubled quotes inside a quoted field keep the count even)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        carry = b""
        while True:
            data = handle.read(block_bytes)
            if not data:
                if carry.strip():
                    yield memoryview(carry)
                return
            if carry:
                data = carry + data
            cut = data.rfind(b"\n")
            while cut >= 0 and data.count(b'"', 0, cut) % 2:
                cut = data.rfind(b"\n", 0, cut)
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1 :]
            if carry and handle.seekable() and not isinstance(handle, gzip.GzipFile):
                handle.seek(-len(carry), io.SEEK_CUR)  # re-read the partial row rather than copy the block
                carry = b""
            yield memoryview(data)[: cut + 1]


def _csv_batches(path: Path, columns: list[str], block_bytes: int) -> Iterator[SourceBatch]:
    """Each block parsed by pyarrow (in parallel within the block); the header is the first block's first row.
    A malformed row that spans lines (an unterminated quote) is read again line by line."""
    first_line = 1
    for index, block in enumerate(_csv_blocks(path, block_bytes)):
        invalid: list[pcsv.InvalidRow] = []

        def keep_aside(row: pcsv.InvalidRow, invalid: list[pcsv.InvalidRow] = invalid) -> str:
            invalid.append(row)
            return "skip"

        rows = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(block)),
            # One thread: the next block is read while the caller works on this one (see _prefetched).
            read_options=pcsv.ReadOptions(
                column_names=columns, skip_rows=1 if index == 0 else 0, use_threads=False
            ),
            parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=keep_aside),
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in columns},
                strings_can_be_null=True,
                null_values=[""],
                quoted_strings_can_be_null=False,
            ),
        )
        yield _csv_batch(rows, invalid, block, first_line, header=index == 0)
        first_line += newline_count(block)


def _csv_batch(
    rows: pa.Table, invalid: list[pcsv.InvalidRow], block: memoryview, first_line: int, *, header: bool
) -> SourceBatch:
    """The rows of a block, its malformed rows with their lines, and rows rescued from a swallowing quote."""
    if not invalid:
        return SourceBatch(
            rows, _unparsed([], []), lambda: _kept_lines(block, first_line, header, rows.num_rows)
        )
    row_lines = csv_row_lines(block, first_line)
    numbers = [r.number for r in invalid]
    lines = [int(row_lines[n - 1]) if n and n <= len(row_lines) else None for n in numbers]
    kept = valid_row_lines(row_lines, numbers, header) if None not in numbers else None
    kept = kept if kept is not None and len(kept) == rows.num_rows else None
    texts, reasons, bad_lines = [], [], []
    rescued: list[list[str]] = []
    rescued_lines: list[int] = []
    for row, line in zip(invalid, lines, strict=True):
        if "\n" in row.text and line is not None:
            good, offsets, bad = split_swallowed_row(row.text, row.expected_columns)
            rescued += good
            rescued_lines += [line + offset for offset in offsets]
            for offset, text, reason in bad:
                texts.append(text)
                reasons.append(reason)
                bad_lines.append(line + offset)
            continue
        texts.append(row.text)
        reasons.append(f"malformed CSV row: {row.actual_columns} fields, expected {row.expected_columns}")
        bad_lines.append(line)
    if rescued:
        extra = pa.table(
            {
                name: pa.array([cells[i] or None for cells in rescued], pa.string())
                for i, name in enumerate(rows.column_names)
            }
        )
        rows = pa.concat_tables([rows, extra.cast(rows.schema)])
    numbering = None
    if kept is not None:
        every = np.concatenate([kept, np.array(rescued_lines, dtype=np.int64)])
        numbering = lambda: every
    return SourceBatch(rows, _unparsed(texts, reasons, bad_lines), numbering)


def _kept_lines(block: memoryview, first_line: int, header: bool, count: int) -> np.ndarray | None:
    """The line of each row the reader kept; None when stray quote marks leave the lines unclear."""
    kept = valid_row_lines(csv_row_lines(block, first_line), [], header)
    return kept if kept is not None and len(kept) == count else None


def _prefetched(batches: Iterator[SourceBatch]) -> Iterator[SourceBatch]:
    """`batches`, with the next one read on a background thread while the caller works on this one."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        upcoming = pool.submit(next, batches, None)
        while (batch := upcoming.result()) is not None:
            upcoming = pool.submit(next, batches, None)
            yield batch


def _json_blocks(path: Path, block_bytes: int) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole lines, and the 1-based line number each starts at."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    line = 1
    with opener(path, "rb") as handle:
        carry = b""
        while True:
            data = handle.read(block_bytes)
            if not data:
                if carry.strip():
                    yield carry, line
                return
            data = carry + data
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            block, carry = data[: cut + 1], data[cut + 1 :]
            yield block, line
            line += block.count(b"\n")


def _check_json_lines(path: Path) -> None:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        start = handle.read(4096).lstrip()
    if start.startswith(b"["):
        raise ConfigError(f"{path} holds a JSON array; ingest reads JSON lines (one object per line)")


def _json_batch(block: bytes, first_line: int) -> SourceBatch:
    try:
        rows = pjson.read_json(io.BytesIO(block), read_options=pjson.ReadOptions(block_size=len(block) + 1))
        return SourceBatch(
            rows, REJECTED_ROWS_SCHEMA.empty_table(), lambda: nonblank_lines(block, first_line)
        )
    except pa.ArrowInvalid:
        pass  # mixed types in a column, or a bad line: sort it out line by line
    records: list[dict] = []
    record_lines: list[int] = []
    bad_texts: list[str] = []
    bad_lines: list[int | None] = []
    for offset, line in enumerate(block.split(b"\n")):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict):
            records.append(record)
            record_lines.append(first_line + offset)
        else:
            bad_texts.append(line.decode("utf-8", errors="replace"))
            bad_lines.append(first_line + offset)
    reasons = ["malformed JSON line (not a JSON object)"] * len(bad_texts)
    numbers = np.array(record_lines, dtype=np.int64)
    return SourceBatch(_records_table(records), _unparsed(bad_texts, reasons, bad_lines), lambda: numbers)


def _records_table(records: list[dict]) -> pa.Table:
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = {}
    for name in names:
        values = [record.get(name) for record in records]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            columns[name] = pa.array([_as_text(v) for v in values], pa.string())
    if not columns:  # lines like {}: rows without columns
        return pa.table({"_": pa.nulls(len(records))}).drop_columns(["_"])
    return pa.table(columns)


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[SourceBatch]:
    empty = REJECTED_ROWS_SCHEMA.empty_table()
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        yield SourceBatch(pa.Table.from_batches([batch]), empty)


def _with_unparsed(conformed: Conformed, unparsed: pa.Table) -> Conformed:
    if unparsed.num_rows == 0:
        return conformed
    return dataclasses.replace(conformed, rejected_rows=pa.concat_tables([conformed.rejected_rows, unparsed]))


ALL_REJECTED_MIN_ROWS = 1000


def _check_not_all_rejected(path: Path, rows: int, conformed: Conformed) -> None:
    """Every row of a first batch failing the same way is a mapping mistake, not bad data: say so instead
    of filling the rejected table."""
    if rows < ALL_REJECTED_MIN_ROWS or conformed.table.num_rows:
        return
    reasons = set(conformed.rejected_rows.column("reason").to_pylist())
    if len(reasons) == 1:
        reason = reasons.pop()
        hint = " (is timestamp_format right?)" if "timestamp" in reason else ""
        example = conformed.rejected_rows.column("row")[0].as_py()[:200]
        raise ConfigError(
            f"{path.name}: all of the first {rows:,} rows are rejected ({reason}); check the mapping{hint}. "
            f"First row: {example}"
        )


def ingest_file(
    lake: EventLake,
    path: Path,
    mapping: Mapping,
    *,
    block_bytes: int = BLOCK_BYTES,
    time_range: TimeRange | None = None,
) -> IngestResult:
    """Ingest one file as one atomic, idempotent append (rows outside `time_range` are rejected)."""
    path = Path(path)
    kind = file_format(path)
    known = lake.attribute_types()
    for name, forced in mapping.attribute_types.items():
        if known.get(name, forced) != forced:
            raise ConfigError(
                f"mapping types: {name!r} is {forced} but the lake already holds it as {known[name]}"
            )
    with _naming_read_errors(path):
        if kind == "csv":
            columns = _csv_header(path)
            plan: ColumnPlan | None = plan_columns(mapping, columns, path.name)
            batches = _csv_batches(path, columns, block_bytes)
        elif kind == "parquet":
            plan = plan_columns(mapping, pq.ParquetFile(path).schema_arrow.names, path.name)
            batches = _parquet_batches(path, PARQUET_BATCH_ROWS)
        else:
            _check_json_lines(path)
            plan = None
            batches = (_json_batch(block, line) for block, line in _json_blocks(path, block_bytes))
    return _ingest_batches(lake, path, mapping, plan, _read_checked(path, _prefetched(batches)), time_range)


@contextmanager
def _naming_read_errors(path: Path) -> Iterator[None]:
    """A file that cannot be read is the user's to fix: one line naming it (lake errors pass untouched)."""
    try:
        yield
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as error:
        raise DataError(f"cannot read {path}: {str(error).splitlines()[0]}") from None


def _read_checked(path: Path, batches: Iterator[SourceBatch]) -> Iterator[SourceBatch]:
    while True:
        with _naming_read_errors(path):
            batch = next(batches, None)
        if batch is None:
            return
        yield batch


def _ingest_batches(
    lake: EventLake,
    path: Path,
    mapping: Mapping,
    plan: ColumnPlan | None,
    batches: Iterator[SourceBatch],
    time_range: TimeRange | None = None,
) -> IngestResult:
    rows_read = parsed = 0
    never_seen = set(mapping.columns.values())
    with lake.begin(str(path)) as append:
        for batch in batches:
            batch_plan = plan or plan_columns(mapping, batch.rows.column_names, path.name, partial=True)
            if plan is None:
                never_seen &= set(batch_plan.missing)
            conformed = conform(
                batch_plan.apply(batch.rows),
                {**append.attribute_types(), **mapping.attribute_types},
                path.name,
                timestamp_format=mapping.timestamp_format,
                raw=batch.rows,
                first_row=parsed,
                time_range=time_range,
                row_numbers=batch.row_numbers,
            )
            if parsed == 0:
                _check_not_all_rejected(path, batch.rows.num_rows, conformed)
            append.add(_with_unparsed(conformed, batch.unparsed))
            parsed += batch.rows.num_rows
            rows_read += batch.rows.num_rows + batch.unparsed.num_rows
        if plan is None and parsed and never_seen:
            column = min(never_seen)
            target = next(t for t, s in mapping.columns.items() if s == column)
            raise ConfigError(
                f"mapping column {target!r} names source column {column!r}, which {path.name} does not have"
            )
        result = append.commit()
    if (
        result.rows != rows_read
    ):  # a bug, not bad input: every row read must be added, a duplicate or rejected
        raise RuntimeError(f"{path}: {rows_read} rows read but {result.rows} accounted for")
    return IngestResult(
        str(path), rows_read, result.added, result.duplicates, result.rejected, result.rejected_location
    )


def ingest(
    settings: Settings,
    paths: list[Path],
    mapping_path: Path | None = None,
    *,
    lake: EventLake | None = None,
) -> list[IngestResult]:
    """Ingest files into the lake the settings point at, each as its own append."""
    mapping = load_mapping(mapping_path) if mapping_path else Mapping()
    for path in paths:
        file_format(Path(path))
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file")
    lake = lake or backend_for(settings).lake()
    time_range = TimeRange(settings.event_time_earliest, settings.event_time_max_ahead)
    return [ingest_file(lake, Path(path), mapping, time_range=time_range) for path in paths]
