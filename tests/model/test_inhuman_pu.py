"""Positive-unlabelled learning of the inhuman-play model on the simulator: a ban list of 30% of the
cheaters, judged on players the model never saw."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from playerguard.features.api import build_features
from playerguard.features.cutoffs import lake_date_range
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.training.inhuman_play import InhumanPlayModel
from playerguard.training.inhuman_pu import budget_threshold, hidden_share, label_frequency, pu_flag_rate
from playerguard.training.metrics import recall_at_fpr


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Per-player features at the end of a short simulated game (ten days: noisy enough to be hard),
    with the simulator's truth."""
    settings = Settings(home=Path(tmp_path_factory.mktemp("pu")))
    write_simulation(settings, players=4000, days=10, seed=3)
    _, last_day = lake_date_range(settings)
    features = build_features(settings, datetime.combine(last_day, datetime.min.time(), UTC))
    truth = pd.read_parquet(settings.ground_truth_path)[["player_id", "is_inhuman"]]
    return features.drop(columns=["cutoff"]).merge(truth, on="player_id")


def test_ban_list_beats_the_detector_alone_on_unseen_cheaters(simulated: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    held_out = rng.random(len(simulated)) < 0.5
    train, test = (
        simulated.loc[~held_out].reset_index(drop=True),
        simulated.loc[held_out].reset_index(drop=True),
    )
    columns = [c for c in simulated.columns if c != "is_inhuman"]
    banned = train["is_inhuman"].to_numpy() & (rng.random(len(train)) < 0.3)
    ban_list = pd.Series(np.where(banned, 1.0, np.nan)).astype("Float64")  # positives only

    pu = InhumanPlayModel(n_estimators=100).fit(train[columns], ban_list)
    alone = InhumanPlayModel().fit(train[columns])
    assert pu.mode_ == "positive_unlabelled" and alone.mode_ == "unsupervised"
    true_c = banned.sum() / train["is_inhuman"].sum()
    assert abs(pu.label_frequency_ - true_c) < 0.15

    y = test["is_inhuman"].to_numpy().astype("int8")  # none of them on the list: unseen players
    judged = pu.judged(test[columns])
    recalls = {
        name: recall_at_fpr(y[judged], model.predict_score(test[columns])[judged], 0.01)
        for name, model in (("pu", pu), ("alone", alone))
    }
    assert recalls["pu"] > recalls["alone"], recalls
    flagged_legitimate = np.mean(pu.predict_score(test[columns])[judged & (y == 0)] >= pu.threshold_)
    assert flagged_legitimate <= 0.02


def test_a_positive_unlabelled_model_round_trips(simulated: pd.DataFrame, tmp_path: Path) -> None:
    columns = [c for c in simulated.columns if c != "is_inhuman"]
    labels = pd.Series(
        np.where(simulated["is_inhuman"].to_numpy() & (np.arange(len(simulated)) % 3 == 0), 1.0, np.nan)
    )
    model = InhumanPlayModel(n_estimators=30).fit(simulated[columns], labels.astype("Float64"))
    model.save(tmp_path / "model")
    loaded = InhumanPlayModel.load(tmp_path / "model")
    assert loaded.mode_ == "positive_unlabelled" and loaded.threshold_ == model.threshold_
    np.testing.assert_allclose(
        loaded.predict_score(simulated[columns]), model.predict_score(simulated[columns])
    )


def test_elkan_noto_helpers() -> None:
    assert label_frequency(np.array([0.2, 0.4, 0.9]), np.array([True, True, False])) == pytest.approx(0.3)
    # odds(score) = 1 at score 0.5: a hidden cheater with probability 1 − c = 0.75; capped at 1.
    assert hidden_share(np.array([0.0, 0.5, 0.99, 0.5]), 0.25) == pytest.approx((0.75 + 1.0 + 0.75) / 4)
    assert pu_flag_rate(0.03, 0.01) == pytest.approx(0.03 + 0.0097)
    scores = np.arange(100, dtype="float64")
    assert np.sum(scores >= budget_threshold(scores, 0.05)) == 5
    # Rows that are surely cheaters (weight 0) do not spend the budget.
    weights = np.where(scores >= 95, 0.0, 1.0)
    assert np.sum(scores >= budget_threshold(scores, 0.05, weights)) == 9
    assert budget_threshold(np.array([1.0, 2.0]), 0.01) > 2.0
