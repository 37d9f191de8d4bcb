"""Point-in-time labels: churn and purchase from events in [T, T + horizon), inhuman play from label tables.

- `label_churn`: 1 if the player was active in the lookback window before T (an internal flag the
  feature query computes from events before T) and started no session in [T, T + horizon); 0 if they
  did; missing for players not active in the lookback.
- `label_purchase`: 1 if the player bought at least once in [T, T + horizon), else 0.
- `label_inhuman_play`: from `<home>/ground_truth.parquet` (`is_inhuman`, written by the simulator) and
  `<home>/labels/*.parquet` (`player_id`, `label` 0/1, optional `source`: ban lists, label tables, review
  verdicts). One precedence decides a player's label: a reviewer's verdict (`source` "review", or the file
  `review_verdicts.parquet`) > a ban list or label table (any other file) > the simulator's truth. Only the
  highest-ranked sources that know the player count; among those, a 1 wins. Missing if no source knows
  the player. So a reviewer's "dismissed" (0) overrides a ban list's 1.
A label is missing (pandas NA) when the feature set defines no event for it.
"""

from __future__ import annotations

import hashlib
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
REVIEW_FILE = "review_verdicts.parquet"
REVIEW_SOURCE = "review"
# Label precedence: the highest rank that knows a player decides.
TRUTH_RANK, TABLE_RANK, REVIEW_RANK = 0, 1, 2


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


def _tagged(player_ids: pd.Series, labels: pd.Series, rank: pd.Series | int) -> pd.DataFrame:
    return pd.DataFrame({"player_id": player_ids.astype(str), "label": labels, "rank": rank})


def _table_ranks(path: Path, table: pd.DataFrame) -> pd.Series | int:
    """Per row of a label table: REVIEW_RANK for reviewers' verdicts, TABLE_RANK for the rest."""
    if path.name == REVIEW_FILE:
        return REVIEW_RANK
    if "source" not in table.columns:
        return TABLE_RANK
    is_review = table["source"].astype("string").str.strip().str.lower().eq(REVIEW_SOURCE).fillna(False)
    return pd.Series(TABLE_RANK, index=table.index).mask(is_review.to_numpy(), REVIEW_RANK)


def label_files(settings: Settings) -> list[Path]:
    """Every file the inhuman-play labels are read from: the simulator's truth, then the label tables."""
    truth = [settings.ground_truth_path] if settings.ground_truth_path.exists() else []
    return truth + sorted((settings.home / "labels").glob("*.parquet"))


def labels_fingerprint(settings: Settings) -> str:
    """sha256 over the names and contents of the label files: changes when a verdict or ban list does."""
    digest = hashlib.sha256()
    for path in label_files(settings):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_inhuman_labels(settings: Settings) -> pd.DataFrame:
    """player_id and label_inhuman_play (Int8) for every player some label source knows; may be empty.

    Precedence (module docstring): review verdict > ban list or label table > simulator truth.
    """
    parts = []
    if settings.ground_truth_path.exists():
        truth = _read(settings.ground_truth_path, ["player_id", "is_inhuman"])
        parts.append(
            _tagged(
                truth["player_id"],
                _as_binary(truth["is_inhuman"], str(settings.ground_truth_path)),
                TRUTH_RANK,
            )
        )
    for path in sorted((settings.home / "labels").glob("*.parquet")):
        table = _read(path, ["player_id", "label"])
        parts.append(
            _tagged(table["player_id"], _as_binary(table["label"], str(path)), _table_ranks(path, table))
        )
    if not parts:
        return pd.DataFrame(
            {"player_id": pd.Series(dtype=str), "label_inhuman_play": pd.Series(dtype=_LABEL_DTYPE)}
        )
    every = pd.concat(parts, ignore_index=True)
    top = every.groupby("player_id")["rank"].transform("max")
    labels = every.loc[every["rank"] == top].groupby("player_id", as_index=False)["label"].max()
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


BAN_LIST_FILE = "ban_list.parquet"


def read_ban_list(path: Path) -> pd.Series:
    """Player ids from a ban list: a Parquet or CSV file with a `player_id` column, or a text file with one
    id a line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"no ban list at {path}")
    if path.suffix == ".parquet":
        frame = _read(path, ["player_id"])
    else:
        frame = pd.read_csv(path, dtype=str, skip_blank_lines=True)
        if "player_id" not in frame.columns:  # no header: one id a line
            frame = pd.read_csv(path, dtype=str, header=None, names=["player_id"], skip_blank_lines=True)
    ids = frame["player_id"].dropna().astype(str).str.strip()
    ids = ids.loc[ids != ""].drop_duplicates()
    if ids.empty:
        raise DataError(f"the ban list {path} holds no player id")
    return ids.reset_index(drop=True)


def write_ban_list(settings: Settings, path: Path) -> Path:
    """Store a ban list as the label table `<home>/labels/ban_list.parquet` (every player 1, source
    "ban_list"), replacing an earlier one; returns its path."""
    ids = read_ban_list(path)
    target = settings.home / "labels" / BAN_LIST_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {"player_id": ids, "label": pd.Series(1, index=ids.index, dtype="int8"), "source": "ban_list"}
    )
    staged = target.with_name(f".{target.name}.tmp")
    table.to_parquet(staged, index=False)
    staged.replace(target)
    return target
