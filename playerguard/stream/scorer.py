"""Scoring a Kinesis batch: decode and validate every record, enrich, call the endpoint once, publish flags.

Failure rules (nothing lost, nothing doubled):
- a record that can never be scored (bad base64, bad JSON, missing player_id/event_type/event_timestamp)
  goes to the dead-letter sink with its raw payload and the reason, and counts as processed;
- a transient failure (endpoint throttled, 5xx or unreachable; SNS throttled or partially failed) is retried
  with bounded exponential backoff; what still fails is returned so Kinesis redelivers it;
- a request the endpoint blames on a record (a 4xx naming a record), or fails on every retry with a 500, is
  bisected to isolate the records at fault (as Lambda's BisectBatchOnFunctionError does for a shard): they are
  dead-lettered with the reason and the rest is scored. Only when every player fails is the batch redelivered;
- flags carry deterministic ids, and notifiers refuse a flag_id they already hold.

Imports stay light (no pandas, numpy, boto3; orjson is a small C extension): this module is loaded by the
Lambda handler.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from playerguard.inference.flags import (
    Flag,
    FlagError,
    flags_from_prediction,
    format_timestamp,
    parse_timestamp,
)
from playerguard.stream.endpoint import Endpoint, EndpointRejected
from playerguard.stream.notifiers.base import DeadLetter, Notifier, is_transient_aws_error
from playerguard.stream.retries import Attempts, RetryPolicy, TransientError

REQUIRED_FIELDS: tuple[str, ...] = ("player_id", "event_type", "event_timestamp")
_SCALARS = frozenset({str, int, float, bool, type(None)})
MAX_ATTRIBUTES = 256  # keys per event, as the endpoint's Limits.max_attributes
# the lake's TimeRange.earliest, spelt as normalize_timestamp spells it
EARLIEST_TIMESTAMP = "1970-01-01T00:00:00.000000Z"


class PoisonRecord(Exception):
    """A record that no retry can fix; the message is the reason stored with the dead letter."""


class EndpointFailed(Exception):
    """The endpoint answered 500 to a request it had already failed on every retry (while bisecting)."""


class FeatureSource(Protocol):
    """The online feature snapshot: the latest materialised features of each player that has some."""

    def lookup(self, player_ids: Sequence[str]) -> Mapping[str, Mapping[str, Any]]: ...


class MetricsSink(Protocol):
    """What the scorer needs from powertools Metrics (and what replay's counter provides)."""

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class CountingMetrics:
    """In-process metric totals, for replay and tests."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.totals[name] = self.totals.get(name, 0) + value


@dataclass(frozen=True)
class StreamEvent:
    """A decoded, validated event with where it came from in the stream."""

    source: str
    sequence_number: str
    partition_key: str
    data: str
    event: dict[str, Any]

    @property
    def player_id(self) -> str:
        return self.event["player_id"]

    @property
    def event_id(self) -> str:
        return self.event["event_id"]

    @property
    def event_timestamp(self) -> str:
        return self.event["event_timestamp"]

    def dead_letter(self, reason: str, at: str) -> DeadLetter:
        return DeadLetter(self.source, self.sequence_number, self.partition_key, self.data, reason, at)


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PoisonRecord(f"{name} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise PoisonRecord(f"{name} is empty")
    return text


_CANONICAL_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def normalize_timestamp(stamp: Any) -> str:
    """`format_timestamp` spelling of an ISO 8601 timestamp; one already in it is only checked (the common
    case, and a third of the cost of validating an event)."""
    if isinstance(stamp, str) and _CANONICAL_TIMESTAMP.fullmatch(stamp):
        datetime.fromisoformat(stamp)  # a real date and time, or ValueError
        return stamp
    return format_timestamp(parse_timestamp(stamp))


def validate_event(payload: Any) -> dict[str, Any]:
    """The event with its envelope checked and normalized, or PoisonRecord naming the problem."""
    if not isinstance(payload, dict):
        raise PoisonRecord(f"event must be a JSON object, got {type(payload).__name__}")
    if len(payload) > MAX_ATTRIBUTES:
        raise PoisonRecord(f"event has {len(payload)} keys, over the limit of {MAX_ATTRIBUTES}")
    missing = [name for name in REQUIRED_FIELDS if payload.get(name) in (None, "")]
    if missing:
        raise PoisonRecord(f"missing {', '.join(missing)}")
    event = dict(payload)
    event["player_id"] = _text(payload["player_id"], "player_id")
    event["event_type"] = _text(payload["event_type"], "event_type")
    stamp = payload["event_timestamp"]
    try:
        event["event_timestamp"] = normalize_timestamp(stamp)
    except (TypeError, ValueError):
        raise PoisonRecord(f"event_timestamp {str(stamp)[:64]!r} is not an ISO 8601 timestamp") from None
    if event["event_timestamp"] < EARLIEST_TIMESTAMP:
        raise PoisonRecord(f"event_timestamp {event['event_timestamp']} is before 1970")
    if not _SCALARS.issuperset(map(type, payload.values())):  # the common case is checked in C
        for name, value in payload.items():
            if isinstance(value, dict | list):
                raise PoisonRecord(f"attribute {name!r} must be a number, string, boolean or null")
    if payload.get("event_id") in (None, ""):
        # same content, same id: a producer's retry of an id-less event is still one event
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
        event["event_id"] = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]
    else:
        event["event_id"] = _text(payload["event_id"], "event_id")
    return event


def decode_record(record: Mapping[str, Any]) -> StreamEvent:
    """A Kinesis record as Lambda delivers it → StreamEvent; PoisonRecord when the payload is unusable."""
    kinesis = record["kinesis"]
    try:
        raw = base64.b64decode(kinesis["data"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise PoisonRecord("data is not valid base64") from None
    try:
        payload = orjson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PoisonRecord("data is not UTF-8 text") from None
    except orjson.JSONDecodeError as error:
        raise PoisonRecord(f"data is not JSON: {error.msg} at position {error.pos}") from None
    return StreamEvent(
        source=str(record.get("eventSourceARN", "")),
        sequence_number=str(kinesis["sequenceNumber"]),
        partition_key=str(kinesis.get("partitionKey", "")),
        data=str(kinesis["data"]),
        event=validate_event(payload),
    )


@dataclass
class BatchReport:
    """What one batch did. `failed` maps sequence numbers Kinesis must redeliver to the reason."""

    received: int = 0
    scored: int = 0
    flagged: int = 0
    duplicates: int = 0
    suppressed: int = 0
    dead_lettered: int = 0
    retried: int = 0
    without_snapshot: int = 0
    withheld: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Every counter of the report by name (all fields but `failed`)."""
        return {name: value for name, value in vars(self).items() if name != "failed"}


@dataclass
class PlayerGroup:
    """One player's events in a batch: one instance of the endpoint request, one prediction."""

    player_id: str
    events: list[StreamEvent]
    snapshot: Mapping[str, Any] | None = None

    def instance(self) -> dict[str, Any]:
        """The snapshot's features when there is a snapshot, else the events to compute features from."""
        if self.snapshot is not None:
            # NaN (undefined feature) travels as null: strict JSON, and what the endpoint reads as undefined
            features = {
                k: None if isinstance(v, float) and math.isnan(v) else v for k, v in self.snapshot.items()
            }
            return {"player_id": self.player_id, "features": features}
        return {"player_id": self.player_id, "events": [item.event for item in self.events]}


def group_by_player(events: Sequence[StreamEvent]) -> list[PlayerGroup]:
    """Events grouped per player, players in order of first appearance, events in stream order."""
    groups: dict[str, PlayerGroup] = {}
    for item in events:
        groups.setdefault(item.player_id, PlayerGroup(item.player_id, [])).events.append(item)
    return list(groups.values())


def read_predictions(response: Any, expected: int) -> list[Mapping[str, Any]]:
    """The endpoint's predictions, one per instance in request order; TransientError when malformed."""
    predictions = response.get("predictions") if isinstance(response, Mapping) else None
    if not isinstance(predictions, list) or len(predictions) != expected:
        got = len(predictions) if isinstance(predictions, list) else "no"
        raise TransientError(f"endpoint answered {got} predictions for {expected} instances")
    return predictions


class StreamScorer:
    """Scores one Kinesis batch with one endpoint call and publishes its flags exactly once.

    Records are decoded and validated first; poison is dead-lettered. The remaining events are grouped
    per player (one instance each: the online snapshot when the player has one, else the player's events)
    and scored in one call (`max_instances` per call, the endpoint's own limit). Should the endpoint blame
    a record (a 4xx with a record error code), the request is halved until the culprit is isolated; a
    player whose snapshot is refused is scored on its events; events refused on their own are dead-lettered.

    A player without a snapshot is scored on the batch's events alone: a few hours of play, where the models
    learnt from weeks of it. Those scores are out of distribution (docs/stream.md gives the measured cost),
    so their actions are taken only for the models named in `act_without_snapshot` (none by default); the
    others are counted as `withheld`.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        notifier: Notifier,
        features: FeatureSource | None = None,
        *,
        retry: RetryPolicy | None = None,
        metrics: MetricsSink | None = None,
        logger: logging.Logger | Any | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_instances: int = 1000,
        act_without_snapshot: Collection[str] = (),
    ) -> None:
        self.endpoint = endpoint
        self.notifier = notifier
        self.features = features
        self.retry = retry or RetryPolicy()
        self.metrics = metrics or CountingMetrics()
        self.logger = logger or logging.getLogger("playerguard.stream")
        self.clock = clock
        self.max_instances = max_instances
        self.act_without_snapshot = frozenset(act_without_snapshot)

    def score_batch(
        self, records: Sequence[Mapping[str, Any]], remaining_ms: Callable[[], int] | None = None
    ) -> BatchReport:
        """Process a batch; the report's `failed` sequence numbers are the batch item failures."""
        report = BatchReport(received=len(records))
        attempts = Attempts(self.retry, self.logger, remaining_ms)
        events, letters = self._decode(records)
        self._dead_letter(letters, report, attempts)
        if events:
            self._score(events, report, attempts)
        report.retried = attempts.retried
        for name, value in (
            ("RecordsIn", report.received),
            ("RecordsScored", report.scored),
            ("PlayersWithoutSnapshot", report.without_snapshot),
            ("ActionsWithheld", report.withheld),
            ("FlagsPublished", report.flagged),
            ("RecordsRejected", report.dead_lettered),
            ("Retries", report.retried),
            ("RecordsFailed", len(report.failed)),
        ):
            self.metrics.add_metric(name=name, unit="Count", value=value)
        return report

    def _decode(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[StreamEvent], list[DeadLetter]]:
        events: list[StreamEvent] = []
        letters: list[DeadLetter] = []
        now = format_timestamp(self.clock())
        for record in records:
            try:
                events.append(decode_record(record))
            except PoisonRecord as reason:
                kinesis = record["kinesis"]
                letters.append(
                    DeadLetter(
                        str(record.get("eventSourceARN", "")),
                        str(kinesis["sequenceNumber"]),
                        str(kinesis.get("partitionKey", "")),
                        str(kinesis.get("data", "")),
                        str(reason),
                        now,
                    )
                )
        return events, letters

    def _dead_letter(self, letters: list[DeadLetter], report: BatchReport, attempts: Attempts) -> None:
        for letter in letters:
            self.logger.warning(f"dead-lettering record {letter.sequence_number}: {letter.reason}")
        failed = attempts.resend(
            "dead letters", letters, self.notifier.dead_letter, lambda letter: letter.sequence_number
        )
        report.dead_lettered += len(letters) - len(failed)
        report.failed |= {seq: f"dead letter not stored: {why}" for seq, why in failed.items()}

    def _score(self, events: list[StreamEvent], report: BatchReport, attempts: Attempts) -> None:
        groups = group_by_player(events)
        predictions: dict[str, Mapping[str, Any]] = {}
        refused: dict[str, str] = {}
        try:
            if self.features is not None:
                players = [group.player_id for group in groups]
                snapshots = attempts.call("feature lookup", lambda: self._lookup(players))
                for group in groups:
                    group.snapshot = snapshots.get(group.player_id)
            for start in range(0, len(groups), self.max_instances):
                chunk = groups[start : start + self.max_instances]
                self._predict(chunk, predictions, refused, attempts)
            flags, sources = self._flags(
                [g for g in groups if g.player_id in predictions], predictions, report
            )
        except (TransientError, EndpointRejected, FlagError) as error:
            # nothing is acknowledged on a guess: Kinesis redelivers the batch
            self.logger.error(f"batch not scored, to be redelivered: {error}")
            report.failed |= {item.sequence_number: str(error) for item in events}
            return
        now = format_timestamp(self.clock())
        self._dead_letter(
            [
                item.dead_letter(refused[group.player_id], now)
                for group in groups
                if group.player_id in refused
                for item in group.events
            ],
            report,
            attempts,
        )
        report.scored += sum(len(g.events) for g in groups if g.player_id in predictions)
        self._publish(flags, sources, report, attempts)

    def _lookup(self, players: list[str]) -> Mapping[str, Mapping[str, Any]]:
        try:
            return self.features.lookup(players)
        except Exception as error:
            if is_transient_aws_error(error):  # DynamoDB throttled, a dropped connection
                raise TransientError(f"feature lookup: {error}") from error
            raise

    def _predict(
        self,
        groups: list[PlayerGroup],
        predictions: dict[str, Mapping[str, Any]],
        refused: dict[str, str],
        attempts: Attempts,
        failed: dict[str, str] | None = None,
    ) -> None:
        """Score `groups`, halving the request around records the endpoint refuses. `failed` is set while
        bisecting a request the endpoint failed on (500) every time: a 500 is then not retried again, and the
        players it still fails on alone are collected there."""
        request = {"instances": [group.instance() for group in groups]}

        def invoke() -> Any:
            try:
                return self.endpoint.invoke(request)
            except TransientError as error:
                if failed is not None and error.status == 500:
                    raise EndpointFailed(str(error)) from None
                raise

        try:
            response = attempts.call("endpoint call", invoke)
        except EndpointRejected as error:
            if not error.blames_a_record:
                raise
            if len(groups) == 1 and groups[0].snapshot is None:
                refused[groups[0].player_id] = f"endpoint refused the event: {error}"
            else:
                self._narrow(groups, predictions, refused, attempts, failed, error)
            return
        except EndpointFailed as error:  # raised only while bisecting, so `failed` is set
            if len(groups) == 1 and groups[0].snapshot is None and failed is not None:
                failed[groups[0].player_id] = f"endpoint failed on the event (500 on every try): {error}"
            else:
                self._narrow(groups, predictions, refused, attempts, failed, error)
            return
        except TransientError as error:
            if error.status != 500 or failed is not None or len(groups) == 1:
                raise
            self.logger.warning(
                f"endpoint failed on every retry ({error}); bisecting to find the records at fault"
            )
            isolated: dict[str, str] = {}
            self._narrow(groups, predictions, refused, attempts, isolated, error)
            if not any(group.player_id in predictions for group in groups):
                raise  # no player scores on its own: the endpoint is broken, not a record
            refused |= isolated
            return
        for group, prediction in zip(groups, read_predictions(response, len(groups)), strict=True):
            predictions[group.player_id] = prediction

    def _narrow(
        self,
        groups: list[PlayerGroup],
        predictions: dict[str, Mapping[str, Any]],
        refused: dict[str, str],
        attempts: Attempts,
        failed: dict[str, str] | None,
        error: Exception,
    ) -> None:
        """Score the halves of `groups` apart; a lone player whose snapshot is at fault is scored on its events."""
        if len(groups) > 1:
            middle = len(groups) // 2
            for half in (groups[:middle], groups[middle:]):
                self._predict(half, predictions, refused, attempts, failed)
        elif groups[0].snapshot is not None:
            self.logger.warning(
                f"snapshot of player {groups[0].player_id} refused ({error}); scoring the player on its events"
            )
            groups[0].snapshot = None
            self._predict(groups, predictions, refused, attempts, failed)

    def _flags(
        self, groups: list[PlayerGroup], predictions: Mapping[str, Mapping[str, Any]], report: BatchReport
    ) -> tuple[list[Flag], dict[str, list[str]]]:
        """Flags per player; each names the player's first event in the batch, which a redelivery (starting
        at or before it) still has first, so the flag_id comes out the same."""
        scored_at = self.clock()
        flags: list[Flag] = []
        sources: dict[str, list[str]] = {}
        for group in groups:
            trigger = group.events[0]
            events_only = group.snapshot is None
            report.without_snapshot += events_only
            for flag in flags_from_prediction(
                predictions[group.player_id],
                event_id=trigger.event_id,
                player_id=group.player_id,
                event_timestamp=trigger.event_timestamp,
                scored_at=scored_at,
            ):
                if events_only and flag.model not in self.act_without_snapshot:
                    report.withheld += 1
                    continue
                flags.append(flag)
                sources[flag.flag_id] = [item.sequence_number for item in group.events]
        return flags, sources

    def _publish(
        self, flags: list[Flag], sources: dict[str, list[str]], report: BatchReport, attempts: Attempts
    ) -> None:
        def send(pending: list[Flag]) -> dict[str, str]:
            outcome = self.notifier.publish(pending)
            report.flagged += len(outcome.published)
            report.duplicates += len(outcome.duplicates)
            report.suppressed += len(outcome.suppressed)
            return outcome.failed

        # only what failed goes again: a flag this invocation delivered is never sent twice
        failed = attempts.resend("flags", flags, send, lambda flag: flag.flag_id)
        for flag_id, reason in failed.items():
            for sequence_number in sources[flag_id]:
                report.failed[sequence_number] = f"flag {flag_id} not published: {reason}"
