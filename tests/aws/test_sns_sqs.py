"""The AWS side of the stream against moto's server: SNS → subscribed SQS queue, the DynamoDB flag ledger,
dead letters to SQS and S3."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from playerguard.inference.flags import Budgets, Cooldowns, Flag, format_timestamp, make_flag_id
from playerguard.stream.notifiers.aws import DynamoDbFlagLedger, S3DeadLetters, SnsNotifier, SqsDeadLetters
from playerguard.stream.notifiers.base import DeadLetter

pytestmark = pytest.mark.aws
T0 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def aws(aws_endpoint: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """A topic (standard, or FIFO when the test is parametrised so), a subscribed queue, a ledger table."""
    fifo = getattr(request, "param", False)
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    suffix = ".fifo" if fifo else ""
    clients = {
        kind: boto3.client(kind, endpoint_url=aws_endpoint, region_name="us-east-1")
        for kind in ("sns", "sqs", "dynamodb", "s3")
    }
    topic = clients["sns"].create_topic(
        Name=f"{name}{suffix}", Attributes={"FifoTopic": "true"} if fifo else {}
    )["TopicArn"]
    queue = clients["sqs"].create_queue(
        QueueName=f"{name}{suffix}", Attributes={"FifoQueue": "true"} if fifo else {}
    )["QueueUrl"]
    queue_arn = clients["sqs"].get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    clients["sns"].subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    dlq = clients["sqs"].create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    clients["dynamodb"].create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return {**clients, "topic": topic, "queue": queue, "dlq": dlq, "table": name}


def drain(sqs: Any, queue: str) -> list[dict[str, Any]]:
    """Every message on the queue, as the SNS envelope (Message + MessageAttributes) SQS holds."""
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def flag(
    event: str, player: str = "p1", *, at: datetime = T0, model: str = "inhuman_play", action: str = "review"
) -> Flag:
    return Flag(
        flag_id=make_flag_id(event, model, "2"),
        player_id=player,
        model=model,
        action=action,
        severity="medium",
        score=0.91,
        threshold=0.8,
        reasons=[{"kind": "rule", "name": "aim", "value": None, "contribution": None}],
        event_id=event,
        event_timestamp=format_timestamp(at),
        model_version="2",
        scored_at=format_timestamp(T0),
    )


def letter(sequence: str) -> DeadLetter:
    return DeadLetter(
        "arn:aws:kinesis:us-east-1:1:stream/s",
        sequence,
        "p1",
        "e30=",
        "missing player_id",
        format_timestamp(T0),
    )


def test_flags_reach_the_subscribed_queue_with_filterable_attributes(aws: dict[str, Any]) -> None:
    notifier = SnsNotifier(aws["topic"], aws["sns"], SqsDeadLetters(aws["dlq"], aws["sqs"]))
    flags = [flag(f"e{i}", f"p{i}") for i in range(13)]  # two PublishBatch calls: 10 + 3
    outcome = notifier.publish(flags)
    assert sorted(outcome.published) == sorted(f.flag_id for f in flags) and outcome.failed == {}
    received = drain(aws["sqs"], aws["queue"])
    assert sorted(json.loads(m["Message"])["flag_id"] for m in received) == sorted(f.flag_id for f in flags)
    first = next(m for m in received if json.loads(m["Message"])["event_id"] == "e0")
    assert Flag.from_message(json.loads(first["Message"])) == flags[0]
    assert {k: v["Value"] for k, v in first["MessageAttributes"].items()} == {
        "model": "inhuman_play",
        "action": "review",
        "severity": "medium",
    }


@pytest.mark.parametrize("aws", [True], indirect=True, ids=["fifo"])
def test_a_fifo_topic_dedupes_a_republished_flag_on_its_id(aws: dict[str, Any]) -> None:
    notifier = SnsNotifier(aws["topic"], aws["sns"], SqsDeadLetters(aws["dlq"], aws["sqs"]))
    assert notifier.fifo
    notifier.publish([flag("e1"), flag("e2", "p2")])
    notifier.publish([flag("e1")])  # no ledger: published again, SNS drops it on MessageDeduplicationId
    received = drain(aws["sqs"], aws["queue"])
    assert sorted(json.loads(m["Message"])["event_id"] for m in received) == ["e1", "e2"]


def test_the_ledger_refuses_a_delivered_flag_and_enforces_the_cooldown(aws: dict[str, Any]) -> None:
    def notifier() -> SnsNotifier:  # a fresh one per "invocation": only the ledger remembers
        ledger = DynamoDbFlagLedger(aws["table"], aws["dynamodb"], Cooldowns(default=timedelta(days=1)))
        return SnsNotifier(aws["topic"], aws["sns"], SqsDeadLetters(aws["dlq"], aws["sqs"]), ledger)

    first = notifier().publish([flag("e1"), flag("e2", at=T0 + timedelta(hours=2)), flag("e3", "p2")])
    assert sorted(first.published) == sorted([flag("e1").flag_id, flag("e3", "p2").flag_id])
    assert first.suppressed == [flag("e2").flag_id]
    again = notifier().publish(
        [
            flag("e1"),
            flag("e2", at=T0 + timedelta(hours=2)),
            flag("e4", at=T0 + timedelta(days=1)),  # window over
            flag("e5", at=T0 + timedelta(hours=1), action="account_action"),
        ]
    )
    assert again.duplicates == [flag("e1").flag_id] and again.suppressed == [flag("e2").flag_id]
    assert sorted(again.published) == sorted(
        [flag("e4").flag_id, flag("e5", action="account_action").flag_id]
    )
    received = [json.loads(m["Message"])["event_id"] for m in drain(aws["sqs"], aws["queue"])]
    assert sorted(received) == ["e1", "e3", "e4", "e5"]


def offer(event: str, player: str, value: float, at: datetime = T0) -> Flag:
    return replace(
        flag(event, player, at=at, model="churn", action="retention_offer"),
        flag_id=make_flag_id(event, "churn", "2"),
        value_at_risk=value,
    )


def budgeted(aws: dict[str, Any], budget: int = 2) -> tuple[SnsNotifier, DynamoDbFlagLedger]:
    """A notifier as one Lambda invocation builds it: only the ledger table remembers across them."""
    ledger = DynamoDbFlagLedger(
        aws["table"], aws["dynamodb"], Cooldowns(default=timedelta(days=7)),
        budgets=Budgets({("churn", "retention_offer"): budget}),
    )  # fmt: skip
    return SnsNotifier(aws["topic"], aws["sns"], SqsDeadLetters(aws["dlq"], aws["sqs"]), ledger), ledger


def ledger_item(aws: dict[str, Any], key: str) -> dict[str, Any]:
    read = aws["dynamodb"].get_item(TableName=aws["table"], Key={"pk": {"S": key}}, ConsistentRead=True)
    return read["Item"]


def test_the_daily_budget_is_spent_on_the_highest_value_across_invocations(aws: dict[str, Any]) -> None:
    offers = [offer("e1", "p1", 1.0), offer("e2", "p2", 5.0, T0 + timedelta(hours=2)), offer("e3", "p3", 3.0)]
    notifier, ledger = budgeted(aws)
    first = notifier.publish(offers)
    assert sorted(first.published) == sorted([offers[1].flag_id, offers[2].flag_id])
    assert first.suppressed == [offers[0].flag_id]
    assert ledger_item(aws, f"flag#{offers[0].flag_id}")["status"]["S"] == "suppressed"
    assert ledger_item(aws, f"flag#{offers[0].flag_id}")["reason"]["S"] == "over daily budget"
    assert ledger.spent("churn", "retention_offer", "2026-02-01") == 2

    notifier, ledger = budgeted(aws)  # the next invocation, the same day
    later = notifier.publish([offer("e4", "p4", 100.0, T0 + timedelta(hours=20)), *offers])
    assert later.suppressed == [offer("e4", "p4", 100.0).flag_id, offers[0].flag_id]
    assert sorted(later.duplicates) == sorted(first.published)  # a redelivery spends nothing more
    assert ledger.spent("churn", "retention_offer", "2026-02-01") == 2

    next_day = notifier.publish([offer("e5", "p4", 0.1, T0 + timedelta(days=1))])
    assert len(next_day.published) == 1 and ledger.spent("churn", "retention_offer", "2026-02-02") == 1
    received = [json.loads(m["Message"]) for m in drain(aws["sqs"], aws["queue"])]
    sent = sorted((m["player_id"], m["value_at_risk"]) for m in received)
    assert sent == [("p2", 5.0), ("p3", 3.0), ("p4", 0.1)]


def test_an_offer_over_the_budget_starts_no_cooldown_and_a_cooled_down_one_spends_no_budget(
    aws: dict[str, Any],
) -> None:
    notifier, _ = budgeted(aws, budget=1)
    old = offer("e0", "p1", 1.0, T0 - timedelta(days=8))  # an earlier offer, its cooldown over by T0
    assert notifier.publish([old]).published == [old.flag_id]
    assert notifier.publish([offer("e1", "p2", 9.0), offer("e2", "p1", 1.0)]).suppressed == [
        offer("e2", "p1", 1.0).flag_id
    ]
    # p1's cooldown item is back to the offer it had, p2's holds the offer sent
    assert ledger_item(aws, "cooldown#p1#churn#retention_offer")["flag_id"]["S"] == old.flag_id
    cooled = notifier.publish([offer("e3", "p2", 9.0, T0 + timedelta(days=1))])  # p2's cooldown holds
    assert cooled.suppressed == [offer("e3", "p2", 9.0).flag_id]
    assert ledger_item(aws, f"flag#{cooled.suppressed[0]}")["reason"]["S"] == "cooldown"
    assert notifier.publish([offer("e4", "p1", 1.0, T0 + timedelta(days=1))]).published == [
        offer("e4", "p1", 1.0).flag_id
    ]  # the next day's budget went to p1, whose unsent offer started no cooldown


def test_an_offer_claimed_but_never_published_spends_the_budget_once(aws: dict[str, Any]) -> None:
    notifier, ledger = budgeted(aws, budget=2)
    assert ledger.claim(offer("e1", "p1", 2.0)) == "new"  # then the invocation died before publishing
    assert notifier.publish([offer("e1", "p1", 2.0)]).published == [offer("e1", "p1", 2.0).flag_id]
    assert ledger.spent("churn", "retention_offer", "2026-02-01") == 1
    assert len(notifier.publish([offer("e2", "p2", 1.0)]).published) == 1  # the second of two


def test_a_flag_claimed_but_never_published_is_published_on_redelivery(aws: dict[str, Any]) -> None:
    ledger = DynamoDbFlagLedger(aws["table"], aws["dynamodb"], Cooldowns(default=timedelta(days=1)))
    assert ledger.claim(flag("e1")) == "new"  # then the invocation died before publishing
    notifier = SnsNotifier(aws["topic"], aws["sns"], SqsDeadLetters(aws["dlq"], aws["sqs"]), ledger)
    assert notifier.publish([flag("e1")]).published == [flag("e1").flag_id]
    assert notifier.publish([flag("e1")]).duplicates == [flag("e1").flag_id]
    assert len(drain(aws["sqs"], aws["queue"])) == 1


def test_dead_letters_go_to_sqs_with_payload_and_reason(aws: dict[str, Any]) -> None:
    sink = SqsDeadLetters(aws["dlq"], aws["sqs"])
    assert sink.send([letter(str(i)) for i in range(12)]) == {}
    bodies = drain(aws["sqs"], aws["dlq"])
    assert sorted(int(b["sequence_number"]) for b in bodies) == list(range(12))
    assert bodies[0]["data"] == "e30=" and bodies[0]["reason"] == "missing player_id"


def test_large_dead_letters_fit_sqs_limits(aws: dict[str, Any]) -> None:
    big = [replace(letter(str(i)), data="A" * 100_000) for i in range(3)]  # 300 KB: two batches
    huge = replace(letter("9"), data="B" * 400_000)  # over one message's 256 KiB: cut, and says so
    assert SqsDeadLetters(aws["dlq"], aws["sqs"]).send([*big, huge]) == {}
    bodies = {b["sequence_number"]: b for b in drain(aws["sqs"], aws["dlq"])}
    assert sorted(bodies) == ["0", "1", "2", "9"]
    assert bodies["0"]["data"] == "A" * 100_000 and "data_truncated" not in bodies["0"]
    assert bodies["9"]["data_truncated"] is True and bodies["9"]["data_length"] == 400_000
    assert 200_000 < len(bodies["9"]["data"]) < 256 * 1024


def test_dead_letters_go_to_s3_once_per_record(aws: dict[str, Any]) -> None:
    bucket = aws["table"].lower().replace("_", "-")[:50]
    aws["s3"].create_bucket(Bucket=bucket)
    sink = S3DeadLetters(bucket, "stream/dead", aws["s3"])
    assert sink.send([letter("1"), letter("2")]) == {}
    assert sink.send([letter("2")]) == {}  # a redelivery overwrites, it does not add
    keys = [o["Key"] for o in aws["s3"].list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 2 and all(k.startswith("stream/dead/2026-02-01/") for k in keys)
    body = json.loads(aws["s3"].get_object(Bucket=bucket, Key=keys[0])["Body"].read())
    assert body["reason"] == "missing player_id"


LENIENT_POLICY = """
version: 1
models:
  inhuman_play:
    cooldown: 7d
    rules: [{threshold: 0.0, action: review, severity: medium}]
"""


class LambdaContext:
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"
    function_name = "playerguard-stream"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def test_the_lambda_handler_end_to_end(
    aws: dict[str, Any],
    aws_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The fixture event through `stream_handler.handler` configured by environment: real scoring server,
    online features from DynamoDB, flags on SNS → SQS with attributes, poison records on the dead-letter
    queue, EMF metrics and a structured log line printed."""
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from endpoint_fixtures import fit_test_models, synthetic_features

    from playerguard.features.online.dynamodb import DynamoDBFeatureStore
    from playerguard.inference.bundle import ModelSource, write_bundle
    from playerguard.settings import Settings
    from playerguard.stream import handler as stream_handler
    from playerguard.stream.endpoint import HttpEndpoint
    from playerguard.stream.replay import local_scoring_server
    from playerguard.stream.scorer import decode_record

    policy = tmp_path / "policy.yaml"
    policy.write_text(LENIENT_POLICY)
    models = fit_test_models(tmp_path, rows=300)
    bundle = write_bundle(
        tmp_path / "bundle",
        [ModelSource("inhuman_play", models["inhuman_play"], "4")],
        feature_set="default",
        policy_path=policy,
    )
    event = json.loads((Path(__file__).parents[1] / "fixtures" / "kinesis_event.json").read_text())
    features = DynamoDBFeatureStore(
        f"{aws['table']}-features",
        resource=boto3.resource("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1"),
    )
    features.create_table()
    snapshot = synthetic_features(1, seed=9).assign(player_id="p-000777", matches_28d=20.0)  # enough to judge
    features.write(snapshot)
    with local_scoring_server(Settings(home=tmp_path), bundle) as (url, _):
        endpoint = HttpEndpoint(url)
        snapshot_record = features.lookup(["p-000777"])["p-000777"]
        [expected] = endpoint.invoke({"instances": [{"player_id": "p-000777", "features": snapshot_record}]})[
            "predictions"
        ]
        own_events = [e.event for e in map(decode_record, event["Records"][2:4])]
        [on_events] = endpoint.invoke({"instances": [{"player_id": "p-000777", "events": own_events}]})[
            "predictions"
        ]
        assert on_events["scores"] != expected["scores"]  # so the flag's score tells which one was used
        for name, value in {
            "PLAYERGUARD_BACKEND": "aws",
            "PLAYERGUARD_ENDPOINT_URL": url,
            "PLAYERGUARD_SNS_TOPIC_ARN": aws["topic"],
            "PLAYERGUARD_STREAM_DEAD_LETTER_URI": aws["dlq"],
            "PLAYERGUARD_STREAM_LEDGER_TABLE": aws["table"],
            "PLAYERGUARD_ONLINE_TABLE": features.table_name,
            "PLAYERGUARD_STREAM_POLICY_PATH": str(policy),
            # the two players without a snapshot are acted on too (withheld by default)
            "PLAYERGUARD_STREAM_ACT_WITHOUT_SNAPSHOT": '["inhuman_play"]',
            "POWERTOOLS_METRICS_NAMESPACE": "playerguard",
        }.items():
            monkeypatch.setenv(name, value)
        stream_handler.lambda_runtime.cache_clear()
        try:
            response = stream_handler.handler(event, LambdaContext())
            again = stream_handler.handler(event, LambdaContext())  # a redelivery of the same batch
        finally:
            stream_handler.lambda_runtime.cache_clear()
    assert response == again == {"batchItemFailures": []}
    flags = [json.loads(m["Message"]) for m in drain(aws["sqs"], aws["queue"])]
    assert sorted(f["player_id"] for f in flags) == ["p-000042", "p-000777", "p-001234"]  # one per player
    assert {f["event_id"] for f in flags} >= {"evt-0001", "evt-0003"}  # each player's first event
    assert all(f["model"] == "inhuman_play" and f["model_version"] == "4" for f in flags)
    # p-000777 has a snapshot: it was scored on it, not on its two events
    assert (
        next(f for f in flags if f["player_id"] == "p-000777")["score"] == expected["scores"]["inhuman_play"]
    )
    letters = drain(aws["sqs"], aws["dlq"])
    # a standard queue takes the redelivered poison again: its (source, sequence_number) identify it
    assert len({x["sequence_number"] for x in letters}) == 3 and len(letters) == 6
    assert max(x["reason"] for x in letters) == "missing player_id"
    emitted = capsys.readouterr().out
    assert '"RecordsIn"' in emitted and '"FlagsPublished"' in emitted
    assert '"message":"batch processed"' in emitted and '"flagged":3' in emitted


def test_a_lambda_that_could_never_flag_anyone_refuses_to_start() -> None:
    from playerguard.errors import ConfigError
    from playerguard.settings import Settings
    from playerguard.stream.handler import StreamConfig, aws_stream_runtime

    settings = Settings(backend="aws", region="us-east-1", sns_topic_arn="arn:aws:sns:us-east-1:1:flags")
    config = StreamConfig(dead_letter_uri="s3://bucket/dead-letters")
    with pytest.raises(ConfigError, match="no action could ever be taken"):
        aws_stream_runtime(settings, config, boto3.session.Session(region_name="us-east-1"))
