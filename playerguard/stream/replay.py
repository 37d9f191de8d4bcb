"""Replay lake events through the stream handler, as Kinesis and Lambda would deliver them.

Lake events become Kinesis batches (`replay_source`) handed to the same runtime the Lambda handler uses,
against the configured endpoint or a local scoring server started for the replay. Batch item failures are
redelivered the way an event source mapping does it: from the lowest failed sequence number on, so the
replay exercises the same exactly-once machinery. The online snapshot can be rebuilt on a schedule.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from playerguard.backends import backend_for
from playerguard.errors import DataError
from playerguard.features.online.local import SqliteFeatureStore
from playerguard.inference.flags import Budgets, Cooldowns
from playerguard.settings import Settings
from playerguard.stream.endpoint import Endpoint
from playerguard.stream.handler import StreamRuntime
from playerguard.stream.notifiers.local import OutboxNotifier
from playerguard.stream.replay_source import (
    check_refresh_interval,
    duration_text,
    kinesis_batches,
    lake_events,
    records_to_redeliver,
    windowed_batches,
)
from playerguard.stream.retries import RetryPolicy
from playerguard.stream.scorer import FeatureSource, StreamScorer


def refresh_snapshot(settings: Settings, cutoff: datetime | date, feature_set: Any = "default") -> int:
    """Rebuild the online snapshot as the scheduled job would at `cutoff` (a date: its midnight UTC), from
    events before it only. Returns the number of players in the snapshot."""
    from playerguard.features.api import build_features

    if not isinstance(cutoff, datetime):
        cutoff = datetime.combine(cutoff, datetime.min.time(), UTC)
    return SqliteFeatureStore.from_settings(settings).write(
        build_features(settings, cutoff, feature_set=feature_set)
    )


@dataclass
class ReplaySummary:
    """What a replay did, summed over its batches and redeliveries."""

    events: int = 0
    batches: int = 0
    invocations: int = 0
    scored: int = 0
    flagged: int = 0
    duplicates: int = 0
    suppressed: int = 0
    dead_lettered: int = 0
    retried: int = 0
    without_snapshot: int = 0
    withheld: int = 0
    unprocessed: int = 0
    snapshots: int = 0
    refresh_every: str = ""
    seconds: float = 0.0
    endpoint: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def __str__(self) -> str:
        text = (
            f"replayed {self.events:,} events in {self.batches:,} batches ({self.invocations:,} invocations) "
            f"in {self.seconds:.1f}s ({self.events_per_second:,.0f} events/s) against {self.endpoint}: "
            f"{self.scored:,} scored, {self.flagged:,} flags, {self.suppressed:,} within cooldown, "
            f"{self.duplicates:,} duplicates refused, {self.dead_lettered:,} dead-lettered, "
            f"{self.retried:,} retries"
        )
        if self.withheld:
            text += (
                f"; {self.withheld:,} actions withheld from {self.without_snapshot:,} scorings on a batch's "
                "events alone (no snapshot)"
            )
        if self.snapshots:
            plural = "s" if self.snapshots != 1 else ""
            text += f"; online snapshot rebuilt {self.snapshots} time{plural} (every {self.refresh_every})"
        if self.unprocessed:
            text += f"; {self.unprocessed:,} events NOT processed after every redelivery ({self.failures[0]})"
        return text


def run_replay(
    handle_batch: Callable[[dict[str, Any]], tuple[dict[str, Any], Any]],
    batches: Iterable[dict[str, Any]],
    *,
    rate: float | None = None,
    max_redeliveries: int = 3,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> ReplaySummary:
    """Feed batches to `handle_batch` (StreamRuntime.handle_batch), redelivering failures as Kinesis does.

    `rate` caps the pace in events per second. Records still failing after `max_redeliveries` are counted
    as unprocessed (on AWS they would go to the event source mapping's on-failure destination).
    """
    summary = ReplaySummary()
    started = clock()
    for event in batches:
        records = event["Records"]
        summary.batches += 1
        summary.events += len(records)
        for attempt in range(max_redeliveries + 1):
            response, report = handle_batch({"Records": records})
            summary.invocations += 1
            for name, value in report.counts().items():
                if name != "received":  # a redelivery receives records again; events counts them once
                    setattr(summary, name, getattr(summary, name) + value)
            records = records_to_redeliver(records, response)
            if not records:
                break
            if attempt < max_redeliveries:
                sleep(min(0.5 * 2**attempt, 5.0))
        if records:
            summary.unprocessed += len(records)
            summary.failures.append(next(iter(report.failed.values()), "unknown failure"))
        if rate:
            ahead = summary.events / rate - (clock() - started)
            if ahead > 0:
                sleep(ahead)
    summary.seconds = clock() - started
    return summary


@contextmanager
def local_scoring_server(
    settings: Settings, bundle: Path | None = None, *, ready_timeout: float = 60.0
) -> Iterator[tuple[str, Any]]:
    """The local scoring server in a thread on a free loopback port: yields (url, served bundle).

    `bundle` is a bundle directory or model.tar.gz; by default the registry's champions are bundled, as
    `playerguard serve` does. The server stops when the block ends.
    """
    import socket

    import uvicorn

    from playerguard.inference.server import BundleHolder, BundleSource, create_app

    holder = BundleHolder(BundleSource(settings, bundle).load)
    served = holder.reload()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # see bind_listener
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(holder), log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, daemon=True, name="playerguard-replay-endpoint"
    )
    thread.start()
    try:
        deadline = time.monotonic() + ready_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise DataError("the local scoring server did not start; run `playerguard serve` to see why")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", served
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


@dataclass(frozen=True)
class ReplayTarget:
    """What replay scores against: the endpoint, a description, the policy's cooldowns, the feature
    set snapshots are built with (the served bundle's when replay serves it), and the policy's budgets."""

    endpoint: Endpoint
    description: str
    cooldowns: Cooldowns
    feature_set: Any = "default"
    budgets: Budgets = field(default_factory=Budgets)


@contextmanager
def scoring_endpoint(settings: Settings, bundle: Path | None = None) -> Iterator[ReplayTarget]:
    """The endpoint replay scores against.

    PLAYERGUARD_ENDPOINT_URL wins; then the SageMaker endpoint for the aws backend; else a local server
    started for the replay. The cooldowns and daily budgets come from the served bundle's policy when replay
    serves it, else from the packaged default policy.
    """
    from playerguard.inference.flags import budgets_from_policy, cooldowns_from_policy
    from playerguard.inference.policy import load_policy
    from playerguard.stream.endpoint import HttpEndpoint

    remote = backend_for(settings).endpoint()
    if remote is not None:
        where = settings.endpoint_url or f"SageMaker endpoint {settings.endpoint_name}"
        policy = load_policy()
        yield ReplayTarget(remote, where, cooldowns_from_policy(policy), budgets=budgets_from_policy(policy))
    else:
        with local_scoring_server(settings, bundle) as (url, served):
            endpoint = HttpEndpoint(url)
            try:
                yield ReplayTarget(
                    endpoint,
                    f"local server {url} ({served.bundle.path})",
                    cooldowns_from_policy(served.bundle.policy),
                    served.bundle.feature_set or "default",
                    budgets_from_policy(served.bundle.policy),
                )
            finally:
                endpoint.close()


def local_stream_runtime(
    settings: Settings,
    endpoint: Endpoint,
    outbox: OutboxNotifier,
    *,
    retry: RetryPolicy | None = None,
    logger: logging.Logger | None = None,
    features: FeatureSource | None = None,
    act_without_snapshot: Collection[str] = (),
) -> StreamRuntime:
    """The stream runtime with local backends: the outbox, and `features` or else the online feature
    snapshot under `<home>` when there is one."""
    features = features if features is not None else online_feature_source(settings)
    scorer = StreamScorer(
        endpoint, outbox, features, retry=retry, logger=logger, act_without_snapshot=act_without_snapshot
    )
    return StreamRuntime(scorer)


def online_feature_source(settings: Settings) -> FeatureSource | None:
    """The latest materialised feature snapshot (`<home>/online/features.sqlite`), if there is one; without
    it every player is scored on its own events."""
    store = SqliteFeatureStore.from_settings(settings)
    return store if store.path.exists() else None


def check_snapshot_fits(settings: Settings, feature_set: Any) -> None:
    """A DataError when the online snapshot lacks features of the models' feature set: its players would
    be scored on missing values."""
    names = getattr(feature_set, "feature_names", None)
    store = online_feature_source(settings)
    if not names or store is None:
        return
    try:
        built = set(json.loads(store.metadata().get("feature_names", "[]")))
    finally:
        store.close()
    missing = [name for name in names if name not in built]
    if missing:
        raise DataError(
            f"the online snapshot at {store.path} was built with another feature set than the models' "
            f"({feature_set.name!r}): it lacks {len(missing)} of their features (e.g. {', '.join(missing[:3])}); "
            "rebuild it (playerguard features build --snapshot --feature-set ...) or pass --refresh-snapshot"
        )


def replay(
    settings: Settings,
    start: date,
    end: date,
    *,
    rate: float | None = None,
    batch_size: int = 100,
    bundle: Path | None = None,
    refresh_every: timedelta | None = None,
    act_without_snapshot: Collection[str] = (),
    max_redeliveries: int = 3,
    logger: logging.Logger | None = None,
) -> ReplaySummary:
    """Replay the lake's events from `start` to `end` (inclusive) through the stream handler.

    The endpoint is `settings.endpoint_url`, else the SageMaker endpoint for the aws backend, else a local
    scoring server started for the replay on a free loopback port and stopped after it. With
    `refresh_every` (a divisor of a day), the online snapshot is rebuilt at the start of each such window
    from the events before it, as a scheduled `features build --snapshot` does in production; otherwise
    the snapshot stays as it is. `act_without_snapshot` as for `StreamScorer`.
    """
    if rate is not None and rate <= 0:
        raise DataError(f"--rate must be a positive number of events per second, got {rate}")
    if refresh_every is not None:
        check_refresh_interval(refresh_every)
    events = lake_events(settings, start, end)
    first = next(events, None)  # check the lake before starting a server
    if first is None:
        raise DataError(f"the lake has no events from {start} to {end}")
    if refresh_every is None and not act_without_snapshot and online_feature_source(settings) is None:
        raise DataError(
            f"no online feature snapshot at {SqliteFeatureStore.from_settings(settings).path}, so no player "
            "could be acted on: build one (`playerguard features build --cutoff DATE --snapshot`) "
            "or pass --refresh-snapshot"
        )
    with scoring_endpoint(settings, bundle) as target:
        refreshed: list[datetime] = []

        def before_window(cutoff: datetime) -> None:
            refresh_snapshot(settings, cutoff, target.feature_set)
            refreshed.append(cutoff)

        features: FeatureSource | None = None
        if refresh_every is not None:
            batches = windowed_batches(settings, start, end, batch_size, refresh_every, before_window)
            features = SqliteFeatureStore.from_settings(settings)  # written before the first window's batches
        else:
            check_snapshot_fits(settings, target.feature_set)
            batches = kinesis_batches(itertools.chain([first], events), batch_size)
        outbox = OutboxNotifier.from_home(settings.home, target.cooldowns, target.budgets)
        try:
            runtime = local_stream_runtime(
                settings,
                target.endpoint,
                outbox,
                logger=logger,
                features=features,
                act_without_snapshot=act_without_snapshot,
            )
            summary = run_replay(runtime.handle_batch, batches, rate=rate, max_redeliveries=max_redeliveries)
        finally:
            outbox.close()
    summary.endpoint = target.description
    summary.snapshots = len(refreshed)
    summary.refresh_every = duration_text(refresh_every) if refresh_every else ""
    return summary
