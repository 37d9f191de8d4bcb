"""Source line numbers of the rows read from a text file, so that every rejected row names the line it came
from (JSON lines and CSV alike), and the rows an unterminated CSV quote swallowed are read line by line.

Row numbers are worked out only when a batch has rejected rows: the happy path pays nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence

import numpy as np


def nonblank_lines(block: bytes, first_line: int) -> np.ndarray:
    """The line number of each non-blank line of `block` (the lines the JSON reader makes rows of)."""
    return np.array(
        [first_line + i for i, line in enumerate(block.split(b"\n")) if line.strip()], dtype=np.int64
    )


def newline_count(block: bytes | memoryview) -> int:
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == 10))


def csv_row_lines(block: bytes | memoryview, first_line: int) -> np.ndarray:
    """The line each CSV row of `block` starts on: rows end at a line end outside quotes (an even number of
    quote marks before it, as the block cutter assumes), and blank rows are skipped, as the reader skips them."""
    data = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    quotes = np.flatnonzero(data == 34)
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    starts = np.concatenate(([0], ends + 1))
    stops = np.concatenate((ends, [len(data)]))
    blank = np.array(
        [not bytes(data[start:stop]).strip() for start, stop in zip(starts, stops, strict=True)], dtype=bool
    )
    return (np.searchsorted(newlines, starts[~blank]) + first_line).astype(np.int64)


def split_swallowed_row(
    text: str, expected: int
) -> tuple[list[list[str]], list[int], list[tuple[int, str, str]]]:
    """A malformed CSV row spanning several lines (an unterminated quote swallows the lines after it), read
    again line by line: (rows that parse, their line offsets, and (offset, text, reason) for the others)."""
    rows: list[list[str]] = []
    offsets: list[int] = []
    bad: list[tuple[int, str, str]] = []
    for offset, line in enumerate(text.split("\n")):
        if not line.strip():
            continue
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error:
            bad.append((offset, line, "malformed CSV row: unterminated quote"))
            continue
        if len(fields) != expected:
            bad.append((offset, line, f"malformed CSV row: {len(fields)} fields, expected {expected}"))
            continue
        rows.append(fields)
        offsets.append(offset)
    return rows, offsets, bad


def valid_row_lines(all_rows: np.ndarray, invalid: Sequence[int], header: bool) -> np.ndarray | None:
    """Lines of the rows the CSV reader kept, from the lines of every row (`all_rows`) and the 1-based
    numbers the reader gave the rows it set aside (`invalid`); None when the two do not line up."""
    keep = np.ones(len(all_rows), dtype=bool)
    if header and len(keep):
        keep[0] = False
    for number in invalid:
        if not 1 <= number <= len(keep):
            return None
        keep[number - 1] = False
    return all_rows[keep]
