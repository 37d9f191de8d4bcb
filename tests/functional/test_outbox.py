"""The local outbox: exactly-once flags, event-time cooldown, dead letters, and the review queue."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from playerguard.errors import DataError
from playerguard.inference.flags import Cooldowns, Flag, format_timestamp, make_flag_id
from playerguard.stream.notifiers.base import DeadLetter
from playerguard.stream.notifiers.local import OutboxNotifier

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def _flag(
    event: str, player: str = "p1", *, model: str = "inhuman_play", action: str = "review", at: datetime = T0
) -> Flag:
    return Flag(
        flag_id=make_flag_id(event, model, "1"),
        player_id=player,
        model=model,
        action=action,
        severity="medium",
        score=0.8,
        threshold=0.5,
        reasons=[],
        event_id=event,
        event_timestamp=format_timestamp(at),
        model_version="1",
        scored_at=format_timestamp(T0),
    )


def _letter(sequence: str) -> DeadLetter:
    return DeadLetter(
        "arn:aws:kinesis:local:0:stream/s",
        sequence,
        "p1",
        "bm9wZQ==",
        "data is not JSON",
        format_timestamp(T0),
    )


@pytest.fixture
def outbox(tmp_path: Path) -> OutboxNotifier:
    box = OutboxNotifier.from_home(tmp_path, Cooldowns(default=timedelta(hours=6)))
    yield box
    box.close()


def test_a_flag_is_stored_once_however_often_it_is_published(outbox: OutboxNotifier) -> None:
    first = outbox.publish([_flag("e1"), _flag("e2", "p2")])
    again = outbox.publish([_flag("e2", "p2"), _flag("e1")])
    assert sorted(first.published) == sorted([_flag("e1").flag_id, _flag("e2", "p2").flag_id])
    assert again.published == [] and sorted(again.duplicates) == sorted(first.published)
    assert outbox.count() == 2
    reopened = OutboxNotifier(outbox.path)
    assert reopened.count() == 2 and reopened.entry(_flag("e1").flag_id).flag == _flag("e1")
    reopened.close()


def test_cooldown_is_per_player_model_and_action_in_event_time(outbox: OutboxNotifier) -> None:
    outbox.publish([_flag("e1", at=T0)])
    outcome = outbox.publish(
        [
            _flag("e2", at=T0 + timedelta(hours=5)),  # same key, inside the window
            _flag("e3", at=T0 - timedelta(hours=2)),  # late event, inside the window
            _flag("e4", at=T0 + timedelta(hours=6)),  # window is exclusive
            _flag("e5", at=T0 + timedelta(hours=1), action="account_action"),  # other action
            _flag("e6", at=T0 + timedelta(hours=1), model="churn", action="retention_offer"),
            _flag("e7", "p2", at=T0 + timedelta(hours=1)),  # other player
        ]
    )
    suppressed = {_flag(e).flag_id for e in ("e2", "e3")}
    assert set(outcome.suppressed) == suppressed
    assert len(outcome.published) == 4
    # within one call the earlier event wins, whatever the order given
    batch = outbox.publish([_flag("e9", "p3", at=T0 + timedelta(hours=3)), _flag("e8", "p3", at=T0)])
    assert batch.published == [_flag("e8", "p3").flag_id] and batch.suppressed == [_flag("e9", "p3").flag_id]


def test_a_locked_outbox_fails_the_whole_publish_and_records_nothing(outbox: OutboxNotifier) -> None:
    outbox.publish([_flag("e0", "p0")])
    blocker = sqlite3.connect(outbox.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    outbox._connect().execute("PRAGMA busy_timeout = 50")
    outcome = outbox.publish([_flag("e1"), _flag("e2", "p2")])
    blocker.execute("ROLLBACK")
    blocker.close()
    assert set(outcome.failed) == {_flag("e1").flag_id, _flag("e2", "p2").flag_id}
    assert "locked" in outcome.failed[_flag("e1").flag_id]
    assert outbox.count() == 1
    assert len(outbox.publish([_flag("e1"), _flag("e2", "p2")]).published) == 2


def test_dead_letters_keep_the_raw_payload_and_reason_once(outbox: OutboxNotifier) -> None:
    assert outbox.dead_letter([_letter("1"), _letter("2")]) == {}
    assert outbox.dead_letter([_letter("2")]) == {}
    letters = outbox.dead_letters()
    assert sorted(x.sequence_number for x in letters) == ["1", "2"]
    assert letters[0].data == "bm9wZQ==" and letters[0].reason == "data is not JSON"


def test_review_records_the_verdict_and_labels_follow_it(outbox: OutboxNotifier) -> None:
    outbox.publish(
        [
            _flag("e1", "p1"),
            _flag("e2", "p2"),
            _flag("e3", "p3"),
            _flag("e4", "p1", at=T0 + timedelta(days=1)),
            _flag("e5", "p4", model="churn", action="retention_offer"),
        ]
    )
    assert [e.status for e in outbox.entries()] == ["pending"] * 5
    reviewed = outbox.review(_flag("e1", "p1").flag_id[:12], "confirmed", now=T0)
    assert reviewed.status == "confirmed" and reviewed.reviewed_at == format_timestamp(T0)
    outbox.review(_flag("e4", "p1").flag_id, "dismissed")
    outbox.review(_flag("e2", "p2").flag_id, "dismissed")
    outbox.review(_flag("e5", "p4", model="churn").flag_id, "confirmed")
    assert outbox.verdicts("inhuman_play") == [("p1", 1), ("p2", 0)]
    assert [e.flag.event_id for e in outbox.entries(status="pending")] == ["e3"]
    assert [e.flag.event_id for e in outbox.entries(model="churn")] == ["e5"]
    assert [e.flag.event_id for e in outbox.entries(limit=1)] == ["e4"]


def test_review_errors_name_the_problem(outbox: OutboxNotifier) -> None:
    outbox.publish([_flag("e1")])
    with pytest.raises(DataError, match="no flag 'nope'"):
        outbox.review("nope", "confirmed")
    with pytest.raises(DataError, match="verdict must be one of confirmed, dismissed"):
        outbox.review(_flag("e1").flag_id, "maybe")
    outbox.publish([_flag("e2"), _flag("e3", "p2")])
    with pytest.raises(DataError, match="ambiguous"):
        outbox.entry("")


def test_an_event_id_resent_with_another_timestamp_is_still_one_flag(outbox: OutboxNotifier) -> None:
    outbox.publish([_flag("e1", at=T0)])
    outcome = outbox.publish([_flag("e1", at=T0 + timedelta(days=3))])  # same flag_id, outside the window
    assert outcome.duplicates == [_flag("e1").flag_id] and outbox.count() == 1
    no_window = OutboxNotifier(outbox.path)  # without a cooldown the primary key alone decides
    assert no_window.publish([_flag("e1")]).duplicates == [_flag("e1").flag_id]
    no_window.close()
