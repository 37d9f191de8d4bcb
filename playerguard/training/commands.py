"""`playerguard train`, `playerguard models list|promote` and `playerguard features training-set`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from playerguard.command_options import (
    FeatureSetOption,
    FormatOption,
    HomeOption,
    HorizonOption,
    LookbackOption,
    settings_for,
)
from playerguard.durations import parse_days
from playerguard.errors import ConfigError
from playerguard.model_names import MODEL_NAMES
from playerguard.output import render_rows, working
from playerguard.settings import Settings
from playerguard.training.gate import DEFAULT_MIN_ROC_AUC

models_app = typer.Typer(help="List registered models; promote a version to champion (or roll back).")

MODEL_CHOICES = ("all", *MODEL_NAMES)


def train_command(
    which: Annotated[str, typer.Argument(help="all, inhuman_play, churn or purchase.")] = "all",
    cutoffs: Annotated[str | None, typer.Option(help="Comma-separated cutoff dates; the last is held out.")] = None,
    cutoff: Annotated[str | None, typer.Option(help="Last (held-out) cutoff; weekly cutoffs before it.")] = None,
    horizon: HorizonOption = "14d",
    lookback: LookbackOption = "28d",
    feature_set: FeatureSetOption = "default",
    target_fpr: Annotated[float, typer.Option(help="Inhuman play: false positive rate the flag threshold targets.")] = 0.01,
    min_roc_auc: Annotated[
        float, typer.Option(help="Quality gate: lowest held-out ROC-AUC a model may have to become champion.")
    ] = DEFAULT_MIN_ROC_AUC,
    ban_list: Annotated[
        Path | None,
        typer.Option(
            help="Inhuman play: a ban list (Parquet or CSV with player_id, or one id a line), stored as the "
            "label table <home>/labels/ban_list.parquet; players not on it stay unlabelled."
        ),
    ] = None,
    home: HomeOption = None,
    output: FormatOption = None,
) -> None:
    """Train the models on point-in-time training sets, evaluate out of time, register, and gate the champion."""
    from rich.console import Console

    from playerguard.features.api import build_training_set
    from playerguard.features.cutoffs import check_training_cutoffs, resolve_cutoffs
    from playerguard.training.train import train

    if which not in MODEL_CHOICES:
        raise ConfigError(f"unknown model {which!r}; choose one of {', '.join(MODEL_CHOICES)}")
    settings = settings_for(home)
    horizon_days, lookback_days = parse_days(horizon, "--horizon"), parse_days(lookback, "--lookback")
    console = Console(soft_wrap=True)
    if ban_list is not None:
        from playerguard.features.labels import write_ban_list

        console.print(f"ban list stored as labels: {write_ban_list(settings, ban_list)}")
    explicit = [part.strip() for part in cutoffs.split(",") if part.strip()] if cutoffs else None
    chosen = resolve_cutoffs(settings, cutoff=cutoff, cutoffs=explicit, horizon_days=horizon_days)
    check_training_cutoffs(settings, chosen, horizon_days=horizon_days)
    with working(f"building the training set at {len(chosen)} cutoffs"):
        frame = build_training_set(
            settings, list(chosen), horizon_days=horizon_days, lookback_days=lookback_days, feature_set=feature_set
        )
    console.print(f"training set: {len(frame):,} rows, cutoffs {chosen[0].date()} .. {chosen[-1].date()}")
    models = MODEL_NAMES if which == "all" else (which,)
    with working(f"training {', '.join(models)}"):
        result = train(
            settings,
            frame,
            models,
            feature_set=feature_set,
            target_fpr=target_fpr,
            min_roc_auc=min_roc_auc,
            horizon_days=horizon_days,
            progress=console.print,
        )
    columns = ("model", "status", "test_roc_auc", "test_pr_auc", "test_recall_at_fpr", "baseline_roc_auc",
               "registered_version", "promoted")
    rows = result.summary()
    render_rows(rows, columns, output, title="held-out metrics (last cutoff)")
    for row in rows:
        console.print(f"{row['model']}: {row.get('gate_reason') or row.get('note') or ''}")
        if row.get("report"):
            console.print(f"  report: {row['report']}")
    if not result.trained:
        raise ConfigError("no model could be trained: " + "; ".join(r["note"] or "" for r in result.summary()))


@models_app.command("list")
def list_command(home: HomeOption = None, output: FormatOption = None) -> None:
    """Registered versions of the three models: aliases, held-out ROC-AUC and PR-AUC, when and why."""
    from playerguard.training.tracking import list_models

    rows = list_models(settings_for(home))
    if not rows:
        typer.echo("no registered models yet; run `playerguard train` or `playerguard pipeline run`")
        return
    render_rows([_model_row(row) for row in rows], MODEL_LIST_COLUMNS, output, title="registered models")


MODEL_LIST_COLUMNS = ("model", "version", "aliases", "roc_auc", "pr_auc", "created", "gate_decision")


def _model_row(row: dict) -> dict:
    from datetime import UTC, datetime

    metrics = row.get("metrics") or {}
    created = row.get("created_at")
    if isinstance(created, int | float):  # MLflow keeps milliseconds since the epoch
        created = datetime.fromtimestamp(created / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return {
        "model": row["model"],
        "version": str(row["version"]),
        "aliases": ", ".join(row.get("aliases") or []) or "-",
        "roc_auc": metrics.get("roc_auc"),
        "pr_auc": metrics.get("pr_auc"),
        "created": created,
        "gate_decision": row.get("gate_decision"),
    }


@models_app.command("promote")
def promote_command(
    name: Annotated[str, typer.Argument(help="Model: inhuman_play, churn, purchase (or its registered name).")],
    version: Annotated[str, typer.Argument(help="Registered version to make champion.")],
    home: HomeOption = None,
) -> None:
    """Make VERSION the champion of NAME (promote, or roll back to an older version)."""
    from playerguard.training.tracking import promote

    moved = promote(settings_for(home), name, version)
    typer.echo(
        f"{moved['name']}: champion is now version {moved['version']} (was {moved.get('previous_version') or 'none'})"
    )


# `features training-set`, mounted on the features commands by the command line: with --as-of-run it reads
# the recipe a training run recorded in the registry, which lives in this layer.
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
    from playerguard.features.commands import cutoff_list, write_frame
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
    write_frame(frame, out)
    typer.echo(f"wrote {len(frame):,} rows ({len(chosen)} cutoffs, feature set {fs.name}) to {out}")
    for column in ("label_churn", "label_purchase", "label_inhuman_play"):
        known = frame[column].notna().sum()
        positives = int(frame[column].sum()) if known else 0
        typer.echo(f"  {column}: {known:,} labelled, {positives:,} positive")


def _write_as_of_run(settings: Settings, run_id: str, out: Path, cutoff_options: list[str | None]) -> None:
    """`training-set --as-of-run`: the run's training set, rebuilt from its recorded recipe, to `out`."""
    from playerguard.features.commands import write_frame
    from playerguard.training.rebuild import recorded_recipe, training_set_as_of_run

    if any(option is not None for option in cutoff_options):
        raise ConfigError(
            "--as-of-run takes the cutoffs from the run: leave out --cutoffs, --cutoff-every, --from, --to"
        )
    recipe = recorded_recipe(settings, run_id)
    with working(f"rebuilding the training set of run {run_id}"):
        frame = training_set_as_of_run(settings, run_id)
    write_frame(frame, out)
    typer.echo(f"wrote {len(frame):,} rows to {out}: the training set of run {run_id} ({recipe.describe()})")
