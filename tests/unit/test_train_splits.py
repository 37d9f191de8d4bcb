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


def test_horizon_purges_training_cutoffs_whose_labels_overlap_validation() -> None:
    frame = _frame(["2026-01-01", "2026-01-08", "2026-01-15", "2026-01-22"])
    split = split_by_cutoff(frame, horizon_days=14)
    # 2026-01-08 + 14 days runs past the validation cutoff (01-15); 2026-01-01 + 14 days does not.
    assert split.train_cutoffs == (pd.Timestamp("2026-01-01", tz="UTC"),)
    assert split.purged_cutoffs == (pd.Timestamp("2026-01-08", tz="UTC"),)
    with pytest.raises(DataError, match="label window"):
        split_by_cutoff(frame, horizon_days=30)


def test_rows_with_a_missing_label_are_left_out() -> None:
    frame = _frame(["2026-01-01", "2026-01-08", "2026-01-15"])
    frame.loc[0, "label_churn"] = pd.NA
    assert len(labelled_rows(frame, "label_churn")) == len(frame) - 1
    with pytest.raises(DataError, match="label_purchase"):
        labelled_rows(frame, "label_purchase")
