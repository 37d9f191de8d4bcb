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
    LookbackOption,
    parse_active_within,
    parse_cutoff,
    settings_for,
)
from playerguard.durations import parse_days, parse_duration
from playerguard.errors import ConfigError
from playerguard.output import working

if TYPE_CHECKING:
    import pandas as pd


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


def write_frame(frame: pd.DataFrame, out: Path) -> None:
    """Write `frame` as Parquet at `out`, making its directory."""
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
            active_within_days=parse_active_within(active_within),
        )
    described = f"{len(frame):,} players x {len(fs.feature_names)} features (feature set {fs.name}, hash {fs.hash[:12]})"
    if out is not None:
        write_frame(frame, out)
        typer.echo(f"wrote {described} to {out}")
    else:
        typer.echo(f"built {described}")
    if snapshot:
        typer.echo(f"online snapshot: {materialize_snapshot(settings, frame)}")


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
        active_within_days=parse_active_within(active_within),
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
