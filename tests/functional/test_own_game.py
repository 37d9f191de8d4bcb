"""A game whose event names match nothing in the package, from a CSV export to flags: ingest, `features
suggest`, training with a ban list, then batch scores, the endpoint and the stream, all on the game's own
feature set."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import playerguard as pg

RENAMED_TYPES = {
    "session_start": "login", "session_end": "logout", "match_end": "round_over", "purchase": "buy",
    "level_up": "rank_up",
}  # fmt: skip
RENAMED_COLUMNS = {"player_id": "user", "event_type": "kind", "event_timestamp": "ts"}
MAPPING = """columns: {player_id: user, event_type: kind, event_timestamp: ts}
"""


def export_csv(source: Path, out: Path) -> None:
    """The simulator's events as another game would export them: its own event names and column names,
    and every game attribute renamed (prefixed), one dropped."""
    events = duckdb.sql(
        f"SELECT * EXCLUDE (event_date, event_id) FROM read_parquet('{source}/lake/events/*/*.parquet', "
        "hive_partitioning = true, union_by_name = true)"
    ).df()
    envelope = {"player_id", "event_type", "event_timestamp", "session_id", "game_id", "platform", "app_version"}
    attributes = {c: f"g_{c}" for c in events.columns if c not in envelope}
    events = events.drop(columns=["aim_speed"], errors="ignore").rename(columns={**RENAMED_COLUMNS, **attributes})
    events["kind"] = events["kind"].map(RENAMED_TYPES).fillna(events["kind"])
    events["ts"] = pd.to_datetime(events["ts"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    events.to_csv(out, index=False)


@pytest.fixture(scope="module")
def own_game(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("own-game")
    source, home = root / "simulated", root / "studio"
    pg.simulate(players=500, days=45, seed=11, home=source)
    export_csv(source, root / "export.csv")
    (root / "mapping.yaml").write_text(MAPPING)
    pg.ingest(root / "export.csv", root / "mapping.yaml", home=home)
    truth = pg.ground_truth(home=source)
    cheaters = truth.loc[truth["is_inhuman"] == 1, "player_id"]
    (root / "banned.csv").write_text("player_id\n" + "\n".join(cheaters.sample(frac=0.5, random_state=0)) + "\n")
    pg.ban_list(root / "banned.csv", home=home)  # the only labels this studio has
    return home, truth


def test_a_game_with_its_own_names_goes_from_csv_to_flags_on_its_own_feature_set(
    own_game: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    home, truth = own_game
    suggestion = pg.suggest_features(out=tmp_path / "my_game.yaml", home=home)
    labels = suggestion.feature_set.labels
    assert (labels.churn_event, labels.purchase_event) == ("login", "buy")
    assert not {"sessions_7d", "matches_28d"} & set(suggestion.feature_set.feature_names)

    result = pg.train(feature_set="auto", home=home)
    assert set(result.trained) == {"inhuman_play", "churn", "purchase"}
    assert result.models["inhuman_play"].split["label_regime"] == "positive_unlabelled"

    scores = pg.score(home=home)
    reasons = [json.loads(r) for r in scores["reasons"]]
    features = {
        reason["name"] for row in reasons for listed in row.values() for reason in listed if reason["kind"] == "feature"
    }
    assert features and features <= set(suggestion.feature_set.feature_names)  # the game's own features only

    with pg.serve(home=home) as endpoint:
        assert endpoint.bundle.feature_set.name == "auto"
        assert endpoint.bundle.feature_set.hash == suggestion.feature_set.hash
        player = scores["player_id"].iloc[0]
        answer = endpoint.invoke({"events": [{"player_id": player, "event_type": "login",
                                              "event_timestamp": "2026-02-14T10:00:00Z"}]})  # fmt: skip
        assert answer[0]["player_id"] == player and set(answer[0]["scores"]) == {"inhuman_play", "churn", "purchase"}

    last = pg.lake_info(home=home).last_event.date()
    summary = pg.replay(last - timedelta(days=1), last, refresh_every="1d", home=home)
    assert summary.scored > 0
    flags = pg.flags(home=home, limit=10_000)
    assert len(flags) > 0
    flagged_cheaters = set(flags.loc[flags["model"] == "inhuman_play", "player_id"]) & set(
        truth.loc[truth["is_inhuman"] == 1, "player_id"]
    )
    assert flagged_cheaters, "no cheater of the studio's own game was flagged"
