"""Source catalogs: a studio's table's columns and partitions, from the local directory (or the local
Iceberg catalog, for a mapping with `format: iceberg`) or from Glue."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, Protocol

import pyarrow.parquet as pq

from playerguard.features.source_binding import local_table_glob
from playerguard.features.sources import SourceMapping
from playerguard.settings import Settings


class SourceCatalog(Protocol):
    """A table's columns (None if it does not exist) and its partition values."""

    def columns(self) -> list[str] | None: ...

    def partitions(self) -> list[tuple[str, ...]]: ...


class LocalCatalog:
    """The table's Parquet files under `<lake_root>/<table>/`, partitions from the directory names."""

    def __init__(self, mapping: SourceMapping, lake_root: Path) -> None:
        self.mapping = mapping
        self.files = sorted(Path(p) for p in glob.glob(local_table_glob(mapping, lake_root)))

    @classmethod
    def from_settings(
        cls, settings: Settings, mapping: SourceMapping, boto3_session: Any = None
    ) -> LocalCatalog | LocalIcebergCatalog:
        """The table's local catalog: its directory, or the lake's Iceberg catalog for an Iceberg mapping."""
        if mapping.format == "iceberg":
            return LocalIcebergCatalog(mapping, settings.lake_dir)
        return cls(mapping, settings.lake_dir)

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


class LocalIcebergCatalog:
    """The table in the lake's Iceberg catalog: its schema's columns, its current snapshot's day partitions."""

    def __init__(self, mapping: SourceMapping, lake_root: Path) -> None:
        from playerguard.features.iceberg_source import IcebergSource

        self.mapping = mapping
        self.source = IcebergSource(mapping, lake_root)

    def columns(self) -> list[str] | None:
        from playerguard.errors import DataError

        try:
            return [field.name for field in self.source.table().schema().fields]
        except DataError:
            return None

    def partitions(self) -> list[tuple[str, ...]]:
        """One (YYYY-MM-DD,) per day partition (Iceberg's day transform of the timestamp)."""
        return [(day,) for day in self.source.partition_days()]


class GlueCatalog:
    """The table's columns and partitions from the Glue catalog (what Athena sees)."""

    def __init__(self, mapping: SourceMapping, boto3_session: Any) -> None:
        self.mapping = mapping
        self.session = boto3_session  # awswrangler builds a default session when None

    @classmethod
    def from_settings(cls, settings: Settings, mapping: SourceMapping, boto3_session: Any = None) -> GlueCatalog:
        return cls(mapping, boto3_session)

    def columns(self) -> list[str] | None:
        import awswrangler as wr

        types = wr.catalog.get_table_types(
            database=self.mapping.database, table=self.mapping.table, boto3_session=self.session
        )
        return None if types is None else list(types)

    def partitions(self) -> list[tuple[str, ...]]:
        import awswrangler as wr

        if self.mapping.format == "iceberg":  # Glue holds no partitions for an Iceberg table; its metadata does
            import boto3

            from playerguard.features.glue_iceberg import glue_iceberg_table
            from playerguard.lake.iceberg import partition_days

            session = self.session or boto3.Session()
            table = glue_iceberg_table(self.mapping.database, self.mapping.table, session)
            return [(day,) for day in partition_days(table)]
        found = wr.catalog.get_partitions(
            database=self.mapping.database, table=self.mapping.table, boto3_session=self.session
        )
        return sorted(tuple(values) for values in found.values())
