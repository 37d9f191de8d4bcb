"""Stream benchmark: replay throughput end to end, and the handler's own cost per batch.

End to end = lake events → Kinesis-shaped batches → stream handler → local scoring server (real bundle,
real models, over loopback HTTP) → SQLite outbox, in two modes: `events` (no online snapshot: the endpoint
computes every player's features from the batch's events) and `snapshot` (every player has a row in the
online feature snapshot, sent as features). The handler overhead is each batch's handler time minus
its endpoint round trip (decode, validate, group, feature lookup, request encoding, response decoding,
flags, outbox, the powertools batch response), reported as a median per batch in wall time and in the
handler thread's CPU time (the latter is what the handler costs even on a machine busy with other work).

    .venv/bin/python bench/bench_stream.py [--events 100000] [--batch-size 100] [--batch-size 1000]

The bundle holds the three models at their default sizes, fitted on the endpoint tests' synthetic feature
rows; the events come from the simulator. Goals: ≥ 5,000 events/s end to end; < 5 ms handler overhead per
100-record batch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from playerguard.features.online.local import SqliteFeatureStore
from playerguard.inference.flags import Cooldowns, cooldowns_from_policy
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.stream.endpoint import HttpEndpoint
from playerguard.stream.handler import StreamRuntime
from playerguard.stream.notifiers.local import OutboxNotifier
from playerguard.stream.replay import local_scoring_server, run_replay
from playerguard.stream.replay_source import kinesis_batches, lake_events
from playerguard.stream.scorer import FeatureSource, StreamScorer


class TimedEndpoint(HttpEndpoint):
    """The HTTP endpoint, timing only the round trip (send, server work, receive) in wall time and in this
    thread's CPU time: encoding the request and decoding the answer stay on the handler's side."""

    seconds = 0.0
    cpu_seconds = 0.0

    def _post(self, body: bytes) -> tuple[int, bytes]:
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            return super()._post(body)
        finally:
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.thread_time() - started_cpu


def measure(
    url: str,
    cooldowns: Cooldowns,
    features: FeatureSource | None,
    events: list[dict[str, Any]],
    batch_size: int,
    outbox_dir: Path,
) -> dict[str, float]:
    endpoint = TimedEndpoint(url)
    outbox = OutboxNotifier.from_home(outbox_dir, cooldowns)
    runtime = StreamRuntime(StreamScorer(endpoint, outbox, features))
    overheads: list[float] = []
    overheads_cpu: list[float] = []
    endpoint_times: list[float] = []

    def handle_batch(event: dict[str, Any]) -> Any:
        endpoint.seconds = endpoint.cpu_seconds = 0.0
        started, started_cpu = time.perf_counter(), time.thread_time()
        result = runtime.handle_batch(event)
        overheads.append(time.perf_counter() - started - endpoint.seconds)
        # the handler thread's own CPU time: what the handler costs, whatever else the machine runs
        overheads_cpu.append(time.thread_time() - started_cpu - endpoint.cpu_seconds)
        endpoint_times.append(endpoint.seconds)
        return result

    batches = list(kinesis_batches(events, batch_size))  # built up front: the producer is not measured
    summary = run_replay(handle_batch, batches)
    outbox.close()
    endpoint.close()
    return {
        "events": summary.events,
        "seconds": summary.seconds,
        "events_per_s": summary.events_per_second,
        "flags": summary.flagged,
        "suppressed": summary.suppressed,
        "unprocessed": summary.unprocessed,
        "overhead_ms_median": statistics.median(overheads) * 1e3,
        "overhead_ms_p90": statistics.quantiles(overheads, n=10)[-1] * 1e3,
        "overhead_cpu_ms_median": statistics.median(overheads_cpu) * 1e3,
        "endpoint_ms_median": statistics.median(endpoint_times) * 1e3,
        "endpoint_share": sum(endpoint_times) / summary.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, action="append", dest="batch_sizes")
    args = parser.parse_args()
    batch_sizes = args.batch_sizes or [100, 1000]

    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    from endpoint_fixtures import bundle_models, fit_test_models, synthetic_features

    with tempfile.TemporaryDirectory(prefix="bench-stream-") as scratch:
        root = Path(scratch)
        settings = Settings(home=root / "home")
        players = max(200, args.events // 40)
        write_simulation(settings, players=players, days=30, seed=11)
        events = list(lake_events(settings, date(2026, 1, 1), date(2026, 2, 1)))[: args.events]
        bundle = bundle_models(fit_test_models(root, full_size=True), root / "bundle")
        ids = sorted({e["player_id"] for e in events})
        snapshot = SqliteFeatureStore(root / "snapshot.sqlite")
        snapshot.write(synthetic_features(len(ids)).assign(player_id=ids))
        print(f"{len(events):,} simulated events of {len(ids):,} players; bundle {bundle}")
        with local_scoring_server(settings, bundle) as (url, served):
            cooldowns = cooldowns_from_policy(served.bundle.policy)  # as replay does: the bundle's policy
            for mode, features in (("events", None), ("snapshot", snapshot)):
                for batch_size in batch_sizes:
                    outbox_dir = root / f"outbox-{mode}-{batch_size}"
                    figures = measure(url, cooldowns, features, events, batch_size, outbox_dir)
                    print(
                        f"{mode:>8} batch {batch_size:>5}: {figures['events']:,} events in "
                        f"{figures['seconds']:.1f}s = {figures['events_per_s']:,.0f} events/s end to end; "
                        f"handler overhead per batch median {figures['overhead_ms_median']:.2f} ms "
                        f"(p90 {figures['overhead_ms_p90']:.2f} ms; thread CPU median "
                        f"{figures['overhead_cpu_ms_median']:.2f} ms); endpoint call median "
                        f"{figures['endpoint_ms_median']:.1f} ms ({figures['endpoint_share']:.0%} of the time); "
                        f"{figures['flags']:,} flags ({figures['suppressed']:,} within cooldown); "
                        f"{figures['unprocessed']} unprocessed; load average {os.getloadavg()[0]:.1f} "
                        f"on {os.cpu_count()} CPUs"
                    )


if __name__ == "__main__":
    main()
