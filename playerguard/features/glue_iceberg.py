"""An Iceberg source table in the Glue catalog, for what Athena does not tell: its snapshots and partitions.

Athena reads the table's rows; the table's metadata (current snapshot, day partitions) is read here with
pyiceberg's Glue catalog, through the caller's boto3 session (its credentials, region and endpoint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from playerguard.errors import DataError

if TYPE_CHECKING:
    from pyiceberg.table import Table


def glue_iceberg_table(database: str, table: str, boto3_session: Any) -> Table:
    """The Iceberg table `database.table` registered in Glue; DataError when it is not there."""
    from pyiceberg.catalog.glue import GlueCatalog
    from pyiceberg.exceptions import NoSuchTableError

    s3 = boto3_session.client("s3")
    credentials = boto3_session.get_credentials().get_frozen_credentials()
    properties = {
        "s3.region": boto3_session.region_name,
        "s3.access-key-id": credentials.access_key,
        "s3.secret-access-key": credentials.secret_key,
    }
    if credentials.token:
        properties["s3.session-token"] = credentials.token
    if not s3.meta.endpoint_url.endswith(".amazonaws.com"):  # a configured endpoint (e.g. a local stand-in)
        properties["s3.endpoint"] = s3.meta.endpoint_url
    catalog = GlueCatalog("glue", client=boto3_session.client("glue"), **properties)
    try:
        return catalog.load_table((database, table))
    except NoSuchTableError:
        raise DataError(f"Glue has no Iceberg table {database}.{table}") from None
