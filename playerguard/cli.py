"""The `playerguard` command. Sub-commands live beside the code they drive; this module only mounts them."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from playerguard.errors import PlayerguardError

app = typer.Typer(
    name="playerguard",
    help="Find inhuman play, churn risk and purchase propensity in game telemetry, locally or on AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# (module, attribute, name): typer sub-apps, imported when the command runs (each imports its heavy
# dependencies inside its functions, so `--help` stays fast).
_SUB_APPS: tuple[tuple[str, str, str], ...] = (
    ("playerguard.lake.commands", "lake_app", "lake"),
    ("playerguard.features.commands", "app", "features"),
    ("playerguard.training.commands", "models_app", "models"),
    ("playerguard.stream.commands", "stream_app", "stream"),
    ("playerguard.stream.commands", "flags_app", "flags"),
    ("playerguard.pipelines.commands", "pipeline_app", "pipeline"),
    ("playerguard.features.source_commands", "source_app", "source"),
)
# (module, attribute, name): plain commands.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("playerguard.lake.commands", "ingest_command", "ingest"),
    ("playerguard.training.commands", "train_command", "train"),
    ("playerguard.training.commands", "score_command", "score"),
    ("playerguard.inference.commands", "serve", "serve"),
    ("playerguard.inference.commands", "deploy", "deploy"),
    ("playerguard.inference.commands", "undeploy", "undeploy"),
)


def _mount() -> None:
    for module, attribute, name in _SUB_APPS:
        app.add_typer(getattr(importlib.import_module(module), attribute), name=name)
    for module, attribute, name in _COMMANDS:
        app.command(name)(getattr(importlib.import_module(module), attribute))


@app.command()
def simulate(
    players: Annotated[int, typer.Option(help="Number of players to simulate.")] = 2000,
    days: Annotated[int, typer.Option(help="Number of days of play.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same game.")] = 7,
    replace: Annotated[bool, typer.Option(help="Clear the local lake and ground truth first.")] = False,
    layout: Annotated[
        str,
        typer.Option(help="native (the event envelope) or gap (a Game Analytics Pipeline raw_events table)."),
    ] = "native",
    faults: Annotated[
        int, typer.Option(help="gap layout: rows that break the mapping, to see them counted.")
    ] = 0,
) -> None:
    """Simulate a game with known cheaters, bots, churners and buyers, and write it into the lake."""
    from playerguard.errors import ConfigError
    from playerguard.settings import Settings

    if layout == "gap":
        from playerguard.simulator.gap_layout import write_gap_simulation

        summary = write_gap_simulation(
            Settings(), players=players, days=days, seed=seed, replace=replace, faults=faults
        )
    elif layout == "native":
        from playerguard.simulator.writer import write_simulation

        summary = write_simulation(Settings(), players=players, days=days, seed=seed, replace=replace)
    else:
        raise ConfigError(f"unknown layout {layout!r}; use native or gap")
    typer.echo(summary)


@app.command()
def demo(
    players: Annotated[int, typer.Option(help="Number of players to simulate.")] = 2000,
    days: Annotated[int, typer.Option(help="Number of days of play.")] = 60,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    home: Annotated[
        Path | None,
        typer.Option(
            help="Directory for the demo's state, emptied on each run (default: <PLAYERGUARD_HOME>/demo); "
            "a non-empty directory the demo did not make is refused."
        ),
    ] = None,
) -> None:
    """Run the whole loop on this machine, from nothing: simulate, build the lake, and report."""
    from playerguard.pipelines.demo import run_demo

    run_demo(players=players, days=days, seed=seed, home=home)


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit code 2."""
    # MLflow's per-download progress bars and table-creation logs drown the command's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    _mount()
    try:
        app(standalone_mode=False)
    except PlayerguardError as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except Exception as error:  # click's usage errors are already rendered by click
        import click

        if isinstance(error, click.exceptions.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise


if __name__ == "__main__":
    main()
