"""The notifier port: where flags and dead-lettered records go.

Implementations: `OutboxNotifier` (local.py) keeps flags in SQLite with a review status; `SnsNotifier`
(aws.py) publishes them to an SNS topic, with dead-letter sinks and a flag ledger beside it. Both refuse a
second copy of a flag_id. boto3 is never imported here: AWS adapters take a client.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from playerguard.inference.flags import Flag

VERDICTS = ("confirmed", "dismissed")
Claim = Literal["new", "duplicate", "suppressed"]


@dataclass(frozen=True)
class DeadLetter:
    """A record that can never be scored, kept with its raw payload and the reason."""

    source: str
    sequence_number: str
    partition_key: str
    data: str
    reason: str
    dead_lettered_at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def key(self) -> str:
        """Stable identity of the record: redelivering it dead-letters nothing new."""
        return hashlib.sha256(f"{self.source}\x1f{self.sequence_number}".encode()).hexdigest()


@dataclass
class PublishOutcome:
    """What a publish did with each flag_id; `failed` ones should be retried or redelivered."""

    published: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def record_claim(outcome: PublishOutcome, flag_id: str, claim: Claim) -> None:
    if claim == "new":
        outcome.published.append(flag_id)
    elif claim == "duplicate":
        outcome.duplicates.append(flag_id)
    elif claim == "suppressed":
        outcome.suppressed.append(flag_id)


class Notifier(Protocol):
    """Sends flags downstream and keeps dead letters. Implementations: OutboxNotifier, SnsNotifier."""

    def publish(self, flags: Sequence[Flag]) -> PublishOutcome: ...

    def dead_letter(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Store dead letters; return {sequence_number: reason} for those that could not be stored."""
        ...


_TRANSIENT_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
    }
)


def is_transient_aws_error(error: Exception) -> bool:
    """Throttling, 5xx and connection failures: worth another try. Read off the error, no botocore import."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or "Throttl" in code or code in _TRANSIENT_CODES
    return type(error).__name__ in {
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
    } or isinstance(error, (ConnectionError, TimeoutError))


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter]) -> dict[str, str]: ...


class FlagLedger(Protocol):
    """Cross-invocation memory for a notifier without its own: implemented by DynamoDbFlagLedger."""

    def claim(self, flag: Flag) -> Claim: ...

    def confirm(self, flag_id: str) -> None: ...
