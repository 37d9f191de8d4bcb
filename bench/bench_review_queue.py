"""Review console benchmark: how long the queue page takes with 10,000 flags in the outbox.

Fills a fresh outbox with `--flags` flags (three models, four actions, three severities, 30 event days,
a fifth of them already reviewed), serves the console on loopback and times full page loads over HTTP
(request to last byte; the browser's rendering is not included): the default queue (pending), a filtered
one, a deep page, and a flag page. Prints the median and the 95th percentile of `--runs` loads each, after
a warm-up load.

    .venv/bin/python bench/bench_review_queue.py [--flags 10000] [--runs 30]

Goal: the queue page under 50 ms at 10,000 flags.
"""

from __future__ import annotations

import argparse
import http.client
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playerguard.inference.flags import Flag, format_timestamp, make_flag_id
from playerguard.review.app import Console, create_app
from playerguard.review.queue import OutboxQueue, QueueFilter
from playerguard.stream.notifiers.local import OutboxNotifier

MODELS = {
    "inhuman_play": ("review", "account_action"),
    "churn": ("retention_offer",),
    "purchase": ("purchase_offer",),
}
FEATURES = ("headshot_rate_28d", "reaction_ms_p50_28d", "accuracy_28d", "sessions_7d")


def fill_outbox(home: Path, count: int, seed: int = 11) -> list[str]:
    """`count` flags for count/3 players over 30 days; every fifth one reviewed. Returns the flag ids."""
    rng = random.Random(seed)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    flags = []
    for k in range(count):
        model = rng.choice(list(MODELS))
        moment = start + timedelta(seconds=rng.randrange(30 * 86400))
        event_id = f"ev-{k:07d}"
        reasons = [
            {"kind": "feature", "name": name, "value": rng.random(), "contribution": rng.random()}
            for name in rng.sample(FEATURES, 3)
        ]
        flags.append(
            Flag(
                flag_id=make_flag_id(event_id, model, "7"),
                player_id=f"player-{rng.randrange(max(1, count // 3)):06d}",
                model=model,
                action=rng.choice(MODELS[model]),
                severity=rng.choice(("low", "medium", "high")),
                score=round(rng.random(), 4),
                threshold=0.5,
                reasons=reasons,
                event_id=event_id,
                event_timestamp=format_timestamp(moment),
                model_version="7",
                scored_at=format_timestamp(moment + timedelta(seconds=1)),
            )
        )
    outbox = OutboxNotifier.from_home(home)
    outbox.publish(flags)
    for flag in flags[::5]:
        outbox.review(flag.flag_id, rng.choice(("confirmed", "dismissed")))
    outbox.close()
    return [f.flag_id for f in flags]


def time_loads(netloc: str, path: str, runs: int) -> list[float]:
    """Milliseconds per load of `path`, one warm-up load first."""
    timings = []
    for k in range(runs + 1):
        started = time.perf_counter()
        connection = http.client.HTTPConnection(netloc, timeout=30)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        connection.close()
        if response.status != 200 or not body:
            raise SystemExit(f"GET {path}: HTTP {response.status}")
        if k:
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args(argv)

    import uvicorn

    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        started = time.perf_counter()
        ids = fill_outbox(home, args.flags)
        print(f"outbox: {args.flags:,} flags written in {time.perf_counter() - started:.1f} s")
        # no lake here: the flag page says so, and is timed without DuckDB
        console = Console(home=home, reviewer="bench", activity=None)
        started = time.perf_counter()
        console.queue.prepare()
        print(f"indexes: added in {(time.perf_counter() - started) * 1000:.0f} ms")

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        netloc = f"127.0.0.1:{listener.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(create_app(console), log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            pages = {
                "queue (pending)": "/",
                "queue (model + action)": "/?model=inhuman_play&action=review",
                "queue (one day, all statuses)": "/?status=all&day=2026-03-15",
                "queue (page 60)": "/?page=60",
                "flag page": f"/flags/{ids[len(ids) // 2]}",
            }
            print(f"{'page':32} {'median ms':>10} {'p95 ms':>8}   ({args.runs} loads each)")
            for name, path in pages.items():
                timings = sorted(time_loads(netloc, path, args.runs))
                p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
                print(f"{name:32} {statistics.median(timings):10.1f} {p95:8.1f}")
            print("query plan (pending queue):", OutboxQueue.from_home(home).query_plan(QueueFilter()))
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            listener.close()


if __name__ == "__main__":
    sys.exit(main())
