"""Drift alerts on the flags' SNS topic, against moto's server: a subscription filtering on `kind` gets the
alert, one filtering flags by model does not; a topic that refuses it is an error after the file is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.pipelines.drift import drift_report
from playerguard.pipelines.drift_alerts import ALERT_FILE, publish_drift_alert
from playerguard.settings import Settings

pytestmark = pytest.mark.aws


def drifted() -> Any:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"steady": rng.normal(0, 1, 2000), "moved": rng.normal(0, 1, 2000)})
    current = pd.DataFrame({"steady": rng.normal(0, 1, 2000), "moved": rng.normal(1.5, 1, 2000)})
    return drift_report(reference, current)


def subscribed_queue(sns: Any, sqs: Any, topic: str, name: str, filter_policy: dict[str, Any]) -> str:
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"FilterPolicy": json.dumps(filter_policy)}
    )
    return queue


def received(sqs: Any, queue: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_the_alert_reaches_the_alert_subscription_only(aws_endpoint: str, tmp_path: Path) -> None:
    sns, sqs = (boto3.client(kind, region_name="us-east-1") for kind in ("sns", "sqs"))
    topic = sns.create_topic(Name="playerguard-flags")["TopicArn"]
    alerts = subscribed_queue(sns, sqs, topic, "alerts", {"kind": ["drift"]})
    reviews = subscribed_queue(sns, sqs, topic, "reviews", {"model": ["inhuman_play"]})
    settings = Settings(home=tmp_path, backend="aws", region="us-east-1", sns_topic_arn=topic)

    where = publish_drift_alert(settings, drifted(), source="s3://bucket/drift.json")

    assert where[0] == str(tmp_path / ALERT_FILE) and where[1].startswith(f"{topic} (message ")
    [envelope] = received(sqs, alerts)
    assert envelope["MessageAttributes"]["kind"]["Value"] == "drift"
    alert = json.loads(envelope["Message"])
    assert [c["name"] for c in alert["columns"]] == ["moved"] and alert["report"] == "s3://bucket/drift.json"
    assert received(sqs, reviews) == []


def test_a_topic_that_refuses_the_alert_is_an_error_and_the_file_stays(aws_endpoint: str, tmp_path: Path) -> None:
    missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic"
    settings = Settings(home=tmp_path, backend="aws", region="us-east-1", sns_topic_arn=missing)
    with pytest.raises(DataError, match="not published to arn:aws:sns:us-east-1:123456789012:no-such-topic"):
        publish_drift_alert(settings, drifted(), source="drift.json")
    assert json.loads((tmp_path / ALERT_FILE).read_text())["kind"] == "drift"
