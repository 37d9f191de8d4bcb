"""SageMaker handler functions and the shared scoring path, on an in-memory bundle of stand-in models."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from playerguard.features.spec import load_feature_set
from playerguard.inference.bundle import Bundle
from playerguard.inference.payloads import RequestError
from playerguard.inference.policy import Policy
from playerguard.inference.sagemaker_inference import (
    EventsFeaturizer,
    Invocation,
    ServingBundle,
    input_fn,
    output_fn,
    predict_fn,
    score_request,
)


class CountingModel:
    """Score = feature / 10, one reason; counts its calls to check that scoring is vectorised."""

    calls: ClassVar[dict[str, int]] = {}

    def __init__(self, name: str, feature: str) -> None:
        self.name, self.feature_names_ = name, [feature]
        CountingModel.calls[name] = 0

    def predict_score(self, X: pd.DataFrame) -> np.ndarray:
        CountingModel.calls[self.name] += 1
        return (X[self.feature_names_[0]].fillna(0.0) / 10).clip(0, 1).to_numpy()

    def explain(self, X: pd.DataFrame, top_k: int = 3) -> list[list[dict]]:
        feature = self.feature_names_[0]
        return [[{"kind": "feature", "name": feature, "value": None if np.isnan(v) else float(v), "contribution": 1.0}]
                for v in X[feature].to_numpy()]


@pytest.fixture
def served() -> ServingBundle:
    models = {"churn": CountingModel("churn", "sessions_7d"), "purchase": CountingModel("purchase", "accuracy_28d")}
    policy = Policy.from_dict({"models": {"churn": {"rules": [{"threshold": 0.5, "action": "retention_offer",
                                                                "severity": "low"}]}}})
    feature_set = load_feature_set("default")
    manifest = {
        "created_at": "2026-01-01T00:00:00+00:00",
        "feature_set": {"name": feature_set.name, "hash": feature_set.hash},
        "models": {"churn": {"version": "7", "threshold": None}, "purchase": {"version": "2", "threshold": None}},
    }
    bundle = Bundle(path=Path("in-memory"), manifest=manifest, models=models, policy=policy)
    return ServingBundle(bundle, ("sessions_7d", "accuracy_28d"), EventsFeaturizer(feature_set), "now")


def records(n: int) -> list[dict]:
    return [{"player_id": f"p{i}", "sessions_7d": i % 10, "accuracy_28d": None} for i in range(n)]


def test_handlers_score_a_json_request(served: ServingBundle) -> None:
    body, content_type = output_fn(predict_fn(input_fn(json.dumps(records(3)), "application/json"), served),
                                   "application/json")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    assert [p["player_id"] for p in predictions] == ["p0", "p1", "p2"]
    assert predictions[2]["scores"] == {"churn": 0.2, "purchase": 0.0}
    assert predictions[2]["model_versions"] == {"churn": "7", "purchase": "2"}
    assert predictions[2]["reasons"] == {"churn": [], "purchase": []}  # no action, so nothing to explain


def test_custom_attributes_ask_for_reasons_on_every_row(served: ServingBundle) -> None:
    flask = pytest.importorskip("flask")
    headers = {"X-Amzn-SageMaker-Custom-Attributes": "trace=abc, reasons=all"}
    with flask.Flask(__name__).test_request_context("/invocations", method="POST", headers=headers):
        invocation = input_fn(json.dumps(records(3)), "application/json")
    body, _ = output_fn(predict_fn(invocation, served), "application/json")
    reasons = json.loads(body)["predictions"][2]["reasons"]
    assert reasons["churn"][0]["value"] == 2.0 and reasons["purchase"][0]["value"] is None


@pytest.mark.parametrize("attributes", ["reasons=approx", "reasons=", "Reasons=ALL"])
def test_an_unknown_reasons_option_is_a_400_naming_the_choices(served: ServingBundle, attributes: str) -> None:
    flask = pytest.importorskip("flask")
    headers = {"X-Amzn-SageMaker-Custom-Attributes": attributes}
    with flask.Flask(__name__).test_request_context("/invocations", method="POST", headers=headers):
        response = output_fn(predict_fn(input_fn("[]", "application/json"), served), "application/json")
    assert response.status_code == 400
    error = json.loads(response.get_data())
    assert error["error"] == "invalid_reasons" and "use acted or all" in error["message"]


def test_the_container_passes_text_and_csv_works_too(served: ServingBundle) -> None:
    csv = "player_id,sessions_7d,accuracy_28d\np1,9,\n"
    body, _ = output_fn(predict_fn(input_fn(csv, "text/csv"), served), "application/json")
    prediction = json.loads(body)["predictions"][0]
    assert prediction["scores"]["churn"] == pytest.approx(0.9)
    assert prediction["actions"] == [{"model": "churn", "action": "retention_offer", "score": pytest.approx(0.9),
                                      "threshold": 0.5, "severity": "low"}]


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "code"),
    [
        ("[]", "text/plain", "application/json", 415, "unsupported_media_type"),
        ('[{"player_id": "a"}]', "application/json", "application/json", 400, "missing_feature"),
        ("[{", "application/json", "application/json", 400, "malformed_json"),
        ("[]", "application/json", "text/csv", 406, "not_acceptable"),
    ],
)
def test_bad_requests_become_4xx_responses_not_exceptions(
    served: ServingBundle, body: str, content_type: str, accept: str, status: int, code: str
) -> None:
    flask = pytest.importorskip("flask")
    response = output_fn(predict_fn(input_fn(body, content_type), served), accept)
    assert isinstance(response, flask.Response)
    assert response.status_code == status
    assert json.loads(response.get_data())["error"] == code


def test_input_fn_checks_type_and_size_before_the_model_is_involved() -> None:
    assert isinstance(input_fn("[]", "application/json"), Invocation)
    assert isinstance(input_fn("x" * (6 * 1024 * 1024 + 1), "application/json"), RequestError)


def test_one_predict_call_per_model_per_request(served: ServingBundle) -> None:
    predictions = score_request(served, json.dumps(records(250)), "application/json")
    assert len(predictions) == 250
    assert CountingModel.calls == {"churn": 1, "purchase": 1}


EVENTS = [
    {"player_id": "a", "event_type": "session_start", "event_timestamp": "2026-03-01T10:00:00Z"},
    {"player_id": "a", "event_type": "session_start", "event_timestamp": "2026-03-05T10:00:00Z"},
    {"player_id": "a", "event_type": "match_end", "event_timestamp": "2026-03-05T10:20:00Z", "shots": 20, "hits": 5},
    {"player_id": "b", "event_type": "session_start", "event_timestamp": "2026-03-06T08:00:00Z"},
    {"player_id": "a", "event_type": "session_start", "event_timestamp": "2026-03-09T00:00:00Z"},
]


def test_features_from_events_follow_the_definitions_and_the_cutoff(caplog: pytest.LogCaptureFixture) -> None:
    featurizer = EventsFeaturizer(load_feature_set("default"))
    with caplog.at_level(logging.WARNING):
        features = featurizer(EVENTS, datetime(2026, 3, 8, tzinfo=UTC)).set_index("player_id")
    assert sorted(features.index) == ["a", "b"]
    assert features.loc["a", "sessions_7d"] == 2.0  # the session on 03-09 is after the cutoff
    assert features.loc["a", "accuracy_28d"] == 0.25
    assert np.isnan(features.loc["b", "accuracy_28d"])  # no match: undefined, as in training
    assert features.loc["b", "days_since_last_event"] == pytest.approx(2 - 8 / 24)
    assert not [r for r in caplog.records if "not in the event table" in r.getMessage()]


def test_the_default_cutoff_takes_every_event() -> None:
    features = EventsFeaturizer(load_feature_set("default"))(EVENTS).set_index("player_id")
    assert (features.loc["a", "sessions_7d"], features.loc["a", "sessions_28d"]) == (2.0, 3.0)
    assert features.loc["a", "days_since_last_event"] == pytest.approx(0.001 / 86400)


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ({"event_type": "match_end", "shots": "many", "hits": 1}, "expected a number"),
        ({"event_type": "match_end", "loadout": {"gun": "awp"}}, "'loadout'"),
        ({"event_type": "match_end", "event_timestamp": "not a time"}, "event_timestamp"),
        ({"event_type": "match_end", "Bad Name": 1}, "Bad Name"),
    ],
)
def test_invalid_events_are_refused_with_the_reason(event: dict, fragment: str) -> None:
    complete = {"player_id": "a", "event_timestamp": "2026-03-01T10:00:00Z", **event}
    with pytest.raises(RequestError) as caught:
        EventsFeaturizer(load_feature_set("default"))([*EVENTS[:2], complete])
    assert caught.value.code == "invalid_events" and fragment in str(caught.value)


def test_a_player_with_events_only_at_or_after_the_cutoff_is_refused(served: ServingBundle) -> None:
    late = {"player_id": "late", "event_type": "session_start", "event_timestamp": "2026-03-08T00:00:00Z"}
    body = json.dumps({"events": [*EVENTS, late], "cutoff": "2026-03-08T00:00:00Z"})
    with pytest.raises(RequestError) as caught:
        score_request(served, body, "application/json")
    assert caught.value.code == "no_events_before_cutoff" and "'late'" in str(caught.value)


MIXED_EVENTS = [
    {**EVENTS[1], "kills": 3, "level": 2, "result": "win", "flag": True, "event_id": "e1"},
    {**EVENTS[1], "kills": 2.5, "result": None, "flag": False, "platform": None, "note": "x"},
    {**EVENTS[2], "game_id": "g", "platform": "pc", "amount": 9.99},
    {**EVENTS[0], "level": 4, "headshots": None, "empty": None},
]


def test_events_typed_without_pandas_give_what_the_frame_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """The usual events skip pandas; the features (and a refusal's message) are those of the frame's way."""
    featurizer = EventsFeaturizer(load_feature_set("default"))
    cutoff = datetime(2026, 3, 8, tzinfo=UTC)
    invalid = [*MIXED_EVENTS, {**EVENTS[0], "event_timestamp": "soon"}]
    direct = featurizer(MIXED_EVENTS, cutoff)
    with pytest.raises(RequestError) as refused:
        featurizer(invalid, cutoff)
    monkeypatch.setattr("playerguard.inference.sagemaker_inference._arrow_events", lambda events: None)
    pd.testing.assert_frame_equal(direct, featurizer(MIXED_EVENTS, cutoff), check_exact=True)
    with pytest.raises(RequestError) as via_frame:
        featurizer(invalid, cutoff)
    assert str(refused.value) == str(via_frame.value)
