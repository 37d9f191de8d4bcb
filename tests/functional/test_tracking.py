"""MLflow tracking and registry on a real SQLite store: runs, the quality gate, promotion, rollback,
and a bundle built from the champions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from scipy.special import expit

from playerguard.errors import ConfigError, DataError
from playerguard.inference.bundle import build_bundle, load_bundle, pack_bundle, unpack_bundle
from playerguard.inference.scoring import score_frame
from playerguard.settings import Settings
from playerguard.training.tracking import download_champions, list_models, promote
from playerguard.training.train import TrainResult, train

STRONG = {"n_estimators": 40, "learning_rate": 0.2, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}
# Two stumps catch one edge of the bump: better than the linear baseline, worse than STRONG.
WEAK = {"n_estimators": 2, "max_depth": 1, "learning_rate": 0.5, "n_jobs": 1}

from playerguard.features.spec import load_feature_set

DEFAULT_FEATURES = load_feature_set("default").path


@dataclass(frozen=True)
class FeatureSetFile:
    name: str
    hash: str
    path: Path
    feature_names: tuple[str, ...] = ("sessions_7d", "session_seconds_mean_28d")


def training_set(players: int = 500, seed: int = 0) -> pd.DataFrame:
    """Churn peaks for mid-length sessions, which the recency/frequency baseline cannot see."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(3):
        sessions = rng.poisson(3, players).astype(float)
        seconds = rng.uniform(0, 3600, players)
        churned = rng.random(players) < expit(-1.5 + 3.0 * (np.abs(seconds - 1800) < 700) - 0.1 * sessions)
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


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Settings, pd.DataFrame, TrainResult, TrainResult]:
    home = tmp_path_factory.mktemp("tracking")
    features_yaml = home / "features.yaml"
    features_yaml.write_text(DEFAULT_FEATURES.read_text().replace("name: default", "name: test", 1))
    settings = Settings(home=home / "home")
    frame = training_set()
    feature_set = FeatureSetFile("test", "f" * 64, features_yaml)
    first = train(settings, frame, models=("churn",), feature_set=feature_set, params={"churn": STRONG})
    second = train(settings, frame, models=("churn",), feature_set=feature_set, params={"churn": WEAK})
    return settings, frame, first, second


def test_the_first_version_becomes_champion_and_its_run_records_everything(registry: tuple) -> None:
    settings, frame, first, _ = registry
    churn = first.models["churn"]
    assert churn.registered_version == "1" and churn.gate.promote
    assert "no champion yet" in churn.gate.reason
    assert (settings.home / "mlflow.db").is_file()

    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(churn.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "playerguard"
    assert run.data.metrics["test_roc_auc"] == pytest.approx(churn.metrics["roc_auc"])
    assert run.data.metrics["baseline_roc_auc"] == pytest.approx(churn.baseline_metrics["roc_auc"])
    assert run.data.metrics["rows_test"] == (frame["cutoff"] == frame["cutoff"].max()).sum()
    assert run.data.params["test_cutoff"] == frame["cutoff"].max().isoformat()
    assert len(run.data.params["training_set_cutoffs"].split(",")) == 3
    assert run.data.params["training_set_rows"] == str(len(frame))
    assert run.data.params["feature_set_hash"] == "f" * 64
    assert run.data.tags["playerguard.gate.decision"] == "promoted"
    artifacts = {a.path for a in client.list_artifacts(churn.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/roc.png"} <= artifacts
    assert {a.path for a in client.list_artifacts(churn.run_id, "model")} == {
        "model/booster.json",
        "model/model.json",
        "model/feature_set.yaml",
    }
    version = client.get_model_version("playerguard-churn", "1")
    assert version.source.endswith("/model") and version.run_id == churn.run_id
    # Artifacts live under the home directory, not wherever the tests happen to run.
    assert version.source.startswith((settings.home.resolve() / "mlartifacts").as_uri())


def test_the_gate_keeps_the_champion_when_the_new_model_is_worse_and_says_why(registry: tuple) -> None:
    settings, _, first, second = registry
    old, new = first.models["churn"], second.models["churn"]
    assert new.registered_version == "2" and not new.gate.promote
    assert (
        new.metrics["roc_auc"] > new.baseline_metrics["roc_auc"]
    )  # so the champion, not the baseline, decided
    assert new.gate.reason.startswith("new test roc_auc") and "does not beat champion v1" in new.gate.reason
    # The champion was loaded from the registry and scored on the same test rows: same numbers as its own run.
    assert new.champion_version == "1"
    assert new.champion_metrics["roc_auc"] == pytest.approx(old.metrics["roc_auc"])
    assert "does not beat champion v1" in new.report_path.read_text()
    client = MlflowClient(settings.tracking_uri)
    assert str(client.get_model_version_by_alias("playerguard-churn", "champion").version) == "1"
    assert client.get_model_version("playerguard-churn", "2").tags["playerguard.gate.decision"] == "rejected"
    assert client.get_run(new.run_id).data.tags["playerguard.gate.reason"] == new.gate.reason


def test_in_train_the_floor_and_the_champion_are_one_decision(tmp_path: Path) -> None:
    """A model that beats the champion but not the ROC-AUC floor is registered, not promoted, and says why."""
    settings = Settings(home=tmp_path / "home")
    frame = training_set()
    weak = train(settings, frame, models=("churn",), feature_set=None, params={"churn": WEAK}).models["churn"]
    assert weak.gate.promote and weak.gate.rule == "champion" and weak.gate.min_roc_auc == 0.6
    floor = 0.99
    strong = train(
        settings, frame, models=("churn",), feature_set=None, params={"churn": STRONG}, min_roc_auc=floor
    ).models["churn"]
    assert strong.metrics["roc_auc"] > strong.champion_metrics["roc_auc"]  # it would beat the champion
    assert strong.registered_version == "2" and not strong.gate.promote
    assert strong.gate.rule == "roc_auc_floor"
    below = f"new test roc_auc {strong.metrics['roc_auc']:.4f} is below the roc_auc floor {floor:g};"
    assert strong.gate.reason.startswith(below)
    report = strong.report_path.with_name("report.md").read_text()  # the HTML one escapes the apostrophes
    assert f"kept the current champion: {strong.gate.reason}" in report
    client = MlflowClient(settings.tracking_uri)
    assert str(client.get_model_version_by_alias("playerguard-churn", "champion").version) == "1"
    assert client.get_model_version("playerguard-churn", "2").tags["playerguard.gate.rule"] == "roc_auc_floor"
    run = client.get_run(strong.run_id)
    assert run.data.params["min_roc_auc"] == str(floor) and run.data.tags["model.kind"] == strong.kind


def test_manual_promotion_and_rollback(registry: tuple) -> None:
    settings = registry[0]
    assert promote(settings, "churn", 2) == {
        "model": "churn", "name": "playerguard-churn", "version": "2", "previous_version": "1",
    }  # fmt: skip
    listed = {(row["name"], row["version"]): row for row in list_models(settings)}
    assert listed[("playerguard-churn", "2")]["aliases"] == ["champion"]
    assert listed[("playerguard-churn", "1")]["aliases"] == []
    assert listed[("playerguard-churn", "2")]["gate_decision"] == "rejected"
    assert set(listed[("playerguard-churn", "1")]["metrics"]) >= {"roc_auc", "pr_auc", "brier"}

    assert promote(settings, "playerguard-churn", "1")["previous_version"] == "2"
    champion = MlflowClient(settings.tracking_uri).get_model_version_by_alias("playerguard-churn", "champion")
    assert str(champion.version) == "1"
    with pytest.raises(DataError, match="playerguard-churn has no version '9'"):
        promote(settings, "churn", 9)
    with pytest.raises(ConfigError, match="unknown model 'fraud'"):
        promote(settings, "fraud", 1)


def test_bundle_from_the_champions_builds_packs_unpacks_loads_and_scores(
    registry: tuple, tmp_path: Path
) -> None:
    settings, frame, first, _ = registry
    feature_set = FeatureSetFile("test", "f" * 64, settings.home.parent / "features.yaml")
    directory = build_bundle(settings, tmp_path / "bundle", feature_set=feature_set)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["models"]["churn"]["version"] == "1"
    assert manifest["models"]["churn"]["registered_name"] == "playerguard-churn"
    assert manifest["models"]["churn"]["run_id"] == first.models["churn"].run_id
    assert manifest["feature_set"] == {"name": "test", "hash": "f" * 64}

    archive = pack_bundle(directory, tmp_path / "model.tar.gz")
    unpacked = unpack_bundle(archive, tmp_path / "unpacked")
    rows = frame.loc[frame["cutoff"] == frame["cutoff"].max()].head(20)
    for bundle in (load_bundle(unpacked), load_bundle(archive)):
        results = score_frame(bundle, rows)
        assert [r["player_id"] for r in results] == rows["player_id"].tolist()
        assert all(r["model_versions"] == {"churn": "1"} for r in results)
    # The bundled model scores exactly like the registered champion's files.
    champions = download_champions(settings, tmp_path / "champions")
    assert champions["churn"].version == "1"
    from playerguard.training.base import load_model

    expected = load_model("churn", champions["churn"].directory).predict_score(rows)
    np.testing.assert_array_equal(
        [r["scores"]["churn"] for r in score_frame(load_bundle(archive), rows)], expected
    )


def test_an_empty_registry_has_no_champions_to_bundle(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "empty")
    assert list_models(settings) == []
    assert not settings.home.exists()  # looking does not create a store
    with pytest.raises(DataError, match="no champion models"):
        build_bundle(settings, tmp_path / "bundle", feature_set=FeatureSetFile("t", "0", tmp_path / "f.yaml"))
