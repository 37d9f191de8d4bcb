"""`playerguard source check|sql`: a studio's own event table (e.g. a Game Analytics Pipeline lake) read in
place through a source mapping. `cli.py` mounts `source_app` as the `source` sub-app."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from playerguard.command_options import HomeOption, settings_for
from playerguard.errors import DataError

source_app = typer.Typer(
    help="Read a studio's own event table in place (e.g. a Game Analytics Pipeline lake) through a mapping.",
    no_args_is_help=True,
)

MappingOption = Annotated[
    str, typer.Option("--mapping", "-m", help="Source mapping YAML, or a packaged one by name (gap).")
]


@source_app.command("check")
def check_command(
    mapping: MappingOption,
    days: Annotated[int, typer.Option(help="Check the most recent DAYS partition days.")] = 7,
    all_partitions: Annotated[bool, typer.Option("--all", help="Check every partition.")] = False,
    home: HomeOption = None,
) -> None:
    """Check the mapping against its table: columns, partitions, a sample, and the rows that fail it."""
    from playerguard.features.source_check import check_source
    from playerguard.features.sources import load_source_mapping

    report = check_source(
        settings_for(home), load_source_mapping(mapping), days=None if all_partitions else days
    )
    for line in report.lines():
        typer.echo(line)
    if report.sample is not None and not report.sample.empty:
        columns = ["event_id", "event_type", "event_timestamp", "player_id", "game_id", "platform"]
        typer.echo(f"sample:\n{report.sample[columns].to_string(index=False)}")
    if not report.ok:
        raise DataError(f"source check failed: {report.problems[0]}")


@source_app.command("sql")
def sql_command(
    mapping: MappingOption,
    start: Annotated[datetime | None, typer.Option(help="First instant of the range (UTC).")] = None,
    end: Annotated[datetime | None, typer.Option(help="End of the range, exclusive (UTC).")] = None,
) -> None:
    """Print the Athena SELECT of envelope events the mapping makes for [START, END), and its parameters."""
    from playerguard.features.sources import load_source_mapping, mapped_select

    query = mapped_select(load_source_mapping(mapping), start, end)
    typer.echo(query.sql)
    typer.echo(f"-- parameters: {list(query.params)}")


def lake_info_command(home: HomeOption = None) -> None:
    """Events by type and by day, players, date range, attribute columns and rejected rows by reason: of
    the native lake, or of the studio's table that PLAYERGUARD_SOURCE_MAPPING reads."""
    from playerguard.features.source_info import source_info
    from playerguard.lake.commands import render_lake_info
    from playerguard.lake.info import lake_info

    settings = settings_for(home)
    render_lake_info(source_info(settings) if settings.source_mapping else lake_info(settings))
