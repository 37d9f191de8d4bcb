"""`playerguard demo`: the whole loop on the embedded local backends, from nothing.

simulate a game → lake → pipeline (features, train, evaluate, gate, register, bundle, drift) → online feature
snapshot → local endpoint → replay the last day of the stream → flags in the outbox → what was found, measured
against the simulator's ground truth.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from playerguard.errors import DataError
from playerguard.settings import Settings


@dataclass(frozen=True)
class FlagQuality:
    """Inhuman-play flags of a replay, measured against the simulator's truth."""

    flagged_players: int
    true_positives: int
    inhuman_active: int
    legit_active: int
    false_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.flagged_players if self.flagged_players else float("nan")

    @property
    def recall(self) -> float:
        return self.true_positives / self.inhuman_active if self.inhuman_active else float("nan")

    @property
    def false_positive_rate(self) -> float:
        return self.false_positives / self.legit_active if self.legit_active else float("nan")


def flag_quality(flags: pd.DataFrame, truth: pd.DataFrame, active_players: set[str]) -> FlagQuality:
    """Precision, recall and FPR of inhuman-play flags among the players who played in the replay."""
    flagged = set(flags.loc[flags["model"] == "inhuman_play", "player_id"])
    inhuman = set(truth.loc[truth["is_inhuman"].astype(bool), "player_id"])
    active_inhuman = inhuman & active_players
    legit_active = active_players - inhuman
    return FlagQuality(
        flagged_players=len(flagged),
        true_positives=len(flagged & inhuman),
        inhuman_active=len(active_inhuman),
        legit_active=len(legit_active),
        false_positives=len(flagged & legit_active),
    )


def flags_frame(home: Path) -> pd.DataFrame:
    """player_id, model and action of every flag in the outbox under `home`."""
    from playerguard.stream.notifiers.local import OutboxNotifier

    outbox = OutboxNotifier.from_home(home)
    try:
        entries = outbox.entries(limit=10_000_000)
    finally:
        outbox.close()
    return pd.DataFrame(
        [{"player_id": e.flag.player_id, "model": e.flag.model, "action": e.flag.action} for e in entries],
        columns=["player_id", "model", "action"],
    )


def _active_players(settings: Settings, day: date) -> set[str]:
    import duckdb

    from playerguard.lake.local import LocalLake

    lake = LocalLake.from_settings(settings)
    rows = duckdb.sql(
        "SELECT DISTINCT player_id FROM read_parquet(?, hive_partitioning = true, union_by_name = true, "
        "hive_types = {'event_date': VARCHAR}) WHERE event_date = ?",
        params=[lake.events_glob(), day.isoformat()],
    ).fetchall()
    return {row[0] for row in rows}


DEMO_MARKER = ".playerguard-demo"


def start_afresh(home: Path, *, owned: bool = False) -> None:
    """Empty `home` for a new demo run, and mark it as the demo's. Unless the directory is the demo's own
    (`owned`: the default `<PLAYERGUARD_HOME>/demo`), one that is neither new, empty nor marked by an earlier
    demo run is refused: it may hold someone's lake."""
    if not owned and home.exists() and any(home.iterdir()) and not (home / DEMO_MARKER).exists():
        raise DataError(
            f"{home} is not empty and was not made by the demo; give --home a new or empty directory"
        )
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / DEMO_MARKER).write_text("made by `playerguard demo`, which empties this directory on each run\n")


def run_demo(*, players: int, days: int, seed: int, home: Path | None = None) -> None:
    """Run the loop in `home` (default `<PLAYERGUARD_HOME>/demo`, so a real lake is never touched); a
    directory the demo made is emptied first, any other non-empty one refused."""
    from playerguard.features.api import build_features
    from playerguard.features.online.snapshot import materialize_snapshot
    from playerguard.pipelines.local_runner import run_pipeline
    from playerguard.simulator.writer import write_simulation
    from playerguard.stream.replay import replay

    console = Console(soft_wrap=True)  # paths are never broken across lines
    settings = Settings(home=home if home else Settings().home / "demo")
    start_afresh(settings.home, owned=home is None)
    with console.status(f"1/5 simulating {players:,} players over {days} days"):
        summary = write_simulation(settings, players=players, days=days, seed=seed, replace=True)
    console.print(f"[bold]1. lake[/bold]      {summary}")

    with console.status("2/5 pipeline: features → train → evaluate → gate → register → bundle → drift") as status:
        result = run_pipeline(settings, progress=lambda e: status.update(f"2/5 pipeline: {e.step} {e.status}"))
    steps = ", ".join(f"{s.name} {s.seconds or 0:.0f}s" for s in result.steps)
    console.print(f"[bold]2. pipeline[/bold]  {steps}")

    replay_day = date.fromisoformat(summary.last_day) - timedelta(days=1)
    snapshot_cutoff = datetime.combine(replay_day, datetime.min.time(), UTC)
    with console.status("3/5 materialising the online feature snapshot"):
        bundle_dir = result.step("bundle").output_dir
        features = build_features(settings, snapshot_cutoff)
        materialize_snapshot(settings, features)
    console.print(f"[bold]3. online[/bold]    snapshot of {len(features):,} players at {snapshot_cutoff:%Y-%m-%d}")

    with console.status(f"4/5 replaying the stream of {replay_day} through the local endpoint"):
        replayed = replay(settings, replay_day, replay_day, bundle=bundle_path(bundle_dir))
    console.print(f"[bold]4. stream[/bold]    {replayed}")

    flags = flags_frame(settings.home)
    truth = pd.read_parquet(settings.ground_truth_path)
    quality = flag_quality(flags, truth, _active_players(settings, replay_day))
    _print_findings(console, flags, quality, settings, result)


def bundle_path(bundle_step_dir: Path | None) -> Path | None:
    """The bundle directory the pipeline's bundle step wrote, if any."""
    if bundle_step_dir is None:
        return None
    manifests = sorted(bundle_step_dir.rglob("manifest.json"))
    return manifests[0].parent if manifests else None


def _print_findings(console: Console, flags: pd.DataFrame, quality: FlagQuality, settings: Settings, result) -> None:
    table = Table(title="5. flags by model and action", title_justify="left")
    for column in ("model", "action", "flags", "players"):
        table.add_column(column)
    grouped = flags.groupby(["model", "action"]).agg(flags=("player_id", "size"), players=("player_id", "nunique"))
    for (model, action), row in grouped.iterrows():
        table.add_row(model, action, f"{row['flags']:,}", f"{row['players']:,}")
    console.print(table)
    console.print(
        f"inhuman play against the simulator's truth, among players active that day: "
        f"precision {quality.precision:.1%} ({quality.true_positives}/{quality.flagged_players} flagged players), "
        f"recall {quality.recall:.1%} of {quality.inhuman_active} cheaters and bots, "
        f"false positive rate {quality.false_positive_rate:.2%} of {quality.legit_active} legitimate players"
    )
    reports = sorted(settings.home.rglob("report.html"))
    if reports:
        console.print(f"training report: {reports[-1]}")
    home = settings.home.resolve()
    console.print("\nevery command works on the demo's state with --home, or once for the shell with export:")
    console.print(f"  export PLAYERGUARD_HOME={home}")
    console.print("  playerguard flags list          # the review queue")
    console.print("  playerguard explain PLAYER_ID   # one player's scores, actions and reasons")
    console.print("  playerguard models list         # registered versions and their held-out metrics")
    console.print(f"  mlflow ui --backend-store-uri {settings.tracking_uri}")
