"""A 91-day horizon on nine months of simulated history trains, and is evaluated out of time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from playerguard.features.api import build_training_set
from playerguard.features.cutoffs import resolve_cutoffs
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation
from playerguard.training.train import train

HORIZON = 91
FAST = {"n_estimators": 40, "learning_rate": 0.2, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}


@pytest.fixture(scope="module")
def nine_months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    settings = Settings(home=Path(tmp_path_factory.mktemp("horizon")))
    write_simulation(settings, players=400, days=270, seed=5)
    cutoffs = resolve_cutoffs(settings, horizon_days=HORIZON)
    frame = build_training_set(settings, list(cutoffs), horizon_days=HORIZON, lookback_days=28)
    return settings, frame


def test_a_quarter_ahead_on_nine_months_trains_and_validates_on_held_out_players(nine_months: tuple) -> None:
    settings, frame = nine_months
    result = train(
        settings, frame, models=("churn", "purchase"), feature_set=None, track=False,
        horizon_days=HORIZON, params={"churn": FAST, "purchase": FAST},
    )  # fmt: skip
    horizon = timedelta(days=HORIZON)
    for name in ("churn", "purchase"):
        model_result = result.models[name]
        assert model_result.status == "trained", model_result.note
        split = model_result.split
        test_cutoff = pd.Timestamp(split["test_cutoff"])
        assert test_cutoff == frame["cutoff"].max()
        # No training or validation label window reaches past the test cutoff.
        assert max(pd.Timestamp(c) for c in split["train_cutoffs"]) + horizon <= test_cutoff
        assert pd.Timestamp(split["validation_cutoff"]) + horizon <= test_cutoff
        assert split["validation_players"] == 0.2
        assert "held out (grouped by player" in model_result.report_path.read_text()
        assert 0.5 < model_result.metrics["roc_auc"] <= 1.0
