"""Inhuman-play labels from several sources: one precedence, a fingerprint, ban lists."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.features.labels import (
    labels_fingerprint,
    load_inhuman_labels,
    read_ban_list,
    write_ban_list,
)
from playerguard.settings import Settings


def _table(path: Path, rows: list[tuple[str, int]], source: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["player_id", "label"])
    if source is not None:
        frame["source"] = source
    frame.to_parquet(path, index=False)


def _labels(settings: Settings) -> dict[str, int]:
    frame = load_inhuman_labels(settings)
    return dict(zip(frame["player_id"], frame["label_inhuman_play"].astype(int), strict=True))


def test_review_beats_ban_list_beats_simulator_truth(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    pd.DataFrame(
        {"player_id": ["a", "b", "c", "d", "e"], "is_inhuman": [True, False, False, True, False]}
    ).to_parquet(settings.ground_truth_path, index=False)
    labels = tmp_path / "labels"
    _table(labels / "ban_list.parquet", [("b", 1), ("c", 1), ("f", 1)], "ban_list")
    _table(labels / "studio_table.parquet", [("d", 0), ("g", 0), ("g", 1)], None)
    _table(labels / "review_verdicts.parquet", [("c", 0), ("e", 1)], "review")
    # A reviewer's verdict in another table still counts as a review.
    _table(labels / "imported.parquet", [("a", 0)], "Review")
    assert _labels(settings) == {
        "a": 0,  # review 0 over truth 1
        "b": 1,  # ban list over truth 0
        "c": 0,  # review "dismissed" over the ban list's 1
        "d": 0,  # label table over truth
        "e": 1,  # review over truth
        "f": 1,  # ban list only
        "g": 1,  # same rank: a 1 wins
    }


def test_fingerprint_changes_with_a_verdict(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    empty = labels_fingerprint(settings)
    verdicts = tmp_path / "labels" / "review_verdicts.parquet"
    _table(verdicts, [("a", 1)], "review")
    confirmed = labels_fingerprint(settings)
    _table(verdicts, [("a", 0)], "review")
    assert len({empty, confirmed, labels_fingerprint(settings)}) == 3
    _table(verdicts, [("a", 0)], "review")
    assert labels_fingerprint(settings) == labels_fingerprint(settings)


@pytest.mark.parametrize("text", ["player_id\np1\np2\n\np1\n", "p1\np2\n"])
def test_ban_list_from_a_text_file(tmp_path: Path, text: str) -> None:
    source = tmp_path / "banned.csv"
    source.write_text(text)
    assert read_ban_list(source).tolist() == ["p1", "p2"]
    settings = Settings(home=tmp_path / "home")
    stored = write_ban_list(settings, source)
    assert stored == settings.home / "labels" / "ban_list.parquet"
    assert _labels(settings) == {"p1": 1, "p2": 1}


def test_empty_ban_list_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "banned.csv"
    source.write_text("player_id\n")
    with pytest.raises(DataError, match="no player id"):
        read_ban_list(source)
