"""The telemetry simulator: determinism, schema, ground truth it must respect, and its oracles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from playerguard.errors import ConfigError
from playerguard.lake.envelope import ENVELOPE_SCHEMA
from playerguard.simulator.game import (
    HUMAN_MAX_AIM_SPEED,
    HUMAN_MAX_HEADSHOT_RATE,
    HUMAN_MIN_REACTION_MS,
    simulate,
    true_churn_probability,
    true_purchase_probability,
)
from playerguard.simulator.model import LOCAL_HOUR_WEIGHTS
from playerguard.simulator.strings import consecutive_ids, sparse_from_codes
from playerguard.simulator.table import _time_order

START = datetime(2026, 1, 1, tzinfo=UTC)
ATTRIBUTES = [
    ("aim_speed", pa.float64()),
    ("amount", pa.float64()),
    ("currency", pa.string()),
    ("deaths", pa.float64()),
    ("headshots", pa.float64()),
    ("hits", pa.float64()),
    ("item_id", pa.string()),
    ("kills", pa.float64()),
    ("level", pa.float64()),
    ("map", pa.string()),
    ("match_seconds", pa.float64()),
    ("reaction_ms", pa.float64()),
    ("result", pa.string()),
    ("session_seconds", pa.float64()),
    ("shots", pa.float64()),
]


@pytest.fixture(scope="module")
def game():
    return simulate(players=1500, days=28, seed=11)


@pytest.fixture(scope="module")
def frame(game) -> pd.DataFrame:
    return game.events.to_pandas()


@pytest.fixture(scope="module")
def truth(game) -> pd.DataFrame:
    return game.ground_truth.set_index("player_id")


def _day_start(day: pd.Series) -> pd.Series:
    return pd.Timestamp(START) + pd.to_timedelta(day.astype("float64"), unit="D")


def test_same_seed_same_game_and_other_seed_other_game():
    first, again, other = simulate(300, 10, seed=5), simulate(300, 10, seed=5), simulate(300, 10, seed=6)
    assert first.events.equals(again.events)
    pd.testing.assert_frame_equal(first.ground_truth, again.ground_truth)
    assert not first.events.equals(other.events)
    assert not first.ground_truth["archetype"].equals(other.ground_truth["archetype"])


def test_schema_is_envelope_then_sorted_attributes_then_event_date(game):
    schema = game.events.schema
    assert list(schema)[:8] == list(ENVELOPE_SCHEMA)
    assert [(f.name, f.type) for f in list(schema)[8:-1]] == ATTRIBUTES
    assert (schema[-1].name, schema[-1].type) == ("event_date", pa.string())


def _values(table: pa.Table, column: str) -> set:
    return set(pc.unique(table[column]).to_pylist())


def test_events_are_sorted_with_unique_ids_and_consistent_dates(game):
    events = game.events
    assert events.column("event_id").num_chunks >= 2  # several chunks, so their seams are checked too
    assert pc.count_distinct(events["event_id"]).as_py() == events.num_rows
    assert pc.all(pc.starts_with(events["event_id"], "sim-11-")).as_py()
    stamps = events["event_timestamp"].to_numpy()
    assert (stamps[1:] >= stamps[:-1]).all()
    assert pc.all(pc.equal(pc.strftime(events["event_timestamp"], "%Y-%m-%d"), events["event_date"])).as_py()
    assert _values(events, "event_type") == {
        "session_start",
        "session_end",
        "match_end",
        "purchase",
        "level_up",
    }
    assert _values(events, "platform") <= {"pc", "ps5", "xbox", "ios", "android"}
    assert _values(events, "game_id") == {"skyfall"}
    for column in ("event_id", "event_type", "player_id", "session_id", "app_version"):
        assert events[column].null_count == 0, column


def test_attributes_are_carried_only_by_their_event_types(game, frame):
    events = game.events
    carriers = {
        "session_seconds": {"session_end"},
        "amount": {"purchase"},
        "item_id": {"purchase"},
        "currency": {"purchase"},
        "level": {"level_up"},
        "shots": {"match_end"},
        "reaction_ms": {"match_end"},
        "map": {"match_end"},
        "result": {"match_end"},
    }
    for column, types in carriers.items():
        carried = pc.is_in(events["event_type"], pa.array(sorted(types)))
        assert pc.all(pc.equal(pc.is_valid(events[column]), carried)).as_py(), column
    assert _values(events.filter(pc.equal(events["event_type"], "purchase")), "currency") == {"USD"}
    assert _values(events, "result") == {"win", "loss", None}
    matches = frame[frame["event_type"] == "match_end"]
    assert (matches["headshots"] <= matches["hits"]).all() and (matches["hits"] <= matches["shots"]).all()
    levels = frame[frame["event_type"] == "level_up"]
    assert (levels.groupby("player_id")["level"].diff().dropna() > 0).all()  # each level reached once
    assert levels["level"].min() >= 2


def test_every_event_lies_within_its_session(frame):
    bounds = frame.groupby("session_id").agg(
        first=("event_timestamp", "min"), last=("event_timestamp", "max"), player=("player_id", "nunique")
    )
    starts = frame[frame["event_type"] == "session_start"].set_index("session_id")["event_timestamp"]
    ends = frame[frame["event_type"] == "session_end"].set_index("session_id")
    assert starts.index.is_unique and len(starts) == len(bounds) == len(ends)
    assert (bounds["player"] == 1).all()
    assert (bounds["first"] == starts.reindex(bounds.index)).all()
    assert (bounds["last"] == ends["event_timestamp"].reindex(bounds.index)).all()
    seconds = (ends["event_timestamp"] - starts.reindex(ends.index)).dt.total_seconds()
    np.testing.assert_allclose(ends["session_seconds"], seconds, atol=1e-5)


def test_no_play_before_joining_or_after_churning(frame, truth):
    events = frame.join(truth[["join_day", "churn_day"]], on="player_id")
    assert (events["event_timestamp"] >= _day_start(events["join_day"])).all()
    churned = events[events["churn_day"].notna()]
    started = churned[churned["event_type"] == "session_start"]
    assert (started["event_timestamp"] < _day_start(started["churn_day"])).all()
    session_start = started.set_index("session_id")["event_timestamp"]
    assert churned["session_id"].isin(session_start.index).all()  # no event of a session begun after churn
    assert truth["churn_day"].notna().sum() > 100
    assert (truth.loc[truth["archetype"] == "churner", "churn_day"].notna()).mean() > 0.2
    assert truth.loc[truth["archetype"] != "churner", "churn_day"].notna().sum() > 20  # the quitting hazard


def _per_player_aim(frame: pd.DataFrame) -> pd.DataFrame:
    matches = frame[frame["event_type"] == "match_end"]
    stats = matches.groupby("player_id").agg(
        hits=("hits", "sum"),
        headshots=("headshots", "sum"),
        reaction=("reaction_ms", "median"),
        aim=("aim_speed", "median"),
        matches=("hits", "size"),
    )
    stats["headshot_rate"] = stats["headshots"] / stats["hits"]
    return stats


def test_cheaters_beyond_human_limits_and_humans_within(frame, truth):
    kind = truth["archetype"]
    human = ~truth["is_inhuman"]
    assert (truth.loc[human, "mean_headshot_rate"] <= HUMAN_MAX_HEADSHOT_RATE).all()
    assert (truth.loc[human, "mean_reaction_ms"] >= HUMAN_MIN_REACTION_MS).all()
    assert (truth.loc[human, "mean_aim_speed"] <= HUMAN_MAX_AIM_SPEED).all()
    for cheat, margin in (("blatant_cheater", 0.2), ("closet_cheater", 0.0)):
        chosen = truth[kind == cheat]
        assert (chosen["mean_headshot_rate"] > HUMAN_MAX_HEADSHOT_RATE + margin).all()
        assert (chosen["mean_reaction_ms"] < HUMAN_MIN_REACTION_MS * (1 - margin)).all()
        assert (chosen["mean_aim_speed"] > HUMAN_MAX_AIM_SPEED * (1 + 2 * margin)).all()
    # ... and what the events show, for players with enough shooting to measure
    stats = _per_player_aim(frame).join(truth[["archetype", "is_inhuman"]])
    measured = stats[stats["hits"] >= 400]
    humans = measured[~measured["is_inhuman"]]
    assert len(humans) > 300
    assert humans["headshot_rate"].max() < HUMAN_MAX_HEADSHOT_RATE
    assert humans["reaction"].min() > HUMAN_MIN_REACTION_MS
    blatant = measured[measured["archetype"] == "blatant_cheater"]
    closet = measured[measured["archetype"] == "closet_cheater"]
    assert len(blatant) > 5 and len(closet) > 20
    assert blatant["headshot_rate"].min() > HUMAN_MAX_HEADSHOT_RATE + 0.15
    assert blatant["reaction"].max() < HUMAN_MIN_REACTION_MS / 1.5
    # closet cheaters: beyond the limits on the whole, though their noisy records stray back across
    assert (closet["reaction"] < HUMAN_MIN_REACTION_MS).mean() > 0.8
    assert (closet["headshot_rate"] > HUMAN_MAX_HEADSHOT_RATE).mean() > 0.8
    assert closet["headshot_rate"].median() < blatant["headshot_rate"].min()
    # match by match, closet cheaters overlap the best human matches a little, blatant ones never
    matches = frame[frame["event_type"] == "match_end"].join(truth["archetype"], on="player_id")
    rate = matches["headshots"] / matches["hits"]
    best_human = rate[~matches["archetype"].isin(["bot", "closet_cheater", "blatant_cheater"])].quantile(0.99)
    assert 0.05 < (rate[matches["archetype"] == "closet_cheater"] <= best_human).mean() < 0.6
    assert (rate[matches["archetype"] == "blatant_cheater"] <= best_human).mean() < 0.01


def test_bots_keep_a_clockwork_schedule_and_steady_aim(frame, truth):
    starts = frame[frame["event_type"] == "session_start"]
    gaps = starts.groupby("player_id")["event_timestamp"].diff().dt.total_seconds()
    by_player = gaps.groupby(starts["player_id"]).agg(["mean", "std", "count"])
    by_player = by_player[by_player["count"] >= 5].join(truth["archetype"])
    variation = (by_player["std"] / by_player["mean"]).groupby(by_player["archetype"]).median()
    assert variation["bot"] < 0.05
    assert variation.drop("bot").min() > 0.5
    stats = _per_player_aim(frame).join(truth["archetype"])
    matches_per_player = stats.groupby("archetype")["matches"].median()
    assert matches_per_player["bot"] > 3 * matches_per_player.drop("bot").max()
    night = starts[starts["player_id"].map(truth["archetype"]) == "bot"]["event_timestamp"].dt.hour
    assert night.nunique() == 24


def test_humans_play_mostly_in_their_evening(frame, truth):
    starts = frame[frame["event_type"] == "session_start"].join(
        truth[["utc_offset_hours", "is_bot"]], on="player_id"
    )
    starts = starts[~starts["is_bot"]]
    local_hour = (starts["event_timestamp"].dt.hour + starts["utc_offset_hours"]) % 24
    assert local_hour.between(18, 22).mean() > 3 * local_hour.between(2, 6).mean()


def test_whales_spend_most_and_bots_never_buy(frame, truth):
    spend = frame[frame["event_type"] == "purchase"].groupby("player_id")["amount"].sum()
    spend = spend.reindex(truth.index, fill_value=0.0).groupby(truth["archetype"]).mean()
    assert spend["whale"] > 5 * spend.drop("whale").max()
    assert spend["bot"] == 0
    assert (truth.loc[truth["is_bot"], "purchase_rate"] == 0).all()
    assert truth.groupby("archetype")["purchase_rate"].mean().idxmax() == "whale"


def _labels(
    frame: pd.DataFrame, players: pd.Index, cutoff: datetime, horizon: int
) -> tuple[pd.Series, pd.Series]:
    window = frame[
        (frame["event_timestamp"] >= cutoff) & (frame["event_timestamp"] < cutoff + timedelta(days=horizon))
    ]
    played = players.isin(window.loc[window["event_type"] == "session_start", "player_id"])
    bought = players.isin(window.loc[window["event_type"] == "purchase", "player_id"])
    return pd.Series(~played, index=players), pd.Series(bought, index=players)


@pytest.mark.parametrize(
    ("cutoff", "horizon"),
    [(datetime(2026, 1, 15, tzinfo=UTC), 7), (datetime(2026, 1, 12, 13, 37, tzinfo=UTC), 3)],
)
def test_oracles_match_the_label_rates(game, frame, truth, cutoff, horizon):
    churn = true_churn_probability(game.ground_truth, cutoff, horizon)
    purchase = true_purchase_probability(game.ground_truth, cutoff, horizon)
    assert churn.index.equals(pd.Index(game.ground_truth["player_id"], name="player_id"))
    assert churn.between(0, 1).all() and purchase.between(0, 1).all()
    no_session, bought = _labels(frame, truth.index, cutoff, horizon)
    known = truth["join_day"] <= (cutoff - START).days
    for label, oracle in ((no_session, churn), (bought, purchase)):
        p, y = oracle[known], label[known]
        z = (y.sum() - p.sum()) / np.sqrt((p * (1 - p)).sum())
        assert abs(z) < 4, (label.name, y.mean(), p.mean())
        # the oracle ranks: players it calls likelier have the label far more often
        high = p > p.median()
        assert y[high].mean() > 2 * y[~high].mean()


def test_oracles_for_players_already_gone_or_not_yet_arrived(game, truth):
    cutoff = datetime(2026, 1, 20, 12, tzinfo=UTC)
    churn = true_churn_probability(game.ground_truth, cutoff, 7)
    purchase = true_purchase_probability(game.ground_truth, cutoff, 7)
    gone = truth["churn_day"].notna() & (truth["churn_day"] <= 19)
    assert gone.sum() > 50
    assert (churn[gone] == 1).all() and (purchase[gone] == 0).all()
    bots = truth["is_bot"] & (truth["join_day"] <= 19)
    assert (churn[bots] == 0).all() and (purchase[truth["is_bot"]] == 0).all()
    future = truth["join_day"] >= 27
    assert (churn[future] == 1).all() and (purchase[future] == 0).all()
    longer = true_churn_probability(game.ground_truth, cutoff, 14)
    assert (longer <= churn + 1e-12).all()  # a longer window can only hold more sessions


def _players(**columns) -> pd.DataFrame:
    """A hand-made ground truth: humans joining on day 0 with no decline or quitting, unless overridden."""
    count = len(next(iter(columns.values())))
    base = {
        "player_id": [f"p{i}" for i in range(count)],
        "is_bot": False,
        "join_day": 0,
        "decline_day": pd.NA,
        "scheduled_churn_day": pd.NA,
        "quit_day": pd.NA,
        "quit_hazard": 0.0,
        "session_rate": 2.0,
        "purchase_intent": 0.0,
        "utc_offset_hours": 0,
        "bot_period_seconds": np.nan,
        "bot_phase_seconds": np.nan,
        "bot_jitter_seconds": np.nan,
        "period_start": pd.Timestamp(START),
    }
    frame = pd.DataFrame({**base, **columns}, index=range(count))
    for column in ("decline_day", "scheduled_churn_day", "quit_day"):
        frame[column] = frame[column].astype("Int64")
    return frame


def test_churn_oracle_integrates_the_quitting_hazard_and_the_decline():
    # Days 4 and 5 are Monday 5 and Tuesday 6 January: weekdays, so 2 sessions a day are expected.
    players = _players(quit_hazard=[0.2, 0.0], decline_day=[pd.NA, 4], scheduled_churn_day=[pd.NA, 8])
    churn = true_churn_probability(players, START + timedelta(days=4), 2)
    # quits at the start of day 5 (probability 0.2), else plays both days
    assert churn.iloc[0] == pytest.approx(0.2 * np.exp(-2.0) + 0.8 * np.exp(-4.0), rel=1e-12)
    # declining over days 4..7 at 4/5, 3/5, 2/5, 1/5 of the normal rate
    assert churn.iloc[1] == pytest.approx(np.exp(-2.0 * (0.8 + 0.6)), rel=1e-12)


def test_bot_churn_oracle_is_exact_at_the_edge_of_the_jitter():
    bot = _players(
        is_bot=[True],
        join_day=[2],
        bot_period_seconds=[21600.0],
        bot_phase_seconds=[3600.0],
        bot_jitter_seconds=[60.0],
        session_rate=[4.0],
    )
    first_session = 2 * 86400 + 3600  # nominal; jittered uniformly by +-60 s
    cutoff = START + timedelta(seconds=first_session + 30 - 86400)  # the window ends 30 s after it
    assert true_churn_probability(bot, cutoff, 1).iloc[0] == pytest.approx(0.25, rel=1e-12)
    assert true_purchase_probability(bot, cutoff, 1).iloc[0] == 0


def test_purchase_oracle_counts_shop_purchases_that_straddle_the_window_edges():
    intent = 0.5
    player = _players(session_rate=[3.0], purchase_intent=[intent])
    cutoff = datetime(2026, 1, 5, 20, tzinfo=UTC)  # Monday, 20:00 UTC (the player's local time)
    # Shop purchases land 10..110 s after a session starts. Sessions starting 10..110 s before either
    # edge of the window buy inside it with a chance rising (or falling) linearly between 0 and 1.
    per_second = 3.0 * (LOCAL_HOUR_WEIGHTS[19] / LOCAL_HOUR_WEIGHTS.sum()) / 3600  # both strips: 19:58-19:59
    buys_somewhere = 1 - np.exp(-intent)
    inner = 3.0 * buys_somewhere - per_second * 100 * buys_somewhere
    strip = per_second * 100 * (1 - buys_somewhere / intent)
    expected = 1 - np.exp(-(inner + 2 * strip))
    assert true_purchase_probability(player, cutoff, 1).iloc[0] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"players": 0}, "players"),
        ({"days": 0}, "days"),
        ({"players": 2.5}, "players"),
        ({"seed": -1}, "seed"),
        ({"start": datetime(2026, 1, 1)}, "timezone"),
        ({"start": datetime(2026, 1, 1, 6, tzinfo=UTC)}, "midnight"),
        ({"game_id": ""}, "game_id"),
        ({"archetype_shares": {"wizard": 1.0}}, "wizard"),
        ({"archetype_shares": {"casual": -1.0, "core": 2.0}}, "shares"),
    ],
)
def test_invalid_arguments_raise_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message) as raised:
        simulate(**kwargs)
    assert "\n" not in str(raised.value)


def test_oracles_reject_bad_windows(game):
    with pytest.raises(ConfigError, match="horizon_days"):
        true_churn_probability(game.ground_truth, datetime(2026, 1, 5, tzinfo=UTC), 0)
    with pytest.raises(ConfigError, match="timezone"):
        true_purchase_probability(game.ground_truth, datetime(2026, 1, 5), 7)
    with pytest.raises(ConfigError, match="lacks"):
        true_churn_probability(
            game.ground_truth.drop(columns=["quit_hazard"]), datetime(2026, 1, 5, tzinfo=UTC), 7
        )


def test_archetype_mix_is_configurable():
    only = simulate(200, 5, seed=1, archetype_shares={"bot": 1.0}).ground_truth
    assert (only["archetype"] == "bot").all() and only["is_inhuman"].all()
    mixed = simulate(2000, 3, seed=1).ground_truth["archetype"].value_counts(normalize=True)
    assert mixed["casual"] == pytest.approx(0.40, abs=0.04)
    assert mixed["bot"] == pytest.approx(0.04, abs=0.02)


def test_time_order_is_a_stable_argsort_whichever_way_it_sorts():
    rng = np.random.default_rng(3)
    narrow = rng.integers(0, 1000, 5000)  # many ties: the fast unique-key sort
    wide = rng.integers(0, 2**60, 5000)  # too wide for the key: the stable argsort
    for micros in (narrow, wide, narrow[:1], narrow[:0]):
        np.testing.assert_array_equal(_time_order(micros), np.argsort(micros, kind="stable"))


@pytest.mark.parametrize(("first", "count"), [(0, 0), (0, 1), (998, 5), (12_345_678, 2500)])
def test_consecutive_ids_are_zero_padded_numbers(first, count):
    ids = consecutive_ids("sim-7-", first, count)
    ids.validate(full=True)
    assert ids.to_pylist() == [f"sim-7-{n:010d}" for n in range(first, first + count)]


def test_sparse_strings_look_up_only_present_rows():
    rng = np.random.default_rng(4)
    codes, present = rng.integers(0, 3, 500), rng.random(500) < 0.3
    column = sparse_from_codes(codes, present, pa.array(["loss", "win", "draw"]))
    column.validate(full=True)
    assert column.to_pylist() == [["loss", "win", "draw"][c] if p else None for c, p in zip(codes, present)]
