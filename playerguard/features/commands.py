"""`playerguard features build | training-set | sql | suggest`: point-in-time features from the command line."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from playerguard.command_options import (
    ActiveWithinOption,
    CutoffOption,
    FeatureSetOption,
    HomeOption,
    HorizonOption,
    LookbackOption,
    parse_cutoff,
    settings_for,
)
from playerguard.durations import parse_days, parse_duration
from playerguard.errors import ConfigError
from playerguard.output import working

if TYPE_CHECKING:
    import pandas as pd

    from playerguard.settings import Settings

app = typer.Typer(help="Build point-in-time player features and training sets.", no_args_is_help=True)

MAX_CUTOFFS = 1000

def cutoff_list(cutoffs: str | None, every: str | None, start: str | None, end: str | None) -> list[datetime]:
    """Cutoffs from a comma-separated list, or every `every` from `start` to `end` (both included)."""
    if (cutoffs is None) == (every is None):
        raise ConfigError("give either --cutoffs A,B,... or --cutoff-every with --from and --to")
    if cutoffs is not None:
        if start or end:
            raise ConfigError("--from/--to go with --cutoff-every, not with --cutoffs")
        return [parse_cutoff(part) for part in cutoffs.split(",") if part.strip()]
    if start is None or end is None:
        raise ConfigError("--cutoff-every needs --from and --to")
    step, first, last = parse_duration(every, "--cutoff-every"), parse_cutoff(start), parse_cutoff(end)  # type: ignore[arg-type]
    if first > last:
        raise ConfigError(f"--from {start} is after --to {end}")
    if (last - first) / step >= MAX_CUTOFFS:
        raise ConfigError(
            f"--cutoff-every {every} from {start} to {end} gives more than {MAX_CUTOFFS} cutoffs"
        )
    result = [first]
    while result[-1] + step <= last:
        result.append(result[-1] + step)
    return result


def _write(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)


@app.command("build")
def build_command(
    cutoff: CutoffOption,
    out: Annotated[Path | None, typer.Option("--out", help="Parquet file to write.")] = None,
    lookback: LookbackOption = "28d",
    active_within: ActiveWithinOption = None,
    feature_set: FeatureSetOption = "default",
    snapshot: Annotated[
        bool,
        typer.Option(help="Replace the online snapshot the stream scorer reads (with or without --out)."),
    ] = False,
    home: HomeOption = None,
) -> None:
    """Features of every player with an event before the cutoff, one row per player."""
    from playerguard.features.api import build_features, load_feature_set
    from playerguard.features.online.snapshot import materialize_snapshot

    if out is None and not snapshot:
        raise ConfigError("features build needs somewhere to put them: --out FILE, --snapshot, or both")
    from playerguard.features.cutoffs import check_cutoff

    settings = settings_for(home)
    moment, lookback_days = parse_cutoff(cutoff), parse_days(lookback, "--lookback")
    check_cutoff(settings, moment, lookback_days=lookback_days)
    fs = load_feature_set(feature_set, settings)
    with working(f"building features at {moment:%Y-%m-%d %H:%M}"):
        frame = build_features(
            settings,
            moment,
            lookback_days=lookback_days,
            feature_set=fs,
            active_within_days=parse_days(active_within, "--active-within") if active_within else None,
        )
    described = f"{len(frame):,} players x {len(fs.feature_names)} features (feature set {fs.name}, hash {fs.hash[:12]})"
    if out is not None:
        _write(frame, out)
        typer.echo(f"wrote {described} to {out}")
    else:
        typer.echo(f"built {described}")
    if snapshot:
        typer.echo(f"online snapshot: {materialize_snapshot(settings, frame)}")


@app.command("training-set")
def training_set_command(
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write.")],
    cutoffs: Annotated[str | None, typer.Option("--cutoffs", help="Comma-separated cutoffs.")] = None,
    cutoff_every: Annotated[
        str | None, typer.Option("--cutoff-every", help="Step between cutoffs, e.g. 7d.")
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="First cutoff (with --cutoff-every).")] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last possible cutoff (with --cutoff-every).")
    ] = None,
    horizon: HorizonOption = "14d",
    lookback: LookbackOption = "28d",
    feature_set: FeatureSetOption = "default",
    strategy: Annotated[
        str | None,
        typer.Option(help="per_cutoff or one_query (default: per_cutoff locally, one_query on Athena)."),
    ] = None,
    as_of_run: Annotated[
        str | None,
        typer.Option(
            "--as-of-run",
            help="Rebuild exactly the training set this MLflow run trained on, from the lake version it "
            "recorded (cutoffs, horizon, lookback and feature set come from the run).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Features and labels (churn, purchase, inhuman play) for every player at every cutoff."""
    from playerguard.features.api import build_training_set, load_feature_set
    from playerguard.features.cutoffs import check_cutoff

    settings = settings_for(home)
    if as_of_run is not None:
        _write_as_of_run(settings, as_of_run, out, [cutoffs, cutoff_every, start, end])
        return
    chosen = cutoff_list(cutoffs, cutoff_every, start, end)
    horizon_days, lookback_days = parse_days(horizon, "--horizon"), parse_days(lookback, "--lookback")
    for moment in (chosen[0], chosen[-1]):
        check_cutoff(settings, moment, lookback_days=lookback_days, horizon_days=horizon_days)
    fs = load_feature_set(feature_set, settings)
    with working(f"building the training set at {len(chosen)} cutoffs"):
        frame = build_training_set(
            settings,
            chosen,
            horizon_days=horizon_days,
            lookback_days=lookback_days,
            feature_set=fs,
            strategy=strategy,  # type: ignore[arg-type]
        )
    _write(frame, out)
    typer.echo(f"wrote {len(frame):,} rows ({len(chosen)} cutoffs, feature set {fs.name}) to {out}")
    for column in ("label_churn", "label_purchase", "label_inhuman_play"):
        known = frame[column].notna().sum()
        positives = int(frame[column].sum()) if known else 0
        typer.echo(f"  {column}: {known:,} labelled, {positives:,} positive")


def _write_as_of_run(settings: Settings, run_id: str, out: Path, cutoff_options: list[str | None]) -> None:
    """`training-set --as-of-run`: the run's training set, rebuilt from its recorded recipe, to `out`."""
    from playerguard.training.rebuild import recorded_recipe, training_set_as_of_run

    if any(option is not None for option in cutoff_options):
        raise ConfigError("--as-of-run takes the cutoffs from the run: leave out --cutoffs, --cutoff-every, --from, --to")
    recipe = recorded_recipe(settings, run_id)
    with working(f"rebuilding the training set of run {run_id}"):
        frame = training_set_as_of_run(settings, run_id)
    _write(frame, out)
    typer.echo(f"wrote {len(frame):,} rows to {out}: the training set of run {run_id} ({recipe.describe()})")


@app.command("sql")
def sql_command(
    cutoff: CutoffOption,
    lookback: LookbackOption = "28d",
    active_within: ActiveWithinOption = None,
    feature_set: FeatureSetOption = "default",
    dialect: Annotated[
        str, typer.Option(help="athena (what Athena runs) or duckdb (what runs locally).")
    ] = "athena",
    home: HomeOption = None,
) -> None:
    """Print the feature query and its parameters for review, without running it."""
    from playerguard.features.api import feature_query
    from playerguard.features.engines import EVENTS_TABLE, transpile_to_duckdb

    if dialect not in ("athena", "duckdb"):
        raise ConfigError(f"unknown dialect {dialect!r}; use athena or duckdb")
    settings = settings_for(home)
    query = feature_query(
        feature_set,
        [parse_cutoff(cutoff)],
        lookback_days=parse_days(lookback, "--lookback"),
        active_within_days=parse_days(active_within, "--active-within") if active_within else None,
        database=settings.glue_database,
        table=EVENTS_TABLE,
        settings=settings,
    )
    sql, params = query.sql, list(query.params)
    if settings.source_mapping:  # what really runs: every scan of the events table reads the studio's table
        from playerguard.features.source_binding import MappedSource
        from playerguard.features.sources import load_source_mapping

        mapped = MappedSource(load_source_mapping(settings.source_mapping))
        sql, params = mapped.bind(sql, params, settings.glue_database, EVENTS_TABLE)
    typer.echo(sql if dialect == "athena" else transpile_to_duckdb(sql))
    typer.echo(
        "\n-- attribute types as the definitions use them; when run, attributes the table lacks read as NULL"
    )
    typer.echo("\n-- parameters, in order of the ? placeholders:")
    for number, value in enumerate(params, start=1):
        typer.echo(f"-- {number:>3}: {value}")


@app.command("suggest")
def suggest_command(
    out: Annotated[Path | None, typer.Option("--out", help="YAML file to write (default: print it).")] = None,
    home: HomeOption = None,
) -> None:
    """Write a feature set fitted to the lake's event types and attributes, with a comment per choice."""
    from playerguard.features.api import suggest_features

    settings = settings_for(home)
    with working("profiling the lake"):
        suggestion = suggest_features(settings, name=out.stem if out and _is_name(out.stem) else "suggested")
    if out is None:
        typer.echo(suggestion.text, nl=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(suggestion.text)
    labels = suggestion.feature_set.labels
    typer.echo(
        f"wrote {len(suggestion.feature_set.definitions)} features to {out} "
        f"(churn on {labels.churn_event or 'nothing'}, purchase on {labels.purchase_event or 'nothing'}); "
        f"review it, then use --feature-set {out}"
    )
    if suggestion.skipped:
        typer.echo(
            "event types left out (names must be lower snake case; rename them with the ingest mapping's "
            f"`values:`): {', '.join(suggestion.skipped)}",
            err=True,
        )


def _is_name(text: str) -> bool:
    return bool(re.match(r"^[a-z_][a-z0-9_]{0,62}$", text))
