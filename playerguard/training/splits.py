"""Out-of-time splits of a training set: fit on earlier cutoffs, early-stop and calibrate on a later one,
test on the last.

With a label horizon, no training or validation label window [T, T + horizon) may reach past the test
cutoff, nor a training one past the validation cutoff. When that leaves no training cutoff before the
validation one (a long horizon on a short history), the validation rows are instead the held-out players
of the latest training cutoffs (grouped by player: a held-out player has no training row at any cutoff).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd

from playerguard.errors import DataError

VALIDATION_SHARE = 0.2  # of the players, when validating by player
VALIDATION_CUTOFFS = 4  # the latest training cutoffs whose held-out players validate


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
    validation_players: float | None = None  # share of players held out, when validating by player

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
            "validation_players": self.validation_players,
            "rows": self.row_counts,
        }


def labelled_rows(frame: pd.DataFrame, label: str) -> pd.DataFrame:
    """The rows of `frame` whose `label` is known; raises DataError when the column is absent."""
    if label not in frame.columns:
        raise DataError(f"the training set has no {label!r} column")
    return frame.loc[frame[label].notna()]


def split_by_cutoff(
    frame: pd.DataFrame, *, horizon_days: int | None = None, validation_share: float = VALIDATION_SHARE
) -> OutOfTimeSplit:
    """Split `frame` (with a `cutoff` column) into train / validation / test by cutoff.

    The last cutoff is the test set. Without `horizon_days`, the one before it is the validation set and
    all earlier ones train. With `horizon_days`, the validation cutoff is the latest whose label window
    closes by the test cutoff, and training cutoffs are those whose window closes by the validation cutoff;
    the cutoffs in between are dropped (purged). If no training cutoff is left, the validation rows are
    `validation_share` of the players (chosen by a hash of player_id) at the latest `VALIDATION_CUTOFFS`
    cutoffs whose window closes by the test cutoff, and training uses the other players at every such
    cutoff; `validation_cutoff` is then the latest of them.
    """
    if "cutoff" not in frame.columns:
        raise DataError("the training set has no 'cutoff' column")
    cutoffs = sorted(pd.Timestamp(c) for c in pd.unique(frame["cutoff"].dropna()))
    if horizon_days is None:
        if len(cutoffs) < 3:
            raise DataError(
                "an out-of-time split needs at least 3 distinct cutoffs (train, validation, test); "
                f"got {len(cutoffs)}"
            )
        return _by_cutoff(frame, cutoffs[:-2], cutoffs[-2], cutoffs[-1], ())
    horizon = timedelta(days=horizon_days)
    test_cutoff = cutoffs[-1]
    closed = [c for c in cutoffs[:-1] if c + horizon <= test_cutoff]
    if not closed:
        raise DataError(
            f"no cutoff's {horizon_days}-day label window closes by the test cutoff {test_cutoff.isoformat()}; "
            "add earlier cutoffs or shorten the horizon"
        )
    validation_cutoff = closed[-1]
    earlier = [c for c in closed if c + horizon <= validation_cutoff]
    if earlier:
        purged = tuple(c for c in cutoffs[:-1] if c not in earlier and c != validation_cutoff)
        return _by_cutoff(frame, earlier, validation_cutoff, test_cutoff, purged)
    return _by_player(frame, closed, test_cutoff, validation_share, cutoffs)


def _by_cutoff(
    frame: pd.DataFrame,
    train: list[pd.Timestamp],
    validation: pd.Timestamp,
    test: pd.Timestamp,
    purged: tuple[pd.Timestamp, ...],
) -> OutOfTimeSplit:
    return OutOfTimeSplit(
        train=frame.loc[frame["cutoff"].isin(train)],
        validation=frame.loc[frame["cutoff"] == validation],
        test=frame.loc[frame["cutoff"] == test],
        train_cutoffs=tuple(train),
        validation_cutoff=validation,
        test_cutoff=test,
        purged_cutoffs=purged,
    )


def held_out_players(player_ids: pd.Series, share: float) -> pd.Series:
    """Per row, whether its player is held out: a stable hash of the id, so a player is held out at every
    cutoff and in every run."""
    buckets = player_ids.astype(str).map(lambda player: zlib.crc32(player.encode("utf-8")) % 1000)
    return buckets < round(share * 1000)


def _by_player(
    frame: pd.DataFrame,
    closed: list[pd.Timestamp],
    test_cutoff: pd.Timestamp,
    share: float,
    cutoffs: list[pd.Timestamp],
) -> OutOfTimeSplit:
    if "player_id" not in frame.columns:
        raise DataError("validating on held-out players needs a player_id column")
    if not 0 < share < 1:
        raise DataError(f"validation_share must be between 0 and 1, got {share}")
    held_out = held_out_players(frame["player_id"], share)
    latest = closed[-1]
    train = frame.loc[frame["cutoff"].isin(closed) & ~held_out]
    validation = frame.loc[frame["cutoff"].isin(closed[-VALIDATION_CUTOFFS:]) & held_out]
    if train.empty or validation.empty:
        raise DataError("too few players to hold some out for validation")
    return OutOfTimeSplit(
        train=train,
        validation=validation,
        test=frame.loc[frame["cutoff"] == test_cutoff],
        train_cutoffs=tuple(closed),
        validation_cutoff=latest,
        test_cutoff=test_cutoff,
        purged_cutoffs=tuple(c for c in cutoffs[:-1] if c not in closed),
        validation_players=share,
    )
