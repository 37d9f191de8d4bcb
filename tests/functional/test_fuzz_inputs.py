"""Hostile input, generated: the request parser over real HTTP and the stream decoder never fail with a 500 or
an unexpected exception; every refusal is a 4xx with a one-line reason, and the server keeps answering /ping.

Property-based (hypothesis) plus a table of inputs that broke the parser before. Budgets are examples, not
time: the whole module runs in well under a minute.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from endpoint_fixtures import as_records, running_server, send, shared_test_bundle, synthetic_features
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playerguard.inference.sagemaker_inference import load_serving_bundle
from playerguard.inference.server import BundleHolder, create_app
from playerguard.stream.scorer import PoisonRecord, decode_record

JSON = {"Content-Type": "application/json"}
BUDGET = settings(
    database=None,  # no example database written into the working tree
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
EVENT = {
    "event_type": "match_end",
    "game_id": "g",
    "platform": "pc",
    "event_timestamp": "2026-03-01T12:00:00Z",
}
TRIED: dict[str, int] = {"requests": 0, "held": 0, "records": 0}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = shared_test_bundle(tmp_path_factory)
    holder = BundleHolder(lambda: load_serving_bundle(path))
    holder.reload()
    with running_server(create_app(holder)) as base:
        yield base


def held(url: str, body: bytes | str, headers: dict[str, str] | None = None) -> int:
    """POST `body`; assert the answer is a 200 or a 4xx with a JSON reason on one line. Returns the status."""
    data = body.encode() if isinstance(body, str) else body
    status, _, answer = send(url, "POST", "/invocations", data, headers or JSON)
    TRIED["requests"] += 1
    assert status < 500, answer[:500]
    if status >= 400:
        error = json.loads(answer)
        assert error["error"] and error["message"] and "\n" not in error["message"], error
        assert "Traceback" not in error["message"]
        TRIED["held"] += 1
    return status


# ---- strategies ---------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e39, -1e39, 3.4028235e38, 1e308, 5e-324, 0.0]),
    st.text(max_size=30),
    st.sampled_from(["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1969-12-31", "", " p1 ", "NaN", "inf"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
feature_names = st.sampled_from(
    ["player_id", "kd_ratio_28d", "accuracy_28d", "sessions_7d", "reaction_ms", "x"]
)
events = st.fixed_dictionaries(
    {},
    optional={
        "player_id": scalars,
        "event_type": scalars,
        "event_timestamp": scalars,
        "game_id": scalars,
        "platform": scalars,
        "reaction_ms": scalars,
        "event_id": scalars,
        "nested": json_values,
    },
)
# valid envelopes with hostile attributes and timestamps: these reach the featurizer and the models
near_valid_events = st.builds(
    lambda player, stamp, attributes: {**EVENT, "player_id": player, "event_timestamp": stamp, **attributes},
    st.sampled_from(["p1", " p1", "p2 ", "p3"]),
    st.one_of(
        st.datetimes().map(lambda moment: moment.isoformat()),
        st.sampled_from(["2026-03-01T12:00:00Z", "0000-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]),
    ),
    st.dictionaries(
        st.sampled_from(["reaction_ms", "headshot", "won", "amount", "level", "kills"]), scalars, max_size=4
    ),
)
documents = st.one_of(
    json_values,
    st.fixed_dictionaries({"events": st.lists(near_valid_events, min_size=1, max_size=6)}),
    st.lists(st.dictionaries(feature_names, scalars, max_size=6), max_size=5),
    st.fixed_dictionaries({"events": st.lists(events, max_size=5)}, optional={"cutoff": scalars}),
    st.fixed_dictionaries(
        {
            "instances": st.lists(
                st.fixed_dictionaries(
                    {"player_id": scalars},
                    optional={"events": st.lists(events, max_size=3), "features": json_values},
                ),
                max_size=4,
            )
        }
    ),
)


# ---- the request parser over HTTP ---------------------------------------------------------------------------


@BUDGET
@given(document=documents)
def test_generated_json_documents_are_scored_or_refused_with_a_reason(url: str, document: Any) -> None:
    held(url, json.dumps(document))


@settings(
    database=None, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300), kind=st.sampled_from(["application/json", "text/csv", None]))
def test_generated_bytes_are_refused_with_a_reason(url: str, body: bytes, kind: str | None) -> None:
    held(url, body, {"Content-Type": kind} if kind else {})


@settings(
    database=None, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cells=st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=4), max_size=4))
def test_generated_csv_is_scored_or_refused_with_a_reason(url: str, cells: list[list[str]]) -> None:
    names = list(as_records(synthetic_features(1))[0])
    lines = [",".join(names)] + [",".join(row) for row in cells]
    held(url, "\n".join(lines), {"Content-Type": "text/csv"})


KNOWN_BAD = [
    "[" * 100_000 + "]" * 100_000,
    '{"instances": ' + "[" * 5000 + "]" * 5000 + "}",
    "[" + "1" * 5000 + "]",
    '[{"player_id": "p1", "kd_ratio_28d": ' + "9" * 4000 + "}]",
    json.dumps({"events": [{**EVENT, "player_id": "p1", "reaction_ms": 1e39}]}),
    json.dumps({"events": [{**EVENT, "player_id": "p1", "reaction_ms": 10**300}]}),
    json.dumps({"events": [{**EVENT, "player_id": "p1", "event_timestamp": "0000-01-01T00:00:00Z"}]}),
    json.dumps({"events": [{**EVENT, "player_id": "p1", "event_timestamp": "0001-01-01T00:00:00"}]}),
    json.dumps({"events": [{**EVENT, "player_id": "p1", "event_timestamp": 10**20}]}),
    json.dumps({"events": [{**EVENT, "player_id": "p1"}], "cutoff": "0000-01-01T00:00:00Z"}),
    json.dumps({"events": [{**EVENT, "player_id": "p1", **{f"k{i}": i for i in range(20_000)}}]}),
    json.dumps({"events": [{**EVENT, "player_id": "p1", "bad name!": 1}]}),
    json.dumps({"events": [{**EVENT, "player_id": 10**40}]}),
    json.dumps({"instances": [{"player_id": "p1", "features": {"kd_ratio_28d": 1e39}}]}),
    json.dumps([{**as_records(synthetic_features(1))[0], "kd_ratio_28d": -1e39}]),
    "player_id,kd_ratio_28d\np1," + "9" * 5000 + "\n",
]


@pytest.mark.parametrize("body", KNOWN_BAD, ids=range(len(KNOWN_BAD)))
def test_known_hostile_requests_are_4xx(url: str, body: str) -> None:
    kind = "text/csv" if body.startswith("player_id,") else "application/json"
    assert 400 <= held(url, body, {"Content-Type": kind}) < 500


def test_the_server_still_answers_ping_after_the_fuzzing(url: str) -> None:
    assert send(url, "GET", "/ping")[0] == 200
    print(
        f"fuzz: {TRIED['requests']} requests tried, {TRIED['held']} refused with a 4xx and a reason, 0 500s"
    )


# ---- the stream decoder -------------------------------------------------------------------------------------


def _record(data: str) -> dict[str, Any]:
    return {"eventSourceARN": "arn:s", "kinesis": {"sequenceNumber": "1", "partitionKey": "k", "data": data}}


def decoded_or_poison(data: str) -> None:
    TRIED["records"] += 1
    try:
        event = decode_record(_record(data)).event
    except PoisonRecord as reason:
        assert str(reason) and "\n" not in str(reason)
        return
    assert event["player_id"] == event["player_id"].strip() and event["player_id"]
    assert event["event_timestamp"] >= "1970-01-01"


@BUDGET
@given(payload=st.one_of(events, json_values))
def test_generated_stream_payloads_decode_or_are_poison(payload: Any) -> None:
    decoded_or_poison(base64.b64encode(json.dumps(payload).encode()).decode())


@settings(database=None, max_examples=100, deadline=None)
@given(raw=st.binary(max_size=200), text=st.text(max_size=40))
def test_generated_stream_bytes_decode_or_are_poison(raw: bytes, text: str) -> None:
    decoded_or_poison(base64.b64encode(raw).decode())
    decoded_or_poison(text)


@pytest.mark.parametrize(
    "payload",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"player_id": ' + "1" * 5000 + "}",
        json.dumps({**EVENT, "player_id": "p1", "event_timestamp": "0000-01-01T00:00:00Z"}),
        json.dumps({**EVENT, "player_id": "p1", "event_timestamp": "0001-01-01T00:00:00Z"}),
        json.dumps({**EVENT, "player_id": "p1", **{f"k{i}": i for i in range(20_000)}}),
        json.dumps({**EVENT, "player_id": "  "}),
    ],
)
def test_known_hostile_stream_payloads_are_poison(payload: str) -> None:
    with pytest.raises(PoisonRecord):
        decode_record(_record(base64.b64encode(payload.encode()).decode()))


def test_stream_ids_are_trimmed_like_the_request_path() -> None:
    data = base64.b64encode(json.dumps({**EVENT, "player_id": " p1 ", "event_id": " e1"}).encode()).decode()
    event = decode_record(_record(data)).event
    assert (event["player_id"], event["event_id"]) == ("p1", "e1")
    print(f"fuzz: {TRIED['records']} stream records decoded or dead-lettered as poison, 0 other exceptions")
