"""`playerguard ingest FILE... --mapping MAPPING.yaml` and `playerguard lake info`.

The lead mounts `ingest_command` as a command and `lake_app` as the `lake` sub-app in `cli.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from playerguard.command_options import HomeOption, settings_for

if TYPE_CHECKING:
    from playerguard.lake.info import LakeInfo

lake_app = typer.Typer(help="Inspect the event lake.", no_args_is_help=True)

DAYS_SHOWN = 62


def ingest_command(
    files: Annotated[
        list[Path],
        typer.Argument(help="CSV, JSON lines or Parquet files (by extension; csv/json may be .gz)."),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", "-m", help="YAML mapping of the files' columns onto the event envelope."),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Load a studio's own telemetry files into the lake, mapped onto the event envelope.

    Each file is one atomic append; ingesting a file twice adds nothing. Rows that break a rule go to the
    rejected table with the reason (see `playerguard lake info`).
    """
    from playerguard.lake.ingest import ingest

    results = ingest(settings_for(home), files, mapping)
    table = Table("file", "rows read", "added", "duplicates skipped", "rejected", title="ingest")
    for result in results:
        table.add_row(
            result.path,
            f"{result.rows_read:,}",
            f"{result.added:,}",
            f"{result.duplicates:,}",
            f"{result.rejected:,}",
        )
    console = Console(soft_wrap=True)
    console.print(table)
    for result in results:
        if result.rejected:
            console.print(
                f"{result.path}: {result.rejected:,} rejected rows recorded in {result.rejected_location}"
            )


def render_lake_info(info: LakeInfo) -> None:
    """Events by type and by day, players, date range, attribute columns and rejected rows by reason."""
    console = Console(soft_wrap=True)
    span = (
        f"{info.first_event:%Y-%m-%d %H:%M} .. {info.last_event:%Y-%m-%d %H:%M} UTC"
        if info.first_event
        else "-"
    )
    console.print(f"lake: {info.location}")
    console.print(
        f"{info.events:,} events from {info.players:,} players, {span}; {info.rejected:,} rows rejected"
    )
    by_type = Table("event type", "events", "players", title="events by type")
    for row in info.by_type.itertuples(index=False):
        by_type.add_row(str(row.event_type), f"{row.events:,}", f"{row.players:,}")
    console.print(by_type)
    by_day = Table("day", "events", title="events by day")
    days = list(info.by_day.itertuples(index=False))
    if len(days) > DAYS_SHOWN:
        half = DAYS_SHOWN // 2
        hidden = len(days) - 2 * half
        days = [*days[:half], None, *days[-half:]]
    for row in days:
        if row is None:
            by_day.add_row(f"... {hidden} more days", "")
        else:
            by_day.add_row(row.event_date, f"{row.events:,}")
    console.print(by_day)
    attributes = Table("attribute", "type", "events with a value", title="attribute columns")
    for row in info.attributes.itertuples(index=False):
        attributes.add_row(row.attribute, row.type, f"{row.events_with_value:,}")
    console.print(attributes)
    if info.rejected:
        reasons = Table("reason", "rows", "source files", title="rejected rows by reason")
        for row in info.rejected_by_reason.itertuples(index=False):
            reasons.add_row(row.reason, f"{row.rows:,}", f"{row.sources:,}")
        console.print(reasons)
