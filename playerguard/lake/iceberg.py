"""The local Apache Iceberg catalog: pyiceberg's SQL catalog on SQLite, with its warehouse beside it.

Layout under the lake directory: `iceberg/catalog.db` (the catalog: which metadata file is each table's
current one, committed atomically by SQLite) and `iceberg/warehouse/<namespace>/<table>/{metadata,data}/`.
On AWS the same tables live in the Glue catalog and Athena reads them natively, so nothing here runs there.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from playerguard.errors import DataError

if TYPE_CHECKING:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.table import Table

ICEBERG_DIR = "iceberg"
CATALOG_NAME = "playerguard"


def iceberg_dir(lake_root: Path) -> Path:
    """Where the local Iceberg catalog and warehouse live: `<lake>/iceberg/`."""
    return Path(lake_root) / ICEBERG_DIR


def local_catalog(lake_root: Path, *, create: bool = False) -> SqlCatalog:
    """The lake's Iceberg catalog; DataError when it does not exist and `create` is false."""
    from pyiceberg.catalog.sql import SqlCatalog

    directory = iceberg_dir(lake_root).resolve()
    database = directory / "catalog.db"
    if not database.exists():
        if not create:
            raise DataError(
                f"no Iceberg catalog at {database}; write a v3 lake first (playerguard simulate --layout gap-v3)"
            )
        (directory / "warehouse").mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG_NAME, uri=f"sqlite:///{database}", warehouse=(directory / "warehouse").as_uri())


def load_table(lake_root: Path, namespace: str, table: str) -> Table:
    """The Iceberg table `namespace.table` of the lake's catalog; DataError when it is not there."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return local_catalog(lake_root).load_table((namespace, table))
    except NoSuchTableError:
        raise DataError(
            f"the Iceberg catalog at {iceberg_dir(lake_root)} has no table {namespace}.{table}; "
            "write a v3 lake first (playerguard simulate --layout gap-v3)"
        ) from None


def local_path(uri: str) -> str:
    """A data file's location as a local path (pyiceberg records `file://` URIs)."""
    return uri.removeprefix("file://")


def partition_days(table: Table, snapshot_id: int | None = None) -> list[str]:
    """The distinct days (YYYY-MM-DD) of a table's day partitions at a snapshot (default: the current one)."""
    days = set()
    for row in table.inspect.partitions(snapshot_id=snapshot_id).to_pylist():
        days.update(value.isoformat() for value in row["partition"].values() if isinstance(value, date))
    return sorted(days)
