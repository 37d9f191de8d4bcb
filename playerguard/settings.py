"""One typed settings object: explicit argument, then `PLAYERGUARD_*` environment variable, then default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where playerguard keeps its state and which backend each port uses.

    Unknown keys are rejected, so a typo in a setting is an error rather than a silent default.
    """

    model_config = SettingsConfigDict(env_prefix="PLAYERGUARD_", extra="forbid", frozen=True)

    home: Path = Field(default=Path(".playerguard"), description="Directory holding all local state.")
    backend: Literal["local", "aws"] = "local"

    # AWS lake and SQL engine
    region: str | None = None
    lake_s3_uri: str | None = Field(default=None, description="s3://bucket/prefix of the event lake.")
    glue_database: str = "playerguard"
    athena_workgroup: str = "primary"
    athena_output_s3_uri: str | None = None
    source_mapping: str | None = Field(
        default=None,
        description="Read an existing table through this source mapping (a name like `gap`, or a YAML path).",
    )

    # Online feature snapshot on AWS (locally: <home>/online/features.sqlite)
    online_table: str | None = Field(
        default=None, description="DynamoDB table of the online feature snapshot the stream reads."
    )

    # Experiment tracking
    mlflow_tracking_uri: str | None = None

    # Scoring endpoint and notifications
    endpoint_url: str | None = None
    endpoint_name: str = "playerguard"
    sns_topic_arn: str | None = None

    # Hardening
    bundle_digest: str | None = Field(
        default=None,
        description="sha256 the served bundle's digest must equal (checked on load and on every reload).",
    )
    event_time_earliest: datetime = Field(
        default=datetime(1970, 1, 1, tzinfo=UTC), description="Events before this are rejected."
    )
    event_time_max_ahead: timedelta = Field(
        default=timedelta(days=1), description="Events further than this ahead of the clock are rejected."
    )

    @property
    def lake_dir(self) -> Path:
        return self.home / "lake"

    @property
    def ground_truth_path(self) -> Path:
        return self.home / "ground_truth.parquet"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.home.resolve() / 'mlflow.db'}"
