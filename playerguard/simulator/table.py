"""Assemble simulated sessions, matches, purchases and level-ups into Arrow record batches of events.

Events are gathered a chunk of consecutive session starts at a time. A chunk's batch holds, sorted by
time, the events stamped before the next chunk's first session start; later events (the tails of
sessions still running then) wait for a later batch, so the concatenated batches are sorted too.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from playerguard.lake.envelope import ENVELOPE_SCHEMA, PARTITION_COLUMN
from playerguard.simulator.combat import MAPS, RESULTS, LevelUps, MatchStats
from playerguard.simulator.model import CATALOG, SECONDS_PER_DAY, US_PER_SECOND
from playerguard.simulator.population import PLATFORMS, Population
from playerguard.simulator.sessions import Matches, Purchases, Sessions
from playerguard.simulator.strings import consecutive_ids, from_codes, sparse_from_codes

EVENT_TYPES = ("session_start", "session_end", "match_end", "purchase", "level_up")
_SESSION_START, _SESSION_END, _MATCH_END, _PURCHASE, _LEVEL_UP = range(len(EVENT_TYPES))
NUMBER_ATTRIBUTES = {  # attribute -> the event type carrying it
    "aim_speed": _MATCH_END,
    "amount": _PURCHASE,
    "deaths": _MATCH_END,
    "headshots": _MATCH_END,
    "hits": _MATCH_END,
    "kills": _MATCH_END,
    "level": _LEVEL_UP,
    "match_seconds": _MATCH_END,
    "reaction_ms": _MATCH_END,
    "session_seconds": _SESSION_END,
    "shots": _MATCH_END,
}
STRING_ATTRIBUTES = {
    "currency": (_PURCHASE, ("USD",)),
    "item_id": (_PURCHASE, tuple(name for name, _ in CATALOG)),
    "map": (_MATCH_END, MAPS),
    "result": (_MATCH_END, RESULTS),
}
RELEASE_EVERY_DAYS = 14
"""A new app version ships every this many days; each player installs it after their own lag."""
_US_PER_DAY = SECONDS_PER_DAY * US_PER_SECOND


def events_schema() -> pa.Schema:
    """The simulator's events schema: envelope, attributes in alphabetical order, then event_date."""
    attributes = [
        pa.field(name, pa.float64() if name in NUMBER_ATTRIBUTES else pa.string())
        for name in sorted([*NUMBER_ATTRIBUTES, *STRING_ATTRIBUTES])
    ]
    return pa.schema(list(ENVELOPE_SCHEMA) + attributes + [pa.field(PARTITION_COLUMN, pa.string())])


def _time_order(micros: np.ndarray) -> np.ndarray:
    """The stable sorting permutation of `micros`.

    When time offset and row number fit in one int64 together, sorting that unique key (a vectorised
    sort, several times faster than a stable argsort) yields the same permutation; else argsort.
    """
    if micros.size == 0:
        return np.zeros(0, dtype=np.int64)
    low = int(micros.min())
    index_bits = max(int(micros.size - 1).bit_length(), 1)
    if (int(micros.max()) - low).bit_length() + index_bits > 62:
        return np.argsort(micros, kind="stable")
    key = ((micros - low) << index_bits) | np.arange(micros.size, dtype=np.int64)
    return np.sort(key) & ((1 << index_bits) - 1)


@dataclass(frozen=True)
class _Block:
    """Events of one type as parallel numpy columns, with only the attributes that type carries."""

    micros: np.ndarray  # from the period start
    session: np.ndarray  # session number
    player: np.ndarray
    values: dict[str, np.ndarray]

    def take(self, index: np.ndarray) -> _Block:
        pick = self.micros.size != index.size  # all rows in order: nothing to copy
        return (
            self
            if not pick
            else _Block(
                self.micros[index],
                self.session[index],
                self.player[index],
                {name: column[index] for name, column in self.values.items()},
            )
        )

    def then(self, other: _Block) -> _Block:
        return _Block(
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in ("micros", "session", "player")),
            {name: np.concatenate([column, other.values[name]]) for name, column in self.values.items()},
        )


def _blocks(
    sessions: Sessions, matches: Matches, stats: MatchStats, purchases: Purchases, levels: LevelUps
) -> list[_Block]:
    """One block per EVENT_TYPES entry, in that order."""

    def block(seconds: np.ndarray, session: np.ndarray, **values: np.ndarray) -> _Block:
        micros = np.round(seconds * US_PER_SECOND).astype(np.int64)
        return _Block(micros, sessions.number[session], sessions.player[session], values)

    every = np.arange(sessions.start.size)
    return [
        block(sessions.start, every),
        block(sessions.end, every, session_seconds=sessions.end - sessions.start),
        block(
            matches.end,
            matches.session,
            aim_speed=stats.aim_speed,
            deaths=stats.deaths,
            headshots=stats.headshots,
            hits=stats.hits,
            kills=stats.kills,
            match_seconds=matches.seconds,
            reaction_ms=stats.reaction_ms,
            shots=stats.shots,
            map=stats.map,
            result=stats.win.astype(np.int8),
        ),
        block(
            purchases.time,
            purchases.session,
            amount=purchases.amount,
            item_id=purchases.item,
            currency=np.zeros(purchases.item.size, dtype=np.int8),
        ),
        block(levels.time, matches.session[levels.match], level=levels.level),
    ]


class EventAssembler:
    """Turns each chunk of simulated activity into a sorted record batch of events.

    The split into "now" and "later" happens in the caller's thread; building the batch (sorting, the
    string columns) runs on `executor`, so the next chunk can be simulated meanwhile. Batches are
    independent of one another (each knows its first event number), so the executor may build several
    at once.
    """

    def __init__(
        self,
        population: Population,
        player_ids: pa.Array,
        executor: Executor,
        *,
        seed: int,
        start: datetime,
        game_id: str,
    ):
        self._population = population
        self._player_ids = player_ids
        self._executor = executor
        self._seed = seed
        self._start = start
        self._epoch_us = int(start.timestamp()) * US_PER_SECOND
        self._game = pa.array([game_id])
        self._schema = events_schema()
        self._waiting: list[_Block] = []
        self._emitted = 0

    @property
    def schema(self) -> pa.Schema:
        return self._schema

    def add(
        self,
        sessions: Sessions,
        matches: Matches,
        stats: MatchStats,
        purchases: Purchases,
        levels: LevelUps,
        next_start: float,
    ) -> Future[pa.RecordBatch]:
        """The batch of events stamped before `next_start` (seconds; when the next chunk's first session
        starts): these sessions' and those still waiting from earlier chunks."""
        blocks = _blocks(sessions, matches, stats, purchases, levels)
        if self._waiting:
            blocks = [old.then(new) for old, new in zip(self._waiting, blocks)]
        boundary = np.round(next_start * US_PER_SECOND) if np.isfinite(next_start) else np.iinfo(np.int64).max
        self._waiting = [b.take(np.flatnonzero(b.micros >= boundary)) for b in blocks]
        return self._submit([b.take(np.flatnonzero(b.micros < boundary)) for b in blocks])

    def finish(self) -> Future[pa.RecordBatch] | None:
        """Events stamped after the last day (sessions running past the end of the period), if any."""
        waiting, self._waiting = self._waiting, []
        return self._submit(waiting) if any(b.micros.size for b in waiting) else None

    def _submit(self, blocks: list[_Block]) -> Future[pa.RecordBatch]:
        first_number = self._emitted
        self._emitted += sum(b.micros.size for b in blocks)
        return self._executor.submit(self._batch, blocks, first_number)

    def _batch(self, blocks: list[_Block], first_number: int) -> pa.RecordBatch:
        sizes = [b.micros.size for b in blocks]
        total = sum(sizes)
        order = _time_order(np.concatenate([b.micros for b in blocks]))
        position = np.empty(total, dtype=np.int64)
        position[order] = np.arange(total)
        ends = np.cumsum(sizes)
        placed = [position[end - size : end] for end, size in zip(ends, sizes)]  # where each block's rows go
        micros = np.concatenate([b.micros for b in blocks])[order]
        kind = np.repeat(np.arange(len(blocks), dtype=np.int8), sizes)[order]
        player = np.concatenate([b.player for b in blocks])[order]
        session = np.concatenate([b.session for b in blocks])[order]

        population = self._population
        day = micros // _US_PER_DAY
        first_day = int(day.min()) if total else 0
        version = np.maximum((day - population.update_lag_days[player]) // RELEASE_EVERY_DAYS, 0)
        first_version = int(version.min()) if total else 0
        versions = [f"1.{v}.0" for v in range(first_version, int(version.max(initial=0)) + 1)]
        dates = [
            (self._start + timedelta(days=d)).strftime("%Y-%m-%d")
            for d in range(first_day, int(day.max(initial=0)) + 1)
        ]
        lowest_session = int(session.min()) if total else 0
        session_ids = consecutive_ids(
            f"sim-{self._seed}-s", lowest_session, int(session.max(initial=0)) - lowest_session + 1
        )

        columns: dict[str, pa.Array] = {
            "event_id": consecutive_ids(f"sim-{self._seed}-", first_number, total),
            "event_type": from_codes(kind, pa.array(EVENT_TYPES)),
            "event_timestamp": pa.array(micros + self._epoch_us, pa.timestamp("us", tz="UTC")),
            "player_id": from_codes(player, self._player_ids),
            "game_id": from_codes(np.zeros(total, dtype=np.int32), self._game),
            "platform": from_codes(population.platform[player], pa.array(PLATFORMS)),
            "session_id": from_codes(session - lowest_session, session_ids),
            "app_version": from_codes(version - first_version, pa.array(versions)),
            PARTITION_COLUMN: from_codes(day - first_day, pa.array(dates)),
        }
        absent = {k: kind != k for k in range(len(blocks))}
        for name, k in NUMBER_ATTRIBUTES.items():
            values = np.zeros(total)
            values[placed[k]] = blocks[k].values[name]
            columns[name] = pa.array(values, mask=absent[k])
        for name, (k, dictionary) in STRING_ATTRIBUTES.items():
            indices = np.zeros(total, dtype=np.int32)
            indices[placed[k]] = blocks[k].values[name]
            columns[name] = sparse_from_codes(indices, ~absent[k], pa.array(dictionary))
        return pa.RecordBatch.from_arrays([columns[f.name] for f in self._schema], schema=self._schema)
