"""The endpoint's features from raw events equal the lake's for the same events: every kind of feature, a
condition on an envelope column, integers with gaps; both the frame and the rows `score_request` scores.
Events at or after the cutoff never count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from playerguard.features.api import build_features
from playerguard.features.spec import parse_feature_set
from playerguard.inference.sagemaker_inference import EventsFeaturizer
from playerguard.lake.base import append_frame
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings

START = datetime(2026, 1, 1, tzinfo=UTC)
FEATURES = parse_feature_set(
    {
        "features": [
            {"name": "n_all", "kind": "count"},
            {"name": "n_a_3d", "kind": "count", "event_type": "a", "window": "3d"},
            {"name": "sum_x_10d", "kind": "sum", "attribute": "x", "window": "10d"},
            {"name": "mean_x", "kind": "mean", "attribute": "x", "event_type": "a", "window": "lookback"},
            {"name": "max_y_3d", "kind": "max", "attribute": "y", "window": "3d"},
            {"name": "std_x", "kind": "stddev", "attribute": "x"},
            {"name": "tags", "kind": "distinct_count", "attribute": "tag"},
            {"name": "x_p75", "kind": "percentile", "attribute": "x", "quantile": 0.75, "window": "10d"},
            {"name": "red_share", "kind": "ratio", "window": "10d",
             "numerator": {"kind": "count", "where": [{"attribute": "tag", "op": "eq", "value": "red"}]},
             "denominator": {"kind": "count"}},
            {"name": "x_trend", "kind": "trend", "measure": "sum", "attribute": "x", "window": "36h", "baseline": "5d"},
            {"name": "since_b", "kind": "recency", "event_type": "b"},
            {"name": "first_c", "kind": "tenure", "event_type": "c"},
            {"name": "gap_a", "kind": "gap_cv", "event_type": "a", "window": "10d"},
            {"name": "gap_mean_a", "kind": "gap_mean", "event_type": "a"},
            {"name": "days_b", "kind": "active_days", "event_type": "b", "window": "10d"},
            {"name": "n_mobile", "kind": "count", "where": [{"attribute": "platform", "op": "eq", "value": "mobile"}]},
            {"name": "n_low_y", "kind": "count", "where": [{"attribute": "y", "op": "le", "value": 1}]},
        ]
    },
    default_name="events_path",
)  # fmt: skip
CUTOFFS = [datetime(2026, 1, 12, 9, 30, tzinfo=UTC), datetime(2026, 1, 21, tzinfo=UTC)]


def random_events(seed: int, players: int = 30, count: int = 1500) -> list[dict]:
    """Events of types a/b/c over 20 days as a request carries them: x a float, y a whole number, tag a
    colour, each sometimes absent or null; platform pc or mobile; some ties in time."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(np.round(rng.uniform(0, 20 * 86400, count), 3))
    seconds[1:4] = seconds[0]
    events = []
    for i, second in enumerate(seconds):
        stamp = START + timedelta(seconds=float(second))
        event = {
            "player_id": f"p{rng.zipf(1.6) % players:02d}",
            "event_type": str(rng.choice(["a", "b", "c"], p=[0.5, 0.3, 0.2])),
            "event_timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "x": None if rng.random() < 0.15 else float(rng.gamma(2.0, 10.0)),
            "tag": None if rng.random() < 0.2 else str(rng.choice(["red", "blue", "green"])),
            "game_id": "g",
            "platform": str(rng.choice(["pc", "mobile"])),
        }
        if rng.random() < 0.9:  # absent elsewhere: a column of whole numbers with gaps
            event["y"] = int(rng.integers(0, 6))
        events.append(event)
    return events


def _values(frame: pd.DataFrame) -> np.ndarray:
    return frame[list(FEATURES.feature_names)].to_numpy(dtype="float64")


@pytest.mark.parametrize("seed", [3, 4])
def test_features_from_request_events_equal_the_lakes(settings: Settings, seed: int) -> None:
    events = random_events(seed)
    append_frame(LocalLake.from_settings(settings), pd.DataFrame(events), f"random-{seed}")
    featurizer = EventsFeaturizer(FEATURES, lookback_days=4)
    for cutoff in CUTOFFS:
        from_lake = build_features(settings, cutoff, feature_set=FEATURES, lookback_days=4)
        from_request = featurizer(events, cutoff)
        assert from_request["player_id"].tolist() == from_lake["player_id"].tolist()
        # the lake reads its files in its own order: sums may differ in the last bit, no more
        np.testing.assert_allclose(_values(from_request), _values(from_lake), rtol=1e-12, atol=0)
        assert (from_request["n_mobile"] > 0).any() and from_request["gap_a"].notna().any()

        players, rows = featurizer.feature_rows(events, cutoff, [*FEATURES.feature_names, "not_a_feature"])
        order = np.argsort(players)  # rows come in the query's order; the frame's are sorted by player
        assert [players[i] for i in order] == from_request["player_id"].tolist()
        assert np.array_equal(rows[order, :-1], _values(from_request), equal_nan=True)
        assert np.isnan(rows[:, -1]).all()


def test_events_at_or_after_the_cutoff_never_count() -> None:
    featurizer = EventsFeaturizer(FEATURES, lookback_days=4)
    cutoff = CUTOFFS[0]
    events = random_events(5)
    before = [e for e in events if datetime.fromisoformat(e["event_timestamp"]) < cutoff]
    at = cutoff.isoformat().replace("+00:00", "Z")
    late = [
        {"player_id": "p00", "event_type": "a", "event_timestamp": at, "x": 1e6, "y": 0, "platform": "mobile"},
        {"player_id": "only_late", "event_type": "b", "event_timestamp": at},
    ]
    expected = featurizer(before, cutoff)
    got = featurizer(events + late, cutoff)
    assert "only_late" not in got["player_id"].tolist()
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    players, rows = featurizer.feature_rows(events + late, cutoff, FEATURES.feature_names)
    order = np.argsort(players)
    assert [players[i] for i in order] == expected["player_id"].tolist()
    assert np.array_equal(rows[order], _values(expected), equal_nan=True)


def test_an_event_without_game_id_counts_as_ingest_stores_it(settings: Settings) -> None:
    """A definition on game_id sees a request's event without one as the lake sees it after ingest."""
    from playerguard.lake.envelope import ENVELOPE_DEFAULTS

    by_game = parse_feature_set(
        {"features": [{"name": "n_default_game", "kind": "count",
                       "where": [{"attribute": "game_id", "op": "eq", "value": ENVELOPE_DEFAULTS["game_id"]}]}]},
        default_name="by_game",
    )  # fmt: skip
    events = [{"player_id": "p1", "event_type": "a", "event_timestamp": f"2026-01-0{day}T10:00:00Z"} for day in (1, 2)]
    events.append({"player_id": "p1", "event_type": "a", "event_timestamp": "2026-01-03T10:00:00Z", "game_id": None})
    append_frame(LocalLake.from_settings(settings), pd.DataFrame(events[:2]), "no-game-id")
    cutoff = datetime(2026, 1, 5, tzinfo=UTC)
    from_lake = build_features(settings, cutoff, feature_set=by_game)
    from_request = EventsFeaturizer(by_game)(events, cutoff)
    assert from_lake["n_default_game"].tolist() == [2.0]
    assert from_request["n_default_game"].tolist() == [3.0]
