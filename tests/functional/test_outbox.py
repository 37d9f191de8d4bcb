"""The local outbox: exactly-once flags, event-time cooldown, dead letters, and the review queue."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from playerguard.errors import DataError
from playerguard.inference.flags import Budgets, Cooldowns, Flag, format_timestamp, make_flag_id
from playerguard.stream.notifiers.base import DeadLetter
from playerguard.stream.notifiers.local import OutboxNotifier

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def _flag(
    event: str,
    player: str = "p1",
    *,
    model: str = "inhuman_play",
    action: str = "review",
    at: datetime = T0,
    value: float | None = None,
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
        value_at_risk=value,
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


# ---- daily budget ------------------------------------------------------------------------------------------


def _offer(event: str, player: str, value: float, at: datetime = T0) -> Flag:
    return _flag(event, player, model="churn", action="retention_offer", at=at, value=value)


@pytest.fixture
def budgeted(tmp_path: Path) -> OutboxNotifier:
    box = OutboxNotifier.from_home(
        tmp_path, Cooldowns(default=timedelta(days=7)), Budgets({("churn", "retention_offer"): 3})
    )
    yield box
    box.close()


def test_the_daily_budget_admits_the_highest_values_and_keeps_the_rest_as_suppressed(
    budgeted: OutboxNotifier,
) -> None:
    values = [1, 9, 4, 7, 2]
    offers = [_offer(f"e{i}", f"p{i}", value, T0 + timedelta(hours=i)) for i, value in enumerate(values)]
    first = budgeted.publish(offers)
    assert sorted(first.published) == sorted(f.flag_id for f in (offers[1], offers[3], offers[2]))
    assert sorted(first.suppressed) == sorted(f.flag_id for f in (offers[0], offers[4]))
    suppressed = budgeted.suppressions()
    assert [(s.flag.player_id, s.reason) for s in suppressed] == [
        ("p4", "over daily budget"),
        ("p0", "over daily budget"),
    ]  # highest value at risk first
    assert suppressed[0].flag == offers[4]  # the whole flag is kept, value at risk included

    again = budgeted.publish(offers)  # a redelivery: the admitted are duplicates, not over the budget
    assert sorted(again.duplicates) == sorted(first.published)
    assert sorted(again.suppressed) == sorted(first.suppressed)
    later = budgeted.publish([_offer("e9", "p9", 100.0, T0 + timedelta(hours=20))])  # same day, budget spent
    assert later.suppressed == [_offer("e9", "p9", 100.0).flag_id]
    others = budgeted.publish([_flag("r1", "p9", at=T0 + timedelta(hours=20))])  # no budget on this action
    assert len(others.published) == 1

    next_day = budgeted.publish([_offer("e10", "p9", 0.5, T0 + timedelta(days=1, hours=1))])  # a new UTC day
    assert len(next_day.published) == 1
    assert budgeted.count() == 5 and len(budgeted.suppressions(day="2026-02-01")) == 3
    assert budgeted.suppressions(day="2026-02-02") == []


def test_a_cooled_down_offer_spends_no_budget_and_an_unsent_one_starts_no_cooldown(
    budgeted: OutboxNotifier,
) -> None:
    budgeted.publish([_offer("e1", "p1", 5.0)])
    cooled = budgeted.publish([_offer("e2", "p1", 50.0, T0 + timedelta(hours=1))])  # p1's cooldown holds
    assert cooled.suppressed == [_offer("e2", "p1", 5.0).flag_id] and budgeted.suppressions() == []
    filled = budgeted.publish([_offer("e3", "p2", 3.0), _offer("e4", "p3", 2.0), _offer("e5", "p4", 1.0)])
    assert len(filled.published) == 2 and len(filled.suppressed) == 1  # p1, p2 and p3 spent the 3
    tomorrow = budgeted.publish([_offer("e6", "p4", 1.0, T0 + timedelta(days=1))])
    assert len(tomorrow.published) == 1  # p4's unsent offer yesterday started no cooldown


def test_the_held_back_offers_are_listed_on_the_command_line(tmp_path: Path, budgeted: OutboxNotifier) -> None:
    budgeted.publish([_offer(f"e{i}", f"p{i}", value) for i, value in enumerate([1.0, 9.0, 4.0, 7.0, 2.0])])

    def flags(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "playerguard.cli", "flags", *arguments, "--home", str(tmp_path)],
            capture_output=True, text=True, timeout=300, check=False, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )  # fmt: skip

    listed = flags("suppressed", "--day", T0.date().isoformat())
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert [line.split()[2] for line in lines[:-1]] == ["p4", "p0"] and lines[-1] == "2 held-back flags shown"
    assert "value at risk 2  over daily budget" in lines[0]
    assert flags("suppressed", "--day", "2001-01-01").stdout.strip() == "0 held-back flags shown"
    bad = flags("suppressed", "--day", "yesterday")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --day must be a date, YYYY-MM-DD, got 'yesterday'"


def test_a_budget_of_zero_sends_nothing_but_records_every_offer(tmp_path: Path) -> None:
    box = OutboxNotifier.from_home(tmp_path, budgets=Budgets({("churn", "retention_offer"): 0}))
    outcome = box.publish([_offer("e1", "p1", 5.0), _offer("e2", "p2", 1.0)])
    assert outcome.published == [] and len(outcome.suppressed) == 2
    assert [s.flag.player_id for s in box.suppressions()] == ["p1", "p2"] and box.count() == 0
    box.close()


# ---- concurrent reviews ---------------------------------------------------------------------------------------


def test_changing_a_verdict_needs_force_and_names_what_it_replaces(outbox: OutboxNotifier) -> None:
    outbox.publish([_flag("e1")])
    flag_id = _flag("e1").flag_id
    assert outbox.review(flag_id, "confirmed", now=T0).replaced is None
    assert outbox.review(flag_id, "confirmed").status == "confirmed"  # the same verdict again: no change
    with pytest.raises(DataError, match=r"already confirmed at .*--force to replace it with dismissed"):
        outbox.review(flag_id, "dismissed")
    assert outbox.entry(flag_id).status == "confirmed"
    changed = outbox.review(flag_id, "dismissed", force=True)
    assert (changed.status, changed.replaced) == ("dismissed", "confirmed")


def _cli(home: Path, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "playerguard.cli", "flags", "review", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PLAYERGUARD_HOME": str(home), "HOME": str(home)},
    )


def test_two_concurrent_reviews_with_different_verdicts_one_wins_the_other_is_told(tmp_path: Path) -> None:
    box = OutboxNotifier.from_home(tmp_path)
    box.publish([_flag("e1")])
    flag_id = _flag("e1").flag_id
    runs = [_cli(tmp_path, flag_id, "--verdict", verdict) for verdict in ("confirmed", "dismissed")]
    results = [(run.wait(timeout=300), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    winner = next(out for code, out, _ in results if code == 0)
    loser = next(err for code, _, err in results if code == 2)
    assert len(loser.strip().splitlines()) == 1 and "--force" in loser and "Traceback" not in loser
    assert box.entry(flag_id).status in winner
    assert pq.read_table(tmp_path / "labels/review_verdicts.parquet").num_rows == 1
    forced = _cli(tmp_path, flag_id, "--verdict", "dismissed" if "confirmed" in winner else "confirmed", "--force")
    out, err = forced.communicate(timeout=300)
    assert forced.returncode == 0, err
    assert "(replaces " in out
    box.close()


def test_concurrent_label_exports_never_collide(tmp_path: Path) -> None:
    from playerguard.stream.commands import export_review_labels

    box = OutboxNotifier.from_home(tmp_path)
    box.publish([_flag(f"e{i}", f"p{i}") for i in range(20)])
    for i in range(20):
        box.review(_flag(f"e{i}", f"p{i}").flag_id, "confirmed" if i % 2 else "dismissed")
    errors: list[BaseException] = []

    def export() -> None:
        own = OutboxNotifier.from_home(tmp_path)
        try:
            for _ in range(5):
                export_review_labels(own, tmp_path)
        except BaseException as error:  # noqa: BLE001 - collected for the assertion below
            errors.append(error)
        finally:
            own.close()

    threads = [threading.Thread(target=export) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    labels = pq.read_table(tmp_path / "labels/review_verdicts.parquet")
    assert labels.num_rows == 20 and sum(labels.column("label").to_pylist()) == 10
    assert [p.name for p in (tmp_path / "labels").iterdir() if p.suffix == ".tmp"] == []
    box.close()


def test_the_api_lists_what_the_budget_held_back(budgeted: OutboxNotifier, tmp_path: Path) -> None:
    import playerguard as pg

    assert pg.suppressed_flags(home=tmp_path / "elsewhere").empty  # no outbox yet: nothing held back
    values = [1, 9, 4, 7, 2]
    budgeted.publish([_offer(f"e{i}", f"p{i}", value, T0 + timedelta(hours=i)) for i, value in enumerate(values)])
    held = pg.suppressed_flags(home=tmp_path)
    assert held["player_id"].tolist() == ["p4", "p0"] and set(held["reason"]) == {"over daily budget"}
    assert held["value_at_risk"].tolist() == [2.0, 1.0]
    assert pg.suppressed_flags("2026-02-02", home=tmp_path).empty
    with pytest.raises(DataError, match="day must be a date, YYYY-MM-DD, got '2026-13-01'"):
        pg.suppressed_flags("2026-13-01", home=tmp_path)
