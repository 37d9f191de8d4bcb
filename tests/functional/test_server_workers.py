"""`serve(..., workers=N)`: N worker processes share the port, answer like one server, reload on SIGHUP
to the main process and stop with it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from endpoint_fixtures import as_records, send, shared_test_bundle, synthetic_features

from playerguard.errors import ConfigError
from playerguard.inference.server import worker_count


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if send(url, "GET", "/ping")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not come up")


def test_worker_count_zero_is_one_per_core() -> None:
    assert worker_count(0) >= 1
    assert worker_count(3) == 3
    with pytest.raises(ConfigError):
        worker_count(-1)


def test_two_workers_answer_reload_and_stop(tmp_path_factory: pytest.TempPathFactory) -> None:
    bundle = shared_test_bundle(tmp_path_factory)
    port = _free_port()
    script = (
        "from pathlib import Path\n"
        "from playerguard.inference.server import BundleSource, serve\n"
        "from playerguard.settings import Settings\n"
        f"serve(BundleSource(Settings(), Path({str(bundle)!r})), port={port}, log_level='warning', workers=2)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process)
        body = json.dumps(as_records(synthetic_features(3, seed=2)))
        answers = {send(url, "POST", "/invocations", body, {"Content-Type": "application/json"})[2] for _ in range(8)}
        assert len(answers) == 1  # every worker scores alike
        assert len(json.loads(answers.pop())["predictions"]) == 3
        before = json.loads(send(url, "GET", "/ping")[2])["loaded_at"]
        time.sleep(1.1)  # loaded_at has one-second resolution
        process.send_signal(signal.SIGHUP)  # forwarded to every worker
        deadline = time.monotonic() + 60
        while json.loads(send(url, "GET", "/ping")[2])["loaded_at"] == before:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
