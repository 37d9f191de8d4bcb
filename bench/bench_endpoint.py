"""Scoring endpoint benchmarks: against `mlflow models serve`, over the in-process floor, and under load.

    .venv/bin/python bench/bench_endpoint.py                  # all three; 60 s load test
    .venv/bin/python bench/bench_endpoint.py --duration 10    # shorter load test
    .venv/bin/python bench/bench_endpoint.py --bundle PATH    # a real bundle (e.g. from `playerguard pipeline run`)
    .venv/bin/python bench/bench_endpoint.py --profile        # also time each model's predict and explain

1. vs mlflow: the churn XGBoost booster is logged as an mlflow xgboost model in a temporary tracking store
   and served with `mlflow models serve --env-manager local` (one uvicorn worker, its default); our server
   (`playerguard serve`, one process) scores all three models with reasons and policy actions. Both run as
   separate processes on this machine, in the same run, on the same 100-record requests; sequential p50/p99
   latency and requests/s with `--clients` concurrent clients. Goal: ours ≥ 3x mlflow's requests/s.
2. Overhead: p50 of a 100-record request over HTTP vs an in-process call of the scoring function on the
   same records (`score_frame`, with the server's one XGBoost thread per request), interleaved; and, exact
   on the same request, latency minus the parse + score time the server reports (Server-Timing). Goal: < 2 ms.
3. Load: 8 concurrent clients for `--duration` seconds: errors, requests/s, p50/p99.

Without `--bundle`, the bench fits full-size models (the model classes' defaults) on synthetic rows of the
default feature set (tests/endpoint_fixtures.py). Figures depend on the machine and on what else runs on it:
`os.getloadavg()` is printed with them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(port: int, path: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server on port {port} exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not come up")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Target:
    """One server under test: where to POST what."""

    def __init__(self, name: str, port: int, path: str, body: bytes) -> None:
        self.name, self.port, self.path, self.body = name, port, path, body

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def post(self, connection: http.client.HTTPConnection) -> int:
        return self.post_timed(connection)[0]

    def post_timed(self, connection: http.client.HTTPConnection) -> tuple[int, dict[str, float]]:
        """Status, and the server's own timings (ms) from its Server-Timing header, if any."""
        connection.request("POST", self.path, self.body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        timings = {}
        for part in (response.getheader("Server-Timing") or "").split(","):
            name, _, duration = part.strip().partition(";dur=")
            if duration:
                timings[name] = float(duration)
        return response.status, timings


def sequential(target: Target, requests: int) -> list[float]:
    """Latencies (s) of `requests` back-to-back requests on one kept-alive connection."""
    connection, latencies = target.connect(), []
    for _ in range(requests):
        start = time.perf_counter()
        status = target.post(connection)
        latencies.append(time.perf_counter() - start)
        if status != 200:
            raise SystemExit(f"{target.name} answered {status}")
    connection.close()
    return latencies


def concurrent(target: Target, clients: int, seconds: float) -> tuple[int, int, list[float]]:
    """`clients` threads posting for `seconds`: (completed, errors, latencies)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        connection = target.connect()
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                ok = target.post(connection) == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = target.connect()
            elapsed = time.perf_counter() - start
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), errors[0], latencies


def in_process_p50(call: Callable[[], object], repeats: int) -> float:
    call()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def build_bundle(directory: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from endpoint_fixtures import bundle_models, fit_test_models

    return bundle_models(fit_test_models(directory, rows=5000, seed=1, full_size=True), directory / "bundle")


def start_ours(bundle: Path, port: int) -> subprocess.Popen:
    script = (
        "from pathlib import Path\n"
        "from playerguard.inference.server import BundleSource, serve\n"
        "from playerguard.settings import Settings\n"
        f"serve(BundleSource(Settings(), Path({str(bundle)!r})), port={port}, log_level='warning')\n"
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)


def start_mlflow(booster: object, directory: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    import mlflow

    uri = f"sqlite:///{directory / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # An explicit artifact location: with a SQLite store mlflow would otherwise write ./mlruns in the cwd.
    experiment = mlflow.create_experiment("bench-endpoint", artifact_location=(directory / "mlartifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.xgboost.log_model(booster, name="churn")
    command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", f"runs:/{run.info.run_id}/churn",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn` from PATH
    return subprocess.Popen(command, env={**env, "MLFLOW_TRACKING_URI": uri, "PATH": path},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(label: str, latencies: list[float], completed: int | None = None, seconds: float | None = None) -> str:
    text = f"{label}: p50 {quantile(latencies, 0.5) * 1e3:.2f} ms, p99 {quantile(latencies, 0.99) * 1e3:.2f} ms"
    if completed is not None and seconds:
        text += f", {completed / seconds:.1f} req/s"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle directory or model.tar.gz (default: synthetic)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the 8-client load test")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per server and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the mlflow comparison")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the throughput comparison")
    parser.add_argument("--throughput-seconds", type=float, default=15.0, help="seconds per throughput run")
    parser.add_argument("--profile", action="store_true", help="also time each model's predict and explain")
    parser.add_argument("--mlflow-omp-threads", default=None,
                        help="OMP_NUM_THREADS for mlflow's server (default: unset, its own default)")
    args = parser.parse_args()

    import xgboost

    from playerguard.inference.sagemaker_inference import load_serving_bundle
    from playerguard.inference.scoring import score_frame

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        bundle = args.bundle or build_bundle(work)
        served = load_serving_bundle(bundle)
        sys.path.insert(0, str(ROOT / "tests"))
        from endpoint_fixtures import as_records, synthetic_features

        frame = synthetic_features(100, seed=42)
        frame = frame[["player_id", *served.feature_names]] if args.bundle else frame
        records = as_records(frame)
        ours_body = json.dumps(records).encode()
        churn = served.bundle.models["churn"]
        mlflow_body = json.dumps({"dataframe_split": {
            "columns": churn.feature_names_, "data": [[r[name] for name in churn.feature_names_] for r in records],
        }}).encode()

        ours_port, mlflow_port = free_port(), free_port()
        mlflow_env = dict(os.environ)
        if args.mlflow_omp_threads:
            mlflow_env["OMP_NUM_THREADS"] = args.mlflow_omp_threads
        processes = [start_ours(bundle, ours_port), start_mlflow(churn.booster_, work, mlflow_port, mlflow_env)]
        try:
            wait_until_up(ours_port, "/ping", processes[0])
            wait_until_up(mlflow_port, "/ping", processes[1])
            ours = Target("playerguard serve (3 models + reasons + policy)", ours_port, "/invocations", ours_body)
            theirs = Target("mlflow models serve (churn booster only)", mlflow_port, "/invocations", mlflow_body)
            print(f"bundle: {bundle} | models {served.bundle.versions} | load average {os.getloadavg()}")

            # 1. vs mlflow: alternate sequential rounds, then throughput with concurrent clients.
            sequential(ours, 20), sequential(theirs, 20)  # warm up
            latencies: dict[str, list[float]] = {ours.name: [], theirs.name: []}
            for _ in range(args.rounds):
                for target in (ours, theirs):
                    latencies[target.name] += sequential(target, args.requests)
            print(f"\n1. vs mlflow, 100-record requests, {args.rounds} x {args.requests} sequential each:")
            for name, values in latencies.items():
                print("   " + report(name, values, len(values), sum(values)))
            rates = {}
            for target in (ours, theirs):
                completed, errors, values = concurrent(target, args.clients, args.throughput_seconds)
                rates[target.name] = completed / args.throughput_seconds
                print(f"   {args.clients} clients, {args.throughput_seconds:.0f} s: "
                      + report(target.name, values, completed, args.throughput_seconds) + f", {errors} errors")
            print(f"   throughput ratio ours/mlflow: {rates[ours.name] / rates[theirs.name]:.2f}x (goal >= 3x)")

            # 2. Overhead over the in-process floor: interleaved, so both sides see the same machine load.
            connection, rows = ours.connect(), []
            with xgboost.config_context(nthread=1):
                score_frame(served.bundle, frame)
                for _ in range(args.requests):
                    start = time.perf_counter()
                    score_frame(served.bundle, frame)
                    middle = time.perf_counter()
                    _, server = ours.post_timed(connection)
                    latency = time.perf_counter() - middle
                    rows.append((middle - start, latency, server["score"] / 1e3, server["encode"] / 1e3))
            connection.close()
            in_process, latency, server_score, encode = (statistics.median(c) for c in zip(*rows, strict=True))
            print(f"\n2. overhead of HTTP, 100 records, {args.requests} interleaved pairs (medians):")
            print(f"   in-process score_frame {in_process * 1e3:.2f} ms | over HTTP {latency * 1e3:.2f} ms, of which the "
                  f"server spent {server_score * 1e3:.2f} ms parsing + scoring and {encode * 1e3:.2f} ms encoding")
            same_request = statistics.median(row[1] - row[2] for row in rows)
            paired = statistics.median(row[1] - row[0] for row in rows)
            print(f"   HTTP + JSON encoding add {same_request * 1e3:.2f} ms to the server's own parse + score of the "
                  f"same request (goal < 2 ms); {paired * 1e3:.2f} ms over the in-process call (paired; noisier: "
                  "two processes)")

            if args.profile:
                print("\n   where score_frame's time goes, in-process, medians:")
                with xgboost.config_context(nthread=1):
                    for name, model in served.bundle.models.items():
                        predict = in_process_p50(lambda m=model: m.predict_score(frame), 30)
                        explain = in_process_p50(lambda m=model: m.explain(frame), 30)
                        print(f"   {name}: predict_score {predict * 1e3:.2f} ms, explain {explain * 1e3:.2f} ms")

            # 3. Load.
            completed, errors, values = concurrent(ours, 8, args.duration)
            print(f"\n3. load, 8 clients for {args.duration:.0f} s: {completed} requests, {errors} errors, "
                  + report("latency", values, completed, args.duration))
            print(f"load average {os.getloadavg()}")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)


if __name__ == "__main__":
    main()
