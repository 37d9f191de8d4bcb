"""Source catalogs: a studio's table's columns and partitions, from the local directory or from Glue."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from playerguard.features.source_binding import local_table_glob
from playerguard.features.sources import SourceMapping


class SourceCatalog(Protocol):
    """A table's columns (None if it does not exist) and its partition values."""

    def columns(self) -> list[str] | None: ...

    def partitions(self) -> list[tuple[str, ...]]: ...


class LocalCatalog:
    """The table's Parquet files under `<lake_root>/<table>/`, partitions from the directory names."""

    def __init__(self, mapping: SourceMapping, lake_root: Path) -> None:
        self.mapping = mapping
        self.files = sorted(Path(p) for p in glob.glob(local_table_glob(mapping, lake_root)))

    def columns(self) -> list[str] | None:
        if not self.files:
            return None
        names = {name for path in self.files for name in pq.read_schema(path).names}
        parts = self.mapping.partitions.columns if self.mapping.partitions else []
        return sorted(names) + [p for p in parts if p not in names]

    def partitions(self) -> list[tuple[str, ...]]:
        if self.mapping.partitions is None:
            return []
        depth = len(self.mapping.partitions.columns)
        found = {tuple(d.split("=", 1)[-1] for d in path.parts[-depth - 1 : -1]) for path in self.files}
        return sorted(found)


class GlueCatalog:
    """The table's columns and partitions from the Glue catalog (what Athena sees)."""

    def __init__(self, mapping: SourceMapping, boto3_session: Any) -> None:
        self.mapping = mapping
        self.session = boto3_session  # awswrangler builds a default session when None

    def columns(self) -> list[str] | None:
        import awswrangler as wr

        types = wr.catalog.get_table_types(
            database=self.mapping.database, table=self.mapping.table, boto3_session=self.session
        )
        return None if types is None else list(types)

    def partitions(self) -> list[tuple[str, ...]]:
        import awswrangler as wr

        found = wr.catalog.get_partitions(
            database=self.mapping.database, table=self.mapping.table, boto3_session=self.session
        )
        return sorted(tuple(values) for values in found.values())
