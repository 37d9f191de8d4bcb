"""The quality gate's decision, as a pure function of held-out metrics."""

from __future__ import annotations

import math

import pytest

from playerguard.errors import ConfigError
from playerguard.training.tracking import decide_promotion, model_from_name, registered_name


def test_first_model_is_promoted_when_it_beats_its_baseline() -> None:
    decision = decide_promotion("churn", {"roc_auc": 0.8}, baseline_metrics={"roc_auc": 0.7})
    assert decision.promote and "no champion yet" in decision.reason
    assert decision.metric == "roc_auc"


def test_a_model_worse_than_its_baseline_is_never_promoted() -> None:
    decision = decide_promotion("churn", {"roc_auc": 0.69}, baseline_metrics={"roc_auc": 0.7})
    assert not decision.promote
    assert "below the logistic baseline's 0.7000" in decision.reason


def test_champion_is_kept_unless_beaten_on_the_same_test_set() -> None:
    kept = decide_promotion(
        "purchase", {"roc_auc": 0.8}, baseline_metrics={"roc_auc": 0.7},
        champion_metrics={"roc_auc": 0.8}, champion_version="3",
    )  # fmt: skip
    assert not kept.promote and "does not beat champion v3's 0.8000" in kept.reason
    beaten = decide_promotion(
        "purchase", {"roc_auc": 0.81}, baseline_metrics={"roc_auc": 0.7},
        champion_metrics={"roc_auc": 0.8}, champion_version="3",
    )  # fmt: skip
    assert beaten.promote and beaten.champion_value == 0.8 and beaten.champion_version == "3"


def test_inhuman_play_is_gated_on_pr_auc() -> None:
    decision = decide_promotion(
        "inhuman_play", {"pr_auc": 0.5, "roc_auc": 0.99}, champion_metrics={"pr_auc": 0.6, "roc_auc": 0.9},
        champion_version="1",
    )  # fmt: skip
    assert decision.metric == "pr_auc" and not decision.promote


def test_an_unscorable_champion_does_not_block_and_an_undefined_metric_never_promotes() -> None:
    replaced = decide_promotion(
        "churn", {"roc_auc": 0.8}, champion_version="2", champion_error="DataError: gone"
    )
    assert replaced.promote and "could not be scored" in replaced.reason and "gone" in replaced.reason
    assert not decide_promotion("churn", {"roc_auc": math.nan}).promote


def test_registered_names() -> None:
    assert registered_name("inhuman_play") == "playerguard-inhuman-play"
    assert model_from_name("playerguard-churn") == model_from_name("churn") == "churn"
    with pytest.raises(ConfigError, match="unknown model 'fraud'"):
        model_from_name("fraud")
