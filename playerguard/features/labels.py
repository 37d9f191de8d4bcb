"""Point-in-time labels: churn and purchase from events in [T, T + horizon), inhuman play from label tables.

- `label_churn`: 1 if the player was active in the lookback window before T (an internal flag the
  feature query computes from events before T) and started no session in [T, T + horizon); 0 if they
  did; missing for players not active in the lookback.
- `label_purchase`: 1 if the player bought at least once in [T, T + horizon), else 0.
- `label_inhuman_play`: from `<home>/ground_truth.parquet` (`is_inhuman`, written by the simulator) and
  `<home>/labels/*.parquet` (`player_id`, `label` 0/1, `source`: ban lists, review verdicts). A player any
  source marks 1 is 1; otherwise 0 if some source marks 0; missing if no source knows the player.
A label is missing (pandas NA) when the feature set defines no event for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from playerguard.errors import DataError
from playerguard.features.compiler import (
    ACTIVE_COLUMN,
    CompiledQuery,
    check_days,
    date_param,
    literal,
    normalize_cutoff,
    quote,
    table_name,
    timestamp_param,
)
from playerguard.features.spec import LabelSpec
from playerguard.settings import Settings

LABEL_COLUMNS = ("label_churn", "label_purchase", "label_inhuman_play")
OUTCOME_COLUMNS = {"churn_event": "_churn_events", "purchase_event": "_purchase_events"}
_LABEL_DTYPE = "Int8"


def compile_outcomes(
    labels: LabelSpec,
    cutoffs: Sequence[datetime],
    horizon_days: int,
    *,
    database: str = "playerguard",
    table: str = "events",
) -> CompiledQuery | None:
    """Per (cutoff, player): how many label events happened in [T, T + horizon). None if no label events.

    Only events at or after the cutoff are read, so labels never see the features' events.
    """
    check_days(horizon_days, "horizon")
    events = {column: getattr(labels, key) for key, column in OUTCOME_COLUMNS.items() if getattr(labels, key)}
    if not events:
        return None
    cutoffs = tuple(normalize_cutoff(c) for c in cutoffs)
    types = ", ".join(literal(t) for t in sorted(set(events.values())))
    branches, params = [], []
    for k, cutoff in enumerate(cutoffs):
        end = cutoff + timedelta(days=horizon_days)
        branches.append(
            f"  SELECT {k} AS cutoff_idx, player_id, event_type\n  FROM {table_name(database, table)}\n"
            "  WHERE event_date >= ? AND event_date <= ? AND event_timestamp >= CAST(? AS TIMESTAMP)"
            f" AND event_timestamp < CAST(? AS TIMESTAMP)\n    AND event_type IN ({types})"
        )
        params += [date_param(cutoff), date_param(end - timedelta(milliseconds=1))]
        params += [timestamp_param(cutoff), timestamp_param(end)]
    counts = [
        f"CAST(count(CASE WHEN event_type = {literal(event)} THEN 1 END) AS DOUBLE) AS {quote(column)}"
        for column, event in events.items()
    ]
    sql = (
        "WITH upcoming AS (\n" + "\n  UNION ALL\n".join(branches) + "\n)\n"
        "SELECT cutoff_idx, player_id,\n  "
        + ",\n  ".join(counts)
        + "\nFROM upcoming\nGROUP BY cutoff_idx, player_id"
    )
    return CompiledQuery(sql=sql, params=tuple(params), cutoffs=cutoffs, feature_names=tuple(events))


def compile_last_event(
    since: datetime, *, database: str = "playerguard", table: str = "events"
) -> CompiledQuery:
    """Epoch seconds of the lake's last event on or after the day of `since` (NULL if none)."""
    since = normalize_cutoff(since)
    sql = (
        "SELECT to_unixtime(max(event_timestamp)) AS last_event\n"
        f"FROM {table_name(database, table)}\nWHERE event_date >= ?"
    )
    return CompiledQuery(sql=sql, params=(date_param(since),), cutoffs=(since,), feature_names=())


def _as_binary(values: pd.Series, where: str) -> pd.Series:
    numbers = pd.to_numeric(values.astype("object"), errors="coerce")
    bad = numbers.isna() | ~numbers.isin([0, 1])
    if bad.any():
        raise DataError(f"{where}: labels must be 0 or 1, found {values[bad].iloc[0]!r}")
    return numbers.astype("int8")


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"cannot read label file {path}: {error}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"label file {path} has no column {missing[0]!r}")
    return frame


def load_inhuman_labels(settings: Settings) -> pd.DataFrame:
    """player_id and label_inhuman_play (Int8) for every player some label source knows; may be empty."""
    parts = []
    if settings.ground_truth_path.exists():
        truth = _read(settings.ground_truth_path, ["player_id", "is_inhuman"])
        parts.append(
            pd.DataFrame(
                {
                    "player_id": truth["player_id"].astype(str),
                    "label": _as_binary(truth["is_inhuman"], str(settings.ground_truth_path)),
                }
            )
        )
    for path in sorted((settings.home / "labels").glob("*.parquet")):
        table = _read(path, ["player_id", "label"])
        parts.append(
            pd.DataFrame(
                {"player_id": table["player_id"].astype(str), "label": _as_binary(table["label"], str(path))}
            )
        )
    if not parts:
        return pd.DataFrame(
            {"player_id": pd.Series(dtype=str), "label_inhuman_play": pd.Series(dtype=_LABEL_DTYPE)}
        )
    labels = pd.concat(parts, ignore_index=True).groupby("player_id", as_index=False)["label"].max()
    return labels.rename(columns={"label": "label_inhuman_play"}).astype({"label_inhuman_play": _LABEL_DTYPE})


def attach_labels(
    features: pd.DataFrame,
    outcomes: pd.DataFrame | None,
    spec: LabelSpec,
    inhuman: pd.DataFrame,
) -> pd.DataFrame:
    """`features` (one row per player and cutoff, with ACTIVE_COLUMN when churn is defined) plus the labels.

    `outcomes` holds per (cutoff, player) the counts of label events in [T, T + horizon), or None.
    """
    frame = features.copy()
    if outcomes is not None and len(outcomes):
        counts = [c for c in OUTCOME_COLUMNS.values() if c in outcomes.columns]
        frame = frame.merge(
            outcomes[["cutoff", "player_id", *counts]], on=["cutoff", "player_id"], how="left"
        )
    missing = pd.array([pd.NA] * len(frame), dtype=_LABEL_DTYPE)

    def happened(column: str) -> pd.Series:
        values = frame[column] if column in frame.columns else pd.Series(0.0, index=frame.index)
        return values.fillna(0) > 0

    if spec.churn_event:
        churned = (~happened("_churn_events")).astype("int8").astype(_LABEL_DTYPE)
        frame["label_churn"] = churned.where(frame[ACTIVE_COLUMN] == 1, pd.NA)
    else:
        frame["label_churn"] = missing
    if spec.purchase_event:
        frame["label_purchase"] = happened("_purchase_events").astype("int8").astype(_LABEL_DTYPE)
    else:
        frame["label_purchase"] = missing
    frame = frame.merge(inhuman, on="player_id", how="left")
    frame["label_inhuman_play"] = frame["label_inhuman_play"].astype(_LABEL_DTYPE)
    return frame.drop(columns=[c for c in (ACTIVE_COLUMN, *OUTCOME_COLUMNS.values()) if c in frame.columns])
