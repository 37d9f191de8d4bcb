"""Bad input to the local server: a 4xx with a JSON error naming the problem, never a 500 or a traceback."""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from endpoint_fixtures import as_records, running_server, send, shared_test_bundle, synthetic_features

from playerguard.inference.payloads import Limits
from playerguard.inference.sagemaker_inference import load_serving_bundle
from playerguard.inference.scoring import score_frame
from playerguard.inference.server import OPENAPI_FILE, BundleHolder, create_app

JSON = {"Content-Type": "application/json"}
ERROR_CODES = set(
    json.loads(OPENAPI_FILE.read_text())["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
)


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> BundleHolder:
    path: Path = shared_test_bundle(tmp_path_factory)
    holder = BundleHolder(lambda: load_serving_bundle(path))
    holder.reload()
    return holder


@pytest.fixture(scope="module")
def url(holder: BundleHolder) -> Iterator[str]:
    with running_server(create_app(holder)) as base:
        yield base


@pytest.fixture(scope="module")
def small_url(holder: BundleHolder) -> Iterator[str]:
    with running_server(create_app(holder, Limits(max_records=5, max_body_bytes=20_000))) as base:
        yield base


def assert_error(status: int, headers: dict[str, str], body: bytes, expected_status: int, code: str) -> dict:
    assert status == expected_status, body
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)
    assert error["error"] == code and code in ERROR_CODES
    assert error["message"] and "\n" not in error["message"] and "Traceback" not in error["message"]
    return error


def one_record(**overrides: object) -> dict:
    return {**as_records(synthetic_features(1, seed=9))[0], **overrides}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "fragment"),
    [
        ("{not json", JSON, 400, "malformed_json", "line 1 column 2"),
        ("", JSON, 400, "malformed_json", "malformed JSON"),
        ("[]", {"Content-Type": "text/plain"}, 415, "unsupported_media_type", "text/plain"),
        ("a=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", "urlencoded"),
        ("[]", {**JSON, "Accept": "text/csv"}, 406, "not_acceptable", "text/csv"),
        ('{"rows": []}', JSON, 400, "invalid_shape", "instances"),
        ("player_id,sessions_7d\np1,3\n", {"Content-Type": "text/csv"}, 400, "missing_feature", "CSV header"),
        ('{"events": [{"player_id": "a", "event_type": "x", "event_timestamp": "soon"}]}', JSON, 400,
         "invalid_events", "event_timestamp"),
    ],
)
def test_malformed_requests(url: str, body: str, headers: dict, status: int, code: str, fragment: str) -> None:
    error = assert_error(*send(url, "POST", "/invocations", body, headers), status, code)
    assert fragment in error["message"]


def test_missing_feature_names_the_feature_and_the_record(url: str) -> None:
    record = one_record()
    del record["accuracy_28d"]
    error = assert_error(*send(url, "POST", "/invocations", json.dumps([one_record(), record]), JSON),
                         400, "missing_feature")
    assert "record 1" in error["message"] and "'accuracy_28d'" in error["message"]


@pytest.mark.parametrize("value", ["fast", True, {"x": 1}])
def test_non_numeric_feature_is_named(url: str, value: object) -> None:
    body = json.dumps([one_record(kd_ratio_28d=value)])
    error = assert_error(*send(url, "POST", "/invocations", body, JSON), 400, "non_numeric_feature")
    assert "'kd_ratio_28d'" in error["message"]


def test_too_many_records_default_limit(url: str) -> None:
    body = json.dumps([{"player_id": str(i)} for i in range(1001)])
    error = assert_error(*send(url, "POST", "/invocations", body, JSON), 413, "too_many_records")
    assert "1001" in error["message"] and "1000" in error["message"]


def test_body_over_the_default_6_mb_limit(url: str) -> None:
    body = b"[" + b" " * (6 * 1024 * 1024) + b"]"
    assert_error(*send(url, "POST", "/invocations", body, JSON), 413, "body_too_large")


def test_configured_limits_apply_with_and_without_content_length(small_url: str) -> None:
    assert_error(*send(small_url, "POST", "/invocations", json.dumps([one_record()] * 6), JSON), 413,
                 "too_many_records")
    big = json.dumps([one_record()] * 5) + " " * 20_000
    assert_error(*send(small_url, "POST", "/invocations", big, JSON), 413, "body_too_large")
    parts = urlsplit(small_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    chunks = (big[i : i + 4096].encode() for i in range(0, len(big), 4096))
    connection.request("POST", "/invocations", chunks, {**JSON, "Transfer-Encoding": "chunked"}, encode_chunked=True)
    response = connection.getresponse()
    assert_error(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(), 413,
                 "body_too_large")
    connection.close()


def test_runtime_api_path_adds_what_sagemaker_adds_for_a_model_error(url: str) -> None:
    status, headers, body = send(url, "POST", "/endpoints/pg/invocations", "{", JSON)
    error = assert_error(status, headers, body, 400, "malformed_json")
    assert headers["x-amzn-errortype"] == "ModelError"
    assert error["OriginalStatusCode"] == 400
    assert json.loads(error["OriginalMessage"])["error"] == "malformed_json"


def test_unknown_fields_are_ignored_and_null_features_reach_the_models_as_nan(
    url: str, holder: BundleHolder
) -> None:
    frame = synthetic_features(3, seed=10)
    frame.loc[1, ["accuracy_28d", "days_since_last_purchase"]] = math.nan
    records = [{**r, "favourite_map": "dust2", "extra_number": 5} for r in as_records(frame)]
    assert records[1]["accuracy_28d"] is None
    status, _, body = send(url, "POST", "/invocations", json.dumps(records), JSON)
    assert status == 200
    assert json.loads(body)["predictions"] == json.loads(json.dumps(score_frame(holder.current.bundle, frame)))


def test_unknown_paths_and_methods_are_json_errors(url: str) -> None:
    assert_error(*send(url, "GET", "/score"), 404, "not_found")
    assert_error(*send(url, "GET", "/invocations"), 405, "method_not_allowed")


def test_a_failure_inside_scoring_is_a_500_without_a_stack_trace(
    url: str, holder: BundleHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(X: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(holder.current.bundle.models["churn"], "predict_score", broken)
    status, headers, body = send(url, "POST", "/invocations", json.dumps([one_record()]), JSON)
    error = assert_error(status, headers, body, 500, "internal_error")
    assert "secret internals" not in error["message"]


# ---- hardening ----------------------------------------------------------------------------------------------

EVENT = {"event_type": "match_end", "game_id": "g", "platform": "pc", "event_timestamp": "2026-03-01T12:00:00Z"}


def test_an_oversized_event_value_is_a_400_naming_the_attribute(url: str) -> None:
    events = [{**EVENT, "player_id": "p1", "reaction_ms": 180.0}, {**EVENT, "player_id": "p2", "reaction_ms": 1e39}]
    error = assert_error(*send(url, "POST", "/invocations", json.dumps({"events": events}), JSON), 400,
                         "value_out_of_range")
    assert "'reaction_ms'" in error["message"] and "events[1]" in error["message"]


def test_an_oversized_feature_value_is_a_400_naming_the_feature(url: str) -> None:
    body = json.dumps([one_record(), one_record(kd_ratio_28d=1e39)])
    error = assert_error(*send(url, "POST", "/invocations", body, JSON), 400, "value_out_of_range")
    assert "'kd_ratio_28d'" in error["message"] and "record 1" in error["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("[" * 100_000 + "]" * 100_000, "malformed_json"),
        ("[" + "1" * 5000 + "]", "malformed_json"),
        (json.dumps({"events": [{**EVENT, "player_id": "p1", "event_timestamp": "0000-01-01T00:00:00Z"}]}),
         "invalid_events"),
        (json.dumps({"events": [{**EVENT, "player_id": "p1"}], "cutoff": "0000-01-01T00:00:00Z"}), "invalid_cutoff"),
        (json.dumps({"events": [{**EVENT, "player_id": "p1", **{f"a{i}": i for i in range(20_000)}}]}),
         "too_many_attributes"),
    ],
)
def test_parser_failures_are_400s_not_500s(url: str, body: str, code: str) -> None:
    assert_error(*send(url, "POST", "/invocations", body, JSON), 400, code)
    assert send(url, "GET", "/ping")[0] == 200


def test_a_player_id_with_whitespace_is_scored_as_the_trimmed_id(url: str) -> None:
    body = {"instances": [{"player_id": "p1 ", "events": [{**EVENT, "player_id": "p1 ", "reaction_ms": 200.0}]}]}
    status, _, answer = send(url, "POST", "/invocations", json.dumps(body), JSON)
    assert status == 200, answer
    assert [p["player_id"] for p in json.loads(answer)["predictions"]] == ["p1"]


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Host": "evil.example:8080"}],
)
def test_reload_refuses_cross_origin_and_rebound_host_requests(url: str, headers: dict[str, str]) -> None:
    error = assert_error(*send(url, "POST", "/admin/reload", b"", headers), 403, "forbidden")
    assert "reload" in error["message"]


def test_reload_from_this_machine_without_a_foreign_origin_works(url: str) -> None:
    port = urlsplit(url).port
    for headers in ({}, {"Origin": f"http://127.0.0.1:{port}"}, {"Origin": f"http://localhost:{port}"}):
        status, _, body = send(url, "POST", "/admin/reload", b"", headers)
        assert status == 200 and json.loads(body)["status"] == "reloaded"


def test_stream_batch_with_an_oversized_value_against_the_real_endpoint(url: str, tmp_path: Path) -> None:
    from playerguard.inference.flags import Cooldowns
    from playerguard.stream.endpoint import HttpEndpoint
    from playerguard.stream.handler import StreamRuntime
    from playerguard.stream.notifiers.local import OutboxNotifier
    from playerguard.stream.replay_source import kinesis_batches
    from playerguard.stream.retries import RetryPolicy
    from playerguard.stream.scorer import StreamScorer

    class Snapshots:
        def __init__(self, records: dict[str, dict]) -> None:
            self.records = records

        def lookup(self, player_ids: list[str]) -> dict[str, dict]:
            return {p: self.records[p] for p in player_ids if p in self.records}

    features = as_records(synthetic_features(100, seed=4))
    snapshot = {f"p{i:03d}": {k: v for k, v in features[i].items() if k != "player_id"} for i in range(0, 100, 2)}
    items = [
        {**EVENT, "event_id": f"e{i:03d}", "player_id": f"p{i:03d}", "reaction_ms": 200.0 + i,
         "event_timestamp": f"2026-03-01T12:00:{i % 60:02d}Z"}
        for i in range(100)
    ]
    items[41]["reaction_ms"] = 1e39  # an odd player: not in the snapshot, scored on its events
    outbox = OutboxNotifier.from_home(tmp_path, Cooldowns())
    scorer = StreamScorer(HttpEndpoint(url), outbox, Snapshots(snapshot), retry=RetryPolicy(sleep=lambda _: None))
    batch = next(kinesis_batches(items))
    response, report = StreamRuntime(scorer).handle_batch(batch)
    assert response == {"batchItemFailures": []}
    assert (report.received, report.scored, report.dead_lettered) == (100, 99, 1)
    [letter] = outbox.dead_letters()
    assert letter.sequence_number == batch["Records"][41]["kinesis"]["sequenceNumber"]
    assert "value_out_of_range" not in letter.reason and "'reaction_ms'" in letter.reason
    outbox.close()
