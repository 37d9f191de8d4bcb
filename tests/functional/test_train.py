"""Training orchestration without a registry: out-of-time evaluation, reports, skipped models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from playerguard.errors import ConfigError, DataError
from playerguard.settings import Settings
from playerguard.training.base import load_model
from playerguard.training.metrics import roc_auc
from playerguard.training.train import train

FAST = {"n_estimators": 40, "learning_rate": 0.2, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}
FAST_INHUMAN = {"n_estimators": 20, "cv_folds": 2, "n_jobs": 1}

from playerguard.training.inhuman_play import DEFAULT_MIN_EVIDENCE


def training_set(players: int = 600, cutoffs: int = 4, seed: int = 0) -> pd.DataFrame:
    """Players at weekly cutoffs with default feature names and labels from known probabilities."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(cutoffs):
        s7 = rng.poisson(3, players).astype(float)
        gap = rng.exponential(5, players)
        purchases = rng.poisson(0.5, players).astype(float)
        cheater = rng.random(players) < 0.1
        frames.append(
            pd.DataFrame(
                {
                    "player_id": [f"p{i}" for i in range(players)],
                    "cutoff": pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(days=7 * k),
                    "sessions_7d": s7,
                    "sessions_28d": s7 + rng.poisson(8, players),
                    "days_since_last_session": gap,
                    "purchases_28d": purchases,
                    "spend_28d": purchases * rng.gamma(2, 5, players),
                    "matches_28d": rng.poisson(12, players).astype(float),
                    "accuracy_28d": np.clip(rng.beta(5, 10, players) + 0.3 * cheater, 0, 1),
                    "reaction_ms_p50_28d": rng.normal(260, 30, players) - 90 * cheater,
                    "label_churn": rng.random(players) < expit(0.5 - 0.5 * s7 + 0.3 * gap),
                    "label_purchase": rng.random(players) < expit(-2 + purchases + 0.1 * s7),
                    "label_inhuman_play": cheater,
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    return frame.astype({f"label_{m}": "Int8" for m in ("churn", "purchase", "inhuman_play")})


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, pd.DataFrame]:
    home = tmp_path_factory.mktemp("train")
    frame = training_set()
    frame.loc[frame.index[::7], "label_purchase"] = pd.NA  # unknown labels: left out for purchase only
    messages: list[str] = []
    result = train(
        Settings(home=home),
        frame,
        feature_set=None,
        track=False,
        params={"churn": FAST, "purchase": FAST, "inhuman_play": FAST_INHUMAN},
        progress=messages.append,
    )
    assert any("churn: test ROC-AUC" in message for message in messages)
    return result, frame


def test_every_model_is_trained_and_evaluated_on_the_last_cutoff_only(trained: tuple) -> None:
    result, frame = trained
    assert result.trained == ["inhuman_play", "churn", "purchase"]
    last = frame["cutoff"].max()
    for name, model_result in result.models.items():
        test_rows = frame.loc[(frame["cutoff"] == last) & frame[f"label_{name}"].notna()]
        if name == "inhuman_play":  # judged only with enough matches in the window
            test_rows = test_rows.loc[test_rows["matches_28d"] >= DEFAULT_MIN_EVIDENCE["matches_28d"]]
        assert model_result.metrics["rows"] == len(test_rows)
        assert model_result.split["test_cutoff"] == last.isoformat()
        assert model_result.split["validation_cutoff"] < model_result.split["test_cutoff"]
        assert model_result.gate is None and model_result.registered_version is None
        # The metrics are reproducible from the saved model and the held-out rows alone.
        model = load_model(name, model_result.model_dir)
        scores = model.predict_score(test_rows)
        assert model_result.metrics["roc_auc"] == pytest.approx(
            roc_auc(test_rows[f"label_{name}"].to_numpy(int), scores)
        )
    assert result.models["purchase"].split["rows"]["test"] < result.models["churn"].split["rows"]["test"]
    assert result.models["inhuman_play"].threshold is not None
    assert result.models["churn"].metrics["roc_auc"] > 0.7


def test_reports_have_every_plot_and_the_metrics_table(trained: tuple) -> None:
    result, _ = trained
    for model_result in result.models.values():
        report_dir = model_result.report_path.parent
        names = {p.name for p in report_dir.iterdir()}
        assert {
            "roc.png",
            "precision_recall.png",
            "calibration.png",
            "lift.png",
            "score_distribution.png",
        } <= names
        assert {"report.html", "report.md"} <= names
        html = model_result.report_path.read_text()
        assert "logistic baseline" in html and "ROC-AUC" in html and "not evaluated" in html
        assert (report_dir / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert "shap_importance.png" in {p.name for p in result.models["churn"].report_path.parent.iterdir()}
    summary = result.summary()
    assert [row["model"] for row in summary] == ["inhuman_play", "churn", "purchase"]


def test_models_without_usable_labels_are_skipped_with_a_note(tmp_path: Path) -> None:
    frame = training_set(players=200).drop(columns="label_inhuman_play")
    frame["label_purchase"] = pd.array(np.zeros(len(frame), dtype=int), dtype="Int8")
    result = train(Settings(home=tmp_path), frame, feature_set=None, track=False, params={"churn": FAST})
    assert result.trained == ["churn"]
    assert result.models["inhuman_play"].status == "skipped"
    assert "no label_inhuman_play column" in result.models["inhuman_play"].note
    assert "single class" in result.models["purchase"].note


def test_bad_requests_are_clear_errors(tmp_path: Path) -> None:
    frame = training_set(players=50)
    with pytest.raises(ConfigError, match="unknown model 'fraud'"):
        train(Settings(home=tmp_path), frame, models=("fraud",), feature_set=None, track=False)
    with pytest.raises(ConfigError, match="invalid parameters for the churn model"):
        train(Settings(home=tmp_path), frame, models=("churn",), feature_set=None, track=False,
              params={"churn": {"trees": 3}})  # fmt: skip
    with pytest.raises(DataError, match="empty"):
        train(Settings(home=tmp_path), frame.iloc[:0], feature_set=None, track=False)


def test_feature_set_must_define_the_training_features(tmp_path: Path) -> None:
    class Narrow:
        name, hash, path, feature_names = "narrow", "0" * 64, tmp_path / "f.yaml", ["sessions_7d"]

    with pytest.raises(ConfigError, match="does not define"):
        train(Settings(home=tmp_path), training_set(players=50), feature_set=Narrow(), track=False)


def test_inhuman_play_trains_without_labels_and_says_so(tmp_path: Path) -> None:
    frame = training_set(players=2000)
    cheater = frame["label_inhuman_play"].astype(bool).to_numpy()
    frame["label_inhuman_play"] = pd.array([pd.NA] * len(frame), dtype="Int8")
    result = train(
        Settings(home=tmp_path), frame, models=("inhuman_play",), feature_set=None, track=False,
        params={"inhuman_play": FAST_INHUMAN},
    )  # fmt: skip
    model_result = result.models["inhuman_play"]
    assert model_result.status == "trained" and model_result.split["label_regime"] == "unsupervised"
    assert "No labels: inhuman play is unsupervised" in model_result.report_path.read_text()
    # The threshold spends the budget: about 1% of the held-out population presumed legitimate (judged,
    # breaking no rule) is flagged. With 10% cheaters in it, those are mostly cheaters.
    test = frame.loc[frame["cutoff"] == frame["cutoff"].max()]
    model = load_model("inhuman_play", model_result.model_dir)
    flagged = model.predict_score(test) >= model_result.threshold
    presumed = model.judged(test) & (model._rules_fired(model._features(test)) == 0)
    assert 0.003 <= flagged[presumed].mean() <= 0.025
    assert flagged[cheater[test.index]].mean() > 0.2


def test_inhuman_play_trains_from_a_ban_list_as_positive_unlabelled(tmp_path: Path) -> None:
    frame = training_set(players=800)
    cheater = frame["label_inhuman_play"].astype(bool).to_numpy()
    on_list = frame["player_id"].isin([f"p{i}" for i in range(0, 800, 3)]).to_numpy()
    frame["label_inhuman_play"] = pd.array(np.where(cheater & on_list, 1, pd.NA), dtype="Int8")
    result = train(
        Settings(home=tmp_path), frame, models=("inhuman_play",), feature_set=None, track=False,
        params={"inhuman_play": FAST_INHUMAN},
    )  # fmt: skip
    model_result = result.models["inhuman_play"]
    assert model_result.status == "trained", model_result.note
    assert model_result.split["label_regime"] == "positive_unlabelled"
    assert load_model("inhuman_play", model_result.model_dir).mode_ == "positive_unlabelled"
    assert "positive-unlabelled learning" in model_result.report_path.read_text()
    assert model_result.metrics["roc_auc"] > 0.8  # listed against unlabelled players
