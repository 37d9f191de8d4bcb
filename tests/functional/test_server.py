"""The local scoring server over real HTTP on loopback, serving a real bundle (three fitted models)."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from endpoint_fixtures import (
    as_records,
    bundle_models,
    running_server,
    send,
    shared_test_bundle,
    synthetic_features,
)

from playerguard.errors import DataError
from playerguard.features.api import build_features
from playerguard.inference.sagemaker_inference import ServingBundle, load_serving_bundle
from playerguard.inference.scoring import score_frame
from playerguard.inference.server import OPENAPI_FILE, BundleHolder, create_app
from playerguard.lake.base import append_frame
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_test_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def holder(bundle_path: Path) -> BundleHolder:
    holder = BundleHolder(lambda: load_serving_bundle(bundle_path))
    holder.reload()
    return holder


@pytest.fixture(scope="module")
def url(holder: BundleHolder) -> Iterator[str]:
    with running_server(create_app(holder)) as base:
        yield base


def post(url: str, path: str, body: object, headers: dict[str, str] = JSON) -> tuple[int, dict]:
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    status, _, data = send(url, "POST", path, raw, headers)
    return status, json.loads(data)


def test_ping_reports_the_loaded_bundle(url: str, bundle_path: Path) -> None:
    status, _, body = send(url, "GET", "/ping")
    info = json.loads(body)
    assert status == 200 and info["status"] == "ok"
    assert info["model_versions"] == {"churn": "1", "purchase": "1", "inhuman_play": "1"}
    assert info["feature_set"]["name"] == "default" and info["bundle"] == str(bundle_path)


def test_ping_is_503_until_a_bundle_is_loaded() -> None:
    with running_server(create_app(BundleHolder(lambda: None))) as base:  # type: ignore[arg-type, return-value]
        status, _, body = send(base, "GET", "/ping")
        assert status == 503 and json.loads(body)["status"] == "unavailable"
        assert post(base, "/invocations", [])[0] == 503


def test_predictions_match_the_in_process_scoring_function(url: str, holder: BundleHolder) -> None:
    frame = synthetic_features(40, seed=3)
    status, body = post(url, "/invocations", as_records(frame))
    assert status == 200
    expected = score_frame(holder.current.bundle, frame)
    assert body["predictions"] == json.loads(json.dumps(expected))
    first = body["predictions"][0]
    assert set(first["scores"]) == {"churn", "purchase", "inhuman_play"}
    assert set(first["reasons"]) == {"churn", "purchase", "inhuman_play"} and first["reasons"]["churn"]
    assert first["model_versions"] == {"churn": "1", "purchase": "1", "inhuman_play": "1"}
    assert all(action["model"] in first["scores"] for p in body["predictions"] for action in p["actions"])


def test_answers_say_how_long_scoring_and_encoding_took(url: str) -> None:
    status, headers, _ = send(url, "POST", "/invocations", json.dumps(as_records(synthetic_features(3))), JSON)
    timings = dict(part.strip().split(";dur=") for part in headers["server-timing"].split(","))
    assert status == 200 and set(timings) == {"score", "encode"}
    assert all(float(value) > 0 for value in timings.values())


def test_every_shape_and_path_gives_the_same_predictions(url: str) -> None:
    frame = synthetic_features(5, seed=4)
    records = as_records(frame)
    baseline = post(url, "/invocations", records)[1]
    assert post(url, "/invocations", {"instances": records})[1] == baseline
    assert post(url, "/endpoints/anything/invocations", records)[1] == baseline
    nested = {"instances": [{"player_id": r["player_id"], "features": r} for r in records]}
    assert post(url, "/invocations", nested)[1] == baseline
    csv = frame.to_csv(index=False)
    assert post(url, "/invocations", csv, {"Content-Type": "text/csv"})[1] == baseline


def _events() -> list[dict]:
    events = []
    for day in range(1, 20):
        for player, shots, hits in (("alice", 40, 12), ("bob", 30, 29)):
            stamp = f"2026-03-{day:02d}T1{day % 10}:00:00Z"
            events += [
                {"player_id": player, "event_type": "session_start", "event_timestamp": stamp, "game_id": "g",
                 "platform": "pc", "session_id": f"{player}{day}"},
                {"player_id": player, "event_type": "match_end", "event_timestamp": stamp.replace(":00:00", ":20:00"),
                 "game_id": "g", "platform": "pc", "shots": shots, "hits": hits, "headshots": hits // 2,
                 "kills": 3, "deaths": 2, "reaction_ms": 240.0 if player == "alice" else 95.0},
            ]
    return events


def test_raw_events_are_scored_with_the_features_training_would_compute(
    url: str, holder: BundleHolder, tmp_path: Path
) -> None:
    events = _events()
    cutoff = datetime(2026, 3, 15, tzinfo=UTC)
    status, body = post(url, "/invocations", {"events": events, "cutoff": cutoff.isoformat()})
    assert status == 200
    assert [p["player_id"] for p in body["predictions"]] == ["alice", "bob"]

    settings = Settings(home=tmp_path / "home")
    append_frame(LocalLake(settings.lake_dir), pd.DataFrame(events), "test")
    from_lake = build_features(settings, cutoff).set_index("player_id").loc[["alice", "bob"]].reset_index()
    expected = score_frame(holder.current.bundle, from_lake)
    assert body["predictions"] == json.loads(json.dumps(expected))


def test_one_predict_and_one_explain_call_per_model_per_request(
    url: str, holder: BundleHolder, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, int] = {}
    for name, model in holder.current.bundle.models.items():
        for method in ("predict_score", "explain"):
            original = getattr(model, method)

            def counted(*args: object, _original=original, _key=f"{name}.{method}", **kwargs: object) -> object:
                calls[_key] = calls.get(_key, 0) + 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(model, method, counted)
    assert post(url, "/invocations", as_records(synthetic_features(300, seed=5)))[0] == 200
    assert calls == {f"{n}.{m}": 1 for n in ("churn", "purchase", "inhuman_play") for m in ("predict_score", "explain")}


def test_reload_under_load_swaps_the_bundle_without_failing_a_request(bundle_path: Path, tmp_path: Path) -> None:
    second = bundle_models(
        {name: bundle_path / "models" / name for name in ("churn", "purchase", "inhuman_play")}, tmp_path / "v2", "2"
    )
    sources = iter([bundle_path, second, bundle_path, second])
    loads: list[Path] = []

    def loader() -> ServingBundle:
        path = next(sources)
        loads.append(path)
        return load_serving_bundle(path)

    holder = BundleHolder(loader)
    holder.reload()
    body = json.dumps(as_records(synthetic_features(50, seed=6)))
    outcomes: list[tuple[int, set[str]]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            status, _, data = send(base, "POST", "/invocations", body, JSON)
            versions = {v for p in json.loads(data)["predictions"] for v in p["model_versions"].values()}
            outcomes.append((status, versions))

    with running_server(create_app(holder)) as base:
        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        for _ in range(3):
            time.sleep(0.3)
            status, _, reply = send(base, "POST", "/admin/reload")
            assert status == 200 and json.loads(reply)["status"] == "reloaded"
        time.sleep(0.3)
        stop.set()
        for thread in clients:
            thread.join()
        ping = json.loads(send(base, "GET", "/ping")[2])
    assert len(loads) == 4 and ping["model_versions"] == {"churn": "2", "purchase": "2", "inhuman_play": "2"}
    assert len(outcomes) > 8
    assert all(status == 200 for status, _ in outcomes)
    assert all(versions in ({"1"}, {"2"}) for _, versions in outcomes)  # each request saw one whole bundle
    assert {"1"} in [v for _, v in outcomes] and {"2"} in [v for _, v in outcomes]


def test_a_failed_reload_keeps_the_previous_bundle(bundle_path: Path, tmp_path: Path) -> None:
    paths = iter([bundle_path, tmp_path / "missing"])
    holder = BundleHolder(lambda: load_serving_bundle(next(paths)))
    holder.reload()
    with running_server(create_app(holder)) as base:
        status, _, body = send(base, "POST", "/admin/reload")
        assert status == 500 and "no model bundle" in json.loads(body)["message"]
        status, _, body = send(base, "GET", "/ping")
        assert status == 200 and "no model bundle" in json.loads(body)["last_reload_error"]
        assert post(base, "/invocations", as_records(synthetic_features(2)))[0] == 200


async def _call_reload_from(app: object, host: str) -> int:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send_message(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/admin/reload", "raw_path": b"/admin/reload", "query_string": b"",
             "headers": [], "client": (host, 50000), "server": ("127.0.0.1", 8080), "root_path": ""}
    await app(scope, receive, send_message)  # type: ignore[operator]
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_reload_is_refused_to_clients_off_this_machine(holder: BundleHolder) -> None:
    import asyncio

    app = create_app(holder)
    assert asyncio.run(_call_reload_from(app, "192.0.2.7")) == 403
    assert asyncio.run(_call_reload_from(app, "::1")) == 200


def test_sighup_reloads_the_bundle_in_a_running_server(bundle_path: Path, tmp_path: Path) -> None:
    """The server runs in this (main) thread, as `playerguard serve` does; a helper thread sends SIGHUP."""
    import socket

    import uvicorn

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    second = bundle_models({n: bundle_path / "models" / n for n in ("churn", "purchase", "inhuman_play")},
                           tmp_path / "v3", "3")
    sources = iter([bundle_path, second])
    holder = BundleHolder(lambda: load_serving_bundle(next(sources)))
    holder.reload()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(holder), log_level="warning"))
    seen: list[set[str] | None] = []

    def drive() -> None:
        try:
            _wait_for(lambda: server.started)
            seen.append(_versions(base))
            os.kill(os.getpid(), signal.SIGHUP)
            _wait_for(lambda: _versions(base) == {"3"}, timeout=30)
            seen.append(_versions(base))
        finally:
            server.should_exit = True

    driver = threading.Thread(target=drive)
    driver.start()
    server.run(sockets=[listener])
    driver.join()
    listener.close()
    assert seen == [{"1"}, {"3"}]


def _versions(base: str) -> set[str] | None:
    try:
        status, _, body = send(base, "GET", "/ping")
    except OSError:
        return None
    return set(json.loads(body)["model_versions"].values()) if status == 200 else None


def _wait_for(condition: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_the_published_openapi_document_covers_every_route(url: str) -> None:
    status, _, body = send(url, "GET", "/openapi.json")
    document = json.loads(body)
    assert status == 200 and document == json.loads(OPENAPI_FILE.read_text())
    assert document["openapi"].startswith("3.")
    routes = {
        (route.path, method.lower())
        for route in create_app(BundleHolder(lambda: None)).routes  # type: ignore[arg-type, return-value]
        for method in route.methods - {"HEAD"}
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    references = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(document)))
    assert references and references <= set(document["components"]["schemas"])


def test_default_source_rebuilds_home_bundle_from_the_champions_on_each_reload(
    bundle_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry is stood in for by its download function (the MLflow round trip is the slow test below)."""
    import shutil

    from playerguard.inference.server import BundleSource
    from playerguard.training import tracking

    champions = {"churn": "1", "purchase": "1"}

    def download_champions(settings: Settings, directory: Path) -> dict[str, tracking.ModelFiles]:
        found = {}
        for model, version in champions.items():
            shutil.copytree(bundle_path / "models" / model, Path(directory) / model)
            found[model] = tracking.ModelFiles(model, f"playerguard-{model}", version, None, Path(directory) / model)
        return found

    monkeypatch.setattr(tracking, "download_champions", download_champions)
    settings = Settings(home=tmp_path / "home")
    holder = BundleHolder(BundleSource(settings).load)
    assert holder.reload().bundle.versions == {"churn": "1", "purchase": "1"}
    champions.update(churn="2", inhuman_play="5")
    assert holder.reload().bundle.versions == {"churn": "2", "purchase": "1", "inhuman_play": "5"}
    manifest = json.loads((settings.home / "bundle" / "manifest.json").read_text())
    assert manifest["models"]["inhuman_play"]["version"] == "5"
    assert [p.name for p in settings.home.iterdir()] == ["bundle"]  # no staging directory left behind
    champions.clear()
    with pytest.raises(DataError, match="no champion models"):
        holder.reload()
    assert holder.current.bundle.versions["churn"] == "2" and (settings.home / "bundle" / "manifest.json").is_file()


@pytest.mark.slow
def test_default_source_bundles_the_registry_champions_and_reload_picks_up_a_new_one(
    bundle_path: Path, tmp_path: Path
) -> None:
    from playerguard.inference.server import BundleSource
    from playerguard.training.tracking import CHAMPION_ALIAS, Tracker, registered_name

    settings = Settings(home=tmp_path / "home")
    tracker = Tracker(settings)

    def promote(model: str) -> str:
        run_id = tracker.start_run(model)
        version = tracker.register(model, run_id, tracker.log_directory(run_id, bundle_path / "models" / model, "model"))
        tracker.client.set_registered_model_alias(registered_name(model), CHAMPION_ALIAS, version)
        return version

    for model in ("churn", "purchase"):
        promote(model)
    holder = BundleHolder(BundleSource(settings).load)
    assert holder.reload().bundle.versions == {"churn": "1", "purchase": "1"}
    assert (settings.home / "bundle" / "manifest.json").is_file()

    promote("churn")
    promote("inhuman_play")
    assert holder.reload().bundle.versions == {"churn": "2", "purchase": "1", "inhuman_play": "1"}
    assert json.loads((settings.home / "bundle" / "manifest.json").read_text())["models"]["churn"]["version"] == "2"
    assert sorted(p.name for p in settings.home.iterdir() if p.name.startswith("bundle")) == ["bundle"]
