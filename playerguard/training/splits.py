"""Out-of-time splits of a training set: fit on earlier cutoffs, early-stop and calibrate on the next,
test on the last."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from playerguard.errors import DataError


@dataclass(frozen=True)
class OutOfTimeSplit:
    """Rows of one model's labelled training set, split by cutoff."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    train_cutoffs: tuple[pd.Timestamp, ...]
    validation_cutoff: pd.Timestamp
    test_cutoff: pd.Timestamp
    purged_cutoffs: tuple[pd.Timestamp, ...] = ()

    @property
    def row_counts(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def describe(self) -> dict[str, object]:
        """Cutoffs (ISO strings) and row counts, for logging."""
        return {
            "train_cutoffs": [c.isoformat() for c in self.train_cutoffs],
            "validation_cutoff": self.validation_cutoff.isoformat(),
            "test_cutoff": self.test_cutoff.isoformat(),
            "purged_cutoffs": [c.isoformat() for c in self.purged_cutoffs],
            "rows": self.row_counts,
        }


def labelled_rows(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """The rows of `frame` whose `label` is known; raises DataError when the column is absent."""
    if label not in frame.columns:
        raise DataError(f"the training set has no {label!r} column")
    return frame.loc[frame[label].notna()]


def split_by_cutoff(frame: pd.DataFrame, *, horizon_days: int | None = None) -> OutOfTimeSplit:
    """Split `frame` (with a `cutoff` column) into train / validation / test by cutoff.

    The last cutoff is the test set, the one before it the validation set, all earlier ones train.
    With `horizon_days`, training cutoffs whose label window [cutoff, cutoff + horizon) runs past the
    validation cutoff are dropped (purged), so no training label sees events after the validation cutoff.
    """
    if "cutoff" not in frame.columns:
        raise DataError("the training set has no 'cutoff' column")
    cutoffs = sorted(pd.Timestamp(c) for c in pd.unique(frame["cutoff"].dropna()))
    if len(cutoffs) < 3:
        raise DataError(
            f"an out-of-time split needs at least 3 distinct cutoffs (train, validation, test); got {len(cutoffs)}"
        )
    test_cutoff, validation_cutoff = cutoffs[-1], cutoffs[-2]
    earlier = cutoffs[:-2]
    purged: list[pd.Timestamp] = []
    if horizon_days is not None:
        horizon = timedelta(days=horizon_days)
        purged = [c for c in earlier if c + horizon > validation_cutoff]
        earlier = [c for c in earlier if c + horizon <= validation_cutoff]
        if not earlier:
            raise DataError(
                f"every training cutoff's {horizon_days}-day label window runs past the validation cutoff "
                f"{validation_cutoff.isoformat()}; add earlier cutoffs"
            )
    return OutOfTimeSplit(
        train=frame.loc[frame["cutoff"].isin(earlier)],
        validation=frame.loc[frame["cutoff"] == validation_cutoff],
        test=frame.loc[frame["cutoff"] == test_cutoff],
        train_cutoffs=tuple(earlier),
        validation_cutoff=validation_cutoff,
        test_cutoff=test_cutoff,
        purged_cutoffs=tuple(purged),
    )
