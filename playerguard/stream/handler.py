"""AWS Lambda entry point for the Kinesis event source: `playerguard.stream.handler.handler`.

`handler` is two lines; below it sit the Lambda-side pieces it needs: the powertools batch processor
that hands the whole batch to one scorer call, the per-invocation runtime (replay calls it too), and the
AWS wiring, built on the first invocation (nothing at import: no clients, no environment reads) and
reused while the execution environment lives. docs/stream.md lists the variables, the IAM policy and the
event source mapping settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from playerguard.stream.retries import RetryPolicy
from playerguard.stream.scorer import BatchReport, StreamScorer


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Score a Kinesis batch; return `{"batchItemFailures": [...]}` for the records Kinesis must redeliver."""
    return lambda_runtime().handle(event, context)


class RecordFailed(Exception):
    """Why a record is reported back to Kinesis as a batch item failure."""


class KinesisBatchProcessor(BatchProcessor):
    """powertools' BatchProcessor with one handler call for the whole batch instead of one per record.

    The handler returns a BatchReport; the records it lists as failed become `batchItemFailures`. A batch
    that failed entirely is reported the same way rather than raised, so the response shape never changes.
    """

    def __init__(self) -> None:
        super().__init__(event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)
        self.report = BatchReport()

    def process(self) -> list[tuple]:
        self.report = self.handler(self.records)
        results = []
        for record in self.records:
            reason = self.report.failed.get(str(record["kinesis"]["sequenceNumber"]))
            if reason is None:
                results.append(self.success_handler(record, None))
            else:
                error = RecordFailed(reason)
                data = self._to_batch_type(record, self.event_type)
                results.append(self.failure_handler(data, (RecordFailed, error, None)))
        return results


class StreamRuntime:
    """One invocation's work: score the batch, log a summary, flush metrics, answer Lambda."""

    def __init__(self, scorer: StreamScorer, *, flush_metrics: Callable[[], None] | None = None) -> None:
        self.scorer = scorer
        self.flush_metrics = flush_metrics

    def handle_batch(
        self, event: Mapping[str, Any], context: Any = None
    ) -> tuple[dict[str, Any], BatchReport]:
        """The partial batch response Lambda expects, and the batch report."""
        records = event.get("Records") if isinstance(event, Mapping) else None
        if not isinstance(records, list):
            raise TypeError("not a Kinesis event: no 'Records' list")
        remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
        processor = KinesisBatchProcessor()
        try:
            with processor(records, lambda batch: self.scorer.score_batch(batch, remaining_ms)):
                processor.process()
        finally:
            if self.flush_metrics is not None:
                self.flush_metrics()
        report = processor.report
        summary: dict[str, Any] = report.counts()
        summary |= {
            "to_redeliver": len(report.failed),
            "aws_request_id": getattr(context, "aws_request_id", None),
        }
        self.scorer.logger.info("batch processed", extra=summary)
        return processor.response(), report

    def handle(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """`{"batchItemFailures": [{"itemIdentifier": <sequence number>}, ...]}`."""
        return self.handle_batch(event, context)[0]


class StreamConfig(BaseSettings):
    """Stream settings beside `Settings` (PLAYERGUARD_STREAM_* variables)."""

    model_config = SettingsConfigDict(env_prefix="PLAYERGUARD_STREAM_", extra="forbid", frozen=True)

    dead_letter_uri: str | None = Field(default=None, description="SQS queue URL or s3://bucket/prefix.")
    ledger_table: str | None = Field(default=None, description="DynamoDB flag ledger (cooldown + dedupe).")
    policy_path: Path | None = Field(
        default=None, description="Policy YAML for cooldowns (default: packaged)."
    )
    max_attempts: int = Field(default=4, ge=1, le=10)
    base_delay: float = Field(default=0.2, gt=0)
    max_delay: float = Field(default=2.0, gt=0)
    max_instances: int = Field(default=1000, ge=1)
    act_without_snapshot: frozenset[str] = Field(
        default=frozenset(),
        description="Models whose actions are taken for players scored on the batch's events alone.",
    )


def dead_letter_sink(uri: str, session: Any) -> Any:
    """SqsDeadLetters for an https:// queue URL, S3DeadLetters for s3://bucket/prefix."""
    from playerguard.errors import ConfigError
    from playerguard.stream.notifiers.aws import S3DeadLetters, SqsDeadLetters

    if uri.startswith("s3://"):
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        return S3DeadLetters(bucket, prefix or "dead-letters", session.client("s3"))
    if uri.startswith(("https://", "http://")):
        return SqsDeadLetters(uri, session.client("sqs"))
    raise ConfigError(
        f"PLAYERGUARD_STREAM_DEAD_LETTER_URI must be an SQS queue URL or s3://bucket/prefix, got {uri!r}"
    )


def aws_stream_runtime(
    settings: Any = None, config: StreamConfig | None = None, session: Any = None
) -> StreamRuntime:
    """The Lambda's runtime: SageMaker endpoint (or PLAYERGUARD_ENDPOINT_URL), SNS notifier, dead letters to
    SQS or S3, optional DynamoDB flag ledger, powertools Logger and Metrics."""
    import boto3
    from aws_lambda_powertools import Logger, Metrics
    from botocore.config import Config

    from playerguard.errors import ConfigError
    from playerguard.inference.flags import budgets_from_policy, cooldowns_from_policy
    from playerguard.inference.policy import load_policy
    from playerguard.settings import Settings
    from playerguard.stream.endpoint import HttpEndpoint, SageMakerEndpoint
    from playerguard.stream.notifiers.aws import DynamoDbFlagLedger, SnsNotifier

    settings = settings or Settings()
    config = config or StreamConfig()
    session = session or boto3.session.Session(region_name=settings.region)
    if not settings.sns_topic_arn:
        raise ConfigError("PLAYERGUARD_SNS_TOPIC_ARN is not set: the stream has nowhere to send flags")
    if not config.dead_letter_uri:
        raise ConfigError(
            "PLAYERGUARD_STREAM_DEAD_LETTER_URI is not set: poison records would have nowhere to go"
        )
    if not settings.online_table and not config.act_without_snapshot:
        raise ConfigError(
            "PLAYERGUARD_ONLINE_TABLE is not set and PLAYERGUARD_STREAM_ACT_WITHOUT_SNAPSHOT names no model: "
            "every player would be scored on its events alone and no action could ever be taken"
        )
    if settings.endpoint_url:
        endpoint: Any = HttpEndpoint(settings.endpoint_url)
    else:  # the scorer retries with its own bounded backoff
        runtime_client = session.client(
            "sagemaker-runtime", config=Config(retries={"mode": "standard", "max_attempts": 1})
        )
        endpoint = SageMakerEndpoint(settings.endpoint_name, runtime_client)
    policy = load_policy(config.policy_path)
    ledger = (
        DynamoDbFlagLedger(
            config.ledger_table,
            session.client("dynamodb"),
            cooldowns_from_policy(policy),
            budgets=budgets_from_policy(policy),
        )
        if config.ledger_table
        else None
    )
    notifier = SnsNotifier(
        settings.sns_topic_arn,
        session.client("sns"),
        dead_letter_sink(config.dead_letter_uri, session),
        ledger,
    )
    logger = Logger(service="playerguard-stream")
    metrics = Metrics(namespace="playerguard", service="playerguard-stream")
    scorer = StreamScorer(
        endpoint,
        notifier,
        online_features(settings.online_table, session),
        logger=logger,
        metrics=metrics,
        retry=RetryPolicy(config.max_attempts, config.base_delay, config.max_delay),
        max_instances=config.max_instances,
        act_without_snapshot=config.act_without_snapshot,
    )
    return StreamRuntime(scorer, flush_metrics=metrics.flush_metrics)


def online_features(table: str | None, session: Any) -> Any:
    """The online feature snapshot on AWS (the feature layer's DynamoDB table), or None without a table:
    then every player is scored on its own events."""
    if not table:
        return None
    from playerguard.features.online.dynamodb import DynamoDBFeatureStore

    return DynamoDBFeatureStore(table, resource=session.resource("dynamodb"))


@cache
def lambda_runtime() -> StreamRuntime:
    """The runtime of this execution environment, wired from the environment on first use."""
    return aws_stream_runtime()
