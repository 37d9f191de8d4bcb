"""The `playerguard` command. Sub-commands live beside the code they drive; this module only mounts them."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from playerguard.command_options import HomeOption, settings_for

if TYPE_CHECKING:
    from pydantic import ValidationError

from playerguard.errors import ConfigError, PlayerguardError

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
    ("playerguard.inference.commands", "score_command", "score"),
    ("playerguard.inference.commands", "serve", "serve"),
    ("playerguard.inference.commands", "deploy", "deploy"),
    ("playerguard.inference.commands", "undeploy", "undeploy"),
    ("playerguard.review.commands", "review_command", "review"),
    ("playerguard.inference.commands", "explain_command", "explain"),
)


# Commands mounted on a sub-app defined in a lower layer, because they need a higher one: `lake info` also
# describes a studio's own table (the features layer's SQL); `features training-set --as-of-run` reads the
# recipe a training run recorded (the registry). Per sub-app: (module, attribute, name).
_SUB_APP_COMMANDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "lake": (("playerguard.features.source_commands", "lake_info_command", "info"),),
    "features": (("playerguard.training.commands", "training_set_command", "training-set"),),
}


def _mount() -> None:
    if app.registered_groups:  # mounted already (a second call in one process)
        return
    for module, attribute, name in _SUB_APPS:
        sub_app = getattr(importlib.import_module(module), attribute)
        for command_module, command, command_name in _SUB_APP_COMMANDS.get(name, ()):
            sub_app.command(command_name)(getattr(importlib.import_module(command_module), command))
        app.add_typer(sub_app, name=name)
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
        typer.Option(
            help="native (the event envelope), gap (a Game Analytics Pipeline v2 raw_events table) or gap-v3 "
            "(its v3 Apache Iceberg table)."
        ),
    ] = "native",
    faults: Annotated[
        int, typer.Option(help="gap and gap-v3 layouts: rows that break the mapping, to see them counted.")
    ] = 0,
    home: HomeOption = None,
) -> None:
    """Simulate a game with known cheaters, bots, churners and buyers, and write it into the lake."""
    from playerguard.api import simulate as write

    summary = write(players, days, seed, layout=layout, faults=faults, replace=replace, home=settings_for(home))
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


# Variables read outside the settings classes (by a command option, a data adapter or the tests).
_OTHER_VARIABLES = frozenset(
    {"PLAYERGUARD_CS2CD_DIR", "PLAYERGUARD_SERVING_IMAGE_URI", "PLAYERGUARD_SAGEMAKER_ROLE_ARN",
     "PLAYERGUARD_UPDATE_GOLDEN", "PLAYERGUARD_REVIEWER", "PLAYERGUARD_REVIEW_TOKEN", "PLAYERGUARD_SERVE_WORKERS"}
)  # fmt: skip


def _known_variables(present: list[str]) -> set[str]:
    """Every PLAYERGUARD_* name some part of playerguard reads; the sub-settings are imported only when a
    variable of theirs is set."""
    from playerguard.settings import Settings

    known = {f"PLAYERGUARD_{name.upper()}" for name in Settings.model_fields} | set(_OTHER_VARIABLES)
    if any(name.startswith("PLAYERGUARD_STREAM_") for name in present):
        from playerguard.stream.handler import StreamConfig

        known |= {f"PLAYERGUARD_STREAM_{name.upper()}" for name in StreamConfig.model_fields}
    if any(name.startswith("PLAYERGUARD_SAGEMAKER_") for name in present):
        from playerguard.pipelines.sagemaker_pipeline import SageMakerPipelineConfig

        known |= {f"PLAYERGUARD_SAGEMAKER_{name.upper()}" for name in SageMakerPipelineConfig.model_fields}
    return known


def check_environment(environ: dict[str, str]) -> None:
    """A ConfigError for a PLAYERGUARD_* variable that nothing reads (a typo would otherwise be ignored)."""
    import difflib

    present = sorted(name for name in environ if name.startswith("PLAYERGUARD_"))
    known = _known_variables(present)
    for name in present:
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {near[0]}?" if near else ""
            raise ConfigError(f"unknown environment variable {name}{hint}")


def _setting_error(error: ValidationError) -> str:
    """One line for an invalid setting value: which variable, what it holds, what it must be."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "setting"
    prefix = "PLAYERGUARD_" if error.title == "Settings" else ""
    return f"invalid setting {prefix}{field.upper()}={first.get('input')!r}: {first.get('msg')}"


def _is_usage_error(error: BaseException) -> bool:
    """Click's usage and parameter errors, from whichever click typer runs on (it may bundle its own)."""
    return any(cls.__name__ == "ClickException" for cls in type(error).__mro__)


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit code 2."""
    from pydantic import ValidationError

    # MLflow's per-download progress bars and table-creation logs drown the command's own output.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # mlflow resets its logger's level on import
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        check_environment(dict(os.environ))
        _mount()
        app(standalone_mode=False)
    except PlayerguardError as error:
        _fail(f"error: {error}")
    except ValidationError as error:
        _fail(f"error: {_setting_error(error)}")
    except typer.Abort:
        sys.exit(130)
    except Exception as error:
        if not _is_usage_error(error):
            raise
        context = getattr(error, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        message = " ".join(error.format_message().split())
        _fail(f"error: {where}{message}", getattr(error, "exit_code", 2) or 2)


def _fail(message: str, code: int = 2) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
