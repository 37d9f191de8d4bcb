"""Choosing the candidate a run registers, and gating it, as pure functions of held-out metrics."""

from __future__ import annotations

import math

from playerguard.training.gate import CandidateChoice, choose_candidate, decide_promotion


def test_xgboost_is_the_candidate_unless_it_is_below_its_baseline() -> None:
    kept = choose_candidate("churn", {"roc_auc": 0.80}, {"roc_auc": 0.80})
    assert kept.kind == "xgboost" and "not below the logistic baseline's 0.8000" in kept.reason
    replaced = choose_candidate("purchase", {"roc_auc": 0.829}, {"roc_auc": 0.845})
    assert replaced.kind == "logistic_baseline"
    assert replaced.reason == (
        "the logistic baseline is the candidate: XGBoost's test roc_auc 0.8290 is below the baseline's 0.8450"
    )
    assert choose_candidate("churn", {"roc_auc": math.nan}, {"roc_auc": 0.7}).kind == "logistic_baseline"
    assert choose_candidate("churn", {"roc_auc": 0.7}, {"roc_auc": math.nan}).kind == "xgboost"


def test_the_reason_says_which_candidate_won_and_the_champion_still_has_to_be_beaten() -> None:
    choice = choose_candidate("purchase", {"roc_auc": 0.829}, {"roc_auc": 0.845})
    first = decide_promotion("purchase", {"roc_auc": 0.845}, baseline_metrics={"roc_auc": 0.845}, choice=choice)
    assert first.promote and first.kind == "logistic_baseline"
    assert first.reason.startswith("no champion yet; new test roc_auc 0.8450")
    assert first.reason.endswith(choice.reason)
    kept = decide_promotion(
        "purchase", {"roc_auc": 0.845}, baseline_metrics={"roc_auc": 0.845},
        champion_metrics={"roc_auc": 0.85}, champion_version="4", choice=choice,
    )  # fmt: skip
    assert not kept.promote and "does not beat champion v4's 0.8500" in kept.reason and choice.reason in kept.reason


def test_inhuman_play_is_not_gated_on_its_logistic_reference() -> None:
    decision = decide_promotion(
        "inhuman_play", {"pr_auc": 0.9937, "roc_auc": 0.99}, baseline_metrics={"pr_auc": 0.9945}
    )
    assert decision.promote and decision.metric == "pr_auc"
    assert decision.reason == "no champion yet; new test pr_auc 0.9937 (logistic baseline 0.9945)"
    assert decision.baseline_value == 0.9945
    # Churn and purchase still are.
    assert not decide_promotion("churn", {"roc_auc": 0.70}, baseline_metrics={"roc_auc": 0.71}).promote


def test_a_choice_is_carried_into_the_decision() -> None:
    choice = CandidateChoice("xgboost", "XGBoost is the candidate")
    decision = decide_promotion("churn", {"roc_auc": 0.9}, champion_metrics={"roc_auc": 0.8},
                                champion_version="1", choice=choice)  # fmt: skip
    assert decision.promote and decision.kind == "xgboost" and decision.reason.endswith("; XGBoost is the candidate")
