"""The cutoffs a pipeline run trains and evaluates at: given, or weekly over the lake's date range."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd

from playerguard.backends import backend_for
from playerguard.errors import DataError
from playerguard.settings import Settings


def lake_date_range(settings: Settings) -> tuple[date, date]:
    """First and last `event_date` partition of the lake (local directory, or S3 for the aws backend)."""
    if settings.source_mapping:
        return _mapped_date_range(settings)
    names = backend_for(settings).lake().event_days()
    days = sorted(
        date.fromisoformat(name.partition("=")[2]) for name in names if name.startswith("event_date=")
    )
    if not days:
        raise DataError(
            f"the lake at {settings.lake_s3_uri or settings.lake_dir} has no events; ingest or simulate first"
        )
    return days[0], days[-1]


def _mapped_date_range(settings: Settings) -> tuple[date, date]:
    """First and last day partition of a table read through a source mapping (Glue, or the local directory)."""
    from playerguard.features.sources import load_source_mapping

    mapping = load_source_mapping(settings.source_mapping)
    catalog = backend_for(settings).catalog(mapping)
    days = sorted(
        date(*(int(part) for part in values)) if len(values) == 3 else date.fromisoformat(values[0])
        for values in catalog.partitions()
    )
    if not days:
        raise DataError(f"table {mapping.table} has no partitions; ingest or simulate first")
    return days[0], days[-1]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def check_cutoff(
    settings: Settings, cutoff: datetime, *, lookback_days: int, horizon_days: int | None = None
) -> None:
    """A DataError naming the lake's range when `cutoff` cannot see any of it: before its first day, or more
    than the lookback past its last one; with `horizon_days`, also when the label window runs past the data.
    Scoring "now", a little after the last event, is normal use."""
    first_day, last_day = lake_date_range(settings)
    span = f"the lake holds events from {first_day} to {last_day}"
    if cutoff <= _day_start(first_day):
        raise DataError(f"cutoff {cutoff:%Y-%m-%d %H:%M} is before the lake's first event: {span}")
    data_end = _day_start(last_day) + timedelta(days=1)
    if horizon_days is not None and cutoff + timedelta(days=horizon_days) > data_end:
        raise DataError(
            f"the {horizon_days}-day label window of cutoff {cutoff:%Y-%m-%d} runs past the data ({span}); "
            f"the latest cutoff it allows is {data_end - timedelta(days=horizon_days):%Y-%m-%d}"
        )
    if cutoff > data_end + timedelta(days=lookback_days):
        raise DataError(
            f"cutoff {cutoff:%Y-%m-%d %H:%M} is more than the {lookback_days}-day lookback past the lake's last "
            f"event, so no player has events in its window: {span}"
        )


def check_training_cutoffs(settings: Settings, cutoffs: tuple[datetime, ...], *, horizon_days: int) -> None:
    """The first cutoff sees some of the lake and the last one's label window ends inside it."""
    check_cutoff(settings, cutoffs[0], lookback_days=0, horizon_days=horizon_days)
    check_cutoff(settings, cutoffs[-1], lookback_days=0, horizon_days=horizon_days)


def default_cutoffs(
    first_day: date,
    last_day: date,
    *,
    horizon_days: int,
    last_cutoff: datetime | None = None,
    every_days: int = 7,
    min_history_days: int = 7,
) -> list[datetime]:
    """Weekly cutoffs (midnight UTC) back from `last_cutoff`, by default `horizon_days` before the start of
    the lake's last day, so that every label window [T, T + horizon) lies inside the data. The last day's
    partition is taken as incomplete (a stream is still writing it, or a session spilled past midnight)."""
    end = _day_start(last_day)
    last = last_cutoff or end - timedelta(days=horizon_days)
    earliest = _day_start(first_day) + timedelta(days=min_history_days)
    cutoffs = []
    cutoff = last
    while cutoff >= earliest:
        cutoffs.append(cutoff)
        cutoff -= timedelta(days=every_days)
    # The test cutoff, those whose label window would reach past it (dropped by the split), and one whose
    # window closes by it: the split then validates on held-out players if no earlier cutoff is left.
    needed = 1 + max(math.ceil(horizon_days / every_days), 2)
    if len(cutoffs) < needed:
        raise DataError(
            f"the lake spans {first_day}..{last_day}: too short for the {needed} cutoffs, {every_days} days apart, "
            f"that a {horizon_days}-day label horizon needs (with {min_history_days} days of history before the "
            "first); simulate or ingest more days, or pass the cutoffs"
        )
    return sorted(cutoffs)


def _utc(value: datetime | date | str) -> datetime:
    moment = pd.Timestamp(value)
    return (moment.tz_localize(UTC) if moment.tzinfo is None else moment.tz_convert(UTC)).to_pydatetime()


def resolve_cutoffs(
    settings: Settings,
    *,
    cutoff: datetime | date | str | None = None,
    cutoffs: list[datetime | date | str] | tuple[datetime | date | str, ...] | None = None,
    horizon_days: int = 14,
) -> tuple[datetime, ...]:
    """Explicit `cutoffs` (taken as given: see `check_training_cutoffs`); else weekly cutoffs ending at
    `cutoff`, whose label window must end inside the data; else derived from the lake's date range."""
    if cutoffs:
        resolved = sorted({_utc(c) for c in cutoffs})
        if len(resolved) < 3:
            raise DataError(
                f"give at least 3 distinct cutoffs (train, validation, test), got {len(resolved)}"
            )
        return tuple(resolved)
    if cutoff:
        check_cutoff(settings, _utc(cutoff), lookback_days=0, horizon_days=horizon_days)
    first_day, last_day = lake_date_range(settings)
    return tuple(
        default_cutoffs(
            first_day, last_day, horizon_days=horizon_days, last_cutoff=_utc(cutoff) if cutoff else None
        )
    )
