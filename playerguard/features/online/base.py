"""The online feature snapshot port: the latest features of every player, by player_id, for the stream.

Implementations: `SqliteFeatureStore` (local.py, `<home>/online/features.sqlite`) and `DynamoDBFeatureStore`
(dynamodb.py); the backend picks one. Each row holds the cutoff and the features as JSON; a lookup returns
floats, NaN where a feature is undefined. Reading needs neither numpy nor pandas (the stream handler's path
stays light): they are imported by the functions that write snapshots.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

import orjson

from playerguard.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


class OnlineStore(Protocol):
    """Where the snapshot is kept: `write` replaces it, `lookup` reads players' features."""

    @property
    def location(self) -> str: ...

    def write(self, features: pd.DataFrame) -> int: ...

    def lookup(self, player_ids: Iterable[str]) -> dict[str, dict[str, float]]: ...


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a features or training frame: numeric, not player_id/cutoff/label_*."""
    import pandas as pd

    return [
        c
        for c in frame.columns
        if c not in ("player_id", "cutoff")
        and not c.startswith("label_")
        and pd.api.types.is_numeric_dtype(frame[c])
    ]


def snapshot_rows(frame: pd.DataFrame) -> Iterator[tuple[str, str, str]]:
    """(player_id, cutoff ISO text, features JSON with null for NaN) per row; one row per player required."""
    import numpy as np
    import pandas as pd

    if "player_id" not in frame.columns:
        raise DataError("the features frame has no player_id column")
    duplicated = frame["player_id"].duplicated()
    if duplicated.any():
        raise DataError(
            f"player {frame['player_id'][duplicated].iloc[0]!r} appears more than once; "
            "a snapshot takes one row per player (build features at a single cutoff)"
        )
    names = feature_columns(frame)
    values = frame[names].to_numpy(dtype="float64", na_value=np.nan)
    cutoffs = (
        pd.to_datetime(frame["cutoff"], utc=True).map(lambda c: c.isoformat())
        if "cutoff" in frame.columns
        else pd.Series("", index=frame.index)
    )
    for player, cutoff, row in zip(frame["player_id"].astype(str), cutoffs, values, strict=True):
        document = {name: (None if math.isnan(v) else float(v)) for name, v in zip(names, row, strict=True)}
        yield player, cutoff, json.dumps(document, separators=(",", ":"))


def parse_features(document: str) -> dict[str, float]:
    return {
        name: (math.nan if value is None else float(value)) for name, value in orjson.loads(document).items()
    }
