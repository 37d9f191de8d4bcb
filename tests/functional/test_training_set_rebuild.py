"""Training data you can rebuild exactly: a training set records the lake version it read, and is built
again from it after new events arrived (an Iceberg snapshot by time travel; the native lake's recorded
files), or the rebuild says why it cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from playerguard.errors import DataError
from playerguard.features.api import build_training_set, rebuild_training_set
from playerguard.features.engines import DuckDBEngine
from playerguard.features.rebuild import recipe_of
from playerguard.features.sources import load_source_mapping
from playerguard.lake.iceberg import load_table
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate
from playerguard.simulator.gap_v3_layout import append_gap_v3_events, create_gap_v3_table

SEED, PLAYERS, DAYS = 11, 60, 30
CUTOFFS = [datetime(2026, 1, 8, tzinfo=UTC) + timedelta(days=7 * k) for k in range(2)]
GAP_V3 = load_source_mapping("gap-v3")


def newcomers() -> pa.Table:
    """Events ingested later: another game's players, over the same days (so the same partitions)."""
    return simulate(players=20, days=DAYS, seed=SEED + 1).events


def home(tmp_path: Path, players: int = PLAYERS) -> tuple[Settings, pa.Table]:
    settings = Settings(home=tmp_path / "home")
    game = simulate(players=players, days=DAYS, seed=SEED)
    settings.home.mkdir(parents=True)
    game.ground_truth.to_parquet(settings.ground_truth_path, index=False)
    return settings, game.events


def test_an_iceberg_training_set_is_rebuilt_from_its_snapshot_after_new_events(tmp_path: Path) -> None:
    settings, events = home(tmp_path)
    table = create_gap_v3_table(settings.lake_dir)
    append_gap_v3_events(table, events)
    original = build_training_set(
        settings, CUTOFFS, horizon_days=7, engine=DuckDBEngine(settings.lake_dir, source=GAP_V3)
    )
    recipe = recipe_of(original)
    assert recipe.lake.kind == "iceberg" and recipe.lake.snapshot_id == table.current_snapshot().snapshot_id

    append_gap_v3_events(load_table(settings.lake_dir, "gap", "raw_events"), newcomers())
    now = build_training_set(
        settings, CUTOFFS, horizon_days=7, engine=DuckDBEngine(settings.lake_dir, source=GAP_V3)
    )
    assert len(now) > len(original)  # the new events change today's training set ...
    again = rebuild_training_set(settings, recipe)
    pd.testing.assert_frame_equal(again, original)  # ... not the recorded one
    assert recipe_of(again) == recipe

    expired = recipe.lake.__class__("iceberg", recipe.lake.table, snapshot_id=12345)
    with pytest.raises(DataError, match="no longer has snapshot 12345"):
        rebuild_training_set(settings, recipe.__class__(**{**recipe.__dict__, "lake": expired}))


def test_a_native_training_set_is_rebuilt_from_its_files_or_refused_when_they_changed(tmp_path: Path) -> None:
    settings, events = home(tmp_path)
    lake = LocalLake(settings.lake_dir)
    lake.append_table(events)
    original = build_training_set(settings, CUTOFFS, horizon_days=7)
    recipe = recipe_of(original)
    assert recipe.lake.kind == "files" and len(recipe.lake.files) == len(lake.event_days())

    lake.append_table(newcomers())  # new files in the same day partitions
    assert len(build_training_set(settings, CUTOFFS, horizon_days=7)) > len(original)
    pd.testing.assert_frame_equal(rebuild_training_set(settings, recipe), original)

    first = settings.lake_dir / recipe.lake.files[0][0]
    first.unlink()
    with pytest.raises(DataError, match="changed without history.*1 of its .* files are gone"):
        rebuild_training_set(settings, recipe)


def test_a_changed_feature_set_or_labels_are_refused(tmp_path: Path) -> None:
    settings, events = home(tmp_path)
    LocalLake(settings.lake_dir).append_table(events)
    recipe = recipe_of(build_training_set(settings, CUTOFFS, horizon_days=7))
    with pytest.raises(DataError, match="changed since the training set was built"):
        rebuild_training_set(settings, recipe.__class__(**{**recipe.__dict__, "feature_set_hash": "0" * 64}))
    truth = pd.read_parquet(settings.ground_truth_path)
    truth.assign(is_inhuman=~truth["is_inhuman"].astype(bool)).to_parquet(
        settings.ground_truth_path, index=False
    )
    with pytest.raises(DataError, match="labels .* changed"):
        rebuild_training_set(settings, recipe)


def test_a_tracked_run_records_its_lake_version_and_the_command_rebuilds_it(tmp_path: Path) -> None:
    from playerguard.cli import _mount
    from playerguard.cli import app as cli
    from playerguard.training.rebuild import training_set_as_of_run
    from playerguard.training.train import train

    settings, events = home(tmp_path, players=200)  # enough for both churn classes
    table = create_gap_v3_table(settings.lake_dir)
    append_gap_v3_events(table, events)
    cutoffs = [datetime(2026, 1, 6, tzinfo=UTC) + timedelta(days=5 * k) for k in range(4)]
    original = build_training_set(
        settings, cutoffs, horizon_days=5, engine=DuckDBEngine(settings.lake_dir, source=GAP_V3)
    )
    fast = {"n_estimators": 20, "learning_rate": 0.3, "max_depth": 2, "early_stopping_rounds": 5, "n_jobs": 1}
    result = train(settings, original, models=["churn"], params={"churn": fast}, horizon_days=5)
    run_id = result.models["churn"].run_id
    assert run_id is not None, result.models["churn"].note
    append_gap_v3_events(load_table(settings.lake_dir, "gap", "raw_events"), newcomers())

    pd.testing.assert_frame_equal(training_set_as_of_run(settings, run_id), original)
    out = tmp_path / "again.parquet"
    args = ["features", "training-set", "--as-of-run", run_id, "--out", str(out), "--home", str(settings.home)]
    _mount()  # `features training-set` is mounted by the command line
    shown = CliRunner().invoke(cli, args)
    assert shown.exit_code == 0, shown.output
    assert f"snapshot {table.current_snapshot().snapshot_id}" in shown.output
    pd.testing.assert_frame_equal(pd.read_parquet(out), original)
    refused = CliRunner().invoke(cli, [*args, "--cutoffs", "2026-01-05"])
    assert refused.exit_code != 0


def test_a_v2_table_training_set_is_rebuilt_from_its_files(tmp_path: Path) -> None:
    import shutil

    from playerguard.simulator.gap_layout import GAP_TABLE, write_gap_table

    settings, events = home(tmp_path)
    write_gap_table(events, settings.lake_dir / GAP_TABLE)
    gap = load_source_mapping("gap")
    original = build_training_set(
        settings, CUTOFFS, horizon_days=7, engine=DuckDBEngine(settings.lake_dir, source=gap)
    )
    recipe = recipe_of(original)
    assert recipe.lake.kind == "files" and recipe.lake.table == "gap.raw_events"

    late = tmp_path / "late"
    write_gap_table(newcomers(), late)  # Firehose lands late files beside the partitions' first ones
    for path in late.rglob("*.parquet"):
        target = settings.lake_dir / GAP_TABLE / path.relative_to(late).parent / "part-late.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    now = build_training_set(
        settings, CUTOFFS, horizon_days=7, engine=DuckDBEngine(settings.lake_dir, source=gap)
    )
    assert len(now) > len(original)
    pd.testing.assert_frame_equal(rebuild_training_set(settings, recipe), original)
