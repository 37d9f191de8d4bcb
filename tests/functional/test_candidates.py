"""Which model a run puts forward, and the gate, on a real MLflow store: the logistic baseline ships when
XGBoost loses to it; inhuman play is held to the ROC-AUC floor and gated on PR-AUC over the rows it can
judge, not on its baseline."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from mlflow_template import mlflow_template_db, seed_mlflow_store  # noqa: F401
from scipy.special import expit

from playerguard.errors import DataError
from playerguard.inference.bundle import build_bundle, load_bundle
from playerguard.inference.scoring import score_frame
from playerguard.settings import Settings
from playerguard.training.base import load_model
from playerguard.training.logistic import LogisticChurnModel
from playerguard.training.metrics import pr_auc, roc_auc
from playerguard.training.train import TrainResult, train

DEFAULT_FEATURES = Path(__file__).resolve().parents[2] / "playerguard" / "features" / "definitions" / "default.yaml"
STRONG = {"n_estimators": 40, "learning_rate": 0.2, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}
STUMP = {"n_estimators": 1, "max_depth": 1, "learning_rate": 0.5, "n_jobs": 1}  # one split: loses to the baseline

from playerguard.training.inhuman_play import DEFAULT_MIN_EVIDENCE


@dataclass(frozen=True)
class FeatureSetFile:
    name: str
    hash: str
    path: Path


def churn_set(players: int = 500, seed: int = 0) -> pd.DataFrame:
    """Churn falls with sessions (the baseline sees that) and peaks for mid-length sessions (it cannot)."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(3):
        sessions = rng.poisson(3, players).astype(float)
        seconds = rng.uniform(0, 3600, players)
        churned = rng.random(players) < expit(0.5 + 2.5 * (np.abs(seconds - 1800) < 600) - 0.8 * sessions)
        frames.append(
            pd.DataFrame(
                {
                    "player_id": [f"p{i}" for i in range(players)],
                    "cutoff": pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(days=7 * k),
                    "sessions_7d": sessions,
                    "session_seconds_mean_28d": seconds,
                    "label_churn": pd.array(churned.astype(int), dtype="Int8"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def inhuman_set(players: int = 400, seed: int = 1) -> pd.DataFrame:
    """Cheaters show only in kills per match, which the unsupervised detector does not watch; a tenth of the
    players (cheaters included) played no match in the window, so there is nothing to judge them on."""
    rng = np.random.default_rng(seed)
    cheater = rng.random(players) < 0.15
    frames = []
    for k in range(3):
        idle = rng.random(players) < 0.1
        frames.append(
            pd.DataFrame(
                {
                    "player_id": [f"p{i}" for i in range(players)],
                    "cutoff": pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(days=7 * k),
                    "matches_28d": np.where(idle, 0.0, rng.poisson(12, players) + 1.0),
                    "accuracy_28d": rng.beta(5, 10, players),
                    "kills_per_match_28d": rng.normal(5, 1, players) + 4 * cheater,
                    "label_inhuman_play": pd.array(cheater.astype(int), dtype="Int8"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def feature_set(tmp_path_factory: pytest.TempPathFactory) -> FeatureSetFile:
    path = tmp_path_factory.mktemp("features") / "features.yaml"
    path.write_text(DEFAULT_FEATURES.read_text().replace("name: default", "name: test", 1))
    return FeatureSetFile("test", "c" * 64, path)


@pytest.fixture(scope="module")
def churn_runs(
    tmp_path_factory: pytest.TempPathFactory, mlflow_template_db: Path, feature_set: FeatureSetFile  # noqa: F811
) -> tuple[Settings, pd.DataFrame, list[TrainResult]]:
    settings = seed_mlflow_store(Settings(home=tmp_path_factory.mktemp("churn") / "home"), mlflow_template_db)
    frame = churn_set()
    runs = [
        train(settings, frame, models=("churn",), feature_set=feature_set, params={"churn": params})
        for params in (STUMP, STRONG, STUMP)
    ]
    return settings, frame, runs


def test_a_losing_xgboost_is_replaced_by_its_logistic_baseline_which_becomes_champion(churn_runs: tuple) -> None:
    settings, frame, runs = churn_runs
    first = runs[0].models["churn"]
    assert first.kind == "logistic_baseline"
    assert first.candidate_metrics["xgboost"]["roc_auc"] < first.candidate_metrics["logistic_baseline"]["roc_auc"]
    assert first.metrics == first.candidate_metrics["logistic_baseline"]
    assert first.gate.promote and first.gate.kind == "logistic_baseline"
    assert "no champion yet" in first.gate.reason
    assert "the logistic baseline is the candidate: XGBoost's test roc_auc" in first.gate.reason
    assert "is below the baseline's" in first.gate.reason

    client = MlflowClient(settings.tracking_uri)
    version = client.get_model_version("playerguard-churn", first.registered_version)
    assert version.tags["model.kind"] == "logistic_baseline"
    assert version.tags["playerguard.gate.decision"] == "promoted"
    # Saved as JSON only, and it reproduces its held-out metric on its own.
    assert sorted(p.name for p in first.model_dir.iterdir()) == ["feature_set.yaml", "model.json"]
    model = load_model("churn", first.model_dir)
    assert isinstance(model, LogisticChurnModel)
    test_rows = frame.loc[frame["cutoff"] == frame["cutoff"].max()]
    scores = model.predict_score(test_rows)
    assert first.metrics["roc_auc"] == pytest.approx(roc_auc(test_rows["label_churn"].to_numpy(int), scores))
    assert ((scores > 0) & (scores < 1)).all()
    reasons = model.explain(test_rows.head(5), top_k=1)
    assert all(r[0]["name"] == "sessions_7d" and r[0]["kind"] == "feature" for r in reasons)


def test_xgboost_must_beat_the_logistic_champion_and_a_baseline_must_beat_an_xgboost_one(
    churn_runs: tuple,
) -> None:
    settings, _, runs = churn_runs
    second, third = runs[1].models["churn"], runs[2].models["churn"]
    assert second.kind == "xgboost" and second.gate.promote
    assert second.champion_version == "1" and "beats champion v1" in second.gate.reason
    assert "XGBoost is the candidate" in second.gate.reason
    # Same test rows: the logistic champion scores exactly what the logistic candidate of run 1 scored.
    assert second.champion_metrics["roc_auc"] == pytest.approx(runs[0].models["churn"].metrics["roc_auc"])

    assert third.kind == "logistic_baseline" and not third.gate.promote
    assert "does not beat champion v2" in third.gate.reason
    assert "the logistic baseline is the candidate" in third.gate.reason
    client = MlflowClient(settings.tracking_uri)
    assert client.get_model_version("playerguard-churn", "2").tags["model.kind"] == "xgboost"
    assert client.get_model_version("playerguard-churn", "3").tags["playerguard.gate.decision"] == "rejected"
    assert "the logistic baseline is the candidate" in third.report_path.read_text()


def test_bundles_load_either_kind_by_the_class_their_manifest_records(
    churn_runs: tuple, feature_set: FeatureSetFile, tmp_path: Path
) -> None:
    from playerguard.training.tracking import promote

    settings, frame, _ = churn_runs
    rows = frame.loc[frame["cutoff"] == frame["cutoff"].max()].head(30)
    expected_class = {
        "1": "playerguard.training.logistic:LogisticChurnModel",
        "2": "playerguard.training.propensity:ChurnModel",
    }
    try:
        for version, class_path in expected_class.items():
            promote(settings, "churn", version)
            directory = build_bundle(settings, tmp_path / f"bundle-{version}", feature_set=feature_set)
            manifest = json.loads((directory / "manifest.json").read_text())
            assert manifest["models"]["churn"]["class"] == class_path
            bundle = load_bundle(directory)
            results = score_frame(bundle, rows, reasons="all")
            assert all(r["model_versions"] == {"churn": version} for r in results)
            assert all(r["reasons"]["churn"] for r in results)
    finally:
        promote(settings, "churn", "2")
    # A manifest naming the other registered class for these files is refused, not mis-loaded.
    manifest["models"]["churn"]["class"] = expected_class["1"]
    (directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="not a 'churn' model of kind 'logistic_baseline'"):
        load_bundle(directory)


def test_inhuman_play_is_held_to_the_roc_auc_floor_and_judged_only_on_rows_it_can_judge(
    tmp_path: Path, mlflow_template_db: Path  # noqa: F811
) -> None:
    settings = seed_mlflow_store(Settings(home=tmp_path / "home"), mlflow_template_db)
    frame = inhuman_set()
    # Unsupervised (too few labels for its threshold): the logistic reference, fitted on the labels, wins.
    unsupervised = {"inhuman_play": {"min_positives": 10_000}}
    refused = train(settings, frame, models=("inhuman_play",), feature_set=None, params=unsupervised)
    refused = refused.models["inhuman_play"]
    # It ranks no better than chance: the ROC-AUC floor keeps it from becoming champion although there is
    # none. It is registered, not promoted, and the gate and the report name the floor.
    assert refused.registered_version == "1" and not refused.gate.promote
    assert refused.gate.metric == "pr_auc" and refused.gate.rule == "roc_auc_floor"
    assert refused.gate.reason.endswith("is below the roc_auc floor 0.6")
    assert f"not promoted (there is no champion): {refused.gate.reason}" in refused.report_path.read_text()
    version = MlflowClient(settings.tracking_uri).get_model_version("playerguard-inhuman-play", "1")
    assert version.tags["playerguard.gate.rule"] == "roc_auc_floor"
    assert version.tags["playerguard.gate.decision"] == "rejected"

    result = train(
        settings, frame, models=("inhuman_play",), feature_set=None, params=unsupervised, min_roc_auc=0.0
    ).models["inhuman_play"]
    assert result.baseline_metrics["pr_auc"] > result.metrics["pr_auc"]
    assert result.gate.promote and result.registered_version == "2"
    assert result.gate.metric == "pr_auc" and "no champion yet" in result.gate.reason

    test = frame.loc[frame["cutoff"] == frame["cutoff"].max()]
    judged = test.loc[test["matches_28d"] >= DEFAULT_MIN_EVIDENCE["matches_28d"]]
    assert 0 < len(judged) < len(test)
    assert result.metrics["rows"] == len(judged) and result.split["evaluated_test_rows"] == len(judged)
    scores = load_model("inhuman_play", result.model_dir).predict_score(judged)
    assert result.metrics["pr_auc"] == pytest.approx(pr_auc(judged["label_inhuman_play"].to_numpy(int), scores))
    assert f"{len(test) - len(judged)} test rows lack the minimum evidence" in result.report_path.read_text()
    run = MlflowClient(settings.tracking_uri).get_run(result.run_id)
    assert run.data.metrics["rows_test_excluded"] == len(test) - len(judged)

    # With a champion, PR-AUC on the same judged rows decides: the supervised model replaces it.
    challenger = train(settings, frame, models=("inhuman_play",), feature_set=None).models["inhuman_play"]
    assert challenger.metrics["pr_auc"] > result.metrics["pr_auc"]
    assert challenger.gate.promote and "beats champion v2" in challenger.gate.reason
    assert challenger.champion_metrics["pr_auc"] == pytest.approx(result.metrics["pr_auc"])
