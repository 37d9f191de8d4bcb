"""Faults on the stream path: a flaky endpoint, poison records, a crash mid-batch, SNS partial failures.

The endpoint is a real HTTP server on loopback with a failure schedule; the outbox is the real SQLite one.
Kinesis redelivery is emulated as an event source mapping does it: from the lowest failed sequence number.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from playerguard.inference.flags import Cooldowns, Flag, make_flag_id
from playerguard.stream.endpoint import HttpEndpoint
from playerguard.stream.handler import StreamRuntime
from playerguard.stream.notifiers.base import PublishOutcome
from playerguard.stream.notifiers.local import OutboxNotifier
from playerguard.stream.replay_source import kinesis_batches, records_to_redeliver
from playerguard.stream.retries import RetryPolicy
from playerguard.stream.scorer import StreamScorer

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
FLOAT32_MAX = 3.4028234663852886e38
MODEL_VERSION = "7"


class LoopbackScorer(ThreadingHTTPServer):
    """A scoring endpoint on 127.0.0.1: players with a reaction under 150 ms score 0.95, others 0.05.

    It speaks the real endpoint's instance format (features, or events to compute them from) and refuses
    what the real one refuses with the same error codes: a non-numeric reaction (`invalid_events`), a
    feature record without `reaction_ms_p10` (`missing_feature`). `failures` lists the HTTP statuses of
    the first calls; after that it answers normally.
    """

    daemon_threads = True

    def __init__(self, failures: Sequence[int] = ()) -> None:
        super().__init__(("127.0.0.1", 0), _ScorerHandler)
        self.failures = list(failures)
        self.calls = 0
        self.scored_events: list[str] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls += 1
            if self.failures:
                return self.failures.pop(0), {"error": "scheduled failure"}
        predictions = []
        for instance in request["instances"]:
            if "features" in instance:
                if "reaction_ms_p10" not in instance["features"]:
                    return 400, {"error": "missing_feature", "message": "missing feature 'reaction_ms_p10'"}
                fast = instance["features"]["reaction_ms_p10"] < 150
            else:
                reactions = [event.get("reaction_ms", 1000) for event in instance["events"]]
                if not all(isinstance(value, int | float) for value in reactions):
                    return 400, {
                        "error": "invalid_events",
                        "message": "attribute 'reaction_ms': expected a number",
                    }
                if any(abs(value) >= FLOAT32_MAX for value in reactions):  # what XGBoost raised on
                    return 500, {"error": "internal_error", "message": "scoring failed inside the server"}
                fast = any(value < 150 for value in reactions)
            score = 0.95 if fast else 0.05
            actions = (
                [
                    {
                        "model": "inhuman_play",
                        "action": "review",
                        "score": score,
                        "threshold": 0.5,
                        "severity": "medium",
                    }
                ]
                if fast
                else []
            )
            predictions.append(
                {
                    "player_id": instance["player_id"],
                    "scores": {"inhuman_play": score},
                    "actions": actions,
                    "reasons": {"inhuman_play": []},
                    "model_versions": {"inhuman_play": MODEL_VERSION},
                }
            )
        with self._lock:
            self.scored_events.extend(
                event["event_id"] for instance in request["instances"] for event in instance.get("events", [])
            )
        return 200, {"predictions": predictions}


class _ScorerHandler(BaseHTTPRequestHandler):
    server: LoopbackScorer

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status, body = self.server.answer(request)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def start(server: LoopbackScorer) -> LoopbackScorer:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def scorer_factory() -> Iterator[Any]:
    servers: list[LoopbackScorer] = []

    def make(failures: Sequence[int] = ()) -> LoopbackScorer:
        servers.append(start(LoopbackScorer(failures)))
        return servers[-1]

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def events(count: int, *, cheaters: set[int] | None = None) -> list[dict[str, Any]]:
    """`count` match events of distinct players; those listed in `cheaters` react inhumanly fast."""
    cheaters = set(range(0, count, 4)) if cheaters is None else cheaters
    return [
        {
            "event_id": f"e{i:04d}",
            "event_type": "match_end",
            "player_id": f"p{i:04d}",
            "game_id": "g",
            "platform": "pc",
            "event_timestamp": (T0 + timedelta(seconds=i)).isoformat(),
            "reaction_ms": 90.0 if i in cheaters else 240.0,
        }
        for i in range(count)
    ]


def expected_flags(items: list[dict[str, Any]]) -> set[str]:
    return {
        make_flag_id(e["event_id"], "inhuman_play", MODEL_VERSION) for e in items if e["reaction_ms"] < 150
    }


def stored_flag_ids(outbox: OutboxNotifier) -> list[str]:
    return [entry.flag.flag_id for entry in outbox.entries(limit=100_000)]


def runtime(url: str, notifier: Any, sleeps: list[float] | None = None, attempts: int = 5) -> StreamRuntime:
    sleeps = [] if sleeps is None else sleeps
    retry = RetryPolicy(max_attempts=attempts, base_delay=0.1, max_delay=1.0, sleep=sleeps.append)
    # the loopback scorer judges events alone, so its inhuman-play actions are taken without a snapshot
    scorer = StreamScorer(HttpEndpoint(url), notifier, retry=retry, act_without_snapshot={"inhuman_play"})
    return StreamRuntime(scorer)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[OutboxNotifier]:
    box = OutboxNotifier.from_home(tmp_path, Cooldowns(default=timedelta(days=1)))
    yield box
    box.close()


def test_endpoint_503_then_recovery_scores_every_record_once(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory([503, 503, 503])
    items = events(100)
    sleeps: list[float] = []
    response, report = runtime(server.url, outbox, sleeps).handle_batch(next(kinesis_batches(items)))
    assert response == {"batchItemFailures": []}
    assert sleeps == [0.1, 0.2, 0.4]
    assert server.calls == 4 and report.retried == 3
    assert sorted(server.scored_events) == sorted(e["event_id"] for e in items)
    assert report.scored == 100 and report.flagged == 25
    assert sorted(stored_flag_ids(outbox)) == sorted(expected_flags(items))


def test_endpoint_down_past_the_retries_reports_the_batch_and_redelivery_completes_it(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory([503, 502, 500, 429, 503, 503])
    items = events(40)
    batch = next(kinesis_batches(items))
    stream = runtime(server.url, outbox, attempts=4)
    response, report = stream.handle_batch(batch)
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {
        r["kinesis"]["sequenceNumber"] for r in batch["Records"]
    }
    assert report.scored == 0 and outbox.count() == 0 and server.calls == 4
    redelivered = records_to_redeliver(batch["Records"], response)
    assert len(redelivered) == 40
    response, report = stream.handle_batch({"Records": redelivered})
    assert response == {"batchItemFailures": []}
    assert sorted(stored_flag_ids(outbox)) == sorted(expected_flags(items))
    assert sorted(server.scored_events) == sorted(e["event_id"] for e in items)


def test_a_refused_connection_is_transient_too(outbox: OutboxNotifier) -> None:
    sleeps: list[float] = []
    free = LoopbackScorer()
    url = free.url
    free.server_close()  # nothing listens there any more
    response, report = runtime(url, outbox, sleeps, attempts=3).handle_batch(next(kinesis_batches(events(5))))
    assert len(response["batchItemFailures"]) == 5 and sleeps == [0.1, 0.2]
    assert "unreachable" in next(iter(report.failed.values()))


def _poison(kind: int) -> str:
    if kind == 0:
        return "%%% not base64 %%%"
    if kind == 1:
        return base64.b64encode(b"{not json").decode()
    return base64.b64encode(
        json.dumps(
            {"event_type": "match_end", "event_timestamp": "2026-03-01T00:00:00Z", "event_id": "no-player"}
        ).encode()
    ).decode()


def test_three_poison_records_among_97_good_ones(scorer_factory: Any, outbox: OutboxNotifier) -> None:
    server = scorer_factory()
    items = events(97)
    batch = next(kinesis_batches([*items[:30], {}, *items[30:60], {}, *items[60:], {}]))
    poison_positions = [30, 61, 99]
    for kind, position in enumerate(poison_positions):
        batch["Records"][position]["kinesis"]["data"] = _poison(kind)
    response, report = runtime(server.url, outbox).handle_batch(batch)
    assert response == {"batchItemFailures": []}
    assert (report.received, report.scored, report.dead_lettered) == (100, 97, 3)
    assert server.calls == 1
    letters = {x.sequence_number: x for x in outbox.dead_letters()}
    assert set(letters) == {batch["Records"][p]["kinesis"]["sequenceNumber"] for p in poison_positions}
    reasons = sorted(x.reason for x in letters.values())
    assert reasons[0].startswith("data is not JSON: ") and reasons[0].endswith(" at position 1")
    assert reasons[1:] == ["data is not valid base64", "missing player_id"]
    assert letters[batch["Records"][30]["kinesis"]["sequenceNumber"]].data == "%%% not base64 %%%"
    assert sorted(stored_flag_ids(outbox)) == sorted(expected_flags(items))


class CrashingNotifier:
    """The real outbox, but the process 'dies' right after the first `survive` flags are published."""

    def __init__(self, outbox: OutboxNotifier, survive: int) -> None:
        self.outbox = outbox
        self.survive = survive

    def publish(self, flags: Sequence[Flag]) -> PublishOutcome:
        self.outbox.publish(list(flags)[: self.survive])
        raise RuntimeError("Lambda killed mid-batch")

    def dead_letter(self, letters: Any) -> dict[str, str]:
        return self.outbox.dead_letter(letters)


def test_a_crash_after_publishing_some_flags_then_redelivery_duplicates_nothing(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory()
    items = events(100)
    batch = next(kinesis_batches(items))
    with pytest.raises(RuntimeError, match="killed"):
        runtime(server.url, CrashingNotifier(outbox, survive=10)).handle_batch(batch)
    assert outbox.count() == 10
    response, report = runtime(server.url, outbox).handle_batch(batch)  # Lambda retries the whole batch
    assert response == {"batchItemFailures": []}
    assert (report.flagged, report.duplicates) == (15, 10)
    flag_ids = stored_flag_ids(outbox)
    assert len(flag_ids) == len(set(flag_ids)) == 25
    assert set(flag_ids) == expected_flags(items)
    # and once more, as a redelivery after success would: nothing new
    _, report = runtime(server.url, outbox).handle_batch(batch)
    assert (report.flagged, report.duplicates, outbox.count()) == (0, 25, 25)


def test_a_player_with_several_events_in_a_batch_is_scored_once_and_flagged_once(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory()
    items = events(6, cheaters={0, 1, 2, 3, 4, 5})
    for item in items:
        item["player_id"] = "p-same"
    response, report = runtime(server.url, outbox).handle_batch(next(kinesis_batches(items)))
    assert response == {"batchItemFailures": []}
    assert report.scored == 6 and report.flagged == 1
    assert [e.flag.event_id for e in outbox.entries()] == ["e0000"]


def test_a_record_the_endpoint_refuses_is_isolated_and_dead_lettered(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory()
    items = events(20)
    items[13]["reaction_ms"] = "inhumanly fast"
    batch = next(kinesis_batches(items))
    response, report = runtime(server.url, outbox).handle_batch(batch)
    assert response == {"batchItemFailures": []}
    assert (report.scored, report.dead_lettered) == (19, 1)
    assert server.calls <= 1 + 2 * 5  # one call, then halving down to the culprit
    [letter] = outbox.dead_letters()
    assert letter.sequence_number == batch["Records"][13]["kinesis"]["sequenceNumber"]
    assert letter.reason.startswith("endpoint refused the event: ") and "invalid_events" not in letter.reason
    assert "expected a number" in letter.reason
    assert sorted(stored_flag_ids(outbox)) == sorted(expected_flags(items[:13] + items[14:]))


class Snapshots:
    """An in-memory feature snapshot (the FeatureSource port): player_id → feature record."""

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records
        self.lookups: list[list[str]] = []

    def lookup(self, player_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.lookups.append(list(player_ids))
        return {p: self.records[p] for p in player_ids if p in self.records}


def test_snapshot_features_are_used_and_a_refused_snapshot_falls_back_to_events(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory()
    items = events(8, cheaters={1})
    snapshots = Snapshots(
        {
            "p0000": {"reaction_ms_p10": 95.0},  # a cheater by its history, though this event looks human
            "p0002": {"sessions_7d": 3},  # a broken snapshot: the endpoint refuses it
        }
    )
    scorer = StreamScorer(
        HttpEndpoint(server.url), outbox, snapshots, retry=RetryPolicy(sleep=lambda _: None)
    )
    response, report = StreamRuntime(scorer).handle_batch(next(kinesis_batches(items)))
    assert response == {"batchItemFailures": []} and report.scored == 8
    assert snapshots.lookups == [[e["player_id"] for e in items]]  # one lookup for the batch
    # p0001 looks like a cheater on its one event, but without history its action is withheld by default
    assert {entry.flag.player_id for entry in outbox.entries()} == {"p0000"}
    assert report.without_snapshot == 7 and report.withheld == 1
    # p0002 was scored on its event after its snapshot was refused, so its event reached the endpoint
    assert "e0002" in server.scored_events and "e0000" not in server.scored_events


def test_actions_on_events_alone_are_taken_for_the_models_allowed_to(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory()
    scorer = StreamScorer(
        HttpEndpoint(server.url),
        outbox,
        Snapshots({}),
        retry=RetryPolicy(sleep=lambda _: None),
        act_without_snapshot={"inhuman_play"},
    )
    _, report = StreamRuntime(scorer).handle_batch(next(kinesis_batches(events(8, cheaters={1, 5}))))
    assert {entry.flag.player_id for entry in outbox.entries()} == {"p0001", "p0005"}
    assert report.without_snapshot == 8 and report.withheld == 0


def test_a_request_the_endpoint_refuses_for_another_reason_fails_the_batch(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory([400])
    batch = next(kinesis_batches(events(10)))
    response, report = runtime(server.url, outbox).handle_batch(batch)
    assert len(response["batchItemFailures"]) == 10 and report.dead_lettered == 0
    assert server.calls == 1 and outbox.dead_letters() == []


class HalfFailingSns:
    """A real SNS client (moto's server) behind a fault: for the first `faulty_calls` PublishBatch calls only
    the even-numbered entries go through, the odd ones come back Failed as SNS reports a partial failure."""

    def __init__(self, client: Any, faulty_calls: int) -> None:
        self.client = client
        self.faulty_calls = faulty_calls
        self.calls = 0

    def publish_batch(
        self, TopicArn: str, PublishBatchRequestEntries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        self.calls += 1
        entries = PublishBatchRequestEntries
        if self.calls > self.faulty_calls:
            return self.client.publish_batch(TopicArn=TopicArn, PublishBatchRequestEntries=entries)
        sent = self.client.publish_batch(TopicArn=TopicArn, PublishBatchRequestEntries=entries[0::2])
        failed = [
            {"Id": e["Id"], "Code": "Throttled", "Message": "Rate exceeded", "SenderFault": False}
            for e in entries[1::2]
        ]
        return {"Successful": sent["Successful"], "Failed": sent.get("Failed", []) + failed}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sns_world(moto_url: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    import boto3

    name = request.node.name[:60]
    clients = {
        kind: boto3.client(kind, endpoint_url=moto_url, region_name="us-east-1")
        for kind in ("sns", "sqs", "dynamodb")
    }
    topic = clients["sns"].create_topic(Name=name)["TopicArn"]
    queue = clients["sqs"].create_queue(QueueName=name)["QueueUrl"]
    arn = clients["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    clients["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    dlq = clients["sqs"].create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    clients["dynamodb"].create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return {**clients, "topic": topic, "queue": queue, "dlq": dlq, "table": name}


def sns_notifier(world: dict[str, Any], sns: Any) -> Any:
    from playerguard.stream.notifiers.aws import DynamoDbFlagLedger, SnsNotifier, SqsDeadLetters

    ledger = DynamoDbFlagLedger(world["table"], world["dynamodb"], Cooldowns(default=timedelta(days=1)))
    return SnsNotifier(world["topic"], sns, SqsDeadLetters(world["dlq"], world["sqs"]), ledger)


def delivered_flag_ids(world: dict[str, Any]) -> list[str]:
    ids = []
    while (
        batch := world["sqs"].receive_message(QueueUrl=world["queue"], MaxNumberOfMessages=10).get("Messages")
    ):
        for message in batch:
            ids.append(json.loads(json.loads(message["Body"])["Message"])["flag_id"])
            world["sqs"].delete_message(QueueUrl=world["queue"], ReceiptHandle=message["ReceiptHandle"])
    return ids


@pytest.mark.aws
def test_sns_failing_half_of_each_publish_batch_then_redelivery_delivers_each_flag_once(
    scorer_factory: Any, sns_world: dict[str, Any]
) -> None:
    server = scorer_factory()
    items = events(100)  # 25 flags: three PublishBatch calls per attempt
    batch = next(kinesis_batches(items))
    flaky = HalfFailingSns(sns_world["sns"], faulty_calls=6)  # two attempts' worth of partial failures
    response, report = runtime(server.url, sns_notifier(sns_world, flaky), attempts=2).handle_batch(batch)
    assert report.retried == 1 and 0 < len(response["batchItemFailures"]) < 100
    first_pass = delivered_flag_ids(sns_world)
    assert 0 < len(first_pass) < 25
    redelivered = records_to_redeliver(batch["Records"], response)
    response, report = runtime(server.url, sns_notifier(sns_world, flaky)).handle_batch(
        {"Records": redelivered}
    )
    assert response == {"batchItemFailures": []}
    delivered = first_pass + delivered_flag_ids(sns_world)
    assert len(delivered) == len(set(delivered)) == 25
    assert set(delivered) == expected_flags(items)


@pytest.mark.aws
def test_a_crash_between_sns_batches_then_redelivery_duplicates_nothing(
    scorer_factory: Any, sns_world: dict[str, Any]
) -> None:
    class CrashAfterFirstCall:
        def __init__(self, client: Any) -> None:
            self.client, self.calls = client, 0

        def publish_batch(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            if self.calls > 1:
                raise RuntimeError("Lambda killed mid-batch")
            return self.client.publish_batch(**kwargs)

    server = scorer_factory()
    items = events(100)
    batch = next(kinesis_batches(items))
    with pytest.raises(RuntimeError, match="killed"):
        runtime(server.url, sns_notifier(sns_world, CrashAfterFirstCall(sns_world["sns"]))).handle_batch(
            batch
        )
    first_pass = delivered_flag_ids(sns_world)
    assert len(first_pass) == 10
    response, report = runtime(server.url, sns_notifier(sns_world, sns_world["sns"])).handle_batch(batch)
    assert response == {"batchItemFailures": []} and report.duplicates == 10 and report.flagged == 15
    delivered = first_pass + delivered_flag_ids(sns_world)
    assert len(delivered) == len(set(delivered)) == 25 and set(delivered) == expected_flags(items)


def test_a_feature_lookup_that_drops_its_connection_is_retried(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    class FlakySnapshots(Snapshots):
        def lookup(self, player_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
            if not self.lookups:
                self.lookups.append([])
                raise ConnectionResetError("feature store connection reset")
            return super().lookup(player_ids)

    server = scorer_factory()
    sleeps: list[float] = []
    snapshots = FlakySnapshots({})
    scorer = StreamScorer(HttpEndpoint(server.url), outbox, snapshots, retry=RetryPolicy(sleep=sleeps.append))
    response, report = StreamRuntime(scorer).handle_batch(next(kinesis_batches(events(8))))
    assert response == {"batchItemFailures": []} and report.scored == 8 and report.retried == 1
    assert sleeps == [0.1] and len(snapshots.lookups) == 2


# ---- a record that fails the endpoint every time -----------------------------------------------------------


def test_an_oversized_value_that_fails_the_endpoint_is_bisected_out_and_dead_lettered(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory()
    items = events(100)
    items[37]["reaction_ms"] = 1e39  # p0037 has no snapshot: its events go to the endpoint
    snapshots = Snapshots({f"p{i:04d}": {"reaction_ms_p10": 240.0} for i in range(0, 100, 3) if i != 37})
    batch = next(kinesis_batches(items))
    sleeps: list[float] = []
    retry = RetryPolicy(max_attempts=3, base_delay=0.1, max_delay=1.0, sleep=sleeps.append)
    scorer = StreamScorer(HttpEndpoint(server.url), outbox, snapshots, retry=retry,
                          act_without_snapshot={"inhuman_play"})
    response, report = StreamRuntime(scorer).handle_batch(batch)
    assert response == {"batchItemFailures": []}
    assert (report.received, report.scored, report.dead_lettered) == (100, 99, 1)
    assert report.received == report.scored + report.dead_lettered
    [letter] = outbox.dead_letters()
    assert letter.sequence_number == batch["Records"][37]["kinesis"]["sequenceNumber"]
    assert "500" in letter.reason and "endpoint failed on the event" in letter.reason
    assert len(sleeps) == 2  # the full request was retried; the halves were not
    scored = set(server.scored_events) | {f"e{i:04d}" for i in range(0, 100, 3)}
    assert scored == {e["event_id"] for e in items} - {"e0037"}


def test_an_endpoint_failing_on_every_record_is_an_outage_and_nothing_is_dead_lettered(
    scorer_factory: Any, outbox: OutboxNotifier
) -> None:
    server = scorer_factory()
    items = events(8)
    for item in items:
        item["reaction_ms"] = 1e39
    response, report = runtime(server.url, outbox, attempts=2).handle_batch(next(kinesis_batches(items)))
    assert len(response["batchItemFailures"]) == 8
    assert (report.scored, report.dead_lettered) == (0, 0) and outbox.dead_letters() == []
