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
    names = backend_for(settings).event_days()
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
    end = datetime.combine(last_day, datetime.min.time(), UTC)
    last = last_cutoff or end - timedelta(days=horizon_days)
    earliest = datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(days=min_history_days)
    cutoffs = []
    cutoff = last
    while cutoff >= earliest:
        cutoffs.append(cutoff)
        cutoff -= timedelta(days=every_days)
    # Test and validation cutoffs, the training cutoffs whose label window would overlap the validation
    # cutoff (dropped by the split), and at least one training cutoff left after that.
    needed = 2 + math.ceil(horizon_days / every_days)
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
    """Explicit `cutoffs`; else weekly cutoffs ending at `cutoff`; else derived from the lake's date range."""
    if cutoffs:
        resolved = sorted({_utc(c) for c in cutoffs})
        if len(resolved) < 3:
            raise DataError(
                f"give at least 3 distinct cutoffs (train, validation, test), got {len(resolved)}"
            )
        return tuple(resolved)
    first_day, last_day = lake_date_range(settings)
    return tuple(
        default_cutoffs(
            first_day, last_day, horizon_days=horizon_days, last_cutoff=_utc(cutoff) if cutoff else None
        )
    )
