"""The AWS notifier: flags to an SNS topic, dead letters to SQS or S3, beside the DynamoDB flag ledger.

SNS itself remembers nothing (a FIFO topic only for five minutes), so on AWS the ledger table
(`ledger.DynamoDbFlagLedger`) is what makes a redelivered flag a no-op across invocations and what enforces
the policy's cooldown and daily budget. boto3 is never imported: every store takes a client.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from playerguard.errors import ConfigError
from playerguard.inference.flags import Flag, publish_order
from playerguard.settings import Settings
from playerguard.stream.notifiers.base import (
    DeadLetter,
    DeadLetterSink,
    FlagLedger,
    PublishOutcome,
    is_transient_aws_error,
    record_claim,
)
from playerguard.stream.notifiers.ledger import DynamoDbFlagLedger

__all__ = ["DynamoDbFlagLedger", "S3DeadLetters", "SnsNotifier", "SqsDeadLetters"]

SNS_BATCH_LIMIT = 10
SQS_BATCH_LIMIT = 10
SQS_BYTES_LIMIT = 256 * 1024
"""SQS caps a message, and a whole SendMessageBatch, at 256 KiB."""


def _sqs_body(letter: DeadLetter) -> str:
    """The letter as JSON; a payload too big for one SQS message is cut, saying so (the S3 sink keeps all)."""
    body = letter.to_json()
    if len(body.encode()) <= SQS_BYTES_LIMIT:
        return body
    message = json.loads(body)
    room = SQS_BYTES_LIMIT - len(body.encode()) + len(letter.data) - 1024
    message |= {"data": letter.data[: max(room, 0)], "data_truncated": True, "data_length": len(letter.data)}
    return json.dumps(message, sort_keys=True)


def _sqs_chunks(bodies: list[str]) -> list[list[int]]:
    """Indices of `bodies` grouped into batches within SQS's count and size limits."""
    chunks: list[list[int]] = [[]]
    size = 0
    for index, body in enumerate(bodies):
        length = len(body.encode())
        if chunks[-1] and (len(chunks[-1]) == SQS_BATCH_LIMIT or size + length > SQS_BYTES_LIMIT):
            chunks.append([])
            size = 0
        chunks[-1].append(index)
        size += length
    return [chunk for chunk in chunks if chunk]


class SqsDeadLetters:
    """Dead letters as SQS messages (SendMessageBatch, within SQS's count and size limits). A standard
    queue may receive a redelivered poison record again; (source, sequence_number) identify it."""

    def __init__(self, queue_url: str, client: Any) -> None:
        self.queue_url = queue_url
        self.client = client
        self.fifo = queue_url.endswith(".fifo")

    def send(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        failed: dict[str, str] = {}
        bodies = [_sqs_body(letter) for letter in letters]
        for chunk in _sqs_chunks(bodies):
            entries = []
            for index in chunk:
                entry = {"Id": str(index), "MessageBody": bodies[index]}
                if self.fifo:
                    entry |= {
                        "MessageGroupId": letters[index].partition_key or "dead-letters",
                        "MessageDeduplicationId": letters[index].key,
                    }
                entries.append(entry)
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except Exception as error:
                if not is_transient_aws_error(error):
                    raise
                failed |= {letters[index].sequence_number: f"sqs: {error}" for index in chunk}
                continue
            for item in response.get("Failed", []):
                failed[letters[int(item["Id"])].sequence_number] = (
                    f"sqs: {item.get('Code')} {item.get('Message', '')}"
                )
        return failed


class S3DeadLetters:
    """Dead letters as one JSON object per record under an S3 prefix, keyed so a redelivery overwrites."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    def send(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        failed: dict[str, str] = {}
        for letter in letters:
            key = f"{self.prefix}/{letter.dead_lettered_at[:10]}/{letter.key}.json".lstrip("/")
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=letter.to_json().encode("utf-8"),
                    ContentType="application/json",
                )
            except Exception as error:
                if not is_transient_aws_error(error):
                    raise
                failed[letter.sequence_number] = f"s3: {error}"
        return failed


class SnsNotifier:
    """Flags to an SNS topic with PublishBatch (≤ 10 per call); dead letters to SQS or S3.

    Attributes model/action/severity let subscribers filter. FIFO topics get MessageGroupId = player_id and
    MessageDeduplicationId = flag_id. Without a ledger, a redelivered flag is published again with the same
    flag_id: standard-topic subscribers must dedupe on it (documented in docs/stream.md).
    """

    def __init__(
        self, topic_arn: str, client: Any, dead_letters: DeadLetterSink, ledger: FlagLedger | None = None
    ) -> None:
        self.topic_arn = topic_arn
        self.client = client
        self.dead_letters = dead_letters
        self.ledger = ledger
        self.fifo = topic_arn.endswith(".fifo")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, dead_letters: DeadLetterSink, client: Any = None, ledger: FlagLedger | None = None
    ) -> SnsNotifier:
        """The topic PLAYERGUARD_SNS_TOPIC_ARN names, with an SNS client built if none is passed."""
        if not settings.sns_topic_arn:
            raise ConfigError("PLAYERGUARD_SNS_TOPIC_ARN is not set: name the SNS topic that receives flags")
        if client is None:
            import boto3

            client = boto3.client("sns", region_name=settings.region)
        return cls(settings.sns_topic_arn, client, dead_letters, ledger)

    def _entry(self, index: int, flag: Flag) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "Id": str(index),
            "Message": flag.to_json(),
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in flag.message_attributes().items()
            },
        }
        if self.fifo:
            entry |= {"MessageGroupId": flag.player_id, "MessageDeduplicationId": flag.flag_id}
        return entry

    def publish(self, flags: Sequence[Flag]) -> PublishOutcome:
        outcome = PublishOutcome()
        ready: list[Flag] = []
        for flag in publish_order(flags):  # the ledger spends a daily budget on the highest value first
            try:
                claim = self.ledger.claim(flag) if self.ledger else "new"
            except Exception as error:
                if not is_transient_aws_error(error):
                    raise
                outcome.failed[flag.flag_id] = f"ledger: {error}"
                continue
            if claim == "new":
                ready.append(flag)  # counted as published once SNS has accepted it
            else:
                record_claim(outcome, flag.flag_id, claim)
        for start in range(0, len(ready), SNS_BATCH_LIMIT):
            self._publish_chunk(ready[start : start + SNS_BATCH_LIMIT], outcome)
        return outcome

    def _publish_chunk(self, chunk: list[Flag], outcome: PublishOutcome) -> None:
        try:
            response = self.client.publish_batch(
                TopicArn=self.topic_arn,
                PublishBatchRequestEntries=[self._entry(i, f) for i, f in enumerate(chunk)],
            )
        except Exception as error:
            if not is_transient_aws_error(error):
                raise
            outcome.failed |= {flag.flag_id: f"sns: {error}" for flag in chunk}
            return
        failed_ids = {int(item["Id"]): item for item in response.get("Failed", [])}
        for index, flag in enumerate(chunk):
            if index in failed_ids:
                item = failed_ids[index]
                outcome.failed[flag.flag_id] = f"sns: {item.get('Code')} {item.get('Message', '')}".strip()
                continue
            try:
                if self.ledger:
                    self.ledger.confirm(flag.flag_id)
            except Exception as error:
                # delivered but not remembered: a redelivery may publish it again; subscribers dedupe on flag_id
                if not is_transient_aws_error(error):
                    raise
            outcome.published.append(flag.flag_id)

    def dead_letter(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        return self.dead_letters.send(letters) if letters else {}
