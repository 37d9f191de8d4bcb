"""Envelope events written the way the Game Analytics Pipeline v3 lands them: an Apache Iceberg table.

GAP v3 (with `ENABLE_APACHE_ICEBERG_SUPPORT`) keeps v2's `raw_events` columns, adds `event_version`,
`application_name` and `metadata`, holds `event_timestamp` as a timestamp (UTC) and `app_version` as a
column, and lets Iceberg partition the table by `application_id` and the day of `event_timestamp` (hidden
partitioning: no year/month/day columns). Locally the table lives in the lake's Iceberg catalog
(`lake.iceberg`); `definitions/gap-v3_source.yaml` maps it back onto the envelope. The events are those
of `gap_layout` for the same seed, at their exact (microsecond) times.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from playerguard.backends import backend_for
from playerguard.errors import ConfigError, DataError
from playerguard.lake.envelope import PARTITION_COLUMN
from playerguard.lake.iceberg import iceberg_dir, local_catalog, local_path
from playerguard.settings import Settings
from playerguard.simulator.gap_layout import GAP_TABLE, GapSimulationSummary, fault_rows, to_gap_table

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

GAP_V3_NAMESPACE = "gap"
EVENT_VERSION = "1.0.0"
APPLICATION_NAME = "playerguard-simulator"
_STRING_COLUMNS = ("event_id", "event_type", "event_name", "event_version")
_AFTER_TIMESTAMP = ("app_version", "application_id", "application_name", "event_data", "metadata")
GAP_V3_SCHEMA = pa.schema(
    [(name, pa.string()) for name in _STRING_COLUMNS]
    + [("event_timestamp", pa.timestamp("us"))]
    + [(name, pa.string()) for name in _AFTER_TIMESTAMP]
)


def to_gap_v3_table(events: pa.Table) -> pa.Table:
    """Envelope events (lake layout) as GAP v3 `raw_events` rows, in the same order."""
    v2 = to_gap_table(events)
    rows = v2.num_rows
    stamps = pc.cast(pc.cast(events.column("event_timestamp"), pa.int64()), pa.timestamp("us"))
    versions = events.column("app_version") if "app_version" in events.column_names else pa.nulls(rows)
    return _v3_rows(v2, stamps, pc.cast(versions, pa.string()))


def _v3_rows(
    v2: pa.Table, stamps: pa.Array | pa.ChunkedArray, versions: pa.Array | pa.ChunkedArray
) -> pa.Table:
    rows = v2.num_rows
    return pa.table(
        {
            "event_id": v2.column("event_id"),
            "event_type": v2.column("event_type"),
            "event_name": v2.column("event_name"),
            "event_version": pa.array([EVENT_VERSION] * rows, pa.string()),
            "event_timestamp": stamps,
            "app_version": versions,
            "application_id": v2.column("application_id"),
            "application_name": pa.array([APPLICATION_NAME] * rows, pa.string()),
            "event_data": v2.column("event_data"),
            "metadata": pa.nulls(rows, pa.string()),
        },
        schema=GAP_V3_SCHEMA,
    )


def gap_v3_fault_rows(seconds: list[int], first_number: int = 0) -> pa.Table:
    """`gap_layout.fault_rows` as v3 rows: a zero timestamp lands on 1970-01-01, a missing one is NULL."""
    v2 = fault_rows(seconds, first_number)
    raw = v2.column("event_timestamp").to_pylist()
    stamps = pa.array([None if s is None else s * 1_000_000 for s in raw], pa.int64()).cast(
        pa.timestamp("us")
    )
    return _v3_rows(v2, stamps, pa.nulls(v2.num_rows, pa.string()))


def create_gap_v3_table(lake_root: Path, *, replace: bool = False) -> Table:
    """Create the empty v3 `gap.raw_events` Iceberg table in the lake's catalog (partitioned by
    application_id and day); with `replace`, an existing one and its files are dropped first."""
    from pyiceberg.exceptions import NoSuchTableError

    catalog = local_catalog(lake_root, create=True)
    try:
        existing = catalog.load_table((GAP_V3_NAMESPACE, GAP_TABLE))
    except NoSuchTableError:
        existing = None
    if existing is not None:
        if not replace:
            raise DataError(
                f"{iceberg_dir(lake_root)} already holds {GAP_V3_NAMESPACE}.{GAP_TABLE}; pass --replace to "
                "start a new simulated game"
            )
        catalog.drop_table((GAP_V3_NAMESPACE, GAP_TABLE))
        shutil.rmtree(local_path(existing.location()), ignore_errors=True)
    return create_gap_v3_table_in(catalog)


def create_gap_v3_table_in(catalog: Catalog, location: str | None = None) -> Table:
    """Create the empty v3 `gap.raw_events` table in any Iceberg catalog (the local one, or Glue)."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import DayTransform, IdentityTransform
    from pyiceberg.types import NestedField, StringType, TimestampType

    catalog.create_namespace_if_not_exists(GAP_V3_NAMESPACE)
    fields = [
        NestedField(
            i, f.name, TimestampType() if f.name == "event_timestamp" else StringType(), required=False
        )
        for i, f in enumerate(GAP_V3_SCHEMA, 1)
    ]
    ids = {field.name: field.field_id for field in fields}
    spec = PartitionSpec(
        PartitionField(ids["application_id"], 1000, IdentityTransform(), "application_id"),
        PartitionField(ids["event_timestamp"], 1001, DayTransform(), "event_timestamp_day"),
    )
    return catalog.create_table(
        (GAP_V3_NAMESPACE, GAP_TABLE), schema=Schema(*fields), partition_spec=spec, location=location
    )


def append_gap_v3_events(table: Table, events: pa.Table, *, faults: int = 0) -> int:
    """Append envelope events (and `faults` failing rows spread over their days) as one Iceberg commit
    (one snapshot); returns the rows written."""
    rows = to_gap_v3_table(events)
    if faults and rows.num_rows:
        seconds = pc.cast(rows.column("event_timestamp"), pa.int64()).to_numpy() // 1_000_000
        days = np.unique(seconds // 86_400)
        homes = days[np.arange(faults) * len(days) // faults]
        rows = pa.concat_tables(
            [rows, gap_v3_fault_rows([int(day) * 86_400 + n for n, day in enumerate(homes)])]
        )
    table.append(rows)
    return rows.num_rows


def write_gap_v3_simulation(
    settings: Settings, *, players: int, days: int, seed: int, replace: bool = False, faults: int = 0
) -> GapSimulationSummary:
    """Simulate a game (the same events as `write_gap_simulation` for the same seed) and write it as the v3
    `gap.raw_events` Iceberg table in the lake's catalog, with its ground truth beside the lake."""
    from playerguard.simulator.game import simulate

    backend_for(settings).local_lake("simulate --layout gap-v3")
    if isinstance(faults, bool) or not isinstance(faults, int) or faults < 0:
        raise ConfigError(f"faults must be a whole number >= 0, got {faults!r}")
    table = create_gap_v3_table(settings.lake_dir, replace=replace)
    if replace:
        settings.ground_truth_path.unlink(missing_ok=True)
    game = simulate(players=players, days=days, seed=seed)
    append_gap_v3_events(table, game.events, faults=faults)
    settings.home.mkdir(parents=True, exist_ok=True)
    game.ground_truth.to_parquet(settings.ground_truth_path, index=False)
    dates = pc.min_max(game.events.column(PARTITION_COLUMN))
    return GapSimulationSummary(
        events=game.events.num_rows,
        faults=faults if game.events.num_rows else 0,
        players=len(game.ground_truth),
        first_day=dates["min"].as_py() or "-",
        last_day=dates["max"].as_py() or "-",
        location=f"{iceberg_dir(settings.lake_dir)} (Iceberg table {GAP_V3_NAMESPACE}.{GAP_TABLE})",
        ground_truth_path=str(settings.ground_truth_path),
    )
