"""Rules against human limits: parsing, evidence minimum, skipping absent features, bad configs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from playerguard.errors import ConfigError
from playerguard.training.rules import (
    DEFAULT_RULES,
    Rule,
    applicable_rules,
    fired_matrix,
    parse_rule,
    parse_rules,
    rules_config,
)


def test_text_form_with_evidence() -> None:
    rule = parse_rule("superhuman_reaction", "reaction_ms_p50_28d < 150 when matches_28d >= 3")
    assert rule == Rule("superhuman_reaction", "reaction_ms_p50_28d", "<", 150.0, "matches_28d", 3.0)
    assert rule.features == ("reaction_ms_p50_28d", "matches_28d")


def test_text_form_without_evidence_and_number_formats() -> None:
    rule = parse_rule("sustained_headshots", "  headshot_rate_28d>.45 ")
    assert (rule.feature, rule.op, rule.limit, rule.evidence_feature) == ("headshot_rate_28d", ">", 0.45, None)
    assert parse_rule("tiny", "x <= -1.5e-3").limit == pytest.approx(-0.0015)


def test_mapping_form_equals_text_form() -> None:
    text = parse_rule("robotic_schedule", "session_gap_cv_28d < 0.15 when sessions_28d >= 10")
    mapping = parse_rule(
        "robotic_schedule",
        {"feature": "session_gap_cv_28d", "op": "<", "limit": 0.15, "evidence_feature": "sessions_28d", "evidence_min": 10},
    )
    assert text == mapping


def test_yaml_text_and_round_trip() -> None:
    rules = parse_rules("fast: reaction_ms_p50_28d < 150\naccurate: {feature: accuracy_28d, op: '>', limit: 0.7}\n")
    assert [r.name for r in rules] == ["fast", "accurate"]
    assert parse_rules(rules_config(rules)) == rules
    assert parse_rules("") == []


def test_defaults_parse() -> None:
    rules = parse_rules(None)
    assert [r.name for r in rules] == list(DEFAULT_RULES)
    assert {"superhuman_reaction", "sustained_headshots", "robotic_schedule"} <= {r.name for r in rules}


def test_fires_only_past_the_limit_with_enough_evidence() -> None:
    rule = parse_rule("fast", "reaction_ms_p50_28d < 150 when matches_28d >= 3")
    frame = pd.DataFrame(
        {
            "reaction_ms_p50_28d": [120.0, 120.0, 150.0, 240.0, np.nan, 120.0],
            "matches_28d": [3.0, 2.0, 10.0, 10.0, 10.0, np.nan],
        }
    )
    assert rule.fires(frame).tolist() == [True, False, False, False, False, False]


def test_comparisons() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    fired = {op: parse_rule("r", f"x {op} 2").fires(frame).tolist() for op in ("<", "<=", ">", ">=")}
    assert fired == {
        "<": [True, False, False],
        "<=": [True, True, False],
        ">": [False, False, True],
        ">=": [False, True, True],
    }


def test_rules_on_absent_features_are_skipped() -> None:
    rules = parse_rules(None)
    cs2_like = ["accuracy", "headshot_hit_share", "kills_per_round"]
    assert applicable_rules(rules, cs2_like) == []
    # evidence feature missing: the rule cannot be checked, so it is skipped too
    only_reaction = applicable_rules(rules, ["reaction_ms_p50_28d"])
    assert only_reaction == []
    both = applicable_rules(rules, ["reaction_ms_p50_28d", "matches_28d"])
    assert [r.name for r in both] == ["superhuman_reaction"]


def test_fired_matrix_shape() -> None:
    rules = parse_rules({"a": "x > 1", "b": "x < 0"})
    frame = pd.DataFrame({"x": [2.0, -1.0, 0.5]})
    assert fired_matrix(rules, frame).tolist() == [[True, False], [False, True], [False, False]]
    assert fired_matrix([], frame).shape == (3, 0)


@pytest.mark.parametrize(
    "config",
    [
        {"r": "x ~ 3"},
        {"r": "x < many"},
        {"r": "x < 3 when y > 2"},  # evidence is a minimum: only >=
        {"r": "X < 3"},
        {"Bad-Name": "x < 3"},
        {"r": {"feature": "x", "op": "<"}},
        {"r": {"feature": "x", "op": "==", "limit": 3}},
        {"r": {"feature": "x", "op": "<", "limit": "3"}},
        {"r": {"feature": "x", "op": "<", "limit": float("nan")}},
        {"r": {"feature": "x", "op": "<", "limit": True}},
        {"r": {"feature": "x", "op": "<", "limit": 3, "evidence_feature": "y"}},
        {"r": {"feature": "x", "op": "<", "limit": 3, "colour": "red"}},
        {"r": 3},
        "[a, b]",
        "r: [unclosed",
    ],
)
def test_bad_config_raises_config_error(config: object) -> None:
    with pytest.raises(ConfigError):
        parse_rules(config)  # type: ignore[arg-type]
