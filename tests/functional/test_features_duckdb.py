"""Features and labels from a small hand-written lake through DuckDB, checked against values worked out
by hand; edge cases (purchase-only, one-event, missing attributes); custom definitions; the CLI."""

from __future__ import annotations

import logging
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from playerguard.errors import ConfigError, DataError
from playerguard.features.api import build_features, build_training_set, load_feature_set
from playerguard.features.commands import app
from playerguard.lake.base import append_frame
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings

T = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def event(player: str, kind: str, at: datetime, **attributes: object) -> dict:
    return {"player_id": player, "event_type": kind, "event_timestamp": at, "game_id": "g", "platform": "pc",
            "session_id": f"{player}-{at:%m%d}", **attributes}  # fmt: skip


def hand_events() -> list[dict]:
    minute = timedelta(minutes=1)
    match = {"map": "dunes"}
    return [
        # a: a regular player
        event("a", "purchase", T - 50 * DAY, amount=9.99, item_id="gems"),
        event("a", "session_start", T - 40 * DAY),
        event("a", "session_start", T - 10 * DAY),
        event("a", "session_start", T - 3 * DAY),
        event("a", "session_end", T - 3 * DAY + 20 * minute, session_seconds=1200.0),
        event("a", "session_start", T - DAY - 30 * minute),
        event("a", "session_end", T - DAY - 20 * minute, session_seconds=600.0),
        event("a", "match_end", T - 5 * DAY, shots=20, hits=10, headshots=4, kills=1, deaths=2, reaction_ms=300,
              aim_speed=700, result="loss", **match),
        event("a", "match_end", T - 2 * DAY, shots=10, hits=5, headshots=1, kills=3, deaths=0, reaction_ms=200,
              aim_speed=500, result="win", **match),
        event("a", "level_up", T - 2 * DAY, level=2),
        event("a", "purchase", T - 20 * DAY, amount=4.99, item_id="skin"),
        # b: only ever bought something
        event("b", "purchase", T - 2 * DAY, amount=19.99, item_id="skin"),
        # c: a single session, long ago
        event("c", "session_start", T - 60 * DAY),
        # after the cutoff, or exactly at it: invisible to features, visible to labels
        event("a", "session_start", T),
        event("a", "purchase", T + DAY, amount=1.0, item_id="gems"),
        event("d", "session_start", T + 2 * DAY),
        event("c", "purchase", T + 20 * DAY, amount=2.0, item_id="gems"),
    ]  # fmt: skip


@pytest.fixture
def lake_settings(settings: Settings) -> Settings:
    append_frame(LocalLake.from_settings(settings), pd.DataFrame(hand_events()), "hand")
    return settings


def test_default_features_match_hand_computed_values(lake_settings: Settings) -> None:
    frame = build_features(lake_settings, T).set_index("player_id")
    assert list(frame.index) == ["a", "b", "c"]  # d only plays after the cutoff
    assert (frame["cutoff"] == pd.Timestamp(T)).all()
    assert list(frame.columns[1:]) == load_feature_set("default").feature_names
    assert (frame.dtypes.iloc[1:] == "float64").all()
    a = frame.loc["a"]
    expected_a = {
        "tenure_days": 50.0,
        "days_since_last_event": 1.0 + 20 / 1440,
        "days_since_last_session": 1.0 + 30 / 1440,
        "days_since_last_match": 2.0,
        "days_since_last_purchase": 20.0,
        "sessions_7d": 2.0,
        "sessions_28d": 3.0,
        "sessions_trend_7d_vs_21d": (2 / 7) / (1 / 21),
        "session_seconds_mean_28d": 900.0,
        "matches_per_session_28d": 2 / 3,
        "matches_28d": 2.0,
        "accuracy_28d": 15 / 30,
        "headshot_rate_28d": 5 / 15,
        "kd_ratio_28d": 4 / 2,
        "kills_per_match_28d": 2.0,
        "win_rate_28d": 0.5,
        "reaction_ms_p50_28d": 250.0,
        "reaction_ms_p10_28d": 210.0,  # exact, linear interpolation: 200 + 0.1 * (300 - 200)
        "reaction_ms_stddev_28d": math.sqrt(5000),
        "aim_speed_p90_28d": 680.0,
        "levels_28d": 1.0,
        "level_max_lifetime": 2.0,
        "purchases_28d": 1.0,
        "spend_28d": 4.99,
        "purchases_lifetime": 2.0,
        "spend_lifetime": 14.98,
        "purchase_amount_mean_lifetime": 7.49,
    }
    for name, value in expected_a.items():
        assert a[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    starts = np.array([10, 3, 1 + 30 / 1440])  # days before T, inside 28 days
    gaps = -np.diff(starts)
    assert a["session_gap_cv_28d"] == pytest.approx(gaps.std(ddof=1) / gaps.mean(), rel=1e-9)


def test_edge_cases_have_defined_values(lake_settings: Settings) -> None:
    frame = build_features(lake_settings, T).set_index("player_id")
    b, c = frame.loc["b"], frame.loc["c"]
    # purchase-only: counts and sums are 0, means/ratios/percentiles/recency of what never happened missing
    for name in ("sessions_7d", "sessions_28d", "matches_28d", "levels_28d", "purchases_lifetime"):
        assert b[name] == (1.0 if name == "purchases_lifetime" else 0.0), name
    for name in ("sessions_trend_7d_vs_21d", "session_seconds_mean_28d", "session_gap_cv_28d", "accuracy_28d",
                 "kd_ratio_28d", "reaction_ms_p50_28d", "reaction_ms_stddev_28d", "days_since_last_session",
                 "matches_per_session_28d", "level_max_lifetime"):  # fmt: skip
        assert math.isnan(b[name]), name
    assert (b["tenure_days"], b["days_since_last_purchase"], b["spend_28d"]) == (2.0, 2.0, 19.99)
    # one event, 60 days ago: outside every window, still in the population
    assert (c["tenure_days"], c["days_since_last_session"], c["sessions_28d"]) == (60.0, 60.0, 0.0)
    assert math.isnan(c["days_since_last_purchase"]) and c["spend_lifetime"] == 0.0


def test_active_within_limits_the_population(lake_settings: Settings) -> None:
    assert list(build_features(lake_settings, T, active_within_days=30)["player_id"]) == ["a", "b"]
    assert list(build_features(lake_settings, T, active_within_days=2)["player_id"]) == [
        "a",
        "b",
    ]  # b: T - 2d
    assert build_features(lake_settings, T, active_within_days=1).empty


def test_cutoff_before_any_event_gives_an_empty_frame(lake_settings: Settings) -> None:
    frame = build_features(lake_settings, T - 100 * DAY)
    assert frame.empty and list(frame.columns[:2]) == ["player_id", "cutoff"]


def test_attribute_the_lake_never_saw_reads_as_missing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    events = [e for e in hand_events() if e["event_type"] != "match_end"]
    append_frame(LocalLake.from_settings(settings), pd.DataFrame(events), "no-matches")
    with caplog.at_level(logging.WARNING):
        frame = build_features(settings, T).set_index("player_id")
    assert frame["aim_speed_p90_28d"].isna().all() and (frame["matches_28d"] == 0).all()
    assert frame.loc["a", "sessions_28d"] == 3.0
    assert "'aim_speed' is not in the event table" in caplog.text


def test_a_user_adds_a_feature_for_their_own_attribute_with_yaml_only(
    lake_settings: Settings, tmp_path: Path
) -> None:
    definitions = tmp_path / "studio.yaml"
    definitions.write_text(
        "name: studio\n"
        "features:\n"
        "  - name: gem_spend\n    kind: sum\n    event_type: purchase\n    attribute: amount\n"
        "    where: [{attribute: item_id, op: eq, value: gems}]\n"
        "  - name: items_bought\n    kind: distinct_count\n    event_type: purchase\n    attribute: item_id\n"
        "  - name: cheap_purchases_7d\n    kind: count\n    event_type: purchase\n    window: 7d\n"
        "    where: [{attribute: amount, op: lt, value: 25}]\n"
        "  - name: hits_lookback\n    kind: sum\n    event_type: match_end\n    attribute: hits\n    window: lookback\n"
    )
    frame = build_features(lake_settings, T, feature_set=definitions, lookback_days=3).set_index("player_id")
    assert frame["gem_spend"].to_dict() == {"a": 9.99, "b": 0.0, "c": 0.0}
    assert frame["items_bought"].to_dict() == {"a": 2.0, "b": 1.0, "c": 0.0}
    assert frame["cheap_purchases_7d"].to_dict() == {"a": 0.0, "b": 1.0, "c": 0.0}
    assert frame.loc["a", "hits_lookback"] == 5.0  # only the match 2 days ago is within a 3-day lookback


def test_definition_of_the_wrong_type_for_the_lake(lake_settings: Settings, tmp_path: Path) -> None:
    definitions = tmp_path / "bad.yaml"
    definitions.write_text("features:\n  - {name: map_mean, kind: mean, attribute: map}\n")
    with pytest.raises(ConfigError, match="feature 'map_mean': attribute 'map' is a string"):
        build_features(lake_settings, T, feature_set=definitions)
    with pytest.raises(ConfigError, match="does not exist"):
        build_features(lake_settings, T, feature_set=tmp_path / "missing.yaml")


def test_empty_lake_is_a_data_error(settings: Settings) -> None:
    with pytest.raises(DataError, match="has no events"):
        build_features(settings, T)


@pytest.fixture
def labelled_settings(lake_settings: Settings) -> Settings:
    pd.DataFrame({"player_id": ["a", "b"], "is_inhuman": [True, False]}).to_parquet(
        lake_settings.ground_truth_path
    )
    (lake_settings.home / "labels").mkdir()
    bans = pd.DataFrame({"player_id": ["b", "c"], "label": [1, 1], "source": ["ban_list", "ban_list"]})
    bans.to_parquet(lake_settings.home / "labels" / "bans.parquet")
    return lake_settings


def test_training_set_labels(labelled_settings: Settings) -> None:
    frame = build_training_set(labelled_settings, [T], horizon_days=14).set_index("player_id")
    assert list(frame.index) == ["a", "b", "c"]
    # a: session at exactly T -> not churned; bought at T + 1d. b: active, no session after T -> churned.
    # c: not active in the 28-day lookback -> churn undefined; its purchase at T + 20d is past the horizon.
    assert frame["label_churn"].tolist() == [0, 1, pd.NA]
    assert frame["label_purchase"].tolist() == [1, 0, 0]
    assert frame["label_inhuman_play"].tolist() == [1, 1, 1]  # b: any source saying 1 wins
    assert str(frame["label_churn"].dtype) == "Int8" and "_active_in_lookback" not in frame.columns
    assert frame.loc["a", "sessions_28d"] == 3.0  # the session at T is a label event, not a feature event


def test_strategies_agree_and_horizon_must_be_covered(labelled_settings: Settings) -> None:
    cutoffs = [T - 7 * DAY, T]
    per_cutoff = build_training_set(labelled_settings, cutoffs, horizon_days=7)
    one_query = build_training_set(labelled_settings, cutoffs, horizon_days=7, strategy="one_query")
    pd.testing.assert_frame_equal(per_cutoff, one_query)
    assert per_cutoff.groupby("cutoff").size().tolist() == [2, 3]  # b's first event is 2 days before T
    with pytest.raises(DataError, match="need events until"):
        build_training_set(labelled_settings, [T + 15 * DAY], horizon_days=14)
    with pytest.raises(ConfigError, match="strategy"):
        build_training_set(labelled_settings, cutoffs, strategy="fastest")  # type: ignore[arg-type]


def test_bad_label_file_is_a_data_error(labelled_settings: Settings) -> None:
    pd.DataFrame({"player_id": ["a"], "label": ["banned"]}).to_parquet(
        labelled_settings.home / "labels" / "x.parquet"
    )
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        build_training_set(labelled_settings, [T])


def cli_app() -> typer.Typer:
    from playerguard.cli import _mount, app

    _mount()
    return app


def test_cli_build_training_set_and_sql(labelled_settings: Settings, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "features.parquet"
    result = runner.invoke(app, ["build", "--cutoff", "2026-03-01", "--out", str(out), "--snapshot"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 3 and "online snapshot" in result.output
    train = tmp_path / "train.parquet"
    args = ["training-set", "--cutoff-every", "7d", "--from", "2026-02-15", "--to", "2026-03-01",
            "--horizon", "7d", "--out", str(train)]  # fmt: skip
    result = runner.invoke(cli_app(), ["features", *args])  # mounted by the command line
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(train)["cutoff"].nunique() == 3
    result = runner.invoke(app, ["sql", "--cutoff", "2026-03-01T06:00:00+02:00", "--feature-set", "combat"])
    assert result.exit_code == 0 and "approx_percentile" in result.output
    assert "--   2: 2026-03-01 04:00:00.000" in result.output
    result = runner.invoke(app, ["build", "--cutoff", "2026-03-02", "--snapshot"])  # the snapshot alone
    assert result.exit_code == 0 and "online snapshot" in result.output and "wrote" not in result.output
    with sqlite3.connect(labelled_settings.home / "online" / "features.sqlite") as con:
        assert {row[0] for row in con.execute("SELECT cutoff FROM features")} == {"2026-03-02T00:00:00+00:00"}
    result = runner.invoke(app, ["build", "--cutoff", "2026-03-02"])
    assert isinstance(result.exception, ConfigError) and "--out FILE, --snapshot, or both" in str(
        result.exception
    )
    result = runner.invoke(app, ["build", "--cutoff", "yesterday", "--out", str(out)])
    assert isinstance(result.exception, ConfigError) and "invalid cutoff 'yesterday'" in str(result.exception)
    result = runner.invoke(
        cli_app(), ["features", "training-set", "--cutoffs", "2026-02-01", "--cutoff-every", "7d", "--out", str(out)]
    )
    assert isinstance(result.exception, ConfigError)
