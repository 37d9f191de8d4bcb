"""Drift alerts: a JSON message naming the drifted columns, kept under `<home>/reports/` and, when a topic
is set (`PLAYERGUARD_SNS_TOPIC_ARN`), published to the same SNS topic as the flags.

On the topic an alert carries the message attribute `kind` = `drift` and no `model`, so subscriptions
that filter flags by model or action do not receive it, and one filtering on `kind` receives only alerts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from playerguard.errors import DataError
from playerguard.pipelines.drift import DriftReport
from playerguard.settings import Settings

ALERT_FILE = Path("reports") / "drift_alert.json"


def drift_alert(report: DriftReport, *, source: str) -> dict[str, Any]:
    """The alert message for a report with drift: which columns, how much, and where the full report is."""
    return {
        "kind": "drift",
        "threshold": report.threshold,
        "columns": [
            {"name": str(row.name), "kind": str(row.kind), "psi": round(float(row.psi), 6)}
            for row in report.drifted.itertuples(index=False)
        ],
        "reference_rows": report.reference_rows,
        "current_rows": report.current_rows,
        "report": source,
    }


def publish_drift_alert(settings: Settings, report: DriftReport, *, source: str, sns: Any = None) -> list[str]:
    """Write the alert to `<home>/reports/drift_alert.json` (replacing the previous one), then publish it
    to `settings.sns_topic_arn` when one is set (`sns`: a boto3 SNS client, built from the settings if not
    given). Returns where the alert went; DataError, after the file is written, if SNS refused it."""
    message = json.dumps(drift_alert(report, source=source), indent=2, sort_keys=True)
    path = settings.home / ALERT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(message)
    scratch.replace(path)
    destinations = [str(path)]
    if settings.sns_topic_arn:
        destinations.append(_publish(settings, message, sns))
    return destinations


def _publish(settings: Settings, message: str, sns: Any) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    topic = settings.sns_topic_arn
    if sns is None:
        import boto3

        sns = boto3.client("sns", region_name=settings.region)
    request: dict[str, Any] = {
        "TopicArn": topic,
        "Subject": "playerguard: feature or score drift",
        "Message": message,
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "drift"}},
    }
    if topic.endswith(".fifo"):  # the same alert published twice is one message
        request |= {
            "MessageGroupId": "drift",
            "MessageDeduplicationId": hashlib.sha256(message.encode("utf-8")).hexdigest(),
        }
    try:
        message_id = sns.publish(**request)["MessageId"]
    except (BotoCoreError, ClientError) as error:
        raise DataError(
            f"drift alert written to {settings.home / ALERT_FILE} but not published to {topic}: {error}"
        ) from error
    return f"{topic} (message {message_id})"
