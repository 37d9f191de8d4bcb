"""The CS2CD adapter on a few real matches: envelope schema, players per match, labels, derived events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from playerguard.errors import DataError
from playerguard.lake.cs2 import (
    DATA_DIR_ENV,
    MATCH_START,
    CS2Dataset,
    default_data_dir,
    load_cs2cd,
    weapon_class,
)
from playerguard.lake.envelope import ENVELOPE_COLUMNS, ENVELOPE_SCHEMA, PARTITION_COLUMN
from playerguard.training.cs2_evaluation import (
    CS2_DIRECTIONS,
    add_match_context,
    cs2_features_via_feature_layer,
    cs2_player_features_pandas,
    hits_per_shot,
)

DATA_DIR = default_data_dir()
MATCHES = ["no_cheater_0", "with_cheater_1", "with_cheater_232"]  # 232: deaths naming no victim

pytestmark = pytest.mark.skipif(
    not (DATA_DIR / "events.parquet").exists(), reason=f"CS2CD not found at {DATA_DIR}"
)


@pytest.fixture(scope="module")
def data() -> CS2Dataset:
    return load_cs2cd(DATA_DIR, match_ids=MATCHES)


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    return pd.read_parquet(DATA_DIR / "events.parquet", filters=[("match_id", "in", MATCHES)])


def test_envelope_schema(data: CS2Dataset) -> None:
    events = data.events
    assert list(events.columns[: len(ENVELOPE_COLUMNS)]) == list(ENVELOPE_COLUMNS)
    assert events.columns[-1] == PARTITION_COLUMN
    assert events["event_id"].is_unique
    for column in ("event_id", "event_type", "player_id", "game_id", "platform", "session_id"):
        assert events[column].notna().all(), column
    assert set(events["game_id"]) == {"cs2"} and set(events["platform"]) == {"pc"}
    assert str(events["event_timestamp"].dt.tz) == "UTC"
    seconds = (events["event_timestamp"] - MATCH_START).dt.total_seconds()
    np.testing.assert_allclose(seconds, events["tick"] / 64.0)
    for name, kind in data.attribute_types.items():
        assert (events[name].dtype == "float64") == (kind == "double"), name
    booleans = events[["headshot", "through_smoke", "no_scope", "in_air", "attacker_blind", "self_inflicted"]]
    assert set(np.unique(booleans.to_numpy()[~np.isnan(booleans.to_numpy())])) <= {0.0, 1.0}
    table = data.to_arrow()
    assert isinstance(table, pa.Table) and table.num_rows == len(events)
    assert table.schema.field("event_timestamp").type == ENVELOPE_SCHEMA.field("event_timestamp").type


def test_players_per_match_and_labels(data: CS2Dataset) -> None:
    assert sorted(data.matches["match_id"]) == sorted(MATCHES)
    per_match = data.events.groupby("session_id")["player_id"].nunique()
    assert per_match.to_dict() == {match: 10 for match in MATCHES}
    assert data.labels["player_id"].is_unique and len(data.labels) == 30
    assert set(data.events["player_id"]) == set(data.labels["player_id"])
    assert (data.labels["player_id"].str.split(":").str[0] == data.labels["match_id"]).all()
    assert data.labels["is_cheater"].dtype == "Int8"
    groups = data.matches.set_index("match_id")["group"]
    cheaters = data.labels.groupby("match_id")["is_cheater"].sum()
    assert cheaters["no_cheater_0"] == 0
    assert all(cheaters[m] >= 1 for m in MATCHES if groups[m] == "with_cheater")


def test_every_source_row_is_kept_or_rejected_with_a_reason(data: CS2Dataset, source: pd.DataFrame) -> None:
    kinds = data.events["event_type"].value_counts()
    round_ends = source.loc[source["event_type"] == "round_officially_ended"]
    unique_round_ends = round_ends.drop_duplicates(["match_id", "tick"])
    deaths = source.loc[source["event_type"] == "player_death"]
    assert kinds["round_officially_ended"] == len(unique_round_ends) * 10  # one per player of the match
    assert kinds["player_death"] == len(deaths)
    assert kinds["player_died"] == deaths["other_player"].notna().sum()
    kept = len(data.events) - kinds["player_died"] - kinds["round_officially_ended"] + len(unique_round_ends)
    assert kept + len(data.rejected) == len(source)
    assert set(data.rejected["reason"]) <= {
        "repeated round end (the source records each twice)",
        "no player to attribute the event to",
    }


def test_attacker_victim_conventions(data: CS2Dataset, source: pd.DataFrame) -> None:
    events = data.events
    died = events.loc[events["event_type"] == "player_died"].set_index("event_id")
    death = events.loc[events["event_type"] == "player_death"].set_index("event_id")
    death.index = death.index + ":victim"
    pairs = died.join(death[["player_id", "other_player"]], rsuffix="_killer")
    assert (pairs["player_id"] == pairs["other_player_killer"]).all()
    assert (pairs["other_player"] == pairs["player_id_killer"]).all()
    damage = events.loc[events["event_type"].isin(["player_hurt", "player_death"])]
    unknown_victim = damage["other_player"].isna()
    source_damage = source.loc[source["event_type"].isin(["player_hurt", "player_death"])]
    assert unknown_victim.sum() == source_damage["other_player"].isna().sum()  # a player who left
    damage = damage.loc[~unknown_victim]
    same_player = (damage["player_id"] == damage["other_player"]).to_numpy(dtype=bool)
    assert np.array_equal(damage["self_inflicted"].to_numpy() == 1.0, same_player)
    assert same_player.any() and not same_player.all()


def test_weapon_class() -> None:
    weapons = pd.Series(["weapon_ak47", "ak47", "weapon_knife_t", "bayonet", "inferno", "weapon_taser", "world", "", None])
    assert weapon_class(weapons).tolist() == ["gun", "gun", "knife", "knife", "grenade", "taser", "world", "world", pd.NA]


def test_pandas_features(data: CS2Dataset) -> None:
    features = cs2_player_features_pandas(data.events)
    assert len(features) == 30 and features["player_id"].is_unique
    # hits per shot can pass 1: a shotgun shot hurts once per pellet
    assert (features["accuracy"].dropna() >= 0).all() and features["accuracy"].notna().sum() >= 25
    assert features["headshot_hit_share"].dropna().between(0, 1).all()
    assert (features["rounds"] > 0).all()
    kills = data.events.loc[(data.events["event_type"] == "player_death") & (data.events["self_inflicted"] == 0)]
    assert features["kills"].sum() == len(kills)
    frame = add_match_context(features.assign(match_id=features["player_id"].str.split(":").str[0]), ["accuracy"])
    assert frame["accuracy_match_rank"].dropna().between(0.0, 1.0, inclusive="right").all()
    assert (frame.groupby("match_id")["accuracy_vs_match"].median().abs() < 1e-12).all()


def test_combat_feature_set_agrees_with_the_pandas_features(data: CS2Dataset) -> None:
    built = cs2_features_via_feature_layer(data).set_index("player_id").sort_index()
    expected = cs2_player_features_pandas(data.events).set_index("player_id").sort_index()
    assert list(built.index) == list(expected.index)
    assert set(CS2_DIRECTIONS) <= set(built.columns)
    same = {"hits_per_shot": "accuracy", "kills_per_round": "kills_per_round", "deaths": "deaths",
            "rounds": "rounds", "damage_per_round": "damage_per_round"}  # fmt: skip
    for combat_name, pandas_name in same.items():
        np.testing.assert_allclose(built[combat_name], expected[pandas_name], err_msg=combat_name)


def test_hits_per_shot_baseline(data: CS2Dataset) -> None:
    baseline = hits_per_shot(data.events)
    features = cs2_player_features_pandas(data.events).set_index("player_id")
    assert baseline.index.is_unique and len(baseline) == 30 and (baseline >= 0).all()
    np.testing.assert_allclose(baseline[features.index], features["accuracy"].fillna(0.0))


def test_data_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path
    with pytest.raises(DataError, match=DATA_DIR_ENV):
        load_cs2cd(match_ids=["no_cheater_0"])
    with pytest.raises(DataError, match="unknown CS2CD match"):
        load_cs2cd(DATA_DIR, match_ids=["no_such_match"])
    with pytest.raises(DataError, match="unknown CS2CD group"):
        load_cs2cd(DATA_DIR, groups=["cheaters_only"])


@pytest.mark.slow
def test_evaluation_on_all_matches() -> None:
    from playerguard.training.cs2_evaluation import evaluate_cs2

    result = evaluate_cs2(DATA_DIR, folds=2, seed=0)
    assert result["data"]["cheaters"] == 1303
    assert result["baseline_hits_per_shot"]["roc_auc"]["mean"] == pytest.approx(0.877, abs=0.02)
    assert result["supervised"]["roc_auc"]["mean"] > 0.92
    assert result["unsupervised_tail_reference"]["roc_auc"]["mean"] > 0.88
    assert result["supervised"]["fpr_at_threshold"]["mean"] < 0.05
