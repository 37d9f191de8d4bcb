"""The flag policy: parsing, validation with clear errors, ordered decisions and cooldowns."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from playerguard.durations import parse_duration
from playerguard.errors import ConfigError
from playerguard.inference.policy import Policy, load_policy


def test_default_policy_decides_in_order() -> None:
    policy = load_policy()
    actions = policy.decide("inhuman_play", np.array([0.95, 0.5, 0.1]), model_threshold=0.3)
    assert actions[0] == {
        "model": "inhuman_play", "action": "account_action", "score": 0.95, "threshold": 0.9, "severity": "high",
    }  # fmt: skip
    assert actions[1]["action"] == "review" and actions[1]["threshold"] == 0.3
    assert actions[1]["severity"] == "medium"
    assert actions[2] is None
    active = {
        "days_since_last_event": np.array([1.0, 1.0, 30.0]),
        "purchase_amount_mean_lifetime": np.array([4.0, np.nan, 9.0]),
    }.__getitem__
    assert [a and a["action"] for a in policy.decide("churn", np.array([0.6, 0.59, 0.9]), features=active)] == [
        "retention_offer",
        None,
        None,  # at risk, but gone for 30 days: no offer
    ]
    assert policy.decide("purchase", np.array([0.7]))[0]["action"] == "purchase_offer"
    assert policy.cooldown("churn", "retention_offer") == timedelta(days=7)
    assert policy.cooldown("churn", "review") == timedelta(0)
    assert policy.daily_budget("churn", "retention_offer") == 500
    assert policy.daily_budget("purchase", "purchase_offer") is None


def test_models_without_rules_take_no_action() -> None:
    policy = Policy.from_dict(
        {"models": {"churn": {"rules": [{"threshold": 0.5, "action": "retention_offer", "severity": "low"}]}}}
    )
    assert policy.decide("purchase", np.array([1.0])) == [None]


def test_model_threshold_is_required_when_a_rule_uses_it() -> None:
    with pytest.raises(ConfigError, match="no threshold"):
        load_policy().decide("inhuman_play", np.array([0.5]), model_threshold=None)


def test_rule_cooldown_overrides_the_model_default() -> None:
    policy = Policy.from_dict(
        {"models": {"inhuman_play": {"cooldown": "1d", "rules": [
            {"threshold": 0.9, "action": "account_action", "severity": "high", "cooldown": "30d"},
            {"threshold": 0.5, "action": "review", "severity": "low"},
        ]}}}
    )  # fmt: skip
    assert policy.cooldown("inhuman_play", "account_action") == timedelta(days=30)
    assert policy.cooldown("inhuman_play", "review") == timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
     ("90s", timedelta(seconds=90)), ("2w", timedelta(weeks=2)), (3600, timedelta(hours=1))],
)  # fmt: skip
def test_durations(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def _rules(**rule: object) -> dict:
    base = {"threshold": 0.5, "action": "review", "severity": "low"}
    return {"models": {"inhuman_play": {"rules": [{**base, **rule}]}}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_rules(threshold=1.5), r"rules\[0\]\.threshold must be a number in \[0, 1\] or 'model'"),
        (_rules(threshold="high"), "threshold must be"),
        (_rules(action="ban"), "action must be one of"),
        (_rules(severity="critical"), "severity must be one of"),
        (_rules(cooldown="soon"), "cooldown must be a duration"),
        (_rules(colour="red"), "unknown key 'colour'"),
        (_rules(reasons="approximate"), r"rules\[0\]\.reasons must be one of exact, none, got 'approximate'"),
        ({"models": {"cheating": {"rules": []}}}, "unknown model 'cheating'"),
        ({"models": {"churn": {"rules": []}}}, "rules must be a non-empty list"),
        ({"models": {"churn": {"rules": [{"action": "retention_offer", "severity": "low"}]}}}, "has no threshold"),
        ({"version": 2, "models": {}}, "unsupported policy version"),
        ([1, 2], "must be a mapping"),
        (
            {"models": {"churn": {"rules": [
                {"threshold": 0.5, "action": "retention_offer", "severity": "low"},
                {"threshold": 0.7, "action": "retention_offer", "severity": "high"},
            ]}}},
            r"rules\[1\] can never fire",
        ),
    ],
)  # fmt: skip
def test_invalid_policies_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.from_dict(data, "my_policy.yaml")


def test_bad_yaml_is_a_config_error_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("models:\n  churn:\n    rules: [\n")
    with pytest.raises(ConfigError, match=r"policy.yaml: invalid YAML at line \d+"):
        Policy.from_yaml(path)
    with pytest.raises(ConfigError, match="cannot read policy"):
        Policy.from_yaml(tmp_path / "missing.yaml")


def test_where_conditions_narrow_a_rule_and_name_themselves_on_the_action() -> None:
    import numpy as np

    policy = Policy.from_dict(
        {"models": {"churn": {"rules": [
            {"threshold": 0.6, "action": "retention_offer", "severity": "low", "where": "days_since_last_event <= 7"},
        ]}}}
    )  # fmt: skip
    recency = {"days_since_last_event": np.array([2.0, 20.0, np.nan, 7.0])}
    actions = policy.decide("churn", np.array([0.9, 0.9, 0.9, 0.5]), features=recency.__getitem__)
    assert actions[0] == {
        "model": "churn", "action": "retention_offer", "score": 0.9, "threshold": 0.6, "severity": "low",
        "condition": "days_since_last_event <= 7",
    }  # fmt: skip
    assert actions[1:] == [None, None, None]  # gone for 20 days; recency undefined; score below


@pytest.mark.parametrize(
    ("where", "message"),
    [("days_since_last_event =< 7", "must read `<feature> <op> <number>`"), (7, "must read")],
)
def test_bad_where_conditions_are_config_errors(where: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.from_dict({"models": {"churn": {"rules": [
            {"threshold": 0.6, "action": "retention_offer", "severity": "low", "where": where}]}}})  # fmt: skip


def test_conditions_and_spend_features_must_be_features_of_the_models_feature_set() -> None:
    policy = load_policy()
    policy.check_features(["days_since_last_event", "purchase_amount_mean_lifetime"], "default")
    policy.check_features(["accuracy_28d"], "combat", models=["inhuman_play"])  # no churn model: no check
    assert policy.features_read() == {"days_since_last_event", "purchase_amount_mean_lifetime"}
    with pytest.raises(
        ConfigError,
        match=r"models.churn.rules\[0\] reads days_since_last_event \(where:\), purchase_amount_mean_lifetime "
        r"\(spend_feature\): not features of the feature set 'combat'",
    ):
        policy.check_features(["accuracy_28d"], "combat")
    # A studio's own feature set names spend its own way: without the spend feature the policy still loads,
    # and value at risk leaves spend out, saying so on each offer.
    own = policy.for_features(["days_since_last_event"], "own")
    own.check_features(["days_since_last_event"], "own")
    assert own.features_read() == {"days_since_last_event"}
    [offer] = own.decide("churn", np.array([0.8]), features=lambda name: np.array([2.0]),
                         model_scores={"purchase": [0.5]})  # fmt: skip
    assert offer["value_at_risk"] == pytest.approx(0.4)
    assert offer["value_at_risk_note"] == (
        "no spend feature purchase_amount_mean_lifetime in the feature set 'own': churn × purchase probability"
    )
    with pytest.raises(ConfigError, match=r"reads days_since_last_event \(where:\): not features"):
        policy.for_features(["accuracy_28d"], "combat").check_features(["accuracy_28d"], "combat")


# ---- value at risk and daily budgets ----------------------------------------------------------------------


def _ranked(**rule: object) -> dict:
    base = {
        "threshold": 0.6, "action": "retention_offer", "severity": "low", "rank_by": "value_at_risk",
        "spend_feature": "purchase_amount_mean_lifetime", "daily_budget": 2,
    }  # fmt: skip
    return {"models": {"churn": {"rules": [{**base, **rule}]}}}


def test_a_ranked_rule_gives_each_offer_its_value_at_risk() -> None:
    policy = Policy.from_dict(_ranked())
    spend = {"purchase_amount_mean_lifetime": np.array([10.0, np.nan, 4.0, 10.0])}.__getitem__
    churn = np.array([0.8, 0.9, 0.7, 0.5])
    actions = policy.decide("churn", churn, features=spend, model_scores={"purchase": [0.5, 0.9, 0.25, 1.0]})
    assert actions[0] == {
        "model": "churn", "action": "retention_offer", "score": 0.8, "threshold": 0.6, "severity": "low",
        "value_at_risk": pytest.approx(0.8 * 0.5 * 10.0),
    }  # fmt: skip
    assert actions[1]["value_at_risk"] == 0.0  # never bought: nothing spent, nothing at risk
    assert actions[2]["value_at_risk"] == pytest.approx(0.7 * 0.25 * 4.0)
    assert actions[3] is None  # below the threshold: no offer, whatever its value


def test_without_a_purchase_model_the_value_is_the_churn_probability_and_says_so() -> None:
    policy = Policy.from_dict(_ranked())
    spend = {"purchase_amount_mean_lifetime": np.array([10.0, 2.0])}.__getitem__
    for scores in (None, {"churn": [0.8, 0.7]}):
        actions = policy.decide("churn", np.array([0.8, 0.7]), features=spend, model_scores=scores)
        assert [a["value_at_risk"] for a in actions] == [0.8, 0.7]
        assert {a["value_at_risk_note"] for a in actions} == {"no purchase model: churn probability alone"}


def test_only_ranked_rules_read_the_other_models_and_the_spend() -> None:
    policy = Policy.from_dict(_ranked(rank_by=None, spend_feature=None))
    [action] = policy.decide("churn", np.array([0.9]), model_scores={"purchase": [0.5]})
    assert "value_at_risk" not in action and action["score"] == 0.9
    with pytest.raises(ConfigError, match="needs the feature purchase_amount_mean_lifetime"):
        Policy.from_dict(_ranked()).decide("churn", np.array([0.9]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_ranked(rank_by="score"), r"models.churn.rules\[0\].rank_by must be one of value_at_risk, got 'score'"),
        (
            {"models": {"purchase": {"rules": [{"threshold": 0.5, "action": "purchase_offer", "severity": "low",
              "rank_by": "value_at_risk", "spend_feature": "spend_28d"}]}}},
            r"models.purchase.rules\[0\].rank_by: value_at_risk ranks churn retention_offer rules only",
        ),
        (_ranked(action="review"), "ranks churn retention_offer rules only, not churn review"),
        (_ranked(spend_feature=None), r"rules\[0\].spend_feature must name the feature"),
        (_ranked(spend_feature="Spend!"), "spend_feature must name the feature"),
        (_ranked(rank_by=None), r"rules\[0\].spend_feature is read only with `rank_by: value_at_risk`"),
        (_ranked(daily_budget=-1), r"rules\[0\].daily_budget must be a whole number .* got -1"),
        (_ranked(daily_budget=2.5), "daily_budget must be a whole number"),
        (_ranked(daily_budget="500"), "daily_budget must be a whole number"),
        (_ranked(daily_budget=True), "daily_budget must be a whole number"),
        (
            {"models": {"churn": {"rules": [
                {"threshold": 0.8, "action": "retention_offer", "severity": "medium", "daily_budget": 10},
                {"threshold": 0.6, "action": "retention_offer", "severity": "low", "daily_budget": 20},
            ]}}},
            r"rules\[1\].daily_budget 20 differs from rules\[0\]'s 10",
        ),
    ],
)  # fmt: skip
def test_bad_ranking_and_budgets_name_the_rule(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy.from_dict(data, "my_policy.yaml")


def test_a_budget_is_per_model_and_action_whichever_rule_takes_it() -> None:
    policy = Policy.from_dict(
        {"models": {"churn": {"rules": [
            {"threshold": 0.8, "action": "retention_offer", "severity": "medium", "daily_budget": 0},
            {"threshold": 0.6, "action": "retention_offer", "severity": "low"},
            {"threshold": 0.5, "action": "review", "severity": "low"},
        ]}}}
    )  # fmt: skip
    assert policy.daily_budget("churn", "retention_offer") == 0  # 0: offers decided and recorded, none sent
    assert policy.daily_budget("churn", "review") is None


def test_rules_explain_their_rows_unless_they_say_reasons_none() -> None:
    policy = Policy.from_dict(
        {"models": {"churn": {"rules": [
            {"threshold": 0.8, "action": "review", "severity": "medium"},
            {"threshold": 0.6, "action": "retention_offer", "severity": "low", "reasons": "none"},
        ]}}}
    )  # fmt: skip
    assert policy.explains("churn", "review") and not policy.explains("churn", "retention_offer")
    assert load_policy().explains("churn", "retention_offer")  # the packaged policy explains every action
