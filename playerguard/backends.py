"""The one place that turns settings into the local or the AWS implementation of each port.

`backend_for(settings)` reads `settings.backend` (nothing else does) and returns a `LocalBackend` or an
`AwsBackend`. Each gives the event lake, the SQL engine, the online feature store, the notifier, the results
store, the source catalog and the scoring endpoint. Implementations are imported when asked for, so choosing
a backend costs nothing and the AWS SDKs load only on the AWS path.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Protocol

from playerguard.errors import ConfigError, DataError
from playerguard.settings import Settings

if TYPE_CHECKING:
    from playerguard.features.catalogs import SourceCatalog
    from playerguard.features.engines import SqlEngine
    from playerguard.features.online.base import OnlineStore
    from playerguard.features.sources import SourceMapping
    from playerguard.inference.flags import Cooldowns
    from playerguard.inference.results_store import ResultsStore
    from playerguard.lake.base import EventLake
    from playerguard.lake.local import LocalLake
    from playerguard.stream.endpoint import Endpoint
    from playerguard.stream.notifiers.base import Notifier


class Backend(Protocol):
    """The ports of one backend."""

    name: str
    settings: Settings

    def lake(self) -> EventLake: ...

    def sql_engine(self, **options: Any) -> SqlEngine: ...

    def online_store(self) -> OnlineStore: ...

    def notifier(self, cooldowns: Cooldowns | None = None) -> Notifier: ...

    def results_store(self, boto3_session: Any = None) -> ResultsStore: ...

    def catalog(self, mapping: SourceMapping, boto3_session: Any = None) -> SourceCatalog: ...

    def endpoint(self) -> Endpoint | None: ...

    def event_days(self) -> list[str]: ...

    def lake_fingerprint(self) -> str | None: ...

    def local_lake(self, purpose: str) -> LocalLake: ...


def backend_for(settings: Settings) -> Backend:
    """The backend the settings name: `local` (the default) or `aws`."""
    if settings.backend == "aws":
        return AwsBackend(settings)
    return LocalBackend(settings)


def _sql_options(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    """Read through the settings' source mapping, unless the caller names a source."""
    if settings.source_mapping and "source" not in options:
        from playerguard.features.sources import load_source_mapping

        options["source"] = load_source_mapping(settings.source_mapping)
    return options


def _explicit_endpoint(settings: Settings) -> Endpoint | None:
    if not settings.endpoint_url:
        return None
    from playerguard.stream.endpoint import HttpEndpoint

    return HttpEndpoint(settings.endpoint_url)


class LocalBackend:
    """Everything on this machine, under `settings.home`."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def lake(self) -> LocalLake:
        from playerguard.lake.local import LocalLake

        return LocalLake.from_settings(self.settings)

    def local_lake(self, purpose: str) -> LocalLake:
        return self.lake()

    def sql_engine(self, **options: Any) -> SqlEngine:
        from playerguard.features.engines import DuckDBEngine

        return DuckDBEngine.from_settings(self.settings, **_sql_options(self.settings, options))

    def online_store(self) -> OnlineStore:
        from playerguard.features.online.local import SqliteFeatureStore

        return SqliteFeatureStore.from_settings(self.settings)

    def notifier(self, cooldowns: Cooldowns | None = None) -> Notifier:
        from playerguard.stream.notifiers.local import OutboxNotifier

        return OutboxNotifier.from_home(self.settings.home, cooldowns)

    def results_store(self, boto3_session: Any = None) -> ResultsStore:
        from playerguard.inference.results_store import LocalResults

        return LocalResults(self.settings.lake_dir)

    def catalog(self, mapping: SourceMapping, boto3_session: Any = None) -> SourceCatalog:
        from playerguard.features.catalogs import LocalCatalog

        return LocalCatalog(mapping, self.settings.lake_dir)

    def endpoint(self) -> Endpoint | None:
        """The endpoint named by PLAYERGUARD_ENDPOINT_URL; None means: start a local server."""
        return _explicit_endpoint(self.settings)

    def event_days(self) -> list[str]:
        """The `event_date=…` partitions of the lake that hold events."""
        events = self.settings.lake_dir / "events"
        if not events.exists():
            return []
        return [p.name for p in events.glob("event_date=*") if any(p.glob("*.parquet"))]

    def lake_fingerprint(self) -> str | None:
        """A hash of the lake's event files (name, size, mtime), for the pipeline's step cache."""
        root = self.settings.lake_dir
        files = sorted([*root.glob("events/*/*.parquet"), root / "schema.json"])
        listing = [
            (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.exists()
        ]
        return hashlib.sha256(json.dumps(listing).encode("utf-8")).hexdigest()


class AwsBackend:
    """S3 + Glue, Athena, DynamoDB, SNS and SageMaker. Clients are built on first use."""

    name = "aws"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def lake(self) -> EventLake:
        from playerguard.lake.s3 import S3Lake

        return S3Lake.from_settings(self.settings)

    def local_lake(self, purpose: str) -> LocalLake:
        raise ConfigError(f"{purpose} works on the local lake; set PLAYERGUARD_BACKEND=local")

    def sql_engine(self, **options: Any) -> SqlEngine:
        from playerguard.features.engines import AthenaEngine

        return AthenaEngine(self.settings, **_sql_options(self.settings, options))

    def online_store(self) -> OnlineStore:
        from playerguard.features.online.dynamodb import DynamoDBFeatureStore

        if not self.settings.online_table:
            raise ConfigError(
                "PLAYERGUARD_ONLINE_TABLE is not set: name the DynamoDB table of the online snapshot"
            )
        return DynamoDBFeatureStore(self.settings.online_table, region=self.settings.region)

    def notifier(self, cooldowns: Cooldowns | None = None) -> Notifier:
        import boto3

        from playerguard.stream.notifiers.aws import SnsNotifier

        if not self.settings.sns_topic_arn:
            raise ConfigError("PLAYERGUARD_SNS_TOPIC_ARN is not set: name the SNS topic that receives flags")
        return SnsNotifier(self.settings.sns_topic_arn, boto3.client("sns", region_name=self.settings.region))

    def results_store(self, boto3_session: Any = None) -> ResultsStore:
        from playerguard.inference.results_store import S3Results

        if not self.settings.lake_s3_uri:
            raise ConfigError("writing results on aws needs PLAYERGUARD_LAKE_S3_URI (s3://bucket/prefix)")
        return S3Results(
            self.settings.lake_s3_uri,
            self.settings.glue_database,
            boto3_session=boto3_session,
            region=self.settings.region,
        )

    def catalog(self, mapping: SourceMapping, boto3_session: Any = None) -> SourceCatalog:
        from playerguard.features.catalogs import GlueCatalog

        return GlueCatalog(mapping, boto3_session)

    def endpoint(self) -> Endpoint | None:
        """PLAYERGUARD_ENDPOINT_URL when set, else the SageMaker endpoint `settings.endpoint_name`."""
        explicit = _explicit_endpoint(self.settings)
        if explicit is not None:
            return explicit
        import boto3
        from botocore.config import Config

        from playerguard.stream.endpoint import SageMakerEndpoint

        client = boto3.client(
            "sagemaker-runtime",
            region_name=self.settings.region,
            config=Config(retries={"mode": "standard", "max_attempts": 1}),
        )
        return SageMakerEndpoint(self.settings.endpoint_name, client)

    def event_days(self) -> list[str]:
        if not self.settings.lake_s3_uri:
            raise DataError("PLAYERGUARD_LAKE_S3_URI is not set; cannot find the lake's date range")
        import awswrangler as wr

        prefixes = wr.s3.list_directories(self.settings.lake_s3_uri.rstrip("/") + "/events/")
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in prefixes]

    def lake_fingerprint(self) -> str | None:
        """None: S3 listings are not fingerprinted, so steps that read the lake always run."""
        return None
