"""Feature definitions: parsing, validation messages, durations, the feature-set hash, packaged sets."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from playerguard.durations import parse_days, parse_duration
from playerguard.errors import ConfigError
from playerguard.features.spec import (
    FeatureSet,
    load_feature_set,
    packaged_feature_sets,
    parse_definition,
    parse_feature_set,
)

CONTRACT_NAMES = [
    "tenure_days", "days_since_last_event", "days_since_last_session", "days_since_last_purchase",
    "sessions_7d", "sessions_28d", "sessions_trend_7d_vs_21d", "session_seconds_mean_28d", "session_gap_cv_28d",
    "matches_28d", "accuracy_28d", "headshot_rate_28d", "kd_ratio_28d", "reaction_ms_p50_28d",
    "reaction_ms_p10_28d", "aim_speed_p90_28d", "purchases_28d", "spend_28d", "purchases_lifetime",
    "spend_lifetime", "levels_28d",
]  # fmt: skip

BASE: dict[str, Any] = {
    "name": "demo",
    "features": [
        {"name": "sessions_7d", "kind": "count", "event_type": "session_start", "window": "7d"},
        {
            "name": "spend",
            "kind": "sum",
            "event_type": "purchase",
            "attribute": "amount",
            "description": "money",
        },
        {
            "name": "accuracy",
            "kind": "ratio",
            "window": "28d",
            "numerator": {"kind": "sum", "event_type": "match_end", "attribute": "hits"},
            "denominator": {"kind": "sum", "event_type": "match_end", "attribute": "shots"},
        },
    ],
}


def feature_set(document: dict[str, Any]) -> FeatureSet:
    return parse_feature_set(document, default_name="test")


def test_packaged_sets_load_and_default_has_every_contract_name() -> None:
    assert {"default", "combat"} <= set(packaged_feature_sets())
    default = load_feature_set("default")
    assert set(CONTRACT_NAMES) <= set(default.feature_names)
    assert default.labels.churn_event == "session_start" and default.labels.purchase_event == "purchase"
    combat = load_feature_set("combat")
    assert combat.labels.churn_event is None and "hits_per_shot" in combat.feature_names
    assert len(default.hash) == 64 and default.hash != combat.hash


def test_definition_fields_are_normalized() -> None:
    parsed = parse_definition(
        {"name": "x", "kind": "count", "event_type": ["b", "a", "b"], "window": "12h",
         "where": [{"attribute": "level", "op": "in", "value": [1, 2]}]}
    )  # fmt: skip
    assert parsed.selection.event_types == ("a", "b")
    assert parsed.window.seconds == 12 * 3600
    assert parsed.selection.where[0].value == (1.0, 2.0) and parsed.selection.where[0].is_numeric
    assert parse_definition({"name": "y", "kind": "recency"}).window.seconds is None


def test_hash_ignores_descriptions_and_key_order_but_not_meaning() -> None:
    base = feature_set(BASE)
    reordered = copy.deepcopy(BASE)
    reordered["features"][1] = dict(reversed(list(reordered["features"][1].items())))
    reordered["features"][1]["description"] = "something else"
    reordered["description"] = "another text"
    assert feature_set(reordered).hash == base.hash
    same_length = copy.deepcopy(BASE)
    same_length["features"][0]["window"] = "168h"
    assert feature_set(same_length).hash == base.hash
    changed = copy.deepcopy(BASE)
    changed["features"][0]["window"] = "8d"
    assert feature_set(changed).hash != base.hash
    renamed = copy.deepcopy(BASE)
    renamed["features"][2]["name"] = "aim"
    assert feature_set(renamed).hash != base.hash


@pytest.mark.parametrize(
    ("text", "expected"),
    [("28d", timedelta(days=28)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
     ("45s", timedelta(seconds=45)), ("2w", timedelta(days=14))],
)  # fmt: skip
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0d", "28", "d", "-1d", "1.5d", "28x", "", "28 d"])
def test_bad_durations_name_the_option(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--lookback must be a duration .*such as 28d"):
        parse_duration(text, "--lookback")


def test_whole_days() -> None:
    assert parse_days("2w") == 14
    with pytest.raises(ConfigError, match="whole number of days"):
        parse_days("36h", "--horizon")


BAD_DEFINITIONS = [
    ({"name": "Bad-Name", "kind": "count"}, "invalid feature name 'Bad-Name'"),
    ({"name": "label_x", "kind": "count"}, "reserved"),
    ({"name": "_x", "kind": "count"}, "reserved"),
    ({"name": "x", "kind": "median"}, "unknown kind 'median'"),
    ({"name": "x", "kind": "count", "quantile": 0.5}, "unknown key 'quantile'"),
    ({"name": "x", "kind": "mean", "event_type": "m"}, "needs an attribute"),
    ({"name": "x", "kind": "count", "attribute": "hits"}, "unknown key 'attribute' for kind 'count'"),
    ({"name": "x", "kind": "trend", "window": "7d", "baseline": "21d", "attribute": "a"}, "takes no attribute"),
    ({"name": "x", "kind": "percentile", "attribute": "a", "quantile": 1.5}, "strictly between 0 and 1"),
    ({"name": "x", "kind": "percentile", "attribute": "a", "quantile": True}, "strictly between 0 and 1"),
    ({"name": "x", "kind": "count", "event_type": "Session Start"}, "invalid event type"),
    ({"name": "x", "kind": "count", "event_type": []}, "non-empty list"),
    ({"name": "x", "kind": "sum", "attribute": "Hits"}, "invalid attribute"),
    ({"name": "x", "kind": "max", "attribute": "event_timestamp"}, "cannot be used as an attribute"),
    ({"name": "x", "kind": "count", "window": "28"}, "window of feature 'x' must be a duration"),
    ({"name": "x", "kind": "count", "where": {"attribute": "a"}}, "must be a list"),
    ({"name": "x", "kind": "count", "where": [{"attribute": "a", "op": "like", "value": "b"}]}, "unknown operator"),
    ({"name": "x", "kind": "count", "where": [{"attribute": "a", "op": "eq", "value": "a'b"}]}, "condition value"),
    ({"name": "x", "kind": "count", "where": [{"attribute": "a", "op": "eq", "value": True}]}, "as 1 or 0"),
    ({"name": "x", "kind": "count", "where": [{"attribute": "a", "op": "lt", "value": "z"}]}, "needs a number"),
    ({"name": "x", "kind": "count", "where": [{"attribute": "a", "op": "in", "value": []}]}, "non-empty list"),
    ({"name": "x", "kind": "count", "where": [{"attribute": "a", "op": "in", "value": [1, "b"]}]}, "mix numbers"),
    ({"name": "x", "kind": "count", "where": [{"attribute": "a", "op": "eq"}]}, "exactly: attribute, op, value"),
    ({"name": "x", "kind": "trend", "event_type": "s", "window": "7d"}, "baseline"),
    ({"name": "x", "kind": "trend", "event_type": "s", "baseline": "21d"}, "finite window"),
    ({"name": "x", "kind": "trend", "window": "7d", "baseline": "lifetime"}, "baseline must be a duration"),
    ({"name": "x", "kind": "trend", "window": "7d", "baseline": "7d", "measure": "max"}, "measure must be"),
    ({"name": "x", "kind": "ratio", "denominator": {"kind": "count"}}, "numerator must be a mapping"),
    ({"name": "x", "kind": "ratio", "numerator": {"kind": "count"}, "denominator": {"kind": "distinct_count",
      "attribute": "a"}}, "denominator kind must be one of count, sum"),
    ({"name": "x", "kind": "ratio", "numerator": {"kind": "sum"}, "denominator": {"kind": "count"}},
     "numerator of kind 'sum' needs an attribute"),
    ({"name": "x", "kind": "ratio", "numerator": {"kind": "count", "foo": 1}, "denominator": {"kind": "count"}},
     "unknown key 'foo' in numerator"),
    ({"name": "x", "kind": "tenure", "window": "7d"}, "unknown key 'window'"),
    ({"name": "x", "kind": "count", "description": 5}, "description must be text"),
]  # fmt: skip


@pytest.mark.parametrize(("definition", "message"), BAD_DEFINITIONS)
def test_bad_definitions_are_config_errors_naming_the_problem(
    definition: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        parse_definition(definition)
    name = definition["name"]
    if name == "x":
        assert "'x'" in str(raised.value)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"features": []}, "has no `features` list"),
        ({"features": [{"name": "a", "kind": "count"}, {"name": "a", "kind": "recency"}]}, "defines 'a' twice"),
        ({"features": [{"name": "a", "kind": "count"}], "owner": "me"}, "unknown key 'owner'"),
        ({"features": [{"name": "a", "kind": "count"}], "labels": {"churn": "x"}}, "labels takes only"),
        ({"features": [{"name": "a", "kind": "count"}], "labels": {"churn_event": "Bad Type"}}, "invalid label"),
        ({"name": "My Set", "features": [{"name": "a", "kind": "count"}]}, "invalid feature set name"),
        (["not", "a", "mapping"], "must be a mapping"),
        ({"features": ["count"]}, "must be a mapping"),
    ],
)  # fmt: skip
def test_bad_feature_sets(document: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        feature_set(document)


def test_unknown_packaged_set_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown feature set 'nope'; packaged sets: combat, default"):
        load_feature_set("nope")
