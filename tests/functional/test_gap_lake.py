"""Bring your own lake: a simulated game in the Game Analytics Pipeline layout, read through the packaged
mapping with DuckDB, gives the native lake's features, training sets, models and scores; failing rows are
counted; results are written back as tables DuckDB queries."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from playerguard.errors import ConfigError, DataError
from playerguard.features.api import build_features, build_training_set
from playerguard.features.catalogs import LocalCatalog
from playerguard.features.engines import DuckDBEngine
from playerguard.features.source_check import check_source
from playerguard.features.source_commands import source_app
from playerguard.features.sources import load_source_mapping
from playerguard.features.spec import load_feature_set
from playerguard.inference.bundle import ModelSource, load_bundle, write_bundle
from playerguard.inference.results_store import LocalResults
from playerguard.inference.scoring import score_frame, scores_table
from playerguard.inference.writeback import write_results
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate
from playerguard.simulator.gap_layout import FAULT_KINDS, GAP_TABLE, write_gap_simulation, write_gap_table
from playerguard.training.train import train

SEED, PLAYERS, DAYS, FAULTS = 5, 80, 30, 8
CUTOFF = datetime(2026, 1, 29, 6, tzinfo=UTC)
TRAINING_CUTOFFS = [datetime(2026, 1, 8, tzinfo=UTC) + timedelta(days=7 * k) for k in range(3)]
FAST = {"n_estimators": 40, "learning_rate": 0.2, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}
PARAMS = {"churn": FAST, "purchase": FAST, "inhuman_play": {"n_estimators": 20, "cv_folds": 2, "n_jobs": 1}}
GAP = load_source_mapping("gap")
# times to the cutoff: a GAP v2 table holds whole seconds
TIMING = [d.name for d in load_feature_set("default").definitions if d.kind in ("recency", "tenure")]


def whole_seconds(events: pa.Table) -> pa.Table:
    """The events with timestamps floored to the second: what GAP's epoch-seconds column can carry."""
    micros = pc.cast(events.column("event_timestamp"), pa.int64())
    floored = pc.multiply(pc.divide(micros, 1_000_000), 1_000_000).cast(events.schema.field(2).type)
    return events.set_column(2, "event_timestamp", floored)


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One simulated game as three lakes: native, native with whole-second times, and GAP (with faults)."""
    root = tmp_path_factory.mktemp("byol")
    game = simulate(players=PLAYERS, days=DAYS, seed=SEED)
    LocalLake(root / "native").append_table(game.events)
    LocalLake(root / "seconds").append_table(whole_seconds(game.events))
    settings = Settings(home=root / "home")
    write_gap_table(game.events, settings.lake_dir / GAP_TABLE, faults=FAULTS)
    game.ground_truth.to_parquet(settings.ground_truth_path, index=False)
    return {"root": root, "settings": settings}


def engine(lakes: dict, name: str) -> DuckDBEngine:
    if name == "gap":  # the GAP table sits in the settings' lake directory, at <lake>/raw_events/
        return DuckDBEngine(lakes["settings"].lake_dir, source=GAP)
    return DuckDBEngine(lakes["root"] / name)


def test_features_through_the_mapping_equal_the_native_lakes(lakes: dict) -> None:
    settings = lakes["settings"]
    gap = build_features(settings, CUTOFF, engine=engine(lakes, "gap"))
    seconds = build_features(settings, CUTOFF, engine=engine(lakes, "seconds"))
    native = build_features(settings, CUTOFF, engine=engine(lakes, "native"))
    assert len(gap) > 60
    pd.testing.assert_frame_equal(gap, seconds, rtol=1e-9)
    # Against the exact times: every count, sum, ratio and percentile agrees; times differ by < 1 second.
    exact = [c for c in native.columns if c not in TIMING and "gap_cv" not in c]
    pd.testing.assert_frame_equal(gap[exact], native[exact], rtol=1e-9)
    assert float((gap[TIMING] - native[TIMING]).abs().max().max()) < 1 / 86400


def test_training_scoring_and_write_back_give_the_native_figures(lakes: dict, tmp_path: Path) -> None:
    settings = lakes["settings"]
    sets = {
        name: build_training_set(settings, TRAINING_CUTOFFS, horizon_days=7, engine=engine(lakes, name))
        for name in ("gap", "seconds")
    }
    pd.testing.assert_frame_equal(sets["gap"], sets["seconds"], rtol=1e-9)
    results = {
        name: train(settings, frame, track=False, params=PARAMS, horizon_days=7, output_dir=tmp_path / name)
        for name, frame in sets.items()
    }
    assert results["gap"].trained == results["seconds"].trained == ["inhuman_play", "churn", "purchase"]
    for model in results["gap"].trained:
        assert results["gap"].models[model].metrics == pytest.approx(results["seconds"].models[model].metrics)
    # The default set carries BG/NBD's inputs: the candidates side by side, or why one is missing (six buyers).
    churn, purchase = (results["gap"].models[model] for model in ("churn", "purchase"))
    assert set(churn.candidate_metrics) == {"xgboost", "logistic_baseline", "btyd"} and churn.choice
    assert "| metric | model | logistic baseline | BG/NBD |" in (churn.report_path.parent / "report.md").read_text()
    assert set(purchase.candidate_metrics) == {"xgboost", "logistic_baseline"}
    assert "BG/NBD not trained: BG/NBD needs the histories of at least 10 players, got 6" in (
        purchase.report_path.parent / "report.md"
    ).read_text()

    trained = results["gap"]
    sources = [ModelSource(name, trained.models[name].model_dir) for name in trained.trained]
    bundle = load_bundle(write_bundle(tmp_path / "bundle", sources, feature_set="default"))
    tables = {}
    for name in ("gap", "seconds"):
        features = build_features(
            settings, CUTOFF, feature_set=bundle.feature_set, engine=engine(lakes, name)
        )
        tables[name] = scores_table(score_frame(bundle, features)).assign(cutoff=features["cutoff"])
    scores = [f"{model}_score" for model in trained.trained]
    pd.testing.assert_frame_equal(tables["gap"][scores], tables["seconds"][scores], rtol=1e-9)
    decided = {name: table["actions"].map(lambda text: [(a["model"], a["action"]) for a in json.loads(text)])
               for name, table in tables.items()}  # fmt: skip
    assert decided["gap"].tolist() == decided["seconds"].tolist()

    written = write_results(settings, tables["gap"])
    again = write_results(settings, tables["gap"])  # the same cutoff again replaces, never adds
    actions = int(decided["gap"].map(len).sum())
    assert (again.scores, again.flags) == (written.scores, written.flags) == (len(tables["gap"]), actions)
    con = LocalResults(settings.lake_dir).connect()
    rows = con.execute(
        "SELECT cutoff_date, count(*), count(DISTINCT player_id), avg(churn_score) "
        "FROM player_scores GROUP BY 1"
    ).fetchall()
    assert rows == [
        (
            "2026-01-29",
            len(tables["gap"]),
            len(tables["gap"]),
            pytest.approx(tables["gap"]["churn_score"].mean()),
        )
    ]
    flags = con.execute("SELECT count(*), count(DISTINCT flag_id) FROM player_flags").fetchone()
    assert flags == (actions, actions) and actions > 0


def test_failing_rows_are_counted_in_the_feature_build_log(
    lakes: dict, caplog: pytest.LogCaptureFixture
) -> None:
    gap = engine(lakes, "gap")
    with caplog.at_level(logging.WARNING, logger="playerguard.features.source_binding"):
        build_features(lakes["settings"], datetime(2026, 2, 10, tzinfo=UTC), engine=gap)
    (failures,) = gap.source.failures.values()  # one range: all history before the cutoff
    assert failures.failed == FAULTS and failures.reasons == {
        kind: FAULTS // len(FAULT_KINDS) for kind in FAULT_KINDS
    }
    assert f"{FAULTS} of {failures.rows:,} rows fail the mapping" in caplog.text


def test_source_check_reports_partitions_failures_a_sample_and_attributes(lakes: dict) -> None:
    report = check_source(lakes["settings"], GAP, days=None)
    assert report.ok and not report.warnings
    assert (report.partitions, report.first_partition) == (DAYS + 1, "2026-01-01")  # play runs past midnight
    assert report.failures.reasons == {kind: FAULTS // len(FAULT_KINDS) for kind in FAULT_KINDS}
    assert report.failures.rows == report.failures.failed + len(simulate(PLAYERS, DAYS, SEED).events)
    assert len(report.sample) == 5 and report.sample["player_id"].str.startswith(f"sim-{SEED}-p").all()
    assert report.attribute_rows["kills"] > 0 and report.attribute_rows["amount"] > 0
    recent = check_source(lakes["settings"], GAP, days=7)
    assert recent.checked == ("2026-01-25", "2026-01-31") and recent.failures.rows < report.failures.rows


def test_source_check_names_a_misspelt_field_and_a_missing_column(lakes: dict) -> None:
    attributes = GAP.attributes | {
        "kills": GAP.attributes["kills"].model_copy(update={"json_path": "kils"}),
        "map": GAP.attributes["map"].model_copy(update={"type": "number"}),
    }
    report = check_source(lakes["settings"], GAP.model_copy(update={"attributes": attributes}), days=3)
    assert report.ok and report.warnings[0] == "attributes never present (a misspelt field?): kills"
    maps = report.attribute_rows["map"]
    assert maps > 0 and report.warnings[1].endswith(f"not numbers (read as missing): map ({maps:,})")
    wrong_column = GAP.model_copy(
        update={
            "envelope": GAP.envelope
            | {"game_id": GAP.envelope["event_id"].model_copy(update={"column": "app_id"})}
        }
    )
    report = check_source(lakes["settings"], wrong_column)
    assert not report.ok and report.problems[0].startswith("the table has no column app_id")
    missing = check_source(Settings(home=lakes["root"] / "elsewhere"), GAP)
    assert missing.problems == ["table gap.raw_events not found"]


class PlusOnePartition(LocalCatalog):
    """The local catalog, with a partition written without zero padding."""

    def partitions(self) -> list[tuple[str, ...]]:
        return [*super().partitions(), ("2026", "1", "5")]


def test_source_check_warns_of_unpadded_partitions_and_events_far_from_theirs(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    write_gap_simulation(settings, players=10, days=6, seed=3)
    table = settings.lake_dir / GAP_TABLE
    late = table / "year=2026" / "month=01" / "day=05"
    late.mkdir(parents=True, exist_ok=True)
    shutil.copy(
        table / "year=2026" / "month=01" / "day=02" / "part-00000.parquet", late / "part-late.parquet"
    )
    moved = pq.read_metadata(late / "part-late.parquet").num_rows
    report = check_source(settings, GAP, days=None, catalog=PlusOnePartition(GAP, settings.lake_dir))
    assert report.ok
    unpadded, far = report.warnings
    assert unpadded.startswith("1 partition(s) not zero-padded like 2026-01-05 (e.g. 2026-1-5)")
    assert far.startswith(f"{moved:,} rows sit more than 1 day(s) from their event date's partition")


def test_the_source_check_command_prints_the_report(lakes: dict) -> None:
    result = CliRunner().invoke(
        source_app, ["check", "--mapping", "gap", "--all", "--home", str(lakes["settings"].home)]
    )
    assert result.exit_code == 0, result.output
    assert f"{FAULTS} of " in result.output and "missing player_id: 2" in result.output
    assert "sample:" in result.output and result.output.splitlines()[3] == "ok"


def test_a_gap_simulation_refuses_to_mix_games_and_replaces_on_request(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    summary = write_gap_simulation(settings, players=5, days=2, seed=1, faults=4)
    assert summary.faults == 4 and (settings.lake_dir / GAP_TABLE / "year=2026").is_dir()
    assert settings.ground_truth_path.exists()
    with pytest.raises(DataError, match="--replace"):
        write_gap_simulation(settings, players=5, days=2, seed=2)
    write_gap_simulation(settings, players=5, days=2, seed=2, replace=True)
    files = sorted(p.name for p in (settings.lake_dir / GAP_TABLE).rglob("*.parquet"))
    assert "part-faults.parquet" not in files
    with pytest.raises(ConfigError, match="local lake"):
        write_gap_simulation(Settings(home=tmp_path / "aws", backend="aws"), players=5, days=2, seed=1)


def test_local_write_back_replaces_one_cutoff_and_keeps_the_others(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    ban = {
        "model": "inhuman_play",
        "action": "account_action",
        "score": 0.95,
        "threshold": 0.9,
        "severity": "high",
    }
    offer = {
        "model": "purchase",
        "action": "purchase_offer",
        "score": 0.7,
        "threshold": 0.5,
        "severity": "low",
    }
    scores = pd.DataFrame(
        {
            "player_id": ["a", "b"],
            "inhuman_play_score": [0.95, 0.1],
            "churn_score": [0.2, np.nan],
            "purchase_score": [0.1, 0.7],
            "actions": [json.dumps([ban]), json.dumps([offer])],
            "reasons": ['{"inhuman_play": [{"feature": "accuracy_28d"}]}', "{}"],
            "model_versions": ['{"inhuman_play": "3", "purchase": "1"}'] * 2,
        }
    )
    first, second = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 8, tzinfo=UTC)
    write_results(settings, scores, cutoff=first)
    write_results(settings, scores.iloc[:1], cutoff=second)
    write_results(settings, scores.iloc[1:].assign(actions="[]"), cutoff=second)  # rescored: no flags now
    con = LocalResults(settings.lake_dir).connect()
    counts = con.execute("SELECT cutoff_date, count(*) FROM player_scores GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == [("2026-02-01", 2), ("2026-02-08", 1)]
    flags = con.execute(
        "SELECT cutoff_date, player_id, model, action, reasons FROM player_flags ORDER BY 2"
    ).fetchall()
    assert flags == [
        ("2026-02-01", "a", "inhuman_play", "account_action", '[{"feature": "accuracy_28d"}]'),
        ("2026-02-01", "b", "purchase", "purchase_offer", "[]"),
    ]
    with pytest.raises(DataError, match="2 cutoffs"):
        write_results(settings, scores.assign(cutoff=[first, second]))
    with pytest.raises(DataError, match="made at 2026-02-01T00:00:00"):
        write_results(settings, scores.assign(cutoff=first), cutoff=second)


def test_flags_carry_their_value_at_risk_and_older_partitions_still_read(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    offer = {"model": "churn", "action": "retention_offer", "score": 0.8, "threshold": 0.6, "severity": "low",
             "value_at_risk": 3.5}  # fmt: skip
    review = {"model": "inhuman_play", "action": "review", "score": 0.7, "threshold": 0.5, "severity": "medium"}
    scores = pd.DataFrame(
        {
            "player_id": ["a", "b"],
            "inhuman_play_score": [0.1, 0.7],
            "churn_score": [0.8, 0.1],
            "purchase_score": [np.nan, np.nan],
            "actions": [json.dumps([offer]), json.dumps([review])],
            "reasons": ["{}", "{}"],
            "model_versions": ['{"churn": "2", "inhuman_play": "3"}'] * 2,
        }
    )
    write_results(settings, scores, cutoff=datetime(2026, 2, 8, tzinfo=UTC))
    store = LocalResults(settings.lake_dir)
    older = pd.read_parquet(next(store.table_dir("player_flags").glob("*/*.parquet"))).drop(columns="value_at_risk")
    (store.table_dir("player_flags") / "cutoff_date=2026-02-01").mkdir()  # written before the column existed
    older.assign(player_id="old").to_parquet(store.table_dir("player_flags") / "cutoff_date=2026-02-01" / "part-0.parquet")
    rows = store.connect().execute(
        "SELECT cutoff_date, player_id, action, value_at_risk FROM player_flags ORDER BY 1, 3"
    ).fetchall()
    assert rows == [
        ("2026-02-01", "old", "retention_offer", None),
        ("2026-02-01", "old", "review", None),
        ("2026-02-08", "a", "retention_offer", 3.5),
        ("2026-02-08", "b", "review", None),
    ]
