"""`playerguard features build | training-set | sql`: point-in-time features from the command line.

The lead mounts `app` as the `features` sub-app in `cli.py`. User mistakes raise PlayerguardError
subclasses, which the CLI prints as one line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from playerguard.errors import ConfigError
from playerguard.features.spec import parse_days, parse_duration
from playerguard.settings import Settings

if TYPE_CHECKING:
    import pandas as pd

app = typer.Typer(help="Build point-in-time player features and training sets.", no_args_is_help=True)

MAX_CUTOFFS = 1000

CutoffOption = Annotated[
    str, typer.Option("--cutoff", help="Cutoff: YYYY-MM-DD or ISO 8601 time (UTC if no zone).")
]
LookbackOption = Annotated[str, typer.Option("--lookback", help="Lookback window, e.g. 28d.")]
FeatureSetOption = Annotated[
    str, typer.Option("--feature-set", help="Packaged set (default, combat) or a path to a .yaml file.")
]
ActiveOption = Annotated[
    str | None, typer.Option("--active-within", help="Only players with an event this recently, e.g. 90d.")
]


def parse_cutoff(text: str) -> datetime:
    """A cutoff from `YYYY-MM-DD` or an ISO 8601 timestamp; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"invalid cutoff {text!r}: use YYYY-MM-DD or an ISO 8601 timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    active_within: ActiveOption = None,
    feature_set: FeatureSetOption = "default",
    snapshot: Annotated[
        bool,
        typer.Option(help="Replace the online snapshot the stream scorer reads (with or without --out)."),
    ] = False,
) -> None:
    """Features of every player with an event before the cutoff, one row per player."""
    from playerguard.features.api import build_features, load_feature_set
    from playerguard.features.online.snapshot import materialize_snapshot

    if out is None and not snapshot:
        raise ConfigError("features build needs somewhere to put them: --out FILE, --snapshot, or both")
    settings = Settings()
    fs = load_feature_set(feature_set)
    frame = build_features(
        settings,
        parse_cutoff(cutoff),
        lookback_days=parse_days(lookback, "--lookback"),
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
    horizon: Annotated[
        str, typer.Option("--horizon", help="Label horizon after each cutoff, e.g. 14d.")
    ] = "14d",
    lookback: LookbackOption = "28d",
    feature_set: FeatureSetOption = "default",
    strategy: Annotated[
        str | None,
        typer.Option(help="per_cutoff or one_query (default: per_cutoff locally, one_query on Athena)."),
    ] = None,
) -> None:
    """Features and labels (churn, purchase, inhuman play) for every player at every cutoff."""
    from playerguard.features.api import build_training_set, load_feature_set

    chosen = cutoff_list(cutoffs, cutoff_every, start, end)
    fs = load_feature_set(feature_set)
    frame = build_training_set(
        Settings(),
        chosen,
        horizon_days=parse_days(horizon, "--horizon"),
        lookback_days=parse_days(lookback, "--lookback"),
        feature_set=fs,
        strategy=strategy,  # type: ignore[arg-type]
    )
    _write(frame, out)
    typer.echo(f"wrote {len(frame):,} rows ({len(chosen)} cutoffs, feature set {fs.name}) to {out}")
    for column in ("label_churn", "label_purchase", "label_inhuman_play"):
        known = frame[column].notna().sum()
        positives = int(frame[column].sum()) if known else 0
        typer.echo(f"  {column}: {known:,} labelled, {positives:,} positive")


@app.command("sql")
def sql_command(
    cutoff: CutoffOption,
    lookback: LookbackOption = "28d",
    active_within: ActiveOption = None,
    feature_set: FeatureSetOption = "default",
    dialect: Annotated[
        str, typer.Option(help="athena (what Athena runs) or duckdb (what runs locally).")
    ] = "athena",
) -> None:
    """Print the feature query and its parameters for review, without running it."""
    from playerguard.features.api import feature_query
    from playerguard.features.engines import EVENTS_TABLE, transpile_to_duckdb

    if dialect not in ("athena", "duckdb"):
        raise ConfigError(f"unknown dialect {dialect!r}; use athena or duckdb")
    settings = Settings()
    query = feature_query(
        feature_set,
        [parse_cutoff(cutoff)],
        lookback_days=parse_days(lookback, "--lookback"),
        active_within_days=parse_days(active_within, "--active-within") if active_within else None,
        database=settings.glue_database,
        table=EVENTS_TABLE,
    )
    typer.echo(query.sql if dialect == "athena" else transpile_to_duckdb(query.sql))
    typer.echo(
        "\n-- attribute types as the definitions use them; when run, attributes the table lacks read as NULL"
    )
    typer.echo("\n-- parameters, in order of the ? placeholders:")
    for number, value in enumerate(query.params, start=1):
        typer.echo(f"-- {number:>3}: {value}")
