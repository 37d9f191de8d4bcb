"""Arrow string columns built from integer codes with numpy, never from Python lists of strings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

ID_DIGITS = 10
"""Numbered ids are zero-padded to this many digits (wider only past 10^10), so they sort as numbers."""
_THREE_DIGITS = np.frombuffer("".join(f"{i:03d}" for i in range(1000)).encode(), np.uint8).reshape(1000, 3)


def consecutive_ids(prefix: str, first: int, count: int) -> pa.Array:
    """prefix + n zero-padded, for n = first, first + 1, ..., first + count - 1.

    Consecutive numbers repeat their last three digits every thousand and keep their leading digits for
    a thousand in a row, so the bytes are tiled and repeated rather than formatted one by one.
    """
    width = max(ID_DIGITS, len(str(first + count - 1)))
    head = np.frombuffer(prefix.encode(), np.uint8)
    row = head.size + width
    text = np.empty((count, row), np.uint8)
    text[:, : head.size] = head
    if count:
        r0 = first % 1000
        text[:, row - 3 :] = np.tile(_THREE_DIGITS, ((r0 + count) // 1000 + 1, 1))[r0 : r0 + count]
        high_first, high_last = first // 1000, (first + count - 1) // 1000
        leading = np.array([f"{h:0{width - 3}d}" for h in range(high_first, high_last + 1)], f"S{width - 3}")
        runs = np.full(high_last - high_first + 1, 1000)
        runs[0] -= r0
        runs[-1] = count - runs[:-1].sum()
        text[:, head.size : row - 3] = np.repeat(leading.view(np.uint8).reshape(-1, width - 3), runs, axis=0)
    offsets = np.arange(0, (count + 1) * row, row, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def from_codes(codes: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """dictionary[codes] as a plain string array."""
    return dictionary.take(pa.array(codes.astype(np.int32, copy=False)))


def sparse_from_codes(codes: np.ndarray, present: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """dictionary[codes] where `present`, null elsewhere; only the present rows are looked up."""
    rows = np.flatnonzero(present)
    taken = dictionary.take(pa.array(codes[rows].astype(np.int32, copy=False)))
    lengths = np.zeros(codes.size, dtype=np.int32)
    lengths[rows] = np.diff(np.frombuffer(taken.buffers()[1], np.int32, len(taken) + 1))
    offsets = np.zeros(codes.size + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    validity = np.packbits(present, bitorder="little")
    buffers = [pa.py_buffer(validity), pa.py_buffer(offsets), taken.buffers()[2] or pa.py_buffer(b"")]
    return pa.Array.from_buffers(pa.string(), codes.size, buffers, null_count=codes.size - rows.size)
