"""A source mapping's Iceberg table read locally: Iceberg plans the files, DuckDB reads them.

`IcebergSource` pins the table to one snapshot (the current one when it is first used, or one given to
read a recorded version again: time travel) and, for a range of days, asks Iceberg which data files can
hold rows of it (`scan(row_filter=...).plan_files()`: the day partitions and the files' column statistics
prune). `register` then defines `"<database>"."<table>"` on a DuckDB connection as `read_parquet` over
exactly those files, so the mapped SELECT (the same SQL Athena runs against the Glue table) reads them.
The engine re-registers the view before each query with that query's range.

Data files are read by column name, as DuckDB does: columns renamed after files were written, and
row-level deletes (delete files), are refused rather than read wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from playerguard.errors import DataError
from playerguard.features.compiler import quote
from playerguard.features.sources import Days, SourceMapping
from playerguard.lake.iceberg import load_table, local_path, partition_days

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table

_EMPTY_VIEW = "_playerguard_no_planned_files"


@dataclass(frozen=True)
class PlannedFile:
    """A data file Iceberg planned for a scan."""

    path: str
    size: int
    rows: int


class IcebergSource:
    """The mapping's table in the lake's Iceberg catalog, at one snapshot."""

    def __init__(self, mapping: SourceMapping, lake_root: Path, *, snapshot_id: int | None = None) -> None:
        self.mapping = mapping
        self.lake_root = Path(lake_root)
        self._snapshot_id = snapshot_id
        self._table: Table | None = None
        self._plans: dict[Days, list[PlannedFile]] = {}

    def table(self) -> Table:
        """The Iceberg table (loaded on first use)."""
        if self._table is None:
            self._table = load_table(self.lake_root, self.mapping.database, self.mapping.table)
        return self._table

    @property
    def snapshot_id(self) -> int:
        """The snapshot read: the one given, else the table's current one when first asked."""
        table = self.table()
        if self._snapshot_id is None:
            current = table.current_snapshot()
            if current is None:
                raise DataError(f"the Iceberg table {self.mapping.relation} has no snapshot (no data) yet")
            self._snapshot_id = current.snapshot_id
        elif table.snapshot_by_id(self._snapshot_id) is None:
            raise DataError(
                f"the Iceberg table {self.mapping.relation} no longer has snapshot {self._snapshot_id} "
                "(expired): the rows it held cannot be read again"
            )
        return self._snapshot_id

    def _row_filter(self, first: date | None, last: date | None) -> BooleanExpression:
        from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThan

        column, unit = self.mapping.timestamp.column, self.mapping.timestamp.unit
        bounds: list[BooleanExpression] = []
        for day, kind in (
            (first, GreaterThanOrEqual),
            (last + timedelta(days=1) if last else None, LessThan),
        ):
            if day is None:
                continue
            moment = datetime.combine(day, datetime.min.time(), UTC)
            if unit == "timestamp":
                value: Any = moment.replace(tzinfo=None).isoformat()
            else:
                value = int(moment.timestamp()) * (1000 if unit == "milliseconds" else 1)
            bounds.append(kind(column, value))
        if not bounds:
            return AlwaysTrue()
        return bounds[0] if len(bounds) == 1 else And(*bounds)

    def plan(self, days: Days = (None, None)) -> list[PlannedFile]:
        """The data files of the pinned snapshot that can hold rows of partition days first..last."""
        if days not in self._plans:
            scan = self.table().scan(row_filter=self._row_filter(*days), snapshot_id=self.snapshot_id)
            planned = []
            for task in scan.plan_files():
                if task.delete_files:
                    raise DataError(
                        f"the Iceberg table {self.mapping.relation} has row-level deletes, which the local "
                        "reader does not apply; compact the table (rewrite its data files) first"
                    )
                data = task.file
                planned.append(
                    PlannedFile(local_path(data.file_path), data.file_size_in_bytes, data.record_count)
                )
            self._plans[days] = sorted(planned, key=lambda f: f.path)
        return self._plans[days]

    def register(self, con: Any, days: Days = (None, None)) -> Any:
        """(Re)define the view `"<database>"."<table>"` over the files planned for `days`; returns `con`."""
        self._check_names()
        files = self.plan(days)
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.mapping.database)}")
        if files:
            # A view cannot take parameters: the paths (from the catalog, not the user) are quoted literals.
            listed = ", ".join("'" + f.path.replace("'", "''") + "'" for f in files)
            source = f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"
        else:  # nothing in range: an empty relation with the table's columns
            con.register(_EMPTY_VIEW, pa.Table.from_batches([], schema=self.table().schema().as_arrow()))
            source = quote(_EMPTY_VIEW)
        con.execute(f"CREATE OR REPLACE VIEW {self.mapping.relation} AS SELECT * FROM {source}")
        return con

    def _check_names(self) -> None:
        """Refuse tables whose columns were renamed: DuckDB reads files by name, Iceberg by field id."""
        table = self.table()
        names = {field.field_id: field.name for field in table.schema().fields}
        for schema in table.schemas().values():
            for field in schema.fields:
                if field.field_id in names and names[field.field_id] != field.name:
                    raise DataError(
                        f"the Iceberg table {self.mapping.relation} renamed column {field.name!r} to "
                        f"{names[field.field_id]!r}; the local reader matches columns by name"
                    )

    def partition_days(self) -> list[str]:
        """The distinct days (YYYY-MM-DD) of the pinned snapshot's files, from Iceberg's day partitions."""
        return partition_days(self.table(), self.snapshot_id)
