"""Choices `features suggest` makes from a lake profile, and constant features (no I/O)."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from playerguard.features.checks import constant_features
from playerguard.features.profile import AttributeProfile, EventTypeProfile, LakeProfile
from playerguard.features.suggest import suggest_feature_set


def number(name: str, **shape: object) -> AttributeProfile:
    values = {"present": 100, "null_rate": 0.0, "distinct": 50, "minimum": 0.0, "maximum": 9.0} | shape
    return AttributeProfile(name, "double", **values)  # type: ignore[arg-type]


def event_type(name: str, events: int, *attributes: AttributeProfile, sessions: int = 0) -> EventTypeProfile:
    return EventTypeProfile(name, events, 10, sessions, sessions, attributes)


def test_without_sessions_or_amounts_churn_uses_the_most_frequent_type_and_purchase_is_left_out() -> None:
    profile = LakeProfile(
        (event_type("round_end", 500, number("score")), event_type("Login", 90), event_type("label_set", 5)),
        {},
    )
    suggestion = suggest_feature_set(profile)
    fs = suggestion.feature_set
    assert (fs.labels.churn_event, fs.labels.purchase_event) == ("round_end", None)
    assert "round_end is the most frequent" in suggestion.text
    assert "purchase: not defined" in suggestion.text
    assert suggestion.skipped == ("Login",) and "Login" not in {
        t for d in fs.definitions for t in d.selection.event_types
    }
    assert "f_label_set_count_7d" in fs.feature_names  # `label_` names are reserved for labels


def test_money_is_found_by_its_shape_under_any_name_and_the_start_of_a_session_wins() -> None:
    profile = LakeProfile(
        (
            event_type("tick", 900, number("xp", whole=True)),
            event_type("zz_begin", 50, sessions=50),
            event_type("aa_finish", 50, sessions=50),
            event_type("order", 7, number("q7", cents=True, minimum=0.99, maximum=49.99, distinct=4)),
        ),
        {},
    )
    suggestion = suggest_feature_set(profile)
    assert suggestion.feature_set.labels.churn_event == "zz_begin"
    assert suggestion.feature_set.labels.purchase_event == "order"
    assert {"order_q7_sum_lifetime", "order_q7_mean_lifetime", "order_days_since_last"} <= set(
        suggestion.feature_set.feature_names
    )
    assert suggest_feature_set(profile).text == suggestion.text


def test_a_long_thin_log_gets_the_players_own_cadence_and_a_score_its_trend_and_best() -> None:
    play = replace(event_type("play", 300, number("score")), span_days=600.0)
    by_name = {d.name: d for d in suggest_feature_set(LakeProfile((play,), {})).feature_set.definitions}
    assert {"play_active_days_91d", "play_active_days_364d", "play_gap_mean_days_91d",
            "play_gap_mean_days_364d", "play_gap_cv_364d"} <= set(by_name)  # fmt: skip
    rate = by_name["play_trend_28d_vs_336d"]
    assert (rate.kind, rate.measure, rate.window.symbol) == ("trend", "count", "28d")
    assert rate.baseline.symbol == "336d"
    score = by_name["play_score_trend_28d_vs_63d"]
    assert (score.measure, score.attribute, score.selection.event_types) == ("sum", "score", ("play",))
    assert by_name["play_score_max"].kind == "max" and by_name["play_score_max"].window.symbol == "lifetime"

    short = suggest_feature_set(LakeProfile((replace(play, span_days=40.0),), {})).feature_set.feature_names
    assert "play_score_trend_7d_vs_21d" in short  # a score's trend needs no long history
    assert not any(name.endswith(("_91d", "_364d", "_63d", "_336d")) for name in short)


def test_constant_features_are_the_ones_with_a_single_value() -> None:
    frame = pd.DataFrame({"a": [0.0, 0.0, 0.0], "b": [1.0, 2.0, None], "c": [None, None, None]})
    assert constant_features(frame, ["a", "b", "c", "not_built"]) == ["a", "c"]
