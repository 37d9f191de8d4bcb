"""Should the native local lake become an Apache Iceberg table? The figures behind the decision.

One simulated game is written twice: into the native lake (`LocalLake`: staged commit, per-day event-id
dedupe, rejected rows kept) and into an Iceberg table with the envelope's columns (pyiceberg's SQL catalog
on SQLite, partitioned by day(event_timestamp)); for Iceberg, an idempotent append also reads the event ids
of the batch's days first (what the native lake does to settle duplicates), and is also timed without
that read (a bare append, not idempotent). Measured: one bulk append,
then `--batches` small appends (a stream's micro-batches) into each, then a re-append of a batch
(idempotency), the files and metadata each layout holds, and the 28-day feature query at the end.

    .venv/bin/python bench/bench_lake_formats.py [--players 1000 --days 35 --batches 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from playerguard.features.api import build_features
from playerguard.features.engines import DuckDBEngine
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate

START = datetime(2026, 1, 1, tzinfo=UTC)


def iceberg_table(root: Path, schema: pa.Schema) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.transforms import DayTransform

    (root / "warehouse").mkdir(parents=True)
    catalog = SqlCatalog(
        "bench", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=(root / "warehouse").as_uri()
    )
    catalog.create_namespace("bench")
    table = catalog.create_table("bench.events", schema=schema)
    with table.update_spec() as spec:
        spec.add_field("event_timestamp", DayTransform(), "event_day")
    return catalog.load_table("bench.events")


def iceberg_append(table: Any, batch: pa.Table) -> int:
    """Append the rows whose event id the batch's days do not hold yet; returns the rows added."""
    from pyiceberg.expressions import And, GreaterThanOrEqual, LessThan

    stamps = pc.min_max(batch.column("event_timestamp"))
    low = stamps["min"].as_py().replace(hour=0, minute=0, second=0, microsecond=0)
    high = stamps["max"].as_py().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    window = And(
        GreaterThanOrEqual("event_timestamp", low.isoformat()), LessThan("event_timestamp", high.isoformat())
    )
    if table.current_snapshot() is not None:
        known = table.scan(row_filter=window, selected_fields=("event_id",)).to_arrow().column("event_id")
        batch = batch.filter(pc.invert(pc.is_in(batch.column("event_id"), known)))
    if batch.num_rows:
        table.append(batch)
    return batch.num_rows


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def tree(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=1000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    game = simulate(players=args.players, days=args.days, seed=args.seed, start=START)
    late = simulate(players=args.players // 10, days=args.days, seed=args.seed + 1, start=START).events
    events = game.events.drop_columns([c for c in ("event_date",) if c in game.events.column_names])
    late_events = late.drop_columns([c for c in ("event_date",) if c in late.column_names])
    size = max(1, late.num_rows // args.batches)
    batches = [late.slice(i * size, size) for i in range(args.batches)]
    with tempfile.TemporaryDirectory(prefix="bench-lake-") as scratch:
        root = Path(scratch)
        native = LocalLake(root / "native")
        table = iceberg_table(root / "iceberg", events.schema)
        rows = []
        _, native_bulk = timed(lambda: native.append_table(game.events))
        _, ice_bulk = timed(lambda: iceberg_append(table, events))
        rows.append(("bulk append", f"{events.num_rows:,} events", native_bulk, ice_bulk))
        _, native_small = timed(lambda: [native.append_table(b) for b in batches])
        ice_batches = [late_events.slice(i * size, size) for i in range(args.batches)]
        _, ice_small = timed(lambda: [iceberg_append(table, b) for b in ice_batches])
        rows.append((f"{args.batches} small appends", f"{size:,} events each", native_small, ice_small))
        bare = iceberg_table(root / "iceberg-bare", events.schema)
        bare.append(events)
        _, bare_small = timed(lambda: [bare.append(b) for b in ice_batches])
        rows.append((f"{args.batches} small, no dedupe", "iceberg append only", float("nan"), bare_small))
        again, native_again = timed(lambda: native.append_table(batches[0]))
        added, ice_again = timed(lambda: iceberg_append(table, ice_batches[0]))
        rows.append(("re-append a batch", f"added {again.added} / {added}", native_again, ice_again))
        print(
            f"{events.num_rows:,} events ({args.players:,} players, {args.days} days) + "
            f"{args.batches} batches of {size:,}"
        )
        print(f"{'operation':<22}{'detail':>24}{'native s':>10}{'iceberg s':>11}")
        for name, detail, a, b in rows:
            print(f"{name:<22}{detail:>24}{a:>10.3f}{b:>11.3f}")
        native_files, native_bytes = tree(root / "native")
        ice_files, ice_bytes = tree(root / "iceberg")
        data = len(list((root / "iceberg").rglob("*.parquet")))
        print(f"native lake: {native_files:,} files, {native_bytes:,} bytes")
        print(
            f"iceberg:     {ice_files:,} files ({data:,} data, {ice_files - data:,} metadata), {ice_bytes:,} bytes, "
            f"{len(table.refresh().snapshots()):,} snapshots"
        )
        from pyiceberg.expressions import GreaterThanOrEqual

        cutoff = START + timedelta(days=args.days)
        week = GreaterThanOrEqual("event_timestamp", (cutoff - timedelta(days=7)).isoformat())
        planned, plan_s = timed(lambda: list(table.scan(row_filter=week).plan_files()))
        print(f"iceberg plan of the last week: {len(planned)} files in {plan_s:.3f} s")
        settings = Settings(home=root / "home")
        _, query_s = timed(lambda: build_features(settings, cutoff, engine=DuckDBEngine(root / "native")))
        print(f"native 28-day feature query: {query_s:.3f} s")


if __name__ == "__main__":
    main()
