"""A pure-pandas reference implementation of feature definitions, written from the semantics in
`playerguard/features/definitions/default.yaml`, independently of the SQL compiler.

The functional tests compare DuckDB's results with it; bench/bench_features.py times it.
Percentiles are exact with linear interpolation (pandas' default), as the local engine computes them.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from playerguard.features.spec import FeatureDefinition, FeatureSet, Measure, Selection

DAY = pd.Timedelta(days=1)


def _column(events: pd.DataFrame, name: str) -> pd.Series:
    if name in events.columns:
        return events[name]
    return pd.Series(np.nan, index=events.index)


def _mask(events: pd.DataFrame, selection: Selection) -> np.ndarray:
    mask = np.ones(len(events), dtype=bool)
    if selection.event_types:
        mask = mask & events["event_type"].isin(selection.event_types).to_numpy()
    for c in selection.where:
        values = _column(events, c.attribute)
        present = values.notna().to_numpy()
        if c.op in ("in", "not_in"):
            hit = values.isin(list(c.value)).to_numpy()
            mask = mask & present & (hit if c.op == "in" else ~hit)
            continue
        if c.is_numeric:
            values = pd.to_numeric(values, errors="coerce")
        compare = {
            "eq": values == c.value, "ne": values != c.value, "lt": values < c.value,
            "le": values <= c.value, "gt": values > c.value, "ge": values >= c.value,
        }[c.op]  # fmt: skip
        mask = mask & present & compare.fillna(False).to_numpy(dtype=bool)
    return mask


def _measure(rows: pd.DataFrame, kind: str, attribute: str | None, population: pd.Index) -> pd.Series:
    """count / sum / distinct_count per player, 0 for players without matching rows."""
    grouped = rows.groupby("player_id")
    if kind == "count":
        result = grouped.size()
    elif kind == "sum":
        result = pd.to_numeric(_column(rows, attribute), errors="coerce").groupby(rows["player_id"]).sum()
    else:
        result = _column(rows, attribute).groupby(rows["player_id"]).nunique()
    return result.reindex(population).fillna(0).astype(float)


def _in_window(
    events: pd.DataFrame, cutoff: pd.Timestamp, start: float | None, end: float = 0.0
) -> np.ndarray:
    """Rows in [cutoff - start, cutoff - end) (seconds); start None is all history."""
    times = events["event_timestamp"]
    mask = (times < cutoff - pd.Timedelta(seconds=end)).to_numpy()
    if start is not None:
        mask = mask & (times >= cutoff - pd.Timedelta(seconds=start)).to_numpy()
    return mask


def _gaps(rows: pd.DataFrame, kind: str, population: pd.Index) -> pd.Series:
    """gap_cv (std / mean of the gaps, at least 2 gaps), gap_mean (mean gap in days, at least 1 gap) or
    last_gap_ratio (the gap between the last two events / the mean gap, at least 2 gaps)."""
    ordered = rows.sort_values(["player_id", "event_timestamp"], kind="stable")
    seconds = (ordered["event_timestamp"] - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    gaps = seconds.groupby(ordered["player_id"]).diff().dropna()
    players = ordered.loc[gaps.index, "player_id"]
    stats = gaps.groupby(players).agg(["std", "mean", "count", "last"])
    if kind == "gap_mean":
        return (stats["mean"] / 86400).reindex(population).astype(float)
    numerator = stats["last"] if kind == "last_gap_ratio" else stats["std"]
    ratio = (numerator / stats["mean"].where(stats["mean"] != 0)).where(stats["count"] >= 2)
    return ratio.reindex(population).astype(float)


def _active_days(rows: pd.DataFrame, population: pd.Index) -> pd.Series:
    days = rows["event_timestamp"].dt.tz_convert("UTC").dt.floor("D")
    return days.groupby(rows["player_id"]).nunique().reindex(population).fillna(0).astype(float)


def _feature(
    events: pd.DataFrame, d: FeatureDefinition, cutoff: pd.Timestamp, lookback_days: int, population: pd.Index
) -> pd.Series:
    window = d.window.resolve(lookback_days)
    in_window = _in_window(events, cutoff, window)
    if d.kind == "ratio":
        num, den = (_part(events[in_window], m, population) for m in (d.numerator, d.denominator))
        return num / den.where(den != 0)
    if d.kind == "trend":
        recent = events[in_window & _mask(events, d.selection)]
        older = events[
            _in_window(events, cutoff, window + d.baseline.seconds, window) & _mask(events, d.selection)
        ]
        now = _measure(recent, d.measure, d.attribute, population) / (window / 86400)
        before = _measure(older, d.measure, d.attribute, population) / (d.baseline.seconds / 86400)
        return now / before.where(before != 0)
    rows = events[in_window & _mask(events, d.selection)]
    if d.kind in ("count", "sum", "distinct_count"):
        return _measure(rows, d.kind, d.attribute, population)
    if d.kind in ("recency", "tenure"):
        times = rows.groupby("player_id")["event_timestamp"]
        edge = times.max() if d.kind == "recency" else times.min()
        return ((cutoff - edge) / DAY).reindex(population).astype(float)
    if d.kind in ("gap_cv", "gap_mean", "last_gap_ratio"):
        return _gaps(rows, d.kind, population)
    if d.kind == "active_days":
        return _active_days(rows, population)
    values = pd.to_numeric(_column(rows, d.attribute), errors="coerce").groupby(rows["player_id"])
    if d.kind == "percentile":
        result = values.quantile(d.quantile)
    else:
        result = {"mean": values.mean, "min": values.min, "max": values.max, "stddev": values.std}[d.kind]()
    return result.reindex(population).astype(float)


def _part(rows: pd.DataFrame, m: Measure, population: pd.Index) -> pd.Series:
    return _measure(rows[_mask(rows, m.selection)], m.kind, m.attribute, population)


def oracle_features(
    events: pd.DataFrame,
    feature_set: FeatureSet,
    cutoff: datetime,
    *,
    lookback_days: int = 28,
    active_within_days: int | None = None,
) -> pd.DataFrame:
    """player_id, cutoff and every feature, one row per player with an event before the cutoff."""
    cutoff = (
        pd.Timestamp(cutoff).tz_convert("UTC")
        if pd.Timestamp(cutoff).tzinfo
        else pd.Timestamp(cutoff, tz="UTC")
    )
    past = events[events["event_timestamp"] < cutoff]
    last_seen = past.groupby("player_id")["event_timestamp"].max()
    if active_within_days is not None:
        last_seen = last_seen[last_seen >= cutoff - pd.Timedelta(days=active_within_days)]
    population = pd.Index(sorted(last_seen.index), name="player_id")
    past = past[past["player_id"].isin(population)]
    columns: dict[str, object] = {"player_id": population.astype(str), "cutoff": cutoff}
    for d in feature_set.definitions:
        columns[d.name] = _feature(past, d, cutoff, lookback_days, population).to_numpy(dtype=float)
    return pd.DataFrame(columns, index=population).reset_index(drop=True)
