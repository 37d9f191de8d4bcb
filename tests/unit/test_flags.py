"""Flag ids, flag messages built from predictions, cooldown windows, and record validation."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from playerguard.inference.flags import (
    Budgets,
    Cooldowns,
    Flag,
    FlagError,
    budgets_from_policy,
    flags_from_prediction,
    make_flag_id,
    publish_order,
)
from playerguard.inference.policy import load_policy
from playerguard.stream.scorer import PoisonRecord, decode_record, validate_event

FIXTURE = Path(__file__).parents[1] / "fixtures" / "kinesis_event.json"
SCORED_AT = datetime(2026, 2, 3, 19, 30, tzinfo=UTC)


def _prediction(**overrides: object) -> dict:
    prediction = {
        "player_id": "p1",
        "scores": {"inhuman_play": 0.97, "churn": 0.7, "purchase": 0.1},
        "actions": [
            {
                "model": "inhuman_play",
                "action": "account_action",
                "score": 0.97,
                "threshold": 0.9,
                "severity": "high",
            },
            {
                "model": "churn",
                "action": "retention_offer",
                "score": 0.7,
                "threshold": 0.6,
                "severity": "low",
            },
        ],
        "reasons": {
            "inhuman_play": [
                {"kind": "feature", "name": "reaction_ms_p10_28d", "value": 88.0, "contribution": 2.1}
            ]
        },
        "model_versions": {"inhuman_play": "3", "churn": "5", "purchase": "1"},
    }
    prediction.update(overrides)
    return prediction


def _flags(prediction: dict, event_id: str = "e1") -> list[Flag]:
    return flags_from_prediction(
        prediction,
        event_id=event_id,
        player_id="p1",
        event_timestamp="2026-02-03T19:21:40.503000Z",
        scored_at=SCORED_AT,
    )


def test_flag_id_is_deterministic_and_depends_on_event_model_and_version() -> None:
    base = make_flag_id("e1", "inhuman_play", "3")
    assert base == make_flag_id("e1", "inhuman_play", "3")
    assert len(base) == 64
    others = {
        make_flag_id("e2", "inhuman_play", "3"),
        make_flag_id("e1", "churn", "3"),
        make_flag_id("e1", "inhuman_play", "4"),
        base,
    }
    assert len(others) == 4
    # the separator keeps ("e1", "x") and ("e1x", "") apart
    assert make_flag_id("e1", "x", "1") != make_flag_id("e1x", "", "1")


def test_one_flag_per_action_with_the_contract_fields() -> None:
    flags = _flags(_prediction())
    assert [(f.model, f.action, f.severity) for f in flags] == [
        ("inhuman_play", "account_action", "high"),
        ("churn", "retention_offer", "low"),
    ]
    first = flags[0]
    assert first.flag_id == make_flag_id("e1", "inhuman_play", "3")
    assert first.model_version == "3" and first.score == 0.97 and first.threshold == 0.9
    assert first.reasons[0]["name"] == "reaction_ms_p10_28d"
    assert flags[1].reasons == []
    message = json.loads(first.to_json())
    for name in (
        "flag_id",
        "player_id",
        "model",
        "score",
        "threshold",
        "action",
        "reasons",
        "event_id",
        "model_version",
        "scored_at",
    ):
        assert name in message
    assert message["scored_at"] == "2026-02-03T19:30:00.000000Z"
    assert Flag.from_message(message) == first
    assert first.message_attributes() == {
        "model": "inhuman_play",
        "action": "account_action",
        "severity": "high",
    }


def test_no_action_means_no_flag() -> None:
    assert _flags(_prediction(actions=[])) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"player_id": "p2"}, "returned for 'p1'"),
        ({"model_versions": {"churn": "5"}}, "no 'inhuman_play'"),
        ({"actions": [{"model": "churn", "action": "ban", "score": 1, "threshold": 0.5}]}, "unknown action"),
        (
            {
                "actions": [
                    {"model": "churn", "action": "review", "score": 1, "threshold": 0.5},
                    {"model": "churn", "action": "retention_offer", "score": 1, "threshold": 0.5},
                ]
            },
            "more than one action",
        ),
    ],
)
def test_a_broken_prediction_raises_instead_of_guessing(overrides: dict, message: str) -> None:
    with pytest.raises(FlagError, match=message):
        _flags(_prediction(**overrides))


def test_flag_from_an_incomplete_message_names_the_missing_fields() -> None:
    with pytest.raises(FlagError, match="missing score"):
        Flag.from_message({k: v for k, v in _flags(_prediction())[0].to_message().items() if k != "score"})


def test_a_ranked_offer_carries_its_value_at_risk_and_old_messages_still_read() -> None:
    offer = {"model": "churn", "action": "retention_offer", "score": 0.7, "threshold": 0.6, "severity": "low",
             "value_at_risk": 12.5, "value_at_risk_note": None}  # fmt: skip
    [flag] = _flags(_prediction(actions=[offer]))
    assert flag.value_at_risk == 12.5 and json.loads(flag.to_json())["value_at_risk"] == 12.5
    assert Flag.from_message(json.loads(flag.to_json())) == flag
    older = {k: v for k, v in flag.to_message().items() if k not in ("value_at_risk", "condition")}
    assert Flag.from_message(older).value_at_risk is None
    assert flag.event_day == "2026-02-03"


def test_ranked_flags_are_claimed_highest_value_first_the_rest_in_event_time() -> None:
    def at(event: str, hour: int, value: float | None, score: float = 0.7) -> Flag:
        actions = [{"model": "churn", "action": "retention_offer", "score": score, "threshold": 0.6,
                    "value_at_risk": value}]  # fmt: skip
        [flag] = flags_from_prediction(
            _prediction(actions=actions), event_id=event, player_id="p1",
            event_timestamp=f"2026-02-03T{hour:02d}:00:00Z", scored_at=SCORED_AT,
        )  # fmt: skip
        return flag

    flags = [at("late", 9, None, 0.99), at("low", 1, 2.0), at("early", 3, None), at("high", 5, 30.0)]
    flags += [at("never bought", 0, 0.0), at("never bought, likelier to churn", 8, 0.0, 0.9)]
    assert [f.event_id for f in publish_order(flags)] == [
        "high", "low", "never bought, likelier to churn", "never bought", "early", "late",
    ]  # fmt: skip


def test_budgets_come_from_the_policy_per_model_and_action() -> None:
    budgets = budgets_from_policy(load_policy())
    assert budgets == Budgets({("churn", "retention_offer"): 500})
    assert budgets.limit("churn", "retention_offer") == 500
    assert budgets.limit("purchase", "purchase_offer") is None


def test_cooldown_windows_are_per_model_and_action_in_event_time() -> None:
    cooldowns = Cooldowns(
        default=timedelta(hours=1),
        per_model={"churn": timedelta(days=7)},
        per_action={("inhuman_play", "review"): timedelta(0)},
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert cooldowns.window("purchase", "purchase_offer") == timedelta(hours=1)
    assert cooldowns.suppresses(t0, t0 + timedelta(days=6), "churn", "retention_offer")
    assert not cooldowns.suppresses(t0, t0 + timedelta(days=7), "churn", "retention_offer")
    # a late event inside the window of a later flag is suppressed too
    assert cooldowns.suppresses(t0 + timedelta(days=1), t0, "churn", "retention_offer")
    assert not cooldowns.suppresses(t0, t0, "inhuman_play", "review")


def test_valid_events_are_normalized_and_get_a_content_id_when_they_have_none() -> None:
    raw = {
        "event_type": "match_end",
        "event_timestamp": "2026-02-03T20:21:40+01:00",
        "player_id": 42,
        "kills": 3,
    }
    event = validate_event(raw)
    assert event["player_id"] == "42"
    assert event["event_timestamp"] == "2026-02-03T19:21:40.000000Z"
    assert event["event_id"] == validate_event(dict(raw))["event_id"]
    assert event["event_id"] != validate_event({**raw, "kills": 4})["event_id"]
    assert validate_event({**raw, "event_id": "given"})["event_id"] == "given"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "must be a JSON object"),
        ({"event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"}, "missing player_id"),
        ({"player_id": "p", "event_timestamp": "2026-01-01T00:00:00Z"}, "missing event_type"),
        ({"player_id": "p", "event_type": "x", "event_timestamp": ""}, "missing event_timestamp"),
        ({"player_id": "p", "event_type": "x", "event_timestamp": "yesterday"}, "not an ISO 8601"),
        ({"player_id": "p", "event_type": "x", "event_timestamp": "2026-02-30T00:00:00.000000Z"}, "not an ISO 8601"),
        (
            {"player_id": True, "event_type": "x", "event_timestamp": "2026-01-01"},
            "player_id must be a string",
        ),
        (
            {"player_id": "p", "event_type": "x", "event_timestamp": "2026-01-01", "aim": {"x": 1}},
            "attribute 'aim'",
        ),
    ],
)
def test_schema_violations_are_poison_with_a_reason(payload: object, reason: str) -> None:
    with pytest.raises(PoisonRecord, match=reason):
        validate_event(payload)


def test_the_lambda_fixture_decodes_into_five_events_and_three_poison_records() -> None:
    records = json.loads(FIXTURE.read_text())["Records"]
    decoded, reasons = [], []
    for record in records:
        try:
            decoded.append(decode_record(record))
        except PoisonRecord as error:
            reasons.append(str(error))
    assert [e.event_id for e in decoded][:4] == ["evt-0001", "evt-0002", "evt-0003", "evt-0004"]
    assert decoded[1].event["headshots"] == 118 and decoded[1].partition_key == "p-000042"
    assert decoded[0].source.startswith("arn:aws:kinesis:")
    assert reasons[0] == "data is not valid base64"
    assert reasons[1].startswith("data is not JSON")
    assert reasons[2] == "missing player_id"


def test_non_utf8_data_is_poison() -> None:
    record = {"kinesis": {"data": base64.b64encode(b"\xff\xfe{").decode(), "sequenceNumber": "1"}}
    with pytest.raises(PoisonRecord, match="UTF-8"):
        decode_record(record)


def test_timestamps_come_out_in_one_spelling() -> None:
    def stamp(value: str) -> str:
        return validate_event({"player_id": "p", "event_type": "x", "event_timestamp": value})["event_timestamp"]

    assert stamp("2026-01-01T00:02:58.865657Z") == "2026-01-01T00:02:58.865657Z"
    assert stamp("2026-01-01T01:02:58.865657+01:00") == "2026-01-01T00:02:58.865657Z"
    assert stamp("2026-01-01T00:02:58") == "2026-01-01T00:02:58.000000Z"


def test_nan_is_not_json_so_it_is_poison() -> None:
    data = b'{"player_id": "p", "event_type": "x", "event_timestamp": "2026-01-01", "aim": NaN}'
    record = {"kinesis": {"data": base64.b64encode(data).decode(), "sequenceNumber": "1"}}
    with pytest.raises(PoisonRecord, match="data is not JSON"):
        decode_record(record)
