"""DuckDB's features equal the pure-pandas reference (tests/feature_oracle.py) on generated data: the
simulator with the default set, a random generator with every kind and operator, and real CS2 matches
with the combat set. Percentiles are exact locally, so the tolerance is floating-point only."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from feature_oracle import oracle_features

from playerguard.features.api import build_features, build_training_set, load_feature_set
from playerguard.features.spec import FeatureSet, parse_feature_set
from playerguard.lake.base import append_frame
from playerguard.lake.cs2 import default_data_dir, load_cs2cd
from playerguard.lake.local import LocalLake
from playerguard.settings import Settings
from playerguard.simulator.game import simulate

START = datetime(2026, 1, 1, tzinfo=UTC)


def assert_matches_oracle(got: pd.DataFrame, want: pd.DataFrame, names: list[str]) -> None:
    assert got["player_id"].tolist() == want["player_id"].tolist()
    assert len(got) > 0
    for name in names:
        np.testing.assert_allclose(
            got[name].to_numpy(), want[name].to_numpy(), rtol=1e-9, atol=1e-7, err_msg=name
        )


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pd.DataFrame]:
    """A simulated game in a lake (read-only for the tests here) and as a frame for the oracle."""
    events = simulate(players=250, days=40, seed=5, start=START).events
    settings = Settings(home=tmp_path_factory.mktemp("simulated"))
    LocalLake.from_settings(settings).append_table(events)
    return settings, events.to_pandas()


@pytest.mark.parametrize(
    ("cutoff", "active_within"),
    [(datetime(2026, 2, 3, 7, 45, tzinfo=UTC), None), (datetime(2026, 1, 4, tzinfo=UTC), None),
     (datetime(2026, 2, 10, tzinfo=UTC), 5)],
)  # fmt: skip
def test_default_set_on_simulated_game(
    simulated: tuple[Settings, pd.DataFrame], cutoff: datetime, active_within: int | None
) -> None:
    settings, events = simulated
    fs = load_feature_set("default")
    got = build_features(settings, cutoff, active_within_days=active_within)
    want = oracle_features(events, fs, cutoff, active_within_days=active_within)
    assert_matches_oracle(got, want, fs.feature_names)
    assert got["session_gap_cv_28d"].notna().any() and got["reaction_ms_p10_28d"].notna().any()


def test_one_query_for_all_cutoffs_equals_the_oracle_at_each(
    simulated: tuple[Settings, pd.DataFrame],
) -> None:
    settings, events = simulated
    fs = load_feature_set("default")
    cutoffs = [datetime(2026, 1, 20, tzinfo=UTC), datetime(2026, 1, 27, 12, tzinfo=UTC)]
    train = build_training_set(settings, cutoffs, horizon_days=7, strategy="one_query")
    for cutoff in cutoffs:
        got = train.loc[train["cutoff"] == pd.Timestamp(cutoff)].reset_index(drop=True)
        assert_matches_oracle(got, oracle_features(events, fs, cutoff), fs.feature_names)


EVERY_KIND = parse_feature_set(
    {
        "features": [
            {"name": "n_all", "kind": "count"},
            {"name": "n_a_12h", "kind": "count", "event_type": "a", "window": "12h"},
            {"name": "n_ab_3d", "kind": "count", "event_type": ["a", "b"], "window": "3d"},
            {"name": "sum_x_10d", "kind": "sum", "attribute": "x", "window": "10d"},
            {"name": "mean_x_lookback", "kind": "mean", "event_type": "a", "attribute": "x", "window": "lookback"},
            {"name": "min_y", "kind": "min", "attribute": "y", "where": [{"attribute": "tag", "op": "ne", "value": "red"}]},
            {"name": "max_y_3d", "kind": "max", "attribute": "y", "window": "3d"},
            {"name": "std_x", "kind": "stddev", "attribute": "x", "event_type": "b"},
            {"name": "tags", "kind": "distinct_count", "attribute": "tag"},
            {"name": "ys_10d", "kind": "distinct_count", "attribute": "y", "window": "10d"},
            {"name": "x_p25", "kind": "percentile", "attribute": "x", "quantile": 0.25, "window": "10d"},
            {"name": "x_p75", "kind": "percentile", "attribute": "x", "quantile": 0.75, "window": "10d"},
            {"name": "y_p50_c", "kind": "percentile", "attribute": "y", "quantile": 0.5, "event_type": "c"},
            {"name": "red_share", "kind": "ratio", "window": "10d",
             "numerator": {"kind": "count", "where": [{"attribute": "tag", "op": "eq", "value": "red"}]},
             "denominator": {"kind": "count"}},
            {"name": "x_per_b", "kind": "ratio",
             "numerator": {"kind": "sum", "attribute": "x", "where": [{"attribute": "y", "op": "ge", "value": 3}]},
             "denominator": {"kind": "count", "event_type": "b"}},
            {"name": "x_trend", "kind": "trend", "measure": "sum", "attribute": "x", "window": "36h", "baseline": "5d"},
            {"name": "a_trend", "kind": "trend", "event_type": "a", "window": "3d", "baseline": "7d"},
            {"name": "since_big_y", "kind": "recency", "where": [{"attribute": "y", "op": "gt", "value": 4}]},
            {"name": "since_c_10d", "kind": "recency", "event_type": "c", "window": "10d"},
            {"name": "first_b", "kind": "tenure", "event_type": "b"},
            {"name": "gap_a", "kind": "gap_cv", "event_type": "a", "window": "10d"},
            {"name": "gap_low_y", "kind": "gap_cv", "where": [{"attribute": "y", "op": "lt", "value": 2}]},
            {"name": "gap_mean_a", "kind": "gap_mean", "event_type": "a", "window": "10d"},
            {"name": "gap_mean_c", "kind": "gap_mean", "event_type": "c"},
            {"name": "last_gap_a", "kind": "last_gap_ratio", "event_type": "a", "window": "10d"},
            {"name": "last_gap_low_y", "kind": "last_gap_ratio", "where": [{"attribute": "y", "op": "lt", "value": 2}]},
            {"name": "days_b_3d", "kind": "active_days", "event_type": "b", "window": "3d"},
            {"name": "days_red", "kind": "active_days", "where": [{"attribute": "tag", "op": "eq", "value": "red"}]},
            {"name": "n_small", "kind": "count", "where": [{"attribute": "y", "op": "le", "value": 1}]},
            {"name": "n_tags_in", "kind": "count", "where": [{"attribute": "tag", "op": "in", "value": ["red", "blue"]}]},
            {"name": "n_not_in", "kind": "count", "where": [{"attribute": "y", "op": "not_in", "value": [0, 5]}]},
        ]
    },
    default_name="every_kind",
)  # fmt: skip


def random_events(seed: int, players: int = 40, events: int = 3000) -> pd.DataFrame:
    """Events of types a/b/c over 20 days; x continuous, y small integers, tag a colour; all sometimes null."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, 20 * 86400, events))
    frame = pd.DataFrame(
        {
            "player_id": np.array([f"p{i:02d}" for i in range(players)])[rng.zipf(1.6, events) % players],
            "event_type": rng.choice(["a", "b", "c"], events, p=[0.5, 0.3, 0.2]),
            "event_timestamp": pd.Timestamp(START) + pd.to_timedelta(np.round(seconds, 3), unit="s"),
            "game_id": "g",
            "platform": "pc",
            "x": np.where(rng.random(events) < 0.15, np.nan, rng.gamma(2.0, 10.0, events)),
            "y": np.where(rng.random(events) < 0.1, np.nan, rng.integers(0, 6, events).astype(float)),
            "tag": pd.Series(rng.choice(["red", "blue", "green"], events)).where(
                rng.random(events) > 0.2, None
            ),
        }
    )
    frame.loc[frame.index[:3], "event_timestamp"] = frame["event_timestamp"].iloc[3]  # ties between events
    return frame


@pytest.mark.parametrize("seed", [1, 2])
def test_every_kind_and_operator_on_random_events(settings: Settings, seed: int) -> None:
    events = random_events(seed)
    append_frame(LocalLake.from_settings(settings), events, f"random-{seed}")
    for cutoff in (datetime(2026, 1, 15, 9, 30, tzinfo=UTC), datetime(2026, 1, 22, tzinfo=UTC)):
        got = build_features(settings, cutoff, feature_set=EVERY_KIND, lookback_days=4)
        want = oracle_features(events, EVERY_KIND, cutoff, lookback_days=4)
        assert_matches_oracle(got, want, EVERY_KIND.feature_names)
        for name in EVERY_KIND.feature_names:  # each feature is defined for someone (no vacuous match)
            assert got[name].notna().any(), name


def test_players_sharing_a_key_fall_back_to_the_exact_query(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = random_events(3)
    append_frame(LocalLake.from_settings(settings), events, "random-3")
    # Every player id has 3 characters: one key for all, so the keyed query's values are unusable.
    monkeypatch.setattr("playerguard.features.compiler.PLAYER_KEY", "length(player_id)")
    cutoff = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
    got = build_features(settings, cutoff, feature_set=EVERY_KIND, lookback_days=4)
    want = oracle_features(events, EVERY_KIND, cutoff, lookback_days=4)
    assert_matches_oracle(got, want, EVERY_KIND.feature_names)


CS2_DIR = default_data_dir()


@pytest.mark.skipif(not (CS2_DIR / "events.parquet").exists(), reason=f"CS2CD not found at {CS2_DIR}")
def test_combat_set_on_real_cs2_matches(settings: Settings) -> None:
    data = load_cs2cd(CS2_DIR, match_ids=["no_cheater_0", "with_cheater_1"])
    LocalLake.from_settings(settings).append_table(data.to_arrow())
    fs: FeatureSet = load_feature_set("combat")
    cutoff = datetime(2026, 1, 2, tzinfo=UTC)
    got = build_features(settings, cutoff, feature_set=fs)
    assert_matches_oracle(got, oracle_features(data.events, fs, cutoff), fs.feature_names)
    assert len(got) == 20 and got["hits_per_shot"].dropna().between(0, 1).all()
    # Half way through the matches, only the first half counts.
    midway = datetime(2026, 1, 1, 0, 20, tzinfo=UTC)
    early = build_features(settings, midway, feature_set=fs)
    assert_matches_oracle(early, oracle_features(data.events, fs, midway), fs.feature_names)
    assert (
        early["shots"].to_numpy() <= got.set_index("player_id").loc[early["player_id"], "shots"].to_numpy()
    ).all()


@pytest.mark.parametrize("active_within", [None, 2])
def test_one_scan_over_an_in_memory_table_equals_the_oracle(active_within: int | None) -> None:
    """The form a request's events are queried in (`one_scan`: each row's segment computed, no partitions)
    gives the oracle's values, with all history and (active_within) without."""
    import duckdb
    import pyarrow as pa

    from playerguard.features.compiler import compile_features
    from playerguard.features.engines import transpile_to_duckdb

    events = random_events(4)
    table = pa.Table.from_pandas(events.assign(event_timestamp=events["event_timestamp"].dt.tz_localize(None)))
    columns = {"x": "double", "y": "double", "tag": "string", "game_id": "string", "platform": "string"}
    cutoffs = [datetime(2026, 1, 15, 9, 30, tzinfo=UTC), datetime(2026, 1, 22, tzinfo=UTC)]
    query = compile_features(EVERY_KIND, cutoffs, lookback_days=4, active_within_days=active_within,
                             columns=columns, database="temp", table="events", one_scan=True)  # fmt: skip
    assert query.sql.count('FROM "temp"."events"') == 2  # one scan per cutoff
    with duckdb.connect() as connection:
        connection.register("events", table)
        got = query.finalize(connection.execute(transpile_to_duckdb(query.sql), list(query.params)).df())
    for cutoff in cutoffs:
        at = got.loc[got["cutoff"] == pd.Timestamp(cutoff)].reset_index(drop=True)
        want = oracle_features(events, EVERY_KIND, cutoff, lookback_days=4, active_within_days=active_within)
        assert_matches_oracle(at, want, EVERY_KIND.feature_names)
