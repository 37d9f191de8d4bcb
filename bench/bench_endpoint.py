"""Scoring endpoint benchmarks: against `mlflow models serve`, over the models' own cost, the HTTP layer, the
raw-events path, and under load.

    .venv/bin/python bench/bench_endpoint.py                  # everything; 30 s load test
    .venv/bin/python bench/bench_endpoint.py --duration 0     # no load test
    .venv/bin/python bench/bench_endpoint.py --workers 1      # one worker each (default: one per core)
    .venv/bin/python bench/bench_endpoint.py --bundle PATH    # a real bundle (e.g. from `playerguard pipeline run`)

1. vs mlflow: the churn XGBoost booster is logged as an mlflow xgboost model in a temporary tracking store
   and served with `mlflow models serve --env-manager local --workers N`; ours (`playerguard serve --workers
   N`, the same N) scores all three models with reasons and policy actions. Same 100-record requests, same
   run: requests/s with one client (sequential, alternating rounds) and with `--clients` concurrent clients.
   Goal: ours >= 3x mlflow's requests/s in both (10x the aim). Without `--bundle`, a third server scores
   with the same models and the policy's offer rules at `reasons: none`.
2. In-process: a 100-record request through `score_request` (parse, features, three models, policy, and
   exact TreeSHAP reasons for the rows the policy acts on, the default) vs the three boosters' own
   `inplace_predict` on the same rows (numpy, one thread), interleaved; also the exact TreeSHAP part alone
   (pred_contribs on the rows the policy acts on, one call per model), the same request with reasons for
   every row (custom attribute `reasons=all`), and with the policy's offer rules at `reasons: none`.
   Goal: <= 5x.
3. HTTP + JSON: latency over HTTP minus the server's own parse + score time (Server-Timing), same request,
   so it is the socket, the HTTP framing and the response encoding. Goal: < 1 ms.
4. Raw events: a request of the players' raw events (features computed in the request) vs a request of
   those players' features, in-process, interleaved. Goal: within 2x.
5. Load: 8 concurrent clients for `--duration` seconds: errors, requests/s, p50/p99.

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
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OFFERS = frozenset({"retention_offer", "purchase_offer"})


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
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.connect()  # Nagle off, as boto3 (urllib3) has it: no delayed-ACK stall on a split request
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

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


def build_bundles(directory: Path) -> tuple[Path, Path]:
    """The bench's bundle, and the same models with the policy's offer rules at `reasons: none`."""
    import yaml

    from playerguard.inference.policy import default_policy_path

    sys.path.insert(0, str(ROOT / "tests"))
    from endpoint_fixtures import bundle_models, fit_test_models

    models = fit_test_models(directory, rows=5000, seed=1, full_size=True)
    policy = yaml.safe_load(default_policy_path().read_text())
    for model in policy["models"].values():
        for rule in model["rules"]:
            if rule["action"] in OFFERS:
                rule["reasons"] = "none"
    quiet_policy = directory / "offers-unexplained.yaml"
    quiet_policy.write_text(yaml.safe_dump(policy))
    return (bundle_models(models, directory / "bundle"),
            bundle_models(models, directory / "bundle-offers-unexplained", policy_path=quiet_policy))  # fmt: skip


def start_ours(bundle: Path, port: int, workers: int) -> subprocess.Popen:
    script = (
        "from pathlib import Path\n"
        "from playerguard.inference.server import BundleSource, serve\n"
        "from playerguard.settings import Settings\n"
        f"serve(BundleSource(Settings(), Path({str(bundle)!r})), port={port}, log_level='warning', workers={workers})\n"
    )
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)


def start_mlflow(booster: object, directory: Path, port: int, env: dict[str, str], workers: int) -> subprocess.Popen:
    import mlflow

    uri = f"sqlite:///{directory / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # An explicit artifact location: with a SQLite store mlflow would otherwise write ./mlruns in the cwd.
    experiment = mlflow.create_experiment("bench-endpoint", artifact_location=(directory / "mlartifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.xgboost.log_model(booster, name="churn")
    command = [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", f"runs:/{run.info.run_id}/churn",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)]
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # mlflow runs `uvicorn` from PATH
    return subprocess.Popen(command, env={**env, "MLFLOW_TRACKING_URI": uri, "PATH": path},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(label: str, latencies: list[float], completed: int | None = None, seconds: float | None = None) -> str:
    text = f"{label}: p50 {quantile(latencies, 0.5) * 1e3:.2f} ms, p99 {quantile(latencies, 0.99) * 1e3:.2f} ms"
    if completed is not None and seconds:
        text += f", {completed / seconds:.1f} req/s"
    return text


def interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, the calls taking turns so that each sees the same machine load."""
    for call in calls.values():
        call()
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            timings[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in timings.items()}


def compare_mlflow(ours: list[Target], theirs: Target, args: argparse.Namespace) -> None:
    """Each of `ours` against mlflow: one client in alternating rounds, then `--clients` concurrent ones."""
    targets = [*ours, theirs]
    for target in targets:
        sequential(target, 20)  # warm up
    latencies: dict[str, list[float]] = {target.name: [] for target in targets}
    for _ in range(args.rounds):
        for target in targets:
            latencies[target.name] += sequential(target, args.requests)
    print(f"\n1. vs mlflow, {args.workers} worker(s) each, 100-record requests (load average {os.getloadavg()}):")
    single = {}
    for name, values in latencies.items():
        single[name] = len(values) / sum(values)
        print(f"   1 client, {args.rounds} x {args.requests} sequential: " + report(name, values, len(values), sum(values)))
    rates = {}
    for target in targets:
        completed, errors, values = concurrent(target, args.clients, args.throughput_seconds)
        rates[target.name] = completed / args.throughput_seconds
        print(f"   {args.clients} clients, {args.throughput_seconds:.0f} s: "
              + report(target.name, values, completed, args.throughput_seconds) + f", {errors} errors")
    for target in ours:
        print(f"   {target.name} / mlflow: {single[target.name] / single[theirs.name]:.2f}x with 1 client, "
              f"{rates[target.name] / rates[theirs.name]:.2f}x with {args.clients} (goal >= 3x)")
    print(f"   load average {os.getloadavg()}")


def in_process(served: object, body: bytes, frame: object, repeats: int) -> None:
    import numpy as np
    import xgboost

    from playerguard.inference.sagemaker_inference import score_request

    models = served.bundle.models
    matrices = {name: frame[m.feature_names_].to_numpy(dtype="float64") for name, m in models.items()}
    boosters = {name: m.booster_ for name, m in models.items() if getattr(m, "booster_", None) is not None}
    predictions = score_request(served, body, "application/json")
    acted = {name: np.array([any(a["model"] == name for a in p["actions"]) for p in predictions]) for name in models}
    exact = {name: xgboost.DMatrix(matrices[name][acted[name]]) for name in boosters}

    def inplace() -> None:
        for name, booster in boosters.items():
            booster.inplace_predict(matrices[name], predict_type="margin")

    def tree_shap() -> None:
        for name, booster in boosters.items():
            booster.predict(exact[name], pred_contribs=True, validate_features=False)

    quiet_offers = offers_unexplained(served)
    with xgboost.config_context(nthread=1):
        medians = interleaved({"request": lambda: score_request(served, body, "application/json"),
                               "inplace": inplace, "tree_shap": tree_shap,
                               "all": lambda: score_request(served, body, "application/json", reasons="all"),
                               "quiet": lambda: score_request(quiet_offers, body, "application/json")},
                              repeats)
    request, floor, shap = medians["request"], medians["inplace"], medians["tree_shap"]
    counts = ", ".join(f"{name} {int(rows.sum())}" for name, rows in acted.items())
    print(f"\n2. in-process, 100 records, {repeats} interleaved repeats (medians; load average {os.getloadavg()}):")
    print(f"   score_request {request * 1e3:.2f} ms | three boosters' inplace_predict {floor * 1e3:.2f} ms | "
          f"ratio {request / floor:.1f}x (goal <= 5x)")
    print(f"   of which exact TreeSHAP on the rows the policy acts on ({counts}): {shap * 1e3:.2f} ms; "
          f"everything else {(request - shap) * 1e3:.2f} ms = {(request - shap) / floor:.1f}x the boosters")
    print(f"   with reasons for every row (reasons=all): {medians['all'] * 1e3:.2f} ms = "
          f"{medians['all'] / floor:.1f}x the boosters")
    print(f"   with the offer rules at `reasons: none` (reviews and account actions still explained): "
          f"{medians['quiet'] * 1e3:.2f} ms = {medians['quiet'] / floor:.1f}x the boosters")


def offers_unexplained(served: object) -> object:
    """The served bundle with its policy's offer rules set to `reasons: none`."""
    from dataclasses import replace

    policy = served.bundle.policy
    rules = {model: tuple(replace(rule, explained=rule.action not in OFFERS) for rule in model_rules)
             for model, model_rules in policy.rules.items()}  # fmt: skip
    return replace(served, bundle=replace(served.bundle, policy=replace(policy, rules=rules)))


def http_overhead(ours: Target, requests: int) -> None:
    connection, rows = ours.connect(), []
    for _ in range(requests):
        start = time.perf_counter()
        _, server = ours.post_timed(connection)
        rows.append((time.perf_counter() - start, server["score"] / 1e3, server["encode"] / 1e3))
    connection.close()
    latency, score, encode = (statistics.median(c) for c in zip(*rows, strict=True))
    added = statistics.median(row[0] - row[1] for row in rows)
    print(f"\n3. HTTP + JSON, 100 records, {requests} requests (medians; load average {os.getloadavg()}):")
    print(f"   latency {latency * 1e3:.2f} ms, of which the server's parse + score {score * 1e3:.2f} ms; HTTP and JSON "
          f"encoding ({encode * 1e3:.2f} ms of it) add {added * 1e3:.2f} ms (goal < 1 ms)")


def events_path(served: object, players: int, repeats: int) -> None:
    import xgboost
    from endpoint_fixtures import as_records, synthetic_events

    from playerguard.inference.sagemaker_inference import score_request

    events = synthetic_events(players)
    cutoff = "2026-03-20T00:00:00Z"
    features = served.featurizer(events, datetime.fromisoformat(cutoff))
    records = as_records(features[["player_id", *served.feature_names]])
    events_body = json.dumps({"events": events, "cutoff": cutoff}).encode()
    features_body = json.dumps(records).encode()
    with xgboost.config_context(nthread=1):
        medians = interleaved({"events": lambda: score_request(served, events_body, "application/json"),
                               "features": lambda: score_request(served, features_body, "application/json")}, repeats)
    print(f"\n4. raw events vs features, {players} players ({len(events):,} events), {repeats} interleaved repeats "
          f"(medians; load average {os.getloadavg()}):")
    print(f"   events path {medians['events'] * 1e3:.2f} ms | features path {medians['features'] * 1e3:.2f} ms | "
          f"ratio {medians['events'] / medians['features']:.2f}x (goal <= 2x)")


def main() -> None:
    from playerguard.inference.server import worker_count

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="bundle directory or model.tar.gz (default: synthetic)")
    parser.add_argument("--workers", type=int, default=0, help="server workers of each side (0: one per core)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the 8-client load test (0: none)")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests per server and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of the mlflow comparison")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients of the throughput comparison")
    parser.add_argument("--throughput-seconds", type=float, default=15.0, help="seconds per throughput run")
    parser.add_argument("--repeats", type=int, default=100, help="repeats of the in-process comparisons")
    parser.add_argument("--mlflow-omp-threads", default=None,
                        help="OMP_NUM_THREADS for mlflow's server (default: unset, its own default)")
    args = parser.parse_args()
    args.workers = worker_count(args.workers)

    from playerguard.inference.sagemaker_inference import load_serving_bundle

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        bundle, quiet_bundle = (args.bundle, None) if args.bundle else build_bundles(work)
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
        print(f"bundle: {bundle} | models {served.bundle.versions} | {os.cpu_count()} CPUs | "
              f"load average {os.getloadavg()}")

        # In-process first, before the servers take memory and cores.
        in_process(served, ours_body, frame, args.repeats)
        events_path(served, 100, max(10, args.repeats // 4))

        ours_port, mlflow_port, quiet_port = free_port(), free_port(), free_port()
        mlflow_env = dict(os.environ)
        if args.mlflow_omp_threads:
            mlflow_env["OMP_NUM_THREADS"] = args.mlflow_omp_threads
        processes = [start_ours(bundle, ours_port, args.workers),
                     start_mlflow(churn.booster_, work, mlflow_port, mlflow_env, args.workers)]
        if quiet_bundle is not None:  # the same models, offer rules at `reasons: none`
            processes.append(start_ours(quiet_bundle, quiet_port, args.workers))
        try:
            for port, process in zip((ours_port, mlflow_port, quiet_port), processes, strict=False):
                wait_until_up(port, "/ping", process)
            time.sleep(3)  # every worker up, not only the first to answer /ping
            ours = Target("playerguard serve (3 models + reasons + policy)", ours_port, "/invocations", ours_body)
            theirs = Target("mlflow models serve (churn booster only)", mlflow_port, "/invocations", mlflow_body)
            quiet = Target("playerguard serve, offer rules at reasons: none", quiet_port, "/invocations", ours_body)
            compare_mlflow([ours, quiet] if quiet_bundle is not None else [ours], theirs, args)
            http_overhead(ours, args.requests)
            if args.duration > 0:
                completed, errors, values = concurrent(ours, 8, args.duration)
                print(f"\n5. load, 8 clients for {args.duration:.0f} s: {completed} requests, {errors} errors, "
                      + report("latency", values, completed, args.duration))
            print(f"load average {os.getloadavg()}")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=60)


if __name__ == "__main__":
    main()
