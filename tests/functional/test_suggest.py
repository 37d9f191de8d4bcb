"""`features suggest` on real lakes: the profile DuckDB computes, a deterministic set that compiles and
equals the pandas oracle, covers what the default set measures, follows renamed games, `--feature-set
auto`, and the checks before training."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from feature_oracle import oracle_features
from typer.testing import CliRunner

from playerguard.errors import DataError
from playerguard.features import checks
from playerguard.features.api import (
    build_features,
    build_training_set,
    load_feature_set,
    profile_lake,
    suggest_features,
)
from playerguard.features.checks import check_before_training, missing_from_lake
from playerguard.features.commands import app
from playerguard.features.spec import parse_feature_set
from playerguard.lake.base import append_frame
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate

START = datetime(2026, 1, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 2, 3, 7, 45, tzinfo=UTC)
RENAMED_TYPES = {"session_start": "login", "session_end": "logout", "match_end": "round_over",
                 "purchase": "buy", "level_up": "rank_gain"}  # fmt: skip
RENAMED_ATTRIBUTES = {"amount": "gems_price", "result": "outcome", "hits": "on_target", "shots": "fired",
                      "kills": "takedowns", "deaths": "knockouts", "headshots": "crits", "reaction_ms": "react",
                      "aim_speed": "swipe", "level": "tier", "session_seconds": "played_s", "map": "arena",
                      "currency": "money_code", "item_id": "sku"}  # fmt: skip
NOT_COVERED = {"kd_ratio_28d"}
"""Default features no suggestion can match: kills over deaths is a ratio of two counts with no order
between them (the suggestion keeps the sums of both, and rates bounded by shots)."""


def _lake(home: Path, events: pd.DataFrame) -> Settings:
    settings = Settings(home=home)
    append_frame(LocalLake.from_settings(settings), events, home.name)
    return settings


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    events = simulate(players=250, days=40, seed=5, start=START).events.to_pandas()
    return _lake(tmp_path_factory.mktemp("simulated"), events), events


@pytest.fixture(scope="module")
def renamed(simulated: tuple[Settings, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    events = simulated[1].drop(columns=["match_seconds"]).rename(columns=RENAMED_ATTRIBUTES)
    events["event_type"] = events["event_type"].map(RENAMED_TYPES)
    return _lake(tmp_path_factory.mktemp("renamed"), events)


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    """A thin, long log: 30 players each playing every few days to weeks over up to 600 days, with a score."""
    rng = np.random.default_rng(3)
    rows = []
    for player in range(30):
        moment, gap = pd.Timestamp(START) - pd.Timedelta(days=600 - rng.uniform(0, 150)), rng.uniform(2, 30)
        while moment < START:
            stamp = moment.floor("s")
            rows.append({"player_id": f"p{player}", "event_type": "play", "event_timestamp": stamp,
                         "score": float(rng.integers(0, 1000))})  # fmt: skip
            moment += pd.Timedelta(days=rng.exponential(gap))
    events = pd.DataFrame(rows)
    return _lake(tmp_path_factory.mktemp("thin"), events), events


def test_profile_counts_types_attributes_and_their_shape(simulated: tuple[Settings, pd.DataFrame]) -> None:
    settings, events = simulated
    profile = profile_lake(settings)
    counts = events["event_type"].value_counts()
    assert {t.name: t.events for t in profile.event_types} == counts.to_dict()
    assert profile.names[0] == counts.index[0]
    purchase, match = profile.event_type("purchase"), profile.event_type("match_end")
    amount = purchase.attribute("amount")
    assert amount.cents and amount.minimum == events["amount"].min() and amount.null_rate == 0
    assert purchase.attribute("reaction_ms") is None  # only attributes the type carries
    assert dict(match.attribute("result").values) == events["result"].value_counts().to_dict()
    assert match.attribute("hits").bounded_by == ("shots",) and match.attribute("hits").whole
    assert match.attribute("reaction_ms").distinct == events["reaction_ms"].nunique()
    session = profile.event_type("session_start")
    assert session.sessions == session.with_session == session.events


def test_suggestion_is_deterministic_commented_and_equals_the_oracle(
    simulated: tuple[Settings, pd.DataFrame],
) -> None:
    settings, events = simulated
    first, second = suggest_features(settings), suggest_features(settings)
    assert first.text == second.text and first.feature_set.hash == second.feature_set.hash
    document = yaml.safe_load(first.text)
    assert parse_feature_set(document, default_name="x").hash == first.feature_set.hash
    assert first.text.count("\n  # ") >= len(document["features"]) + 2  # a comment per feature and label
    assert first.feature_set.labels.churn_event == "session_start"
    assert first.feature_set.labels.purchase_event == "purchase"
    kinds = {d.kind for d in first.feature_set.definitions}
    assert {"count", "recency", "active_days", "gap_mean", "gap_cv", "trend", "sum", "mean", "percentile",
            "stddev", "max", "ratio", "tenure"} <= kinds  # fmt: skip
    fs = first.feature_set
    got = build_features(settings, CUTOFF, feature_set=fs)
    want = oracle_features(events, fs, CUTOFF)
    assert got["player_id"].tolist() == want["player_id"].tolist()
    for name in fs.feature_names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-7, err_msg=name)


def test_a_thin_long_log_gets_the_players_cadence_and_equals_the_oracle(
    thin: tuple[Settings, pd.DataFrame],
) -> None:
    settings, events = thin
    fs = suggest_features(settings).feature_set
    assert {"play_active_days_364d", "play_gap_mean_days_91d", "play_trend_28d_vs_336d",
            "play_score_trend_28d_vs_63d", "play_score_max"} <= set(fs.feature_names)  # fmt: skip
    got = build_features(settings, START, feature_set=fs)
    want = oracle_features(events, fs, START)
    assert got["player_id"].tolist() == want["player_id"].tolist()
    for name in fs.feature_names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-7, err_msg=name)


def _same(a: pd.Series, b: pd.Series) -> bool:
    return bool(np.allclose(a.fillna(-1e9).to_numpy(), b.fillna(-1e9).to_numpy(), rtol=1e-9, atol=1e-9))


def test_suggestion_covers_what_the_default_set_measures(simulated: tuple[Settings, pd.DataFrame]) -> None:
    settings, _ = simulated
    suggested = build_features(settings, CUTOFF, feature_set=suggest_features(settings).feature_set)
    default = build_features(settings, CUTOFF)
    names = [c for c in default.columns if c not in ("player_id", "cutoff")]
    assert len(names) == 31
    uncovered = {n for n in names if not any(_same(default[n], suggested[s]) for s in suggested.columns[2:])}
    assert uncovered == NOT_COVERED


def test_a_renamed_game_gets_its_own_names_and_labels(renamed: Settings) -> None:
    fs = suggest_features(renamed).feature_set
    assert (fs.labels.churn_event, fs.labels.purchase_event) == ("login", "buy")
    names = set(fs.feature_names)
    assert {"round_over_on_target_per_fired_28d", "round_over_crits_per_on_target_28d",
            "round_over_outcome_win_share_28d", "buy_gems_price_sum_28d", "login_gap_cv_28d"} <= names  # fmt: skip
    assert not any("match_seconds" in n or "session_start" in n for n in names)
    frame = build_features(renamed, CUTOFF, feature_set="auto")
    assert frame.shape[1] == len(names) + 2 and frame["login_count_28d"].gt(0).any()


def test_auto_is_the_suggestion_wherever_a_feature_set_is_named(renamed: Settings, tmp_path: Path) -> None:
    assert load_feature_set("auto", renamed).hash == suggest_features(renamed).feature_set.hash
    out = tmp_path / "my_game.yaml"
    result = CliRunner().invoke(app, ["suggest", "--out", str(out), "--home", str(renamed.home)])
    assert result.exit_code == 0, result.output
    assert "churn on login, purchase on buy" in result.output
    written = load_feature_set(out)
    assert written.name == "my_game" and written.hash == suggest_features(renamed).feature_set.hash
    printed = CliRunner().invoke(app, ["suggest", "--home", str(renamed.home)])
    assert printed.exit_code == 0 and printed.stdout.startswith("# Suggested by")


def test_checks_warn_once_about_what_the_lake_lacks_and_name_the_label_event(
    renamed: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = load_feature_set("default")
    profile = profile_lake(renamed)
    missing = missing_from_lake(default, profile.names, profile.columns)
    assert "sessions_7d (event type session_start)" in missing
    assert "accuracy_28d (event type match_end, attribute hits, attribute shots)" in missing
    assert "labels.churn_event (event type session_start)" in missing
    assert len([m for m in missing if not m.startswith("labels.")]) == 31 - 2  # tenure, recency of any event
    monkeypatch.setattr(checks, "_WARNED", set())
    with caplog.at_level(logging.WARNING), pytest.raises(DataError) as error:
        training = build_training_set(renamed, [datetime(2026, 1, 27, tzinfo=UTC), CUTOFF], horizon_days=7)
        check_before_training(renamed, training, load_feature_set("default"), ["churn", "purchase"])
    message = str(error.value)
    assert "label_churn has a single class" in message and "event type session_start" in message
    assert "session_start is not in the lake" in message and "login (" in message and "buy (" in message
    # One warning for the training set and the check before training, none per attribute or cutoff.
    assert len(caplog.records) == 1 and caplog.records[0].name == "playerguard.features.checks"
    assert "sessions_7d (event type session_start)" in caplog.records[0].getMessage()


def test_checks_pass_a_fitting_set_through_loaded(simulated: tuple[Settings, pd.DataFrame]) -> None:
    settings, _ = simulated
    training = build_training_set(settings, [datetime(2026, 1, 27, tzinfo=UTC), CUTOFF], horizon_days=7)
    fs = check_before_training(settings, training, load_feature_set("auto", settings), ["churn", "purchase"])
    assert fs.hash == suggest_features(settings).feature_set.hash
    assert check_before_training(settings, training, None, ["churn"]) is None


def test_train_refuses_a_single_class_label_naming_the_event_types(renamed: Settings) -> None:
    from playerguard.training.train import train

    training = build_training_set(renamed, [datetime(2026, 1, 27, tzinfo=UTC), CUTOFF], horizon_days=7)
    with pytest.raises(DataError, match=r"label_churn has a single class .* event type session_start"):
        train(renamed, training, ("churn",), feature_set="default", track=False, horizon_days=7)
