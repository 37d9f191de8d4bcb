"""Envelope events written the way the AWS Game Analytics Pipeline (GAP) lands them: a `raw_events` table.

Columns: `event_id`, `event_type`, `event_name` (the part of the type before its first '_': `match` for
`match_end`), `event_timestamp` (epoch seconds, bigint: sub-second precision is lost, as in GAP),
`application_id` (the game id) and `event_data`, a JSON string holding `player_id`, `session_id`,
`platform`, `app_version` and every attribute the event has. Hive partitions `year=YYYY/month=MM/day=DD`
by the event's UTC date. `definitions/gap_source.yaml` maps it back onto the envelope.

`faults` appends rows a real lake also has and the mapping must count, not drop silently: events without
a player id, with a zero or missing timestamp, or with a truncated JSON document.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from playerguard.backends import backend_for
from playerguard.errors import ConfigError, DataError
from playerguard.lake.envelope import ENVELOPE_COLUMNS, PARTITION_COLUMN, REQUIRED_COLUMNS
from playerguard.settings import Settings

GAP_TABLE = "raw_events"
GAP_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("event_name", pa.string()),
        ("event_timestamp", pa.int64()),
        ("application_id", pa.string()),
        ("event_data", pa.string()),
    ]
)
_IN_EVENT_DATA = ("player_id", "session_id", "platform", "app_version")
FAULT_KINDS = ("missing player_id", "event_timestamp outside 2000-2100", "event_data is not JSON",
               "missing event_timestamp")  # fmt: skip
"""The faults `faults=n` writes, in turn, named as the mapping reports them."""


def _present(value: object) -> bool:
    """A value event_data carries: not missing, and not NaN (which JSON cannot hold)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def to_gap_table(events: pa.Table) -> pa.Table:
    """Envelope events (lake layout) as GAP `raw_events` rows, in the same order."""
    missing = [c for c in REQUIRED_COLUMNS if c not in events.column_names]
    if missing:
        raise DataError(f"the events lack envelope column(s) {', '.join(missing)}")
    carried = [c for c in events.column_names if c not in ENVELOPE_COLUMNS and c != PARTITION_COLUMN]
    carried = [c for c in _IN_EVENT_DATA if c in events.column_names] + carried
    documents = [
        json.dumps({k: v for k, v in row.items() if _present(v)}, separators=(",", ":"))
        for row in events.select(carried).to_pylist()
    ]
    micros = pc.cast(events.column("event_timestamp"), pa.int64()).to_numpy()
    seconds = pa.array(np.floor_divide(micros, 1_000_000), pa.int64())
    types = events.column("event_type")
    return pa.table(
        {
            "event_id": events.column("event_id"),
            "event_type": types,
            "event_name": pc.list_element(pc.split_pattern(types, "_", max_splits=1), 0),
            "event_timestamp": seconds,
            "application_id": events.column("game_id"),
            "event_data": pa.array(documents, pa.string()),
        },
        schema=GAP_SCHEMA,
    )


def fault_rows(seconds: Sequence[int], first_number: int = 0) -> pa.Table:
    """Rows that fail the GAP mapping, one per entry of `seconds` (the time of the ones whose timestamp is
    valid), cycling through FAULT_KINDS from fault number `first_number`."""
    rows = []
    for n, second in enumerate(seconds, start=first_number):
        kind = FAULT_KINDS[n % len(FAULT_KINDS)]
        data = {"player_id": f"fault-p{n}", "platform": "pc"}
        if kind == "missing player_id":
            del data["player_id"]
        document = json.dumps(data)[:-3] if kind == "event_data is not JSON" else json.dumps(data)
        stamp = {"event_timestamp outside 2000-2100": 0, "missing event_timestamp": None}.get(kind, second)
        rows.append(
            {"event_id": f"gap-fault-{n:06d}", "event_type": "match_end", "event_name": "match",
             "event_timestamp": stamp, "application_id": "skyfall", "event_data": document}
        )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=GAP_SCHEMA)


def write_gap_table(events: pa.Table, directory: Path, *, faults: int = 0) -> int:
    """Write envelope events as a GAP table under `directory` (`year=/month=/day=/part-*.parquet`), plus
    `faults` failing rows spread over the days' partitions; returns the rows written."""
    table = to_gap_table(events)
    seconds = np.asarray(table.column("event_timestamp").to_numpy(zero_copy_only=False), dtype=np.int64)
    days = seconds // 86_400
    distinct = np.unique(days)
    for day in distinct:
        _write_partition(directory, int(day), "part-00000.parquet", table.filter(pa.array(days == day)))
    if faults and len(distinct):
        homes = distinct[np.arange(faults) * len(distinct) // faults]  # fault n's partition day
        for day in np.unique(homes):
            numbers = np.flatnonzero(homes == day)
            rows = fault_rows([int(day) * 86_400 + int(n) for n in numbers], int(numbers[0]))
            _write_partition(directory, int(day), "part-faults.parquet", rows)
    return table.num_rows + (faults if len(distinct) else 0)


def _write_partition(directory: Path, day: int, name: str, rows: pa.Table) -> None:
    moment = np.datetime64(day, "D").astype(object)
    folder = directory / f"year={moment.year:04d}" / f"month={moment.month:02d}" / f"day={moment.day:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, folder / name)


@dataclass(frozen=True)
class GapSimulationSummary:
    events: int
    faults: int
    players: int
    first_day: str
    last_day: str
    location: str
    ground_truth_path: str

    def __str__(self) -> str:
        return (
            f"simulated {self.events:,} events for {self.players:,} players ({self.first_day} .. "
            f"{self.last_day}) in the Game Analytics Pipeline layout at {self.location}"
            + (f", plus {self.faults:,} faulty rows" if self.faults else "")
            + f"; ground truth: {self.ground_truth_path}"
        )


def write_gap_simulation(
    settings: Settings, *, players: int, days: int, seed: int, replace: bool = False, faults: int = 0
) -> GapSimulationSummary:
    """Simulate a game (the same events as `write_simulation` for the same seed) and write it as a GAP
    `raw_events` table under `<lake>/raw_events/`, with its ground truth beside the lake."""
    from playerguard.simulator.game import simulate

    backend_for(settings).local_lake("simulate --layout gap")
    if isinstance(faults, bool) or not isinstance(faults, int) or faults < 0:
        raise ConfigError(f"faults must be a whole number >= 0, got {faults!r}")
    directory = settings.lake_dir / GAP_TABLE
    if directory.exists() and any(directory.rglob("*.parquet")):
        if not replace:
            raise DataError(f"{directory} already holds events; pass --replace to start a new simulated game")
        shutil.rmtree(directory)
        settings.ground_truth_path.unlink(missing_ok=True)
    game = simulate(players=players, days=days, seed=seed)
    write_gap_table(game.events, directory, faults=faults)
    settings.home.mkdir(parents=True, exist_ok=True)
    game.ground_truth.to_parquet(settings.ground_truth_path, index=False)
    dates = pc.min_max(game.events.column(PARTITION_COLUMN))
    return GapSimulationSummary(
        events=game.events.num_rows,
        faults=faults,
        players=len(game.ground_truth),
        first_day=dates["min"].as_py() or "-",
        last_day=dates["max"].as_py() or "-",
        location=str(directory),
        ground_truth_path=str(settings.ground_truth_path),
    )
