"""Out-of-time splits by cutoff."""

from __future__ import annotations

import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.training.splits import labelled_rows, split_by_cutoff


def _frame(cutoffs: list[str], players: int = 3) -> pd.DataFrame:
    rows = [
        {"player_id": f"p{p}", "cutoff": pd.Timestamp(c, tz="UTC"), "x": float(p), "label_churn": p % 2}
        for c in cutoffs
        for p in range(players)
    ]
    frame = pd.DataFrame(rows)
    frame["label_churn"] = frame["label_churn"].astype("Int8")
    return frame


def test_last_cutoff_is_test_the_one_before_validation_the_rest_train() -> None:
    # Rows deliberately out of order: the split must sort cutoffs, not trust row order.
    frame = _frame(["2026-01-22", "2026-01-01", "2026-01-15", "2026-01-08"])
    split = split_by_cutoff(frame)
    assert split.test_cutoff == pd.Timestamp("2026-01-22", tz="UTC")
    assert split.validation_cutoff == pd.Timestamp("2026-01-15", tz="UTC")
    assert split.train_cutoffs == (pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-01-08", tz="UTC"))
    assert split.row_counts == {"train": 6, "validation": 3, "test": 3}
    assert split.train["cutoff"].max() < split.validation["cutoff"].min() < split.test["cutoff"].min()
    described = split.describe()
    assert described["test_cutoff"] == "2026-01-22T00:00:00+00:00"
    assert described["rows"]["train"] == 6


def test_fewer_than_three_cutoffs_is_an_error() -> None:
    with pytest.raises(DataError, match="at least 3 distinct cutoffs"):
        split_by_cutoff(_frame(["2026-01-01", "2026-01-08"]))


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def test_horizon_purges_cutoffs_whose_labels_overlap_validation_or_test() -> None:
    frame = _frame(["2026-01-01", "2026-01-08", "2026-01-15", "2026-01-22", "2026-01-29"])
    split = split_by_cutoff(frame, horizon_days=14)
    # The validation window [01-15, 01-29) closes by the test cutoff; 01-22's would not.
    assert split.validation_cutoff == day("2026-01-15") and split.test_cutoff == day("2026-01-29")
    # 2026-01-08 + 14 days runs past the validation cutoff (01-15); 2026-01-01 + 14 days does not.
    assert split.train_cutoffs == (day("2026-01-01"),)
    assert split.purged_cutoffs == (day("2026-01-08"), day("2026-01-22"))
    assert split.validation_players is None
    with pytest.raises(DataError, match="label window closes by the test cutoff"):
        split_by_cutoff(frame, horizon_days=30)


def test_too_few_cutoffs_for_the_horizon_validate_on_held_out_players() -> None:
    # A 91-day horizon on monthly cutoffs: only the first two windows close by the test cutoff.
    cutoffs = ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01", "2026-05-05"]
    frame = _frame(cutoffs, players=200)
    split = split_by_cutoff(frame, horizon_days=91)
    horizon = pd.Timedelta(days=91)
    assert split.validation_players == 0.2
    assert split.train_cutoffs == (pd.Timestamp("2026-01-01", tz="UTC"), pd.Timestamp("2026-02-01", tz="UTC"))
    assert split.validation_cutoff == pd.Timestamp("2026-02-01", tz="UTC")
    assert set(split.validation["cutoff"]) == set(split.train_cutoffs)  # the latest (here both) cutoffs
    # No training or validation label window reaches past the test cutoff.
    for part in (split.train, split.validation):
        assert (part["cutoff"] + horizon).max() <= split.test_cutoff
    # Grouped by player: a held-out player has no training row at any cutoff.
    assert not set(split.validation["player_id"]) & set(split.train["player_id"])
    assert 20 <= split.validation["player_id"].nunique() <= 60
    assert len(split.validation) == 2 * split.validation["player_id"].nunique()
    assert split.describe()["validation_players"] == 0.2
    # The same players are held out in every run.
    again = split_by_cutoff(frame.sample(frac=1.0, random_state=1), horizon_days=91)
    assert set(again.validation["player_id"]) == set(split.validation["player_id"])


def test_rows_with_a_missing_label_are_left_out() -> None:
    frame = _frame(["2026-01-01", "2026-01-08", "2026-01-15"])
    frame.loc[0, "label_churn"] = pd.NA
    assert len(labelled_rows(frame, "label_churn")) == len(frame) - 1
    with pytest.raises(DataError, match="label_purchase"):
        labelled_rows(frame, "label_purchase")
