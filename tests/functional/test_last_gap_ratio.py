"""last_gap_ratio through DuckDB on a hand-written lake: players with 0, 1, 2, 3 and more matching events,
a tie at the latest event, a zero mean gap and a `where` condition, against the pandas oracle and values
worked out by hand; events at or after the cutoff change nothing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from feature_oracle import oracle_features

from playerguard.features.api import build_features
from playerguard.features.spec import parse_feature_set
from playerguard.lake.base import append_frame
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings

T = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
FEATURES = parse_feature_set(
    {
        "features": [
            {"name": "last_gap_s", "kind": "last_gap_ratio", "event_type": "s", "window": "10d"},
            {"name": "gap_mean_s", "kind": "gap_mean", "event_type": "s", "window": "10d"},
            {"name": "last_gap_low_y", "kind": "last_gap_ratio", "where": [{"attribute": "y", "op": "lt", "value": 2}]},
            {"name": "gap_cv_other", "kind": "gap_cv", "event_type": "o", "window": "10d"},
        ]
    },
    default_name="last_gap",
)  # fmt: skip


def event(player: str, kind: str, days_before: float, y: float | None = 1.0) -> dict:
    return {"player_id": player, "event_type": kind, "event_timestamp": T - days_before * DAY, "game_id": "g",
            "platform": "pc", "y": y}  # fmt: skip


def hand_events() -> list[dict]:
    return [
        event("none", "o", 3, None),
        event("none", "o", 2, None),
        event("one", "s", 4),
        event("two", "s", 4),
        event("two", "s", 1),
        *(event("three", "s", d) for d in (9, 8, 5)),  # gaps 1, 3: 3 / 2
        # gaps in the window 2, 1, 1, 4 (mean 2): 4 / 2; the event 20 days back is outside the 10d window
        event("more", "s", 20),
        *(event("more", "s", d, y) for d, y in ((9, 1.0), (7, 5.0), (6, 1.0), (5, 1.0), (1, 1.0))),
        *(event("tied", "s", d) for d in (6, 4, 2, 2)),  # the latest time twice: the last gap is 0
        *(event("flat", "s", 3) for _ in range(3)),  # a zero mean gap
    ]


@pytest.fixture
def lake_settings(settings: Settings) -> Settings:
    append_frame(LocalLake.from_settings(settings), pd.DataFrame(hand_events()), "hand")
    return settings


def test_last_gap_ratio_equals_the_oracle_and_hand_values(lake_settings: Settings) -> None:
    got = build_features(lake_settings, T, feature_set=FEATURES)
    want = oracle_features(pd.DataFrame(hand_events()), FEATURES, T)
    assert got["player_id"].tolist() == want["player_id"].tolist()
    for name in FEATURES.feature_names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-9, err_msg=name)
    by_player = got.set_index("player_id")
    ratio = by_player["last_gap_s"]
    assert all(math.isnan(ratio[p]) for p in ("none", "one", "two", "flat"))
    assert ratio["three"] == pytest.approx(1.5) and ratio["more"] == pytest.approx(2.0)
    assert ratio["tied"] == 0.0 and by_player.loc["two", "gap_mean_s"] == pytest.approx(3.0)
    # y < 2 over all history: "more" keeps 20, 9, 6, 5, 1 days back (gaps 11, 3, 1, 4)
    assert by_player.loc["more", "last_gap_low_y"] == pytest.approx(4 / (19 / 4))
    assert math.isnan(by_player.loc["none", "last_gap_low_y"])


def test_events_at_or_after_the_cutoff_change_no_last_gap_ratio(lake_settings: Settings) -> None:
    before = build_features(lake_settings, T, feature_set=FEATURES)
    future = [event(p, "s", d) for p in ("two", "three", "more", "newcomer") for d in (0, -0.5, -3)]
    append_frame(LocalLake.from_settings(lake_settings), pd.DataFrame(future), "future")
    after = build_features(lake_settings, T, feature_set=FEATURES)
    pd.testing.assert_frame_equal(before, after)
    assert math.isnan(after.set_index("player_id").loc["two", "last_gap_s"])
