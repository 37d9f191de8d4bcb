"""Partition pruning on a Game Analytics Pipeline lake: what a feature query reads for a week vs a month.

Simulates a game into the GAP layout (`raw_events/year=/month=/day=/`, one Parquet file per day), then
compiles the same features over a 7-day and a 28-day window at a cutoff after the last day, binds them to
the packaged GAP mapping (partition predicates from the query's own date bounds, one day of slack on each
side) and runs them with DuckDB's JSON profiling. Printed per query, measured in the same run: the files
(and their bytes) the partition predicates match, the files DuckDB opened (the sum of "Total Files Read"
over the query's TABLE_SCANs; the percentile reads the events a second time, so twice the matched files),
rows scanned, and the median time. The week query also runs unpruned (the mapping without partitions,
so no partition predicate) as the reference.

The same game is then written as a GAP v3 Apache Iceberg table (local SQLite catalog, partitioned by
application_id and day(event_timestamp)) and the same queries run through the packaged `gap-v3` mapping:
Iceberg plans the files for each query's date range (`plan_files()`, partition and column statistics) and
DuckDB reads that list. Printed likewise: files and bytes planned, files opened, rows scanned, median time
(view registration included), and the median planning time; unpruned = a view over every file.

    .venv/bin/python bench/bench_pruning.py [--players 2000 --days 35 --repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from playerguard.features.compiler import compile_features
from playerguard.features.engines import transpile_to_duckdb
from playerguard.features.iceberg_source import IcebergSource
from playerguard.features.source_binding import MappedSource, register_local_table
from playerguard.features.sources import SourceMapping, load_source_mapping, partition_days
from playerguard.features.spec import FeatureSet, parse_feature_set
from playerguard.simulator.game import simulate
from playerguard.simulator.gap_layout import GAP_TABLE, write_gap_table
from playerguard.simulator.gap_v3_layout import append_gap_v3_events, create_gap_v3_table

START = datetime(2026, 1, 1, tzinfo=UTC)


def feature_set(window: str) -> FeatureSet:
    """Counts, a mean, a sum and a percentile over one window."""
    features = [
        {"name": "sessions", "kind": "count", "event_type": "session_start", "window": window},
        {"name": "matches", "kind": "count", "event_type": "match_end", "window": window},
        {"name": "kills", "kind": "mean", "event_type": "match_end", "attribute": "kills", "window": window},
        {"name": "spend", "kind": "sum", "event_type": "purchase", "attribute": "amount", "window": window},
        {"name": "reaction_p10", "kind": "percentile", "event_type": "match_end", "attribute": "reaction_ms",
         "quantile": 0.1, "window": window},
    ]  # fmt: skip
    return parse_feature_set({"features": features}, default_name=f"bench_{window}")


def scans(node: dict) -> list[dict]:
    """Every TABLE_SCAN in a DuckDB JSON profile."""
    found = [node] if node.get("operator_type") == "TABLE_SCAN" else []
    return found + [scan for child in node.get("children", []) for scan in scans(child)]


def files_in(directory: Path, first, last) -> list[Path]:
    """The Parquet files of the partitions first..last (None: unbounded)."""
    chosen = []
    for path in sorted(directory.glob("year=*/month=*/day=*/*.parquet")):
        day = datetime.strptime("-".join(p.split("=")[1] for p in path.parts[-4:-1]), "%Y-%m-%d").date()
        if (first is None or day >= first) and (last is None or day <= last):
            chosen.append(path)
    return chosen


def measure(
    table: SourceMapping, source: SourceMapping, lake: Path, window: str, cutoff: datetime, repeats: int
) -> dict:
    """Run the `window` features bound to `source` over the view `table` registers on the lake."""
    days = int(window.rstrip("d"))
    query = compile_features(feature_set(window), [cutoff], active_within_days=days)
    sql, params = MappedSource(source).bind(query.sql, query.params, "playerguard", "events")
    con = register_local_table(duckdb.connect(), table, lake)
    statement = transpile_to_duckdb(sql)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows = con.execute(statement, params).fetchall()
        timings.append(time.perf_counter() - started)
    profile = lake.parent / f"profile-{window}-{source.partitions is not None}.json"
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{profile}'")
    con.execute(statement, params).fetchall()
    con.execute("PRAGMA disable_profiling")
    report = json.loads(profile.read_text())
    first, last = partition_days(source, cutoff - timedelta(days=days), cutoff)
    matched = (
        files_in(lake / GAP_TABLE, first, last)
        if source.partitions
        else files_in(lake / GAP_TABLE, None, None)
    )
    return {
        "players": len(rows),
        "matched_files": len(matched),
        "matched_bytes": sum(p.stat().st_size for p in matched),
        "files_opened": sum(int(scan["extra_info"].get("Total Files Read", 0)) for scan in scans(report)),
        "rows_scanned": int(report.get("cumulative_rows_scanned", 0)),
        "median_s": statistics.median(timings),
    }


def profiled(con: duckdb.DuckDBPyConnection, statement: str, params: list[str], path: Path) -> dict:
    """DuckDB's JSON profile of one run of `statement`."""
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{path}'")
    con.execute(statement, params).fetchall()
    con.execute("PRAGMA disable_profiling")
    return json.loads(path.read_text())


def measure_iceberg(lake: Path, window: str, cutoff: datetime, repeats: int, pruned: bool) -> dict:
    """Run the `window` features through the gap-v3 mapping; Iceberg plans the files (or, unpruned, all)."""
    mapping = load_source_mapping("gap-v3")
    days = int(window.rstrip("d"))
    query = compile_features(feature_set(window), [cutoff], active_within_days=days)
    con = duckdb.connect()
    source = IcebergSource(mapping, lake)
    planned: list = []

    def register(scan_days: tuple) -> None:
        chosen = scan_days if pruned else (None, None)
        source.register(con, chosen)
        planned[:] = source.plan(chosen)

    sql, params = MappedSource(mapping).bind(
        query.sql, query.params, "playerguard", "events", before=register
    )
    statement = transpile_to_duckdb(sql)
    timings, plannings = [], []
    for _ in range(repeats):
        fresh = IcebergSource(mapping, lake)
        started = time.perf_counter()
        fresh.plan(planned_days := (cutoff.date() - timedelta(days=days), cutoff.date()))
        plannings.append(time.perf_counter() - started)
        started = time.perf_counter()
        source._plans.clear()  # re-plan and re-register, as the engine does per query
        register(planned_days)
        rows = con.execute(statement, params).fetchall()
        timings.append(time.perf_counter() - started)
    report = profiled(con, statement, params, lake.parent / f"profile-iceberg-{window}-{pruned}.json")
    return {
        "players": len(rows),
        "matched_files": len(planned),
        "matched_bytes": sum(f.size for f in planned),
        "files_opened": sum(int(scan["extra_info"].get("Total Files Read", 0)) for scan in scans(report)),
        "rows_scanned": int(report.get("cumulative_rows_scanned", 0)),
        "median_s": statistics.median(timings),
        "plan_s": statistics.median(plannings),
    }


def print_ratios(results: dict) -> None:
    week, month, full = results.values()
    for name, (big, small) in {"month / week": (month, week), "week unpruned / pruned": (full, week)}.items():
        print(
            f"{name}: {big['files_opened'] / small['files_opened']:.2f}x files, "
            f"{big['matched_bytes'] / small['matched_bytes']:.2f}x bytes, "
            f"{big['rows_scanned'] / small['rows_scanned']:.2f}x rows, "
            f"{big['median_s'] / small['median_s']:.2f}x time"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    mapping = load_source_mapping("gap")
    unpruned = mapping.model_copy(update={"partitions": None})
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as scratch:
        lake = Path(scratch) / "lake"
        game = simulate(players=args.players, days=args.days, seed=args.seed, start=START)
        write_gap_table(game.events, lake / GAP_TABLE)
        every = files_in(lake / GAP_TABLE, None, None)
        cutoff = START + timedelta(days=args.days)
        print(
            f"GAP lake: {game.events.num_rows:,} events, {len(every)} daily files, "
            f"{sum(p.stat().st_size for p in every):,} bytes ({args.players:,} players, {args.days} days); "
            f"cutoff {cutoff.date()}, median of {args.repeats} runs"
        )
        print(
            f"{'query':<22}{'players':>8}{'files matched':>15}{'bytes matched':>15}"
            f"{'files opened':>14}{'rows scanned':>14}{'median s':>10}"
        )
        results = {}
        for label, source, window in (
            ("week (7d), pruned", mapping, "7d"),
            ("month (28d), pruned", mapping, "28d"),
            ("week (7d), unpruned", unpruned, "7d"),
        ):
            r = results[label] = measure(mapping, source, lake, window, cutoff, args.repeats)
            print(
                f"{label:<22}{r['players']:>8,}{r['matched_files']:>15,}{r['matched_bytes']:>15,}"
                f"{r['files_opened']:>14,}{r['rows_scanned']:>14,}{r['median_s']:>10.3f}"
            )
        print_ratios(results)

        append_gap_v3_events(create_gap_v3_table(lake), game.events)
        every = IcebergSource(load_source_mapping("gap-v3"), lake).plan()
        print(
            f"\nGAP v3 Iceberg table: {len(every)} data files, {sum(f.size for f in every):,} bytes "
            f"(partitioned by application_id, day(event_timestamp)); files planned by Iceberg"
        )
        print(
            f"{'query':<22}{'players':>8}{'files planned':>15}{'bytes planned':>15}"
            f"{'files opened':>14}{'rows scanned':>14}{'median s':>10}{'plan s':>8}"
        )
        results = {}
        for label, window, pruned in (
            ("week (7d), pruned", "7d", True),
            ("month (28d), pruned", "28d", True),
            ("week (7d), unpruned", "7d", False),
        ):
            r = results[label] = measure_iceberg(lake, window, cutoff, args.repeats, pruned)
            print(
                f"{label:<22}{r['players']:>8,}{r['matched_files']:>15,}{r['matched_bytes']:>15,}"
                f"{r['files_opened']:>14,}{r['rows_scanned']:>14,}{r['median_s']:>10.3f}{r['plan_s']:>8.3f}"
            )
        print_ratios(results)


if __name__ == "__main__":
    main()
