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
    active = {"days_since_last_event": np.array([1.0, 1.0, 30.0])}.__getitem__
    assert [a and a["action"] for a in policy.decide("churn", np.array([0.6, 0.59, 0.9]), features=active)] == [
        "retention_offer",
        None,
        None,  # at risk, but gone for 30 days: no offer
    ]
    assert policy.decide("purchase", np.array([0.7]))[0]["action"] == "purchase_offer"
    assert policy.cooldown("churn", "retention_offer") == timedelta(days=7)
    assert policy.cooldown("churn", "review") == timedelta(0)


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


def test_conditions_must_name_features_of_the_models_feature_set() -> None:
    policy = load_policy()
    policy.check_features(["days_since_last_event", "sessions_7d"], "default")
    policy.check_features(["accuracy_28d"], "combat", models=["inhuman_play"])  # no churn model: no check
    with pytest.raises(ConfigError, match="days_since_last_event, not features of the feature set 'combat'"):
        policy.check_features(["accuracy_28d"], "combat")
