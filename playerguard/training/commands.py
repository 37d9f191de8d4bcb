"""`playerguard train`, `playerguard score` and `playerguard models list|promote`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from playerguard.errors import ConfigError
from playerguard.settings import Settings

models_app = typer.Typer(help="List registered models; promote a version to champion (or roll back).")

HomeOption = Annotated[
    Path | None, typer.Option(help="State directory (default: PLAYERGUARD_HOME or ./.playerguard).")
]
MODEL_CHOICES = ("all", "inhuman_play", "churn", "purchase")


def _settings(home: Path | None) -> Settings:
    return Settings(home=home) if home else Settings()


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def train_command(
    which: Annotated[str, typer.Argument(help="all, inhuman_play, churn or purchase.")] = "all",
    cutoffs: Annotated[str | None, typer.Option(help="Comma-separated cutoff dates; the last is held out.")] = None,
    cutoff: Annotated[datetime | None, typer.Option(help="Last (held-out) cutoff; weekly cutoffs before it.")] = None,
    horizon_days: Annotated[int, typer.Option(help="Label window after each cutoff, in days.")] = 14,
    lookback_days: Annotated[int, typer.Option(help="Feature window before each cutoff, in days.")] = 28,
    feature_set: Annotated[str, typer.Option(help="Feature set name or YAML path.")] = "default",
    target_fpr: Annotated[float, typer.Option(help="Inhuman play: false positive rate the flag threshold targets.")] = 0.01,
    home: HomeOption = None,
) -> None:
    """Train the models on point-in-time training sets, evaluate out of time, register, and gate the champion."""
    from rich.console import Console
    from rich.table import Table

    from playerguard.features.api import build_training_set
    from playerguard.features.cutoffs import resolve_cutoffs
    from playerguard.training.train import train

    if which not in MODEL_CHOICES:
        raise ConfigError(f"unknown model {which!r}; choose one of {', '.join(MODEL_CHOICES)}")
    settings = _settings(home)
    console = Console()
    explicit = [part.strip() for part in cutoffs.split(",") if part.strip()] if cutoffs else None
    chosen = resolve_cutoffs(settings, cutoff=cutoff, cutoffs=explicit, horizon_days=horizon_days)
    with console.status(f"building the training set at {len(chosen)} cutoffs"):
        frame = build_training_set(
            settings, list(chosen), horizon_days=horizon_days, lookback_days=lookback_days, feature_set=feature_set
        )
    console.print(f"training set: {len(frame):,} rows, cutoffs {chosen[0].date()} .. {chosen[-1].date()}")
    models = ("inhuman_play", "churn", "purchase") if which == "all" else (which,)
    with console.status("training"):
        result = train(
            settings,
            frame,
            models,
            feature_set=feature_set,
            target_fpr=target_fpr,
            horizon_days=horizon_days,
            progress=console.print,
        )
    table = Table(title="held-out metrics (last cutoff)", title_justify="left")
    columns = ("model", "status", "test_roc_auc", "test_pr_auc", "test_recall_at_fpr", "baseline_roc_auc",
               "registered_version", "promoted")
    for column in columns:
        table.add_column(column.replace("_", " "))
    rows = result.summary()
    for row in rows:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    console.print(table)
    for row in rows:
        console.print(f"{row['model']}: {row.get('gate_reason') or row.get('note') or ''}")
        if row.get("report"):
            console.print(f"  report: {row['report']}")
    if not result.trained:
        raise ConfigError("no model could be trained: " + "; ".join(r["note"] or "" for r in result.summary()))


def score_command(
    cutoff: Annotated[datetime, typer.Option(help="Score every player with an event before this time.")],
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")] = Path("scores.parquet"),
    bundle: Annotated[Path | None, typer.Option(help="Model bundle (default: the registry's champions).")] = None,
    lookback_days: Annotated[int, typer.Option(help="Feature window before the cutoff, in days.")] = 28,
    active_within_days: Annotated[int | None, typer.Option(help="Only players active within this many days.")] = None,
    to_lake: Annotated[bool, typer.Option(help="Also write player_scores/player_flags into the lake (Glue on aws).")] = False,
    home: HomeOption = None,
) -> None:
    """Batch-score the population at a cutoff with the champion models: scores, actions and reasons."""
    from playerguard.inference.batch import champion_bundle, score_cutoff

    if out.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: use a .parquet or .csv file name")
    settings = _settings(home)
    loaded = champion_bundle(settings, bundle)
    scores = score_cutoff(
        settings, cutoff, bundle=loaded, lookback_days=lookback_days, active_within_days=active_within_days
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        scores.table.to_csv(out, index=False)
    else:
        scores.table.to_parquet(out, index=False)
    for note in scores.notes:
        typer.echo(f"note: {note}")
    acted = int((scores.table["actions"] != "[]").sum())
    typer.echo(f"scored {len(scores.table):,} players at {cutoff.isoformat()}; {acted:,} with an action; wrote {out}")
    if to_lake:
        from playerguard.inference.writeback import write_results

        typer.echo(str(write_results(settings, scores.table, cutoff=cutoff)))


@models_app.command("list")
def list_command(home: HomeOption = None) -> None:
    """Registered versions of the three models, with aliases and held-out metrics."""
    from rich.console import Console
    from rich.table import Table

    from playerguard.training.tracking import list_models

    rows = list_models(_settings(home))
    if not rows:
        typer.echo("no registered models yet; run `playerguard train` or `playerguard pipeline run`")
        return
    table = Table(title="registered models", title_justify="left")
    for column in ("model", "version", "aliases", "metrics", "gate_decision", "created_at"):
        table.add_column(column, overflow="fold")
    for row in rows:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted((row.get("metrics") or {}).items())[:4])
        table.add_row(row["model"], str(row["version"]), ", ".join(row.get("aliases") or []), metrics,
                      _fmt(row.get("gate_decision")), _fmt(row.get("created_at")))
    Console().print(table)


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="Model: inhuman_play, churn, purchase (or its registered name).")],
    version: Annotated[str, typer.Argument(help="Registered version to make champion.")],
    home: HomeOption = None,
) -> None:
    """Make VERSION the champion of NAME (promote, or roll back to an older version)."""
    from playerguard.training.tracking import promote

    moved = promote(_settings(home), name, version)
    typer.echo(
        f"{moved['name']}: champion is now version {moved['version']} (was {moved.get('previous_version') or 'none'})"
    )
