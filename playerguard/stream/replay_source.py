"""Lake events as a Kinesis stream: records shaped as Lambda delivers them, in batches, redelivered as an
event source mapping does after a partial batch response, and cut into refresh windows.

Events are read a day at a time from the local lake in event-time order; each becomes a record with base64
data, partition key = player_id, an increasing sequence number and the replay stream's ARN.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from playerguard.errors import DataError
from playerguard.settings import Settings

REPLAY_STREAM_ARN = "arn:aws:kinesis:local:000000000000:stream/playerguard-replay"
REPLAY_SHARD = "shardId-000000000000"
_FIRST_SEQUENCE = 49_600_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000


def kinesis_record(
    event: Mapping[str, Any],
    sequence_number: int,
    *,
    stream_arn: str = REPLAY_STREAM_ARN,
    region: str = "local",
    arrival: float | None = None,
) -> dict[str, Any]:
    """One record shaped exactly as Lambda delivers Kinesis records."""
    sequence = str(sequence_number)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": str(event.get("player_id", "")),
            "sequenceNumber": sequence,
            "data": base64.b64encode(json.dumps(event, separators=(",", ":")).encode("utf-8")).decode(
                "ascii"
            ),
            "approximateArrivalTimestamp": arrival if arrival is not None else time.time(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{REPLAY_SHARD}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::000000000000:role/playerguard-replay",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_batches(
    events: Iterable[Mapping[str, Any]], batch_size: int = 100, first_sequence: int = _FIRST_SEQUENCE
) -> Iterator[dict[str, Any]]:
    """Kinesis events ({"Records": [...]}) of at most `batch_size` records, sequence numbers increasing."""
    if not 1 <= batch_size <= 10_000:
        raise DataError(f"batch size must be between 1 and 10000 (the Lambda maximum), got {batch_size}")
    records: list[dict[str, Any]] = []
    for offset, event in enumerate(events):
        records.append(kinesis_record(event, first_sequence + offset))
        if len(records) == batch_size:
            yield {"Records": records}
            records = []
    if records:
        yield {"Records": records}


def records_to_redeliver(
    records: Sequence[Mapping[str, Any]], response: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """What Kinesis sends again after a partial batch response: every record from the lowest failed one."""
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    if not failed:
        return []
    lowest = min(int(sequence) for sequence in failed)
    return [record for record in records if int(record["kinesis"]["sequenceNumber"]) >= lowest]


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def lake_events(settings: Settings, start: date, end: date) -> Iterator[dict[str, Any]]:
    """Events of the local lake with start <= event date <= end, in event-time order, as JSON-ready dicts
    (read a day at a time; null attributes left out)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from playerguard.lake.local import LocalLake

    if end < start:
        raise DataError(f"--to {end} is before --from {start}")
    lake = LocalLake.from_settings(settings)
    if not lake.has_events():
        raise DataError(f"the lake at {lake.root} has no events; ingest or simulate some first")
    for day in _days(start, end):
        files = sorted((lake.events_dir / f"event_date={day.isoformat()}").glob("*.parquet"))
        if files:
            table = pq.ParquetDataset(files).read()
            table = table.sort_by([("event_timestamp", "ascending"), ("event_id", "ascending")])
            stamps = pc.strftime(table.column("event_timestamp"), format="%Y-%m-%dT%H:%M:%SZ")
            table = table.drop_columns([c for c in ("event_date",) if c in table.column_names])
            table = table.set_column(table.column_names.index("event_timestamp"), "event_timestamp", stamps)
            for row in table.to_pylist():
                yield {name: value for name, value in row.items() if value is not None}


DAY = timedelta(days=1)


def check_refresh_interval(every: timedelta) -> timedelta:
    """`every` if it is at least a minute and divides a day evenly (windows start at midnight), else
    DataError."""
    if every < timedelta(minutes=1) or DAY % every:
        raise DataError(
            "the snapshot refresh interval must divide a day evenly (e.g. 1h, 6h, 1d), "
            f"got {duration_text(every)}"
        )
    return every


def windowed_batches(
    settings: Settings,
    start: date,
    end: date,
    batch_size: int,
    every: timedelta,
    before_window: Callable[[datetime], None],
) -> Iterator[dict[str, Any]]:
    """Kinesis batches of the lake's events in windows of `every` from midnight (no batch spans two),
    calling `before_window(window_start)` before a window's first batch is handed out; windows without
    events are skipped. Sequence numbers keep increasing across windows."""
    step = int(check_refresh_interval(every).total_seconds())
    sequence = _FIRST_SEQUENCE
    for day in _days(start, end):
        midnight = datetime.combine(day, datetime.min.time(), UTC)
        for window, events in itertools.groupby(
            lake_events(settings, day, day), key=lambda event: _seconds_into_day(event) // step
        ):
            before_window(midnight + timedelta(seconds=window * step))
            for batch in kinesis_batches(events, batch_size, sequence):
                sequence += len(batch["Records"])
                yield batch


def _seconds_into_day(event: Mapping[str, Any]) -> int:
    stamp = event["event_timestamp"]  # lake_events' spelling: YYYY-MM-DDTHH:MM:SSZ
    return int(stamp[11:13]) * 3600 + int(stamp[14:16]) * 60 + int(stamp[17:19])


def duration_text(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
