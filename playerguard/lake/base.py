"""The event lake port: what every lake offers, and the staged append both implementations share.

Implementations: `LocalLake` (local.py, a Parquet directory) and `S3Lake` (s3.py, S3 + Glue); the backend
picks one (`playerguard.backends`). An append is staged and committed once (`lake.begin(source)` → `add`
each batch → `commit`), so a file arriving in chunks is one atomic append. Appends are idempotent: an event
whose `event_id` is already in its day's partition is counted as a duplicate and skipped, and a rejected row
already recorded is not recorded again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Protocol, Self

import pandas as pd
import pyarrow as pa

from playerguard.errors import DataError
from playerguard.lake.envelope import Conformed, conform, conformed_table
from playerguard.lake.staging import Stage


@dataclass(frozen=True)
class AppendResult:
    """What one append did: rows added, rows already present, rows rejected and where they went.

    `added + duplicates + rejected` is every row the append was given.
    """

    added: int
    duplicates: int
    rejected: int
    rejected_location: str | None

    @property
    def rows(self) -> int:
        return self.added + self.duplicates + self.rejected


class LakeAppend(Protocol):
    """One staged append: `add` batches, then `commit` once (or `abort`). A context manager that aborts
    on exit unless committed."""

    def attribute_types(self) -> dict[str, str]: ...

    def add(self, conformed: Conformed) -> None: ...

    def commit(self) -> AppendResult: ...

    def abort(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc_info: object) -> None: ...


class EventLake(Protocol):
    """Where events live. Implementations: LocalLake, S3Lake."""

    def attribute_types(self) -> dict[str, str]: ...

    def begin(self, source: str) -> LakeAppend: ...

    def append_conformed(self, conformed: Conformed, source: str) -> AppendResult: ...

    def append_table(self, table: pa.Table, source: str = "table") -> AppendResult: ...


class StagedAppend:
    """The part of an append both lakes share: type checks and staging. Subclasses publish the stage."""

    def __init__(self, source: str, known_types: dict[str, str], stage: Stage) -> None:
        self.source = source
        self.stage = stage
        self._known = dict(known_types)
        self._new: dict[str, str] = {}
        self._finished = False

    def attribute_types(self) -> dict[str, str]:
        """The lake's attribute types plus those this append introduces."""
        return {**self._known, **self._new}

    def add(self, conformed: Conformed) -> None:
        """Stage a conformed batch (its rejected rows included)."""
        if self._finished:
            raise RuntimeError("this append is already committed or aborted")
        current = self.attribute_types()
        for name, kind in conformed.attribute_types.items():
            if current.get(name, kind) != kind:
                raise DataError(
                    f"attribute {name!r} is {current[name]} in the lake but {kind} in {self.source}"
                )
        self._new.update({k: v for k, v in conformed.attribute_types.items() if k not in self._known})
        self.stage.add(conformed.table, conformed.derived_ids)
        self.stage.add_rejected(conformed.rejected_rows)

    def commit(self) -> AppendResult:
        """Settle duplicates and publish everything staged, all or nothing."""
        if self._finished:
            raise RuntimeError("this append is already committed or aborted")
        try:
            self.stage.close()
            return self._publish()
        except BaseException:
            self._discard()
            raise
        finally:
            self._finished = True
            self._release()

    def abort(self) -> None:
        """Throw the staged batches away."""
        if self._finished:
            return
        self._finished = True
        try:
            # The stage is being thrown away: its write errors no longer matter.
            with contextlib.suppress(Exception):
                self.stage.close()
            self._discard()
        finally:
            self._release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.abort()

    def _publish(self) -> AppendResult:
        raise NotImplementedError

    def _discard(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        """Let go of whatever the append held (a lock, a temporary directory)."""


class AppendsInOneGo:
    """`append_conformed` and `append_table` for a lake with `begin`."""

    def begin(self, source: str) -> LakeAppend:
        raise NotImplementedError

    def append_conformed(self, conformed: Conformed, source: str) -> AppendResult:
        """Append conformed rows and record the rejected ones, as one append."""
        with self.begin(source) as append:
            append.add(conformed)
            return append.commit()

    def append_table(self, table: pa.Table, source: str = "table") -> AppendResult:
        """Append an Arrow table already in lake layout (e.g. from the simulator)."""
        return self.append_conformed(conformed_table(table), source)


def append_frame(lake: EventLake, frame: pd.DataFrame, source: str) -> AppendResult:
    """Conform a frame of raw rows to the envelope and append it."""
    return lake.append_conformed(conform(frame, lake.attribute_types(), source=source), source)
