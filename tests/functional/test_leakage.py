"""Point-in-time correctness: events at or after the cutoff never change a feature, events before the
cutoff never change a label (beyond who counts as active for churn)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from playerguard.features.api import build_features, build_training_set, load_feature_set
from playerguard.lake.base import append_frame
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate

START = datetime(2026, 1, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 1, 20, 13, 30, tzinfo=UTC)  # mid-day: the cutoff's partition holds both sides
LABEL_COLUMNS = ["label_churn", "label_purchase", "label_inhuman_play"]


@pytest.fixture(scope="module")
def game() -> pa.Table:
    return simulate(players=150, days=35, seed=21, start=START).events


def lake_with(settings: Settings, events: pa.Table) -> Settings:
    LocalLake.from_settings(settings).append_table(events)
    return settings


def future_copies(events: pa.Table, shift: timedelta, suffix: str) -> pa.Table:
    """Every event moved to [CUTOFF, ...), extreme attribute values included, with fresh ids."""
    frame = events.slice(0, 4000).to_pandas()
    frame["event_timestamp"] = CUTOFF + shift + (frame["event_timestamp"] - frame["event_timestamp"].min())
    frame.loc[0, "event_timestamp"] = CUTOFF  # exactly at the cutoff belongs to the future
    frame["event_id"] = frame["event_id"] + suffix
    for column in ("amount", "hits", "shots", "reaction_ms", "aim_speed", "session_seconds", "level"):
        frame[column] = frame[column] * 1000
    frame.loc[frame.index[:50], "player_id"] = "newcomer-" + frame.index[:50].astype(str)
    frame["event_date"] = frame["event_timestamp"].dt.strftime("%Y-%m-%d")
    return pa.Table.from_pandas(frame, schema=events.schema, preserve_index=False)


@pytest.mark.parametrize("feature_set", ["default", "combat"])
def test_events_at_or_after_the_cutoff_change_no_feature(
    settings: Settings, game: pa.Table, feature_set: str, tmp_path
) -> None:
    past = game.filter(pc.less(game["event_timestamp"], pa.scalar(CUTOFF, pa.timestamp("us", tz="UTC"))))
    lake_with(settings, past)
    before = build_features(settings, CUTOFF, feature_set=feature_set)
    assert len(before) > 100
    LocalLake.from_settings(settings).append_table(future_copies(game, timedelta(0), "-f0"))
    LocalLake.from_settings(settings).append_table(future_copies(game, timedelta(days=3), "-f3"))
    after = build_features(settings, CUTOFF, feature_set=feature_set)
    pd.testing.assert_frame_equal(before, after)


def test_training_set_features_ignore_the_future_and_labels_ignore_the_past(
    settings: Settings, game: pa.Table
) -> None:
    lake_with(settings, game)
    cutoffs = [CUTOFF - timedelta(days=7), CUTOFF]
    names = load_feature_set("default").feature_names
    base = build_training_set(settings, cutoffs, horizon_days=7, strategy="one_query")
    # More events in the label horizons: features stay, labels may move.
    LocalLake.from_settings(settings).append_table(future_copies(game, timedelta(hours=1), "-later"))
    with_future = build_training_set(settings, cutoffs, horizon_days=7, strategy="one_query")
    merged = base.merge(with_future, on=["player_id", "cutoff"], suffixes=("", "_new"))
    assert len(merged) == len(base)
    for name in names:
        pd.testing.assert_series_equal(merged[name], merged[f"{name}_new"], check_names=False)
    # More events just before the cutoff from players already active: labels stay, features move.
    active = base.loc[(base["cutoff"] == pd.Timestamp(CUTOFF)) & base["label_churn"].notna(), "player_id"]
    extra = pd.DataFrame(
        {"player_id": active, "event_type": "purchase", "event_timestamp": CUTOFF - timedelta(minutes=5),
         "game_id": "skyfall", "platform": "pc", "amount": 4.99, "item_id": "gems", "currency": "USD"}
    )  # fmt: skip
    append_frame(LocalLake.from_settings(settings), extra, "late-purchases")
    with_past = build_training_set(settings, cutoffs, horizon_days=7, strategy="one_query")
    at_cutoff = [frame.loc[frame["cutoff"] == pd.Timestamp(CUTOFF)].reset_index(drop=True)
                 for frame in (with_future, with_past)]  # fmt: skip
    pd.testing.assert_frame_equal(
        at_cutoff[0][["player_id", *LABEL_COLUMNS]], at_cutoff[1][["player_id", *LABEL_COLUMNS]]
    )
    changed = at_cutoff[1]["purchases_lifetime"] - at_cutoff[0]["purchases_lifetime"]
    assert (changed == 1).sum() == len(active) and (changed == 0).sum() == len(changed) - len(active)
    # (The earlier cutoff's horizon contains these purchases: its purchase labels rightly change.)
