"""Deterministic event ids from row content, vectorised.

An event without a source id gets a 128-bit id (32 hex digits) computed from its typed values, so the same
row ingested twice (or from two overlapping exports, or once from CSV and once from Parquet) gets the same
id and the lake skips the repeat. The hash is column-wise rather than per row:

- each present value gets two 64-bit lanes keyed by its column's name: text the BLAKE2b digest of each
  distinct value, looked up through Arrow's dictionary encoding; numbers and timestamps their IEEE /
  integer bits through the murmur3 finaliser (a bijection: distinct values never share a lane);
- a row's lanes are combined by XOR, then finalised once. Because each column's lanes are keyed by its
  name, rows that differ in one column always differ, and rows that differ in several collide with
  probability 2^-64 per lane. Nulls contribute nothing, so adding an empty column to an export (or
  reordering its columns) does not change any id.

This keeps hashing at a few numpy passes per column (no Python per row); only the distinct strings of each
text column pass through hashlib. The scheme is fixed here and must not change, or re-ingest would
duplicate. Identical rows in one append share an id until the lake numbers the repeats (`repeat_id`).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SEEDS = (np.uint64(0x243F6A8885A308D3), np.uint64(0x13198A2E03707344))
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_BYTE_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)


def _finalise(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser, in place: a bijection that spreads every input bit."""
    x ^= x >> _S33
    x *= _M1
    x ^= x >> _S33
    x *= _M2
    x ^= x >> _S33
    return x


def _name_lanes(name: str) -> tuple[np.uint64, np.uint64]:
    digest = hashlib.blake2b(name.encode(), digest_size=16, person=b"pg-column").digest()
    a, b = np.frombuffer(digest, dtype="<u8")
    return np.uint64(a), np.uint64(b)


def _text_lanes(values: pa.Array, name: str) -> tuple[np.ndarray, np.ndarray]:
    encoded = pc.dictionary_encode(values)
    key = name.encode()
    digests = b"".join(
        hashlib.blake2b(text.encode(), digest_size=16, key=key).digest()
        for text in encoded.dictionary.to_pylist()
    )
    lanes = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    if len(lanes) == 0:
        zeros = np.zeros(len(values), dtype=np.uint64)
        return zeros, zeros.copy()
    index = np.asarray(encoded.indices.fill_null(0), dtype=np.intp)
    return np.ascontiguousarray(lanes[:, 0]).take(index), np.ascontiguousarray(lanes[:, 1]).take(index)


def _bit_lanes(values: pa.Array, name: str) -> tuple[np.ndarray, np.ndarray]:
    if pa.types.is_floating(values.type):
        numbers = np.asarray(values.cast(pa.float64()).fill_null(0.0), dtype=np.float64) + 0.0  # -0.0 → 0.0
        bits = numbers.view(np.uint64)
    else:
        bits = np.asarray(values.cast(pa.int64()).fill_null(0), dtype=np.int64).view(np.uint64)
    seed_a, seed_b = _name_lanes(name)
    return _finalise(bits ^ seed_a), _finalise(bits ^ seed_b)


def _hex(a: np.ndarray, b: np.ndarray) -> pa.Array:
    """32 lower-case hex digits per row, built straight into an Arrow string buffer."""
    rows = len(a)
    raw = np.empty((rows, 2), dtype=">u8")
    raw[:, 0] = a
    raw[:, 1] = b
    text = _BYTE_HEX[raw.view(np.uint8)].view(np.uint8)  # each byte → its two hex digits
    offsets = np.arange(0, 32 * rows + 1, 32, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def derive_event_id(table: pa.Table) -> pa.Array:
    """A 32-hex-digit id per row of `table` (typed columns: text, numbers, timestamps) from its content."""
    rows = table.num_rows
    state_a = np.zeros(rows, dtype=np.uint64)
    state_b = np.zeros(rows, dtype=np.uint64)
    for name in table.column_names:
        column = table.column(name)
        values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if values.null_count == rows:
            continue
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            lane_a, lane_b = _text_lanes(values, name)
        else:
            lane_a, lane_b = _bit_lanes(values, name)
        if values.null_count:
            absent = ~np.asarray(values.is_valid())
            lane_a[absent] = 0
            lane_b[absent] = 0
        state_a ^= lane_a
        state_b ^= lane_b
    return _hex(_finalise(state_a ^ _SEEDS[0]), _finalise(state_b ^ _SEEDS[1]))


def repeat_id(event_id: str, occurrence: int) -> str:
    """The id of the `occurrence`-th repeat (1, 2, ...) of an identical row within one append."""
    return hashlib.blake2b(f"{event_id}#{occurrence}".encode(), digest_size=16).hexdigest()
