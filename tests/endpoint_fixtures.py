"""A small real model bundle for the endpoint tests: the three models fitted on synthetic feature rows of
the default feature set (labels depend on the features, so the models learn something), bundled with the
packaged feature definitions and default policy."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest

from playerguard.features.spec import load_feature_set
from playerguard.inference.bundle import ModelSource, write_bundle
from playerguard.training.inhuman_play import InhumanPlayModel
from playerguard.training.propensity import ChurnModel, PurchaseModel


def synthetic_features(rows: int, seed: int = 0) -> pd.DataFrame:
    """player_id + every default feature: non-negative numbers with some NaN, as the feature layer gives."""
    rng = np.random.default_rng(seed)
    names = load_feature_set("default").feature_names
    frame = pd.DataFrame(rng.gamma(2.0, 2.0, size=(rows, len(names))), columns=names)
    for name in ("accuracy_28d", "headshot_rate_28d", "win_rate_28d"):
        frame[name] = rng.beta(2, 5, rows)
    frame["reaction_ms_p50_28d"] = rng.normal(250, 40, rows)  # human reaction times, in ms
    frame["reaction_ms_p10_28d"] = frame["reaction_ms_p50_28d"] - rng.gamma(4, 15, rows)
    frame["days_since_last_purchase"] = frame["days_since_last_purchase"].where(rng.random(rows) < 0.6)
    frame.insert(0, "player_id", [f"p{i:05d}" for i in range(rows)])
    return frame


def _labels(frame: pd.DataFrame, seed: int) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed + 1)
    noise = rng.normal(0, 0.5, len(frame))
    churn = (frame["days_since_last_session"] - frame["sessions_7d"] + noise > 0.5).astype("int8")
    purchase = (frame["purchases_28d"] + noise > 4.5).astype("int8")
    cheat = ((frame["headshot_rate_28d"] > 0.5) | (rng.random(len(frame)) < 0.03)).astype("int8")
    return {"churn": churn, "purchase": purchase, "inhuman_play": cheat}


def fit_test_models(directory: Path, rows: int = 600, seed: int = 0, *, full_size: bool = False) -> dict[str, Path]:
    """Fit the three models on synthetic rows and save them under `directory/models/<name>`.

    Small models by default (fast tests); `full_size` keeps the model classes' default sizes (benchmarks).
    """
    frame = synthetic_features(rows, seed)
    labels = _labels(frame, seed)
    small = {} if full_size else {"n_estimators": 40}
    models = {
        "churn": ChurnModel(**small, n_jobs=1),
        "purchase": PurchaseModel(**small, n_jobs=1),
        "inhuman_play": InhumanPlayModel(**small, cv_folds=2 if not full_size else 5),
    }
    saved = {}
    for name, model in models.items():
        model.fit(frame, labels[name])
        saved[name] = directory / "models" / name
        model.save(saved[name])
    return saved


def bundle_models(
    models: dict[str, Path], directory: Path, version: str = "1", policy_path: Path | None = None
) -> Path:
    """A bundle of saved models (default feature set; the default policy unless `policy_path`), every model at
    registry `version`."""
    sources = [ModelSource(name, path, version=version, registered_name=f"playerguard-{name}")
               for name, path in models.items()]
    return write_bundle(directory, sources, feature_set="default", policy_path=policy_path)


def build_test_bundle(directory: Path, rows: int = 600, seed: int = 0) -> Path:
    """Fit the three models on synthetic rows and write a bundle into `directory/bundle`."""
    return bundle_models(fit_test_models(directory, rows, seed), directory / "bundle")


_BUILT: dict[Path, Path] = {}


def shared_test_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One test bundle per test session (per xdist worker): fitting the models takes a few seconds."""
    base = tmp_path_factory.getbasetemp()
    if base not in _BUILT:
        _BUILT[base] = build_test_bundle(tmp_path_factory.mktemp("endpoint-bundle"))
    return _BUILT[base]


def as_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts, NaN as None."""
    return [
        {key: (None if isinstance(value, float) and np.isnan(value) else value) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]


@contextmanager
def running_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # Nagle off, as served
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def send(url: str, method: str, path: str, body: bytes | str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request on a fresh connection: status, headers (lower-case names), body."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def synthetic_events(players: int, days: int = 14, seed: int = 0) -> list[dict[str, Any]]:
    """Raw events of `players` players over `days` days of March 2026: a session and a match a day each."""
    rng = np.random.default_rng(seed)
    events: list[dict[str, Any]] = []
    for p in range(players):
        for day in range(1, days + 1):
            stamp = f"2026-03-{day:02d}T{10 + p % 10}:00:00Z"
            shots = int(rng.integers(20, 60))
            hits = int(rng.integers(5, shots))
            events += [
                {"player_id": f"p{p:05d}", "event_type": "session_start", "event_timestamp": stamp, "game_id": "g",
                 "platform": "pc", "session_id": f"s{p}-{day}"},
                {"player_id": f"p{p:05d}", "event_type": "match_end", "event_timestamp": stamp.replace(":00:00", ":20:00"),
                 "game_id": "g", "platform": "pc", "shots": shots, "hits": hits, "headshots": hits // 3, "kills": 3,
                 "deaths": 2, "reaction_ms": float(rng.normal(250, 30))},
            ]
    return events
