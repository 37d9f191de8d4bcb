"""The one place that turns settings into the local or the AWS implementation of each port.

`backend_for(settings)` reads `settings.backend` (nothing else does) and gives the event lake, the SQL engine,
the online feature store, the notifier, the results store, the source catalog and the scoring endpoint.
Each implementation is named here by its import path and built by its own `from_settings`, so any layer can
ask for a port without importing the layers above it, and the AWS SDKs load only on the AWS path. The
interfaces live beside their implementations: `lake.base.EventLake`, `features.engines.SqlEngine`,
`features.online.base.OnlineStore`, `stream.notifiers.base.Notifier`, `inference.results_store.ResultsStore`,
`features.catalogs.SourceCatalog`, `stream.endpoint.Endpoint`.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

from playerguard.errors import ConfigError
from playerguard.settings import Settings

Port = Literal["lake", "sql_engine", "online_store", "notifier", "results_store", "catalog", "endpoint"]

IMPLEMENTATIONS: dict[str, dict[Port, str]] = {
    "local": {
        "lake": "playerguard.lake.local:LocalLake",
        "sql_engine": "playerguard.features.engines:DuckDBEngine",
        "online_store": "playerguard.features.online.local:SqliteFeatureStore",
        "notifier": "playerguard.stream.notifiers.local:OutboxNotifier",
        "results_store": "playerguard.inference.results_store:LocalResults",
        "catalog": "playerguard.features.catalogs:LocalCatalog",
    },
    "aws": {
        "lake": "playerguard.lake.s3:S3Lake",
        "sql_engine": "playerguard.features.engines:AthenaEngine",
        "online_store": "playerguard.features.online.dynamodb:DynamoDBFeatureStore",
        "notifier": "playerguard.stream.notifiers.aws:SnsNotifier",
        "results_store": "playerguard.inference.results_store:S3Results",
        "catalog": "playerguard.features.catalogs:GlueCatalog",
        "endpoint": "playerguard.stream.endpoint:SageMakerEndpoint",
    },
}
"""Per backend, the class behind each port. The local backend has no standing endpoint: a caller that
needs one starts the local server (or names one with PLAYERGUARD_ENDPOINT_URL)."""

_HTTP_ENDPOINT = "playerguard.stream.endpoint:HttpEndpoint"
_SOURCE_MAPPING = "playerguard.features.sources:load_source_mapping"
_LOCAL_ICEBERG_RESULTS = "playerguard.inference.iceberg_results:LocalIcebergResults"
"""Locally, results go back as Iceberg tables when the source the settings read is an Iceberg table."""


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


class Backend:
    """The ports of the backend the settings name; each call builds a fresh implementation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name: str = settings.backend

    def _build(self, port: Port, **options: Any) -> Any:
        return _load(IMPLEMENTATIONS[self.name][port]).from_settings(self.settings, **options)

    def lake(self, **options: Any) -> Any:
        """The event lake (`lake.base.EventLake`): a Parquet directory, or S3 + Glue."""
        return self._build("lake", **options)

    def local_lake(self, purpose: str) -> Any:
        """The local lake, for work that only exists locally; a ConfigError naming `purpose` on aws."""
        if self.name != "local":
            raise ConfigError(f"{purpose} works on the local lake; set PLAYERGUARD_BACKEND=local")
        return self.lake()

    def sql_engine(self, **options: Any) -> Any:
        """The SQL engine (`features.engines.SqlEngine`), reading through the settings' source mapping."""
        if self.settings.source_mapping and "source" not in options:
            options["source"] = _load(_SOURCE_MAPPING)(self.settings.source_mapping)
        return self._build("sql_engine", **options)

    def online_store(self, **options: Any) -> Any:
        """The online feature snapshot (`features.online.base.OnlineStore`): SQLite, or DynamoDB."""
        return self._build("online_store", **options)

    def notifier(self, **options: Any) -> Any:
        """Where flags go (`stream.notifiers.base.Notifier`): the outbox, or the SNS topic."""
        return self._build("notifier", **options)

    def results_store(self, **options: Any) -> Any:
        """Where scores and flags are written back (`inference.results_store.ResultsStore`)."""
        if self.name == "local" and self.settings.source_mapping:
            if _load(_SOURCE_MAPPING)(self.settings.source_mapping).format == "iceberg":
                return _load(_LOCAL_ICEBERG_RESULTS).from_settings(self.settings, **options)
        return self._build("results_store", **options)

    def catalog(self, mapping: Any, **options: Any) -> Any:
        """A source table's columns and partitions (`features.catalogs.SourceCatalog`)."""
        return self._build("catalog", mapping=mapping, **options)

    def endpoint(self) -> Any | None:
        """The scoring endpoint (`stream.endpoint.Endpoint`): PLAYERGUARD_ENDPOINT_URL when set, else the
        SageMaker endpoint on aws; None locally, where the caller starts the local server."""
        if self.settings.endpoint_url:
            return _load(_HTTP_ENDPOINT)(self.settings.endpoint_url)
        if "endpoint" not in IMPLEMENTATIONS[self.name]:
            return None
        return self._build("endpoint")


def backend_for(settings: Settings) -> Backend:
    """The backend the settings name: `local` (the default) or `aws`."""
    return Backend(settings)
