"""Ingest throughput: `playerguard ingest` of a generated CSV vs pyarrow's own CSV → Parquet conversion.

    .venv/bin/python bench/bench_ingest.py                # 5M rows, median of 3 runs
    .venv/bin/python bench/bench_ingest.py --rows 1000000 --runs 5
    .venv/bin/python bench/bench_ingest.py --profile      # also print where one ingest spends its time

Both sides are timed in the same run, alternating, on the same file in a temporary directory. The baseline
is `pyarrow.csv.read_csv` + `pyarrow.parquet.write_table` (typed by pyarrow's inference, no validation,
no partitioning, no ids); ingest also types and checks every value, derives content ids, partitions by
day, deduplicates against the lake and commits atomically. Goal: ingest within 3x of the baseline.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from playerguard.lake.ingest import ingest
from playerguard.settings import Settings

MAPPING = """\
columns:
  event_timestamp: event_time
constants:
  game_id: arena
"""


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A realistic telemetry export: sorted event times over 30 days, 50k players, no event_id."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-03-01T00:00:00", "us").astype(np.int64)
    micros = np.sort(start + rng.integers(0, 30 * 86_400 * 1_000_000, rows))
    pick = lambda options: pa.array(np.array(options)[rng.integers(0, len(options), rows)])
    table = pa.table(
        {
            "player_id": pc.binary_join_element_wise(
                "p", pa.array(rng.integers(0, 50_000, rows)).cast(pa.string()), ""
            ),
            "event_time": pc.strftime(pa.array(micros, pa.timestamp("us")), "%Y-%m-%dT%H:%M:%SZ"),
            "event_type": pick(["match_end", "purchase", "login", "shot", "kill", "level_up"]),
            "platform": pick(["pc", "ps5", "xbox", "switch"]),
            "score": pa.array(rng.integers(0, 5_000, rows)),
            "accuracy": pa.array(np.round(rng.random(rows), 4)),
            "amount": pa.array(np.round(rng.random(rows) * 20, 2)),
            "map_name": pick(["dust", "mirage", "inferno", "nuke", "ancient"]),
        }
    )
    pcsv.write_csv(table, path)


def pyarrow_baseline(csv_path: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds (all threads) of pyarrow's CSV → Parquet."""
    wall, cpu = time.perf_counter(), time.process_time()
    pq.write_table(pcsv.read_csv(csv_path), out)
    return time.perf_counter() - wall, time.process_time() - cpu


def playerguard_ingest(csv_path: Path, mapping: Path, home: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ingesting the file into an empty lake."""
    shutil.rmtree(home, ignore_errors=True)
    wall, cpu = time.perf_counter(), time.process_time()
    [result] = ingest(Settings(home=home), [csv_path], mapping)
    elapsed = time.perf_counter() - wall, time.process_time() - cpu
    if result.added != result.rows_read:
        raise SystemExit(f"ingest added {result.added} of {result.rows_read} rows: {result}")
    return elapsed


def peak_memory_of_ingest(csv_path: Path, mapping: Path, home: Path) -> float:
    """Peak resident memory (MB) of a fresh process ingesting the file (VmHWM, which exec resets)."""
    shutil.rmtree(home, ignore_errors=True)
    code = (
        "import sys, re; from pathlib import Path; from playerguard.lake.ingest import ingest; "
        "from playerguard.settings import Settings; "
        "ingest(Settings(home=Path(sys.argv[3])), [Path(sys.argv[1])], Path(sys.argv[2])); "
        "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"
    )
    args = [sys.executable, "-c", code, str(csv_path), str(mapping), str(home)]
    return int(subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a profile of one more ingest run")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory of an ingest process")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        work = Path(tmp)
        csv_path, mapping = work / "events.csv", work / "mapping.yaml"
        mapping.write_text(MAPPING)
        write_csv(csv_path, args.rows)
        print(f"{args.rows:,} rows, {csv_path.stat().st_size / 1e6:,.0f} MB CSV")
        baseline, ours = [], []
        for run in range(args.runs):
            if run % 2 == 0:
                baseline.append(pyarrow_baseline(csv_path, work / "baseline.parquet"))
                ours.append(playerguard_ingest(csv_path, mapping, work / "home"))
            else:
                ours.append(playerguard_ingest(csv_path, mapping, work / "home"))
                baseline.append(pyarrow_baseline(csv_path, work / "baseline.parquet"))
            print(
                f"run {run + 1}: pyarrow {baseline[-1][0]:.2f} s (cpu {baseline[-1][1]:.2f} s), "
                f"playerguard ingest {ours[-1][0]:.2f} s (cpu {ours[-1][1]:.2f} s)"
            )
        base, mine = (statistics.median(w for w, _ in runs) for runs in (baseline, ours))
        base_cpu, mine_cpu = (statistics.median(c for _, c in runs) for runs in (baseline, ours))
        print(
            f"pyarrow CSV→Parquet : {args.rows / base:>12,.0f} rows/s (median {base:.2f} s, cpu {base_cpu:.2f} s)"
        )
        print(
            f"playerguard ingest  : {args.rows / mine:>12,.0f} rows/s (median {mine:.2f} s, cpu {mine_cpu:.2f} s)"
        )
        print(
            f"ratio (ingest / pyarrow): wall {mine / base:.2f}x, cpu {mine_cpu / base_cpu:.2f}x  (goal: within 3x)"
        )
        if args.memory:
            peak = peak_memory_of_ingest(csv_path, mapping, work / "home")
            print(
                f"peak memory of an ingest process: {peak:,.0f} MB (CSV {csv_path.stat().st_size / 1e6:,.0f} MB)"
            )
        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(playerguard_ingest, csv_path, mapping, work / "home")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
