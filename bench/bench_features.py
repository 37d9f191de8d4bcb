"""Benchmark the DuckDB feature build on a simulated lake (default: 100k players, >= 10M events).

Prints, measured in the same run:
- the feature build (default set as default.yaml holds it, one cutoff, 28-day lookback) vs a bare DuckDB
  scan of the same columns through the same view (goal: build <= 3x the scan), in wall and in CPU seconds
  (the CPU ratio is the steadier one on a shared machine);
- the build vs the pure-pandas reference (tests/feature_oracle.py), reading included (goal: >= 5x faster);
- peak RSS (VmHWM) of the build, run in its own process with a DuckDB memory_limit and temp_directory
  (goal < 1 GB);
- a training set over several cutoffs: one query per cutoff vs one query for all cutoffs.
Each measurement runs in a fresh subprocess (so peak RSS is the operation's own); times are medians. The
load average is printed before and after: other work on the machine inflates wall times.

    .venv/bin/python bench/bench_features.py [--players 100000 --days 30 --repeats 3 --profile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 1, 1, tzinfo=UTC)


def _settings(home: str):
    from playerguard.settings import Settings

    return Settings(home=Path(home))


def _engine(args: argparse.Namespace):
    from playerguard.features.engines import DuckDBEngine

    return DuckDBEngine.from_settings(
        _settings(args.home), memory_limit=args.memory_limit, threads=args.threads
    )


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cutoff(args: argparse.Namespace) -> datetime:
    return START + timedelta(days=args.days - 1)


def _feature_query(args: argparse.Namespace, engine):
    from playerguard.features.api import feature_query

    return feature_query("default", [_cutoff(args)], columns=engine.column_types(), database=engine.database)


def work_scan(args: argparse.Namespace) -> dict:
    """count() of every column the feature query reads, over the rows before the cutoff."""
    import sqlglot
    from sqlglot import exp

    engine = _engine(args)
    query = _feature_query(args, engine)
    scanned = sqlglot.parse_one(query.sql, read="athena").find(exp.CTE).this.find(exp.Select)
    columns = [c.alias_or_name for c in scanned.expressions[2:]]
    sql = (
        f"SELECT count(*), {', '.join(f'count({c})' for c in columns)} "
        f'FROM "{engine.database}"."events" WHERE event_date <= ? AND event_timestamp < CAST(? AS TIMESTAMP)'
    )
    cutoff = _cutoff(args)
    started, cpu = time.perf_counter(), _cpu_seconds()
    row = (
        engine._connection()
        .execute(sql, [f"{cutoff - timedelta(milliseconds=1):%Y-%m-%d}", f"{cutoff:%Y-%m-%d %H:%M:%S}"])
        .fetchone()
    )
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": row[0], "columns": len(columns)}


def work_build(args: argparse.Namespace, without: frozenset[str] = frozenset()) -> dict:
    from dataclasses import replace

    from playerguard.features.api import build_features
    from playerguard.features.spec import load_feature_set

    default = load_feature_set("default")
    fs = replace(default, definitions=tuple(d for d in default.definitions if d.kind not in without))
    engine = _engine(args)
    engine.column_types()  # open the connection and the view outside the timing, as the scan does
    started, cpu = time.perf_counter(), _cpu_seconds()
    frame = build_features(_settings(args.home), _cutoff(args), feature_set=fs, engine=engine)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "players": len(frame), "features": frame.shape[1] - 2}


def work_build_without_percentiles(args: argparse.Namespace) -> dict:
    """Where the time goes: the same build without the (exact, holistic) percentile features."""
    return work_build(args, frozenset({"percentile"}))


def work_profile(args: argparse.Namespace) -> dict:
    """The build once more with DuckDB's profiler: the most expensive operators."""
    from playerguard.features.engines import transpile_to_duckdb

    engine = _engine(args)
    query = _feature_query(args, engine)
    profile = Path(args.home) / "tmp" / "profile.json"
    con = engine._connection()
    con.execute("PRAGMA enable_profiling='json'")
    con.execute(f"PRAGMA profiling_output='{profile}'")
    con.execute(transpile_to_duckdb(query.sql), list(query.params)).fetchall()
    con.execute("PRAGMA disable_profiling")
    operators: list[tuple[float, str, int]] = []

    def walk(node: dict) -> None:
        name = node.get("operator_name") or node.get("operator_type") or ""
        if name:
            operators.append(
                (node.get("operator_timing", 0.0), name.strip(), node.get("operator_cardinality", 0))
            )
        for child in node.get("children", []):
            walk(child)

    walk(json.loads(profile.read_text()))
    operators.sort(reverse=True)
    return {"top_operators": [f"{t:7.2f}s  {n} ({rows:,} rows)" for t, n, rows in operators[:8]]}


def work_pandas(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    import pandas as pd
    from feature_oracle import oracle_features

    from playerguard.features.spec import load_feature_set
    from playerguard.lake.local import LocalLake

    fs = load_feature_set("default")
    columns = ["player_id", "event_type", "event_timestamp"] + sorted(
        set().union(*(d.attributes() for d in fs.definitions))
    )
    cutoff = _cutoff(args)
    started = time.perf_counter()
    events = pd.read_parquet(
        LocalLake(Path(args.home) / "lake").events_dir,
        columns=columns,
        filters=[("event_date", "<=", f"{cutoff - timedelta(milliseconds=1):%Y-%m-%d}")],
    )
    read = time.perf_counter() - started
    frame = oracle_features(events, fs, cutoff)
    return {"seconds": time.perf_counter() - started, "read_seconds": read, "players": len(frame)}


def work_training(args: argparse.Namespace) -> dict:
    from playerguard.features.api import build_training_set

    cutoffs = [_cutoff(args) - timedelta(days=7 * (args.cutoffs + 1 - i)) for i in range(args.cutoffs)]
    engine = _engine(args)
    engine.column_types()
    started = time.perf_counter()
    frame = build_training_set(
        _settings(args.home), cutoffs, horizon_days=7, strategy=args.strategy, engine=engine
    )
    return {"seconds": time.perf_counter() - started, "rows": len(frame), "cutoffs": len(cutoffs)}


WORK = {"scan": work_scan, "build": work_build, "pandas": work_pandas, "training": work_training,
        "profile": work_profile, "build_without_percentiles": work_build_without_percentiles,
        "idle": lambda args: {"seconds": 0.0}}  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak resident set. VmHWM belongs to the process image; ru_maxrss would also count
    the parent's resident set at fork time, which Linux carries across exec."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(args: argparse.Namespace) -> None:
    result = WORK[args.worker](args)
    result["max_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def spawn(args: argparse.Namespace, work: str, **extra: object) -> dict:
    command = [sys.executable, __file__, "--worker", work, "--home", args.home, "--days", str(args.days),
               "--memory-limit", args.memory_limit, "--threads", str(args.threads)]  # fmt: skip
    for key, value in extra.items():
        command += [f"--{key}", str(value)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=REPO).stdout
    return json.loads(output.strip().splitlines()[-1])


def ensure_lake(args: argparse.Namespace) -> int:
    """Simulate the lake once; later runs with the same parameters reuse it."""
    import pyarrow.dataset as ds

    from playerguard.lake.local import LocalLake
    from playerguard.simulator.game import simulate

    home = Path(args.home)
    marker = home / "bench-lake.json"
    wanted = {"players": args.players, "days": args.days, "seed": args.seed}
    lake = LocalLake(home / "lake")
    if marker.exists() and json.loads(marker.read_text()) == wanted and lake.has_events():
        return ds.dataset(lake.events_dir, format="parquet").count_rows()
    started = time.perf_counter()
    game = simulate(players=args.players, days=args.days, seed=args.seed, start=START)
    shutil.rmtree(lake.root, ignore_errors=True)  # a lake of other parameters is replaced, not appended to
    marker.unlink(missing_ok=True)
    lake.root.mkdir(parents=True, exist_ok=True)
    lake.append_table(game.events)
    marker.write_text(json.dumps(wanted))
    print(f"simulated and wrote {game.events.num_rows:,} events in {time.perf_counter() - started:.0f} s")
    return game.events.num_rows


def median_of(args: argparse.Namespace, work: str, repeats: int, **extra: object) -> tuple[float, list[dict]]:
    runs = [spawn(args, work, **extra) for _ in range(repeats)]
    return statistics.median(r["seconds"] for r in runs), runs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "playerguard-bench-features")
    )
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB memory_limit for the build")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pandas-repeats", type=int, default=1)
    parser.add_argument("--cutoffs", type=int, default=3, help="cutoffs in the training-set comparison")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--profile", action="store_true", help="print DuckDB's most expensive operators")
    parser.add_argument("--worker", choices=sorted(WORK), help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="per_cutoff", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return

    events = ensure_lake(args)
    print(f"lake: {events:,} events, {args.players:,} players, {args.days} days; cutoff {_cutoff(args):%Y-%m-%d}; "
          f"DuckDB threads={args.threads} memory_limit={args.memory_limit}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    idle = spawn(args, "idle")
    scan, scans = median_of(args, "scan", args.repeats)
    build, builds = median_of(args, "build", args.repeats)
    print(f"bare scan of the {scans[0]['columns']} columns the query reads ({scans[0]['rows']:,} rows): "
          f"median {scan:.2f} s  {[round(r['seconds'], 2) for r in scans]}")  # fmt: skip
    print(f"feature build ({builds[0]['players']:,} players x {builds[0]['features']} features): "
          f"median {build:.2f} s  {[round(r['seconds'], 2) for r in builds]}")  # fmt: skip
    build_cpu, scan_cpu = (statistics.median(r["cpu_seconds"] for r in runs) for runs in (builds, scans))
    print(f"  build / scan = {build / scan:.2f}x wall (goal <= 3x); CPU {build_cpu:.2f} s / {scan_cpu:.2f} s "
          f"= {build_cpu / scan_cpu:.2f}x; load average now {os.getloadavg()[0]:.1f}")  # fmt: skip
    peak = max(r["max_rss_mb"] for r in builds)
    print(
        f"  peak RSS of the build process: {peak:,.0f} MB (goal < 1024 MB; an idle worker: {idle['max_rss_mb']:,.0f} MB)"
    )
    if args.profile:
        for line in spawn(args, "profile")["top_operators"]:
            print(f"    {line}")
        partial, runs = median_of(args, "build_without_percentiles", args.repeats)
        print(
            f"  the build without its {builds[0]['features'] - runs[0]['features']} percentile features: "
            f"median {partial:.2f} s = {partial / scan:.2f}x the scan"
        )
    if not args.skip_pandas:
        pandas, runs = median_of(args, "pandas", args.pandas_repeats)
        print(f"pandas reference: median {pandas:.2f} s (reading {runs[0]['read_seconds']:.2f} s), "
              f"peak RSS {max(r['max_rss_mb'] for r in runs):,.0f} MB")  # fmt: skip
        print(f"  pandas / DuckDB build = {pandas / build:.2f}x faster (goal >= 5x)")
    if not args.skip_training:
        for strategy in ("per_cutoff", "one_query"):
            seconds, runs = median_of(args, "training", 1, strategy=strategy, cutoffs=args.cutoffs)
            print(f"training set, {args.cutoffs} weekly cutoffs, {strategy}: {seconds:.2f} s, {runs[0]['rows']:,} rows, "
                  f"peak RSS {runs[0]['max_rss_mb']:,.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
