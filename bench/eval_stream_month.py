"""Stream quality over a simulated month of a game the models never saw.

    .venv/bin/python bench/eval_stream_month.py [--players 2000] [--train-seed 7] [--seed 8] [--days 30]

1. Train: simulate a game (`--train-seed`, 60 days) and run the local pipeline; its bundle is served.
2. Simulate another game (`--seed`): `--warmup` days of history, then `--days` days to replay.
3. Replay those days through the stream handler, the local scoring server and the outbox, four ways:
   `frozen` (the online snapshot built once, at the start of the replay), `daily` (rebuilt before each
   day from the events before it, `stream replay --refresh-snapshot`), `every 6 hours` (`--refresh-every
   6h`), and `daily, acting on events only` (inhuman-play actions also taken for players without a
   snapshot, scored on the batch's events alone; the default withholds them).
4. Per archetype, the fraction of players active during the replay flagged for inhuman play, and the
   false positive rate among legitimate players; for all players, and split by whether the player had
   played before the replay started (a snapshot row from the first day) or arrived during it; and for the
   cheaters and bots caught, the hours from their first event in the replay to their first flag.

Ground truth is the simulator's archetype of each player; nothing here is fitted on the replayed game.
About five minutes on two cores at the default size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from playerguard.lake.local import LocalLake
from playerguard.pipelines.demo import bundle_path
from playerguard.pipelines.local_runner import run_pipeline
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.stream.notifiers.local import OutboxNotifier
from playerguard.stream.replay import refresh_snapshot, replay


def train_bundle(work: Path, players: int, seed: int) -> Path:
    settings = Settings(home=work / "train")
    write_simulation(settings, players=players, days=60, seed=seed, replace=True)
    bundle = bundle_path(run_pipeline(settings).step("bundle").output_dir)
    if bundle is None:
        raise SystemExit("the pipeline registered no bundle")
    return bundle


def first_events(settings: Settings, replay_start: datetime) -> pd.DataFrame:
    """Per player: the first event in the lake, and the first at or after `replay_start`."""
    lake = LocalLake.from_settings(settings)
    rows = duckdb.sql(
        "SELECT player_id, min(event_timestamp), min(event_timestamp) FILTER (WHERE event_timestamp >= ?) "
        "FROM read_parquet(?, hive_partitioning = true, union_by_name = true) GROUP BY player_id",
        params=[replay_start, lake.events_glob()],
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["player_id", "first_event", "first_in_replay"]).set_index("player_id")
    return frame.apply(lambda column: pd.to_datetime(column, utc=True))


def active_between(settings: Settings, start: date, end: date) -> set[str]:
    lake = LocalLake.from_settings(settings)
    rows = duckdb.sql(
        "SELECT DISTINCT player_id FROM read_parquet(?, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'event_date': VARCHAR}) WHERE event_date BETWEEN ? AND ?",
        params=[lake.events_glob(), start.isoformat(), end.isoformat()],
    ).fetchall()
    return {row[0] for row in rows}


def first_inhuman_flags(settings: Settings) -> pd.Series:
    """Per flagged player, the event time of its first inhuman-play flag."""
    outbox = OutboxNotifier.from_home(settings.home)
    try:
        entries = outbox.entries(model="inhuman_play", limit=10_000_000)
    finally:
        outbox.close()
    stamps = pd.DataFrame(
        [(e.flag.player_id, e.flag.event_timestamp) for e in entries], columns=["player_id", "flagged_at"]
    )
    return pd.to_datetime(stamps.set_index("player_id")["flagged_at"], utc=True).groupby(level=0).min()


def flag_table(settings: Settings, start: date, end: date) -> pd.DataFrame:
    """Per player active in the replay: archetype, arrival (before / during the replay), whether it was
    flagged for inhuman play, and the hours from its first event in the replay to its first such flag."""
    truth = pd.read_parquet(settings.ground_truth_path)
    replay_start = datetime.combine(start, datetime.min.time(), UTC)
    seen = first_events(settings, replay_start)
    flagged_at = first_inhuman_flags(settings)
    frame = truth[truth["player_id"].isin(active_between(settings, start, end))].copy()
    first_event = frame["player_id"].map(seen["first_event"])
    frame["arrival"] = (first_event >= pd.Timestamp(replay_start)).map({True: "during", False: "before"})
    frame["flagged"] = frame["player_id"].isin(flagged_at.index)
    delay = frame["player_id"].map(flagged_at) - frame["player_id"].map(seen["first_in_replay"])
    frame["hours_to_flag"] = delay.dt.total_seconds() / 3600
    return frame


ARRIVALS = {"before": "had played before the replay", "during": "arrived during it"}


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
    caught = frame[frame["flagged"] & frame["is_inhuman"].astype(bool)]
    for arrival, part in caught.groupby("arrival"):
        hours = part["hours_to_flag"]
        print(
            f"  hours from first event in the replay to first flag, cheaters and bots who {ARRIVALS[arrival]}: "
            f"median {hours.median():.1f}, p90 {hours.quantile(0.9):.1f} (n={len(part)})"
        )
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
        day, six_hours = timedelta(days=1), timedelta(hours=6)
        modes = {
            "frozen": ((), None),
            "daily": ((), day),
            "every 6 hours": ((), six_hours),
            "daily, acting on events only": (("inhuman_play",), day),
        }
        for index, (mode, (act_without_snapshot, refresh_every)) in enumerate(modes.items()):
            settings = Settings(home=work / f"game{index}")
            lake = write_simulation(
                settings, players=args.players, days=args.warmup + args.days + 1, seed=args.seed, replace=True
            )
            start = date.fromisoformat(lake.first_day) + timedelta(days=args.warmup)
            end = start + timedelta(days=args.days - 1)
            if refresh_every is None:
                refresh_snapshot(settings, start, bundle / "features.yaml")
            summary = replay(
                settings,
                start,
                end,
                batch_size=args.batch_size,
                bundle=bundle,
                refresh_every=refresh_every,
                act_without_snapshot=act_without_snapshot,
            )
            print(f"\n{mode} {start}..{end}: {summary}")
            report(mode, flag_table(settings, start, end))


if __name__ == "__main__":
    main()
