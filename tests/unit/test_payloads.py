"""Request parsing and response encoding of the scoring endpoint (no I/O)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from playerguard.inference.payloads import (
    Limits,
    NotAcceptable,
    PayloadTooLarge,
    RequestError,
    UnsupportedMediaType,
    check_accept,
    default_cutoff,
    encode_predictions,
    feature_frame,
    parse_request,
)

NAMES = ["sessions_7d", "accuracy_28d"]
LIMITS = Limits()


def parse(body: object, content_type: str | None = "application/json", limits: Limits = LIMITS):
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    return parse_request(raw, content_type, NAMES, limits)


def error_of(body: object, content_type: str | None = "application/json", limits: Limits = LIMITS) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(body, content_type, limits)
    return caught.value


def test_records_become_float_columns_with_null_as_nan_and_extra_fields_ignored() -> None:
    parsed = parse([
        {"player_id": "a", "sessions_7d": 3, "accuracy_28d": 0.5, "unknown_field": "ignored"},
        {"player_id": 7, "sessions_7d": 0, "accuracy_28d": None},
    ])
    frame = feature_frame(parsed, NAMES, None)
    assert list(frame.columns) == ["player_id", *NAMES]
    assert frame["player_id"].tolist() == ["a", "7"]
    assert frame["sessions_7d"].dtype == np.float64
    assert frame["sessions_7d"].tolist() == [3.0, 0.0]
    assert frame["accuracy_28d"].iloc[0] == 0.5 and math.isnan(frame["accuracy_28d"].iloc[1])


def test_instances_wrapper_is_the_same_as_a_list() -> None:
    records = [{"player_id": "a", "sessions_7d": 1, "accuracy_28d": 0.1}]
    plain = feature_frame(parse(records), NAMES, None)
    wrapped = feature_frame(parse({"instances": records}), NAMES, None)
    pd.testing.assert_frame_equal(plain, wrapped)


def test_missing_feature_is_named_with_its_record() -> None:
    error = error_of([{"player_id": "a", "sessions_7d": 1, "accuracy_28d": 0.1}, {"player_id": "b", "sessions_7d": 2}])
    assert (error.status, error.code) == (400, "missing_feature")
    assert "record 1" in str(error) and "'accuracy_28d'" in str(error)


@pytest.mark.parametrize("value", ["3", True, [1], {"x": 1}, float("inf")])
def test_non_numeric_or_infinite_feature_is_refused(value: object) -> None:
    body = json.dumps([{"player_id": "a", "sessions_7d": value, "accuracy_28d": 0.1}])
    error = error_of(body)
    assert (error.status, error.code) == (400, "non_numeric_feature")
    assert "'sessions_7d'" in str(error) and "record 0" in str(error)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", "malformed_json"),
        (b"\xff\xfe[]", "malformed_json"),
        ("", "malformed_json"),
        ("42", "invalid_shape"),
        ({"rows": []}, "invalid_shape"),
        ({"instances": {"player_id": "a"}}, "invalid_record"),
        (["not an object"], "invalid_record"),
        ([{"sessions_7d": 1, "accuracy_28d": 1}], "invalid_player_id"),
        ([{"player_id": "", "sessions_7d": 1, "accuracy_28d": 1}], "invalid_player_id"),
        ({"events": [{"player_id": "a"}], "cutoff": "yesterday"}, "invalid_cutoff"),
        ({"events": "nope"}, "invalid_events"),
        ({"instances": [{"player_id": "a", "events": []}]}, "no_features"),
    ],
)
def test_malformed_requests_name_the_problem(body: object, code: str) -> None:
    error = error_of(body)
    assert (error.status, error.code) == (400, code)
    assert str(error) and "\n" not in str(error)


def test_limits_on_records_events_and_body_size() -> None:
    small = Limits(max_records=2, max_body_bytes=400, max_events=3)
    too_many = error_of([{"player_id": str(i)} for i in range(3)], limits=Limits(max_records=2))
    assert isinstance(too_many, PayloadTooLarge) and (too_many.status, too_many.code) == (413, "too_many_records")
    events = [{"player_id": "a", "event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"}] * 4
    assert error_of({"events": events}, limits=small).code == "too_many_events"
    big = error_of(b"[" + b" " * 500 + b"]", limits=small)
    assert (big.status, big.code) == (413, "body_too_large")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_other_content_types_are_415(content_type: str) -> None:
    error = error_of([], content_type)
    assert isinstance(error, UnsupportedMediaType) and error.status == 415 and content_type in str(error)


@pytest.mark.parametrize("content_type", [None, "", "application/json; charset=utf-8", "Application/JSON"])
def test_json_content_types_and_no_content_type_parse_as_json(content_type: str | None) -> None:
    assert parse([], content_type).player_ids == []


def test_csv_with_header_extra_columns_empty_cells_and_bom() -> None:
    body = "\ufeffplayer_id,extra,accuracy_28d,sessions_7d\r\na,x,0.25,3\nb,y,,4\n\n"
    frame = feature_frame(parse(body.encode(), "text/csv"), NAMES, None)
    assert frame["player_id"].tolist() == ["a", "b"]
    assert frame["sessions_7d"].tolist() == [3.0, 4.0]
    assert frame["accuracy_28d"].iloc[0] == 0.25 and math.isnan(frame["accuracy_28d"].iloc[1])


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ("player_id,sessions_7d\na,1\n", "missing_feature", "'accuracy_28d'"),
        ("player_id,sessions_7d,accuracy_28d\na,1,0.1\n\nb,two,0.1\n", "non_numeric_feature", "line 4"),
        ("player_id,sessions_7d,accuracy_28d\na,1,inf\n", "non_numeric_feature", "'accuracy_28d'"),
        ("player_id,sessions_7d,accuracy_28d\na,1\n", "malformed_csv", "2 fields"),
        ("", "malformed_csv", "empty"),
        ("player_id,sessions_7d,accuracy_28d\n,1,0.1\n", "invalid_player_id", "line 2"),
    ],
)
def test_bad_csv_names_the_problem(body: str, code: str, fragment: str) -> None:
    error = error_of(body.encode(), "text/csv")
    assert error.code == code and fragment in str(error)


def test_csv_record_limit() -> None:
    rows = "".join(f"p{i},1,1\n" for i in range(5))
    error = error_of(f"player_id,sessions_7d,accuracy_28d\n{rows}", "text/csv", Limits(max_records=4))
    assert error.code == "too_many_records"


def _fake_featurizer(calls: list) -> object:
    def featurize(events: list[dict], cutoff: datetime | None) -> pd.DataFrame:
        calls.append((events, cutoff))
        players = sorted({e["player_id"] for e in events})
        return pd.DataFrame({"player_id": players, "sessions_7d": [10.0] * len(players),
                             "accuracy_28d": [0.9] * len(players)})
    return featurize


def test_raw_events_give_one_row_per_player_in_order_of_first_appearance() -> None:
    events = [{"player_id": p, "event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"} for p in "bab"]
    calls: list = []
    parsed = parse({"events": events, "cutoff": "2026-01-02T00:00:00"})
    frame = feature_frame(parsed, NAMES, _fake_featurizer(calls))
    assert frame["player_id"].tolist() == ["b", "a"]
    assert frame["sessions_7d"].tolist() == [10.0, 10.0]
    assert calls[0][1] == datetime(2026, 1, 2, tzinfo=UTC)


def test_instances_mix_given_features_and_features_from_events() -> None:
    body = {"instances": [
        {"player_id": "a", "features": {"sessions_7d": 1, "accuracy_28d": None}, "events": [{"event_type": "x"}]},
        {"player_id": "b", "features": None, "events": [{"event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"}]},
        {"player_id": "c", "sessions_7d": 2, "accuracy_28d": 0.5},
    ]}
    calls: list = []
    frame = feature_frame(parse(body), NAMES, _fake_featurizer(calls))
    assert frame["player_id"].tolist() == ["a", "b", "c"]
    assert frame["sessions_7d"].tolist() == [1.0, 10.0, 2.0]
    assert [e["player_id"] for e in calls[0][0]] == ["b"]  # only b's events are featurized


def test_an_event_filed_under_another_player_is_refused() -> None:
    body = {"instances": [{"player_id": "a", "events": [{"player_id": "b", "event_type": "x"}]}]}
    assert error_of(body).code == "invalid_events"


def test_events_need_a_featurizer_and_every_player_needs_an_event_before_the_cutoff() -> None:
    parsed = parse({"events": [{"player_id": "a", "event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"}]})
    with pytest.raises(RequestError, match="feature definitions"):
        feature_frame(parsed, NAMES, None)
    with pytest.raises(RequestError) as caught:
        feature_frame(parsed, NAMES, lambda events, cutoff: pd.DataFrame({"player_id": [], "sessions_7d": []}))
    assert caught.value.code == "no_events_before_cutoff"


def test_default_cutoff_is_just_after_the_latest_event_at_millisecond_precision() -> None:
    stamps = pd.Series(pd.to_datetime(["2026-01-01T10:00:00.000999", "2026-01-01T09:00:00"], format="ISO8601"))
    assert default_cutoff(stamps) == datetime(2026, 1, 1, 10, 0, 0, 1000)


@pytest.mark.parametrize("accept", [None, "", "*/*", "application/json", "text/html, application/*;q=0.8"])
def test_json_compatible_accept_headers(accept: str | None) -> None:
    check_accept(accept)


def test_accept_that_rules_out_json_is_406() -> None:
    with pytest.raises(NotAcceptable) as caught:
        check_accept("text/csv")
    assert caught.value.status == 406


def test_predictions_encode_as_strict_json() -> None:
    body = encode_predictions([{"player_id": "a", "scores": {"churn": float("nan")}, "reasons": {"churn": []}}])
    assert json.loads(body) == {"predictions": [{"player_id": "a", "scores": {"churn": None}, "reasons": {"churn": []}}]}
    assert b"NaN" not in body


# ---- hardening: values the models cannot take, parser limits, ids ------------------------------------------


@pytest.mark.parametrize("value", [1e39, -3.5e38, 10**300, float(np.finfo(np.float32).max)])
def test_a_feature_outside_float32_range_is_refused_naming_it(value: object) -> None:
    parsed = parse([{"player_id": "a", "sessions_7d": 1, "accuracy_28d": 0.1},
                    {"player_id": "b", "sessions_7d": value, "accuracy_28d": 0.1}])
    with pytest.raises(RequestError) as caught:
        feature_frame(parsed, NAMES, None)
    assert (caught.value.status, caught.value.code) == (400, "value_out_of_range")
    assert "'sessions_7d'" in str(caught.value) and "record 1" in str(caught.value) and "player b" in str(caught.value)


def test_an_integer_too_large_for_any_float_is_refused_naming_it() -> None:
    error = error_of(json.dumps([{"player_id": "a", "sessions_7d": 10**400, "accuracy_28d": 0.1}]))
    assert error.code == "value_out_of_range" and "'sessions_7d'" in str(error) and len(str(error)) < 300


def test_a_feature_computed_from_events_outside_float32_range_is_refused() -> None:
    parsed = parse({"events": [{"player_id": "a", "event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"}]})
    huge = lambda events, cutoff: pd.DataFrame({"player_id": ["a"], "sessions_7d": [1e39], "accuracy_28d": [0.1]})
    with pytest.raises(RequestError) as caught:
        feature_frame(parsed, NAMES, huge)
    assert caught.value.code == "value_out_of_range" and "from its events" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("[" * 100_000 + "]" * 100_000, "malformed_json"),
        ('[{"player_id": "a", "sessions_7d": ' + "9" * 5000 + "}]", "malformed_json"),
        ({"events": [{"player_id": "a"}], "cutoff": "0000-01-01T00:00:00Z"}, "invalid_cutoff"),
        ({"events": [{"player_id": "a"}], "cutoff": "1969-12-31T23:59:59Z"}, "invalid_cutoff"),
        ({"events": [{"player_id": "a"}], "cutoff": "9999-12-31"}, "invalid_cutoff"),
        ({"events": [{"player_id": "a"}], "cutoff": "2026-01-01" * 1000}, "invalid_cutoff"),
        ([{"player_id": 10**30, "sessions_7d": 1, "accuracy_28d": 1}], "invalid_player_id"),
        ([{"player_id": "   ", "sessions_7d": 1, "accuracy_28d": 1}], "invalid_player_id"),
    ],
)
def test_parser_failures_are_400s(body: object, code: str) -> None:
    error = error_of(body)
    assert (error.status, error.code) == (400, code)
    assert "\n" not in str(error) and len(str(error)) < 300


def test_attributes_per_event_are_capped() -> None:
    event = {"player_id": "a", "event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"}
    wide = {**event, **{f"k{i}": i for i in range(20_000)}}
    for body in ({"events": [event, wide]}, {"instances": [{"player_id": "a", "events": [wide]}]}):
        error = error_of(body)
        assert (error.status, error.code) == (400, "too_many_attributes")
        assert "20003 keys" in str(error) and "256" in str(error)
    assert parse({"events": [{**event, **{f"k{i}": i for i in range(253)}}]}).player_ids == ["a"]


def test_player_ids_are_trimmed_on_every_request_path() -> None:
    event = {"event_type": "x", "event_timestamp": "2026-01-01T00:00:00Z"}
    assert parse([{"player_id": " a ", "sessions_7d": 1, "accuracy_28d": 1}]).player_ids == ["a"]
    parsed = parse({"events": [{**event, "player_id": "a "}, {**event, "player_id": " a"}]})
    assert parsed.player_ids == ["a"] and {e["player_id"] for e in parsed.events} == {"a"}
    body = {"instances": [{"player_id": "p1 ", "events": [{**event, "player_id": " p1"}]}]}
    parsed = parse(body)
    assert parsed.player_ids == ["p1"] and parsed.events[0]["player_id"] == "p1"
    assert parse("player_id,sessions_7d,accuracy_28d\n p1 ,1,2\n", "text/csv").player_ids == ["p1"]
