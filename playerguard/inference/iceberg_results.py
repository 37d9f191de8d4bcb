"""Scores and flags written back as Apache Iceberg tables, where the source table is Iceberg (GAP v3).

`LocalIcebergResults` is the results store for a local lake read through an Iceberg source mapping: the
tables `player_scores` and `player_flags` live in the lake's Iceberg catalog (`lake.iceberg`), partitioned
by `cutoff_date`. Writing a cutoff is one Iceberg overwrite of that partition (one atomic commit, a new
snapshot): writing the same cutoff again replaces its rows, never adds to them. A column the frame brings
that the table lacks is added to the table's schema first.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from playerguard.errors import DataError
from playerguard.inference.results_store import FLAGS_TABLE, PARTITION, SCORES_TABLE
from playerguard.lake.envelope import check_identifier
from playerguard.lake.iceberg import local_catalog, local_path
from playerguard.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table


def _arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as Arrow in types Iceberg holds: all-null columns as strings, timestamps in microseconds."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_null(kind):
            kind = pa.string()
        elif pa.types.is_timestamp(kind):
            kind = pa.timestamp("us", tz=kind.tz)
        fields.append(pa.field(field.name, kind))
    return table.cast(pa.schema(fields))


class LocalIcebergResults:
    """Result tables as Iceberg tables `<namespace>.<table>` in the local lake's catalog."""

    def __init__(self, lake_root: Path, namespace: str = "playerguard") -> None:
        self.root = Path(lake_root)
        self.namespace = check_identifier(namespace, "namespace")

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalIcebergResults:
        return cls(settings.lake_dir, settings.glue_database)

    def _table(self, table: str, schema: pa.Schema | None) -> Table | None:
        """The table (created, partitioned by cutoff_date, when `schema` is given and it does not exist)."""
        from pyiceberg.exceptions import NoSuchTableError
        from pyiceberg.transforms import IdentityTransform

        catalog = local_catalog(self.root, create=schema is not None)
        identifier = (self.namespace, check_identifier(table, "table"))
        try:
            found = catalog.load_table(identifier)
        except NoSuchTableError:
            if schema is None:
                return None
            catalog.create_namespace_if_not_exists(self.namespace)
            found = catalog.create_table(identifier, schema=schema)
            with found.update_spec() as spec:
                spec.add_field(PARTITION, IdentityTransform(), PARTITION)
            return catalog.load_table(identifier)
        if schema is not None and not set(schema.names) <= set(found.schema().column_names):
            with found.update_schema() as update:
                update.union_by_name(schema)
        return found

    def replace(self, table: str, cutoff_date: str, frame: pd.DataFrame) -> str:
        """Replace the `cutoff_date` partition of `table` with `frame` in one Iceberg commit."""
        from pyiceberg.expressions import EqualTo

        where = EqualTo(PARTITION, cutoff_date)
        rows = None if frame.empty else _arrow(frame.assign(**{PARTITION: cutoff_date}))
        target = self._table(table, None if rows is None else rows.schema)
        with warnings.catch_warnings():  # a first write of a cutoff replaces nothing, as it should
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            if rows is not None and target is not None:
                target.overwrite(rows, overwrite_filter=where)
            elif target is not None:  # nothing to write (no flags): clear the partition of old rows
                target.delete(where)
        return f"{self.namespace}.{table} (Iceberg)"

    def connect(self) -> Any:
        """A DuckDB connection with views `player_scores` and `player_flags` over the tables' current files."""
        import duckdb

        con = duckdb.connect()
        for name in (SCORES_TABLE, FLAGS_TABLE):
            table = self._table(name, None) if (self.root / "iceberg" / "catalog.db").exists() else None
            if table is None:
                raise DataError(f"no {name} written yet under {self.root}; score with --to-lake first")
            files = [local_path(t.file.file_path) for t in table.scan().plan_files()]
            if files:
                listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                source = f"read_parquet([{listed}], union_by_name = true, hive_partitioning = false)"
            else:  # every partition cleared: no rows, the table's columns
                con.register(f"_{name}_empty", pa.Table.from_batches([], schema=table.schema().as_arrow()))
                source = f'"_{name}_empty"'
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM {source}')
        return con
