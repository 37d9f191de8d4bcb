"""Churn and purchase models on a simulated game, against the simulator's exact (oracle) probabilities.

Marked slow: it simulates a game, builds the training set through the feature layer and fits full models.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from playerguard.settings import Settings
from playerguard.training.metrics import expected_calibration_error, roc_auc
from playerguard.training.propensity import ChurnModel, LogisticBaseline, PurchaseModel
from playerguard.training.splits import OutOfTimeSplit, labelled_rows, split_by_cutoff

DAYS, HORIZON = 63, 14
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    from playerguard.features.api import build_training_set
    from playerguard.simulator.writer import write_simulation

    settings = Settings(home=tmp_path_factory.mktemp("simulated"))
    write_simulation(settings, players=1500, days=DAYS, seed=11)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cutoffs = [start + timedelta(days=DAYS - HORIZON - 7 * k) for k in (3, 2, 1, 0)]
    frame = build_training_set(settings, cutoffs, horizon_days=HORIZON)
    return frame, pd.read_parquet(Path(settings.ground_truth_path))


def _oracle(name: str, ground_truth: pd.DataFrame, split: OutOfTimeSplit) -> np.ndarray:
    from playerguard.simulator.oracle import true_churn_probability, true_purchase_probability

    oracle = true_churn_probability if name == "churn" else true_purchase_probability
    probability = oracle(ground_truth, split.test_cutoff.to_pydatetime(), HORIZON)
    return probability.reindex(split.test["player_id"]).to_numpy(dtype="float64")


@pytest.mark.parametrize("model_class", [ChurnModel, PurchaseModel])
def test_scores_track_the_true_probabilities_out_of_time(model_class: type, simulated: tuple) -> None:
    frame, ground_truth = simulated
    label = f"label_{model_class.name}"
    split = split_by_cutoff(labelled_rows(frame, label))
    features = [c for c in frame.columns if c not in ("player_id", "cutoff") and not c.startswith("label_")]
    model = model_class(n_estimators=150, learning_rate=0.1, n_jobs=1).fit(
        split.train[features],
        split.train[label],
        X_val=split.validation[features],
        y_val=split.validation[label],
    )
    scores = model.predict_score(split.test)
    truth = _oracle(model_class.name, ground_truth, split)
    y = split.test[label].to_numpy(dtype=int)
    assert not np.isnan(truth).any()
    # Calibrated in the large and per bin, and ranked like the exact probabilities.
    assert abs(scores.mean() - truth.mean()) < 0.03
    assert expected_calibration_error(y, scores) < 0.04
    assert spearmanr(scores, truth).statistic > 0.8
    assert roc_auc(y, scores) > roc_auc(y, truth) - 0.07
    baseline = LogisticBaseline().fit(split.train[features], split.train[label]).predict_score(split.test)
    assert roc_auc(y, scores) > roc_auc(y, baseline) - 0.02  # at worst level with the baseline here
