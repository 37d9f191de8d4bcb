"""One gate: the ROC-AUC floor, the logistic baseline and the champion comparison are rules of one
decision, which names the rule that decided it; the pipeline's quality-gate step applies the same floor."""

from __future__ import annotations

import math

import pytest

from playerguard.errors import PlayerguardError
from playerguard.pipelines.evaluation import check_quality_gate
from playerguard.training.gate import (
    DEFAULT_MIN_ROC_AUC,
    RULE_BASELINE,
    RULE_CHAMPION,
    RULE_FLOOR,
    RULE_UNDEFINED,
    decide_promotion,
    reaches_floor,
)


def test_a_first_model_below_the_floor_is_not_promoted_and_the_reason_names_the_floor() -> None:
    decision = decide_promotion("churn", {"roc_auc": 0.55})
    assert not decision.promote and decision.rule == RULE_FLOOR
    assert decision.reason == "new test roc_auc 0.5500 is below the roc_auc floor 0.6"
    assert decision.min_roc_auc == DEFAULT_MIN_ROC_AUC == 0.6


def test_the_floor_decides_before_the_champion_even_when_the_champion_is_beaten() -> None:
    decision = decide_promotion(
        "purchase",
        {"roc_auc": 0.66},
        champion_metrics={"roc_auc": 0.62},
        champion_version="2",
        min_roc_auc=0.7,
    )
    assert not decision.promote and decision.rule == RULE_FLOOR
    assert decision.champion_value == 0.62 and decision.champion_version == "2"
    assert "below the roc_auc floor 0.7" in decision.reason and "champion" not in decision.reason
    # With the floor reached, the same metrics go to the champion comparison, in the same decision.
    beaten = decide_promotion(
        "purchase",
        {"roc_auc": 0.66},
        champion_metrics={"roc_auc": 0.62},
        champion_version="2",
        min_roc_auc=0.6,
    )
    assert beaten.promote and beaten.rule == RULE_CHAMPION and "beats champion v2's 0.6200" in beaten.reason


def test_the_floor_is_on_roc_auc_whatever_the_gate_metric() -> None:
    # Inhuman play is compared with its champion on PR-AUC, but must still reach the ROC-AUC floor.
    low = decide_promotion(
        "inhuman_play",
        {"pr_auc": 0.9, "roc_auc": 0.58},
        champion_metrics={"pr_auc": 0.5},
        champion_version="1",
    )
    assert not low.promote and low.metric == "pr_auc" and low.rule == RULE_FLOOR
    assert "roc_auc 0.5800 is below the roc_auc floor" in low.reason
    undefined = decide_promotion("inhuman_play", {"pr_auc": 0.9, "roc_auc": math.nan})
    assert (
        not undefined.promote
        and undefined.reason == "new test roc_auc undefined is below the roc_auc floor 0.6"
    )


def test_each_rule_names_itself() -> None:
    assert decide_promotion("churn", {"roc_auc": math.nan}).rule == RULE_UNDEFINED
    below_baseline = decide_promotion("churn", {"roc_auc": 0.7}, baseline_metrics={"roc_auc": 0.75})
    assert below_baseline.rule == RULE_BASELINE and not below_baseline.promote
    # Below the floor and the baseline: the floor, checked first, is the reason given.
    both = decide_promotion("churn", {"roc_auc": 0.5}, baseline_metrics={"roc_auc": 0.75})
    assert both.rule == RULE_FLOOR
    first = decide_promotion("churn", {"roc_auc": 0.6})  # the floor itself is reached
    assert first.promote and first.rule == RULE_CHAMPION and first.as_dict()["rule"] == RULE_CHAMPION


@pytest.mark.parametrize("value", [None, math.nan, 0.0, 0.5999, 0.6, 0.61, 1.0])
def test_the_pipeline_step_and_the_registration_gate_apply_the_same_floor(value: float | None) -> None:
    evaluation = {"models": {"churn": {"metrics": {"roc_auc": value}}}, "quality_gate": {"metric": "roc_auc"}}
    gate = decide_promotion("churn", {"roc_auc": math.nan if value is None else value}, min_roc_auc=0.6)
    if reaches_floor(value, 0.6):
        assert check_quality_gate(evaluation, 0.6)["passed"] and gate.rule != RULE_FLOOR
    else:
        with pytest.raises(PlayerguardError, match="below 0.6 for churn"):
            check_quality_gate(evaluation, 0.6)
        assert not gate.promote and gate.rule in (RULE_FLOOR, RULE_UNDEFINED)


def test_a_model_trained_without_labels_is_champion_only_when_there_is_none() -> None:
    from playerguard.training.gate import RULE_UNLABELLED, decide_promotion

    first = decide_promotion("inhuman_play", {}, unlabelled=True)
    assert first.promote and first.rule == RULE_UNLABELLED and "no labels" in first.reason
    later = decide_promotion("inhuman_play", {}, champion_version="3", unlabelled=True)
    assert not later.promote and "champion v3" in later.reason
