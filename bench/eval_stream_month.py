"""Stream quality over a simulated month of a game the models never saw.

    .venv/bin/python bench/eval_stream_month.py [--players 2000] [--train-seed 7] [--seed 8] [--days 30]

1. Train: simulate a game (`--train-seed`, 60 days) and run the local pipeline; its bundle is served.
2. Simulate another game (`--seed`): `--warmup` days of history, then `--days` days to replay.
3. Replay those days through the stream handler, the local scoring server and the outbox, three ways:
   `frozen` (the online snapshot built once, at the start of the replay), `daily` (rebuilt before each
   day from the events before it, `stream replay --refresh-snapshot`), and `daily, acting on events only`
   (the same, but inhuman-play actions are also taken for players without a snapshot, scored on the
   batch's events alone; the default withholds them).
4. Per archetype, the fraction of players active during the replay flagged for inhuman play, and the
   false positive rate among legitimate players; for all players, and split by whether the player had
   played before the replay started (a snapshot row from the first day) or arrived during it.

Ground truth is the simulator's archetype of each player; nothing here is fitted on the replayed game.
About three minutes on two cores at the default size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from playerguard.features.lake import LocalLake
from playerguard.features.simulation_io import write_simulation
from playerguard.inference.replay import refresh_snapshot, replay
from playerguard.pipelines.demo import bundle_path, flags_frame
from playerguard.pipelines.local_runner import run_pipeline
from playerguard.settings import Settings


def train_bundle(work: Path, players: int, seed: int) -> Path:
    settings = Settings(home=work / "train")
    write_simulation(settings, players=players, days=60, seed=seed, replace=True)
    bundle = bundle_path(run_pipeline(settings).step("bundle").output_dir)
    if bundle is None:
        raise SystemExit("the pipeline registered no bundle")
    return bundle


def first_seen(settings: Settings) -> pd.DataFrame:
    lake = LocalLake.from_settings(settings)
    rows = duckdb.sql(
        "SELECT player_id, min(event_timestamp) AS first_event FROM read_parquet(?, hive_partitioning = true, "
        "union_by_name = true) GROUP BY player_id",
        params=[lake.events_glob()],
    ).fetchall()
    return pd.DataFrame(rows, columns=["player_id", "first_event"])


def active_between(settings: Settings, start: date, end: date) -> set[str]:
    lake = LocalLake.from_settings(settings)
    rows = duckdb.sql(
        "SELECT DISTINCT player_id FROM read_parquet(?, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'event_date': VARCHAR}) WHERE event_date BETWEEN ? AND ?",
        params=[lake.events_glob(), start.isoformat(), end.isoformat()],
    ).fetchall()
    return {row[0] for row in rows}


def flag_table(settings: Settings, start: date, end: date) -> pd.DataFrame:
    """Per archetype and arrival (before / during the replay): players active in the replay, fraction
    flagged for inhuman play."""
    truth = pd.read_parquet(settings.ground_truth_path)
    flags = flags_frame(settings.home)
    flagged = set(flags.loc[flags["model"] == "inhuman_play", "player_id"])
    seen = first_seen(settings)
    replay_start = pd.Timestamp(datetime.combine(start, datetime.min.time(), UTC))
    arrived_during = set(seen.loc[pd.to_datetime(seen["first_event"], utc=True) >= replay_start, "player_id"])
    frame = truth[truth["player_id"].isin(active_between(settings, start, end))].assign(
        flagged=lambda t: t["player_id"].isin(flagged),
        arrival=lambda t: t["player_id"].isin(arrived_during).map({True: "during", False: "before"}),
    )
    return frame


def report(mode: str, frame: pd.DataFrame) -> None:
    def rate(part: pd.DataFrame) -> str:
        return f"{part['flagged'].mean():6.1%} of {len(part):5,}" if len(part) else "   n/a"

    print(f"\n{mode}: fraction of players active in the replay flagged for inhuman play")
    print(f"  {'archetype':<18} {'all':>16} {'played before':>16} {'arrived during':>16}")
    for archetype, part in frame.groupby("archetype"):
        cells = [rate(part)] + [rate(part[part["arrival"] == a]) for a in ("before", "during")]
        print(f"  {archetype:<18} " + " ".join(f"{c:>16}" for c in cells))
    for label, mask in (
        ("cheaters and bots", frame["is_inhuman"]),
        ("legitimate (FPR)", ~frame["is_inhuman"]),
    ):
        part = frame[mask.astype(bool)]
        cells = [rate(part)] + [rate(part[part["arrival"] == a]) for a in ("before", "during")]
        print(f"  {label:<18} " + " ".join(f"{c:>16}" for c in cells))
    flagged = frame[frame["flagged"]]
    if len(flagged):
        print(
            f"  precision {flagged['is_inhuman'].mean():.1%} ({int(flagged['is_inhuman'].sum())}/{len(flagged)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument("--train-seed", type=int, default=7)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=15, help="days of history before the replay")
    parser.add_argument("--days", type=int, default=30, help="days to replay")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--work", type=Path, default=None, help="working directory (default: a temporary one)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pg-month-") as scratch:
        work = args.work or Path(scratch)
        started = time.perf_counter()
        bundle = train_bundle(work, args.players, args.train_seed)
        print(f"trained on seed {args.train_seed} in {time.perf_counter() - started:.0f}s: {bundle}")
        modes = {
            "frozen": ((), False),
            "daily": ((), True),
            "daily, acting on events only": (("inhuman_play",), True),
        }
        for index, (mode, (act_without_snapshot, refresh_daily)) in enumerate(modes.items()):
            settings = Settings(home=work / f"game{index}")
            lake = write_simulation(
                settings, players=args.players, days=args.warmup + args.days + 1, seed=args.seed, replace=True
            )
            start = date.fromisoformat(lake.first_day) + timedelta(days=args.warmup)
            end = start + timedelta(days=args.days - 1)
            if not refresh_daily:
                refresh_snapshot(settings, start, bundle / "features.yaml")
            summary = replay(
                settings,
                start,
                end,
                batch_size=args.batch_size,
                bundle=bundle,
                refresh_daily=refresh_daily,
                act_without_snapshot=act_without_snapshot,
            )
            print(f"\n{mode} {start}..{end}: {summary}")
            report(mode, flag_table(settings, start, end))


if __name__ == "__main__":
    main()
