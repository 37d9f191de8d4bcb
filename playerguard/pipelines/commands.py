"""`playerguard pipeline ...`: run the pipeline here, or define, upsert and start it on SageMaker."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from playerguard.command_options import (
    FeatureSetOption,
    HomeOption,
    HorizonOption,
    LookbackOption,
    parse_cutoff,
    settings_for,
)
from playerguard.durations import parse_days
from playerguard.errors import ConfigError
from playerguard.settings import Settings
from playerguard.training.gate import DEFAULT_MIN_ROC_AUC

if TYPE_CHECKING:
    from playerguard.pipelines.local_runner import PipelineResult

pipeline_app = typer.Typer(
    help="Run the training pipeline locally, or define, upsert and start it as a SageMaker Pipeline.",
    no_args_is_help=True,
)

RoleOption = Annotated[str, typer.Option("--role-arn", help="IAM role the pipeline's jobs run as.")]
OFFLINE_BUCKET = "playerguard-offline"
OFFLINE_ROLE = "playerguard-offline"


def _summary_text(summary: dict[str, Any]) -> str:
    parts = []
    for key, value in summary.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) if len(value) <= 4 else f"{len(value)} items"
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, float):
            value = f"{value:.4g}"
        parts.append(f"{key}: {value if value not in ('', None) else '-'}")
    return "; ".join(parts)


def _render(result: PipelineResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pipeline", title_justify="left")
    for column in ("step", "status", "seconds", "outputs / summary"):
        table.add_column(column, overflow="fold")
    colours = {"ran": "green", "cached": "cyan", "failed": "red", "not run": "dim"}
    for step in result.steps:
        seconds = "-" if step.seconds is None else f"{step.seconds:.1f}"
        detail = step.error if step.error else _summary_text(step.summary)
        table.add_row(step.name, f"[{colours[step.status]}]{step.status}[/]", seconds, detail)
    console = Console()
    console.print(table)
    if result.steps and result.steps[0].output_dir is not None:
        console.print(f"outputs under {result.steps[0].output_dir.parent.parent}")


@pipeline_app.command("run")
def run(
    cutoff: Annotated[
        str | None, typer.Option(help="Last (held-out) cutoff; earlier ones weekly before it.")
    ] = None,
    cutoffs: Annotated[
        str | None, typer.Option(help="Comma-separated cutoff dates (overrides --cutoff).")
    ] = None,
    horizon: HorizonOption = "14d",
    lookback: LookbackOption = "28d",
    feature_set: FeatureSetOption = "default",
    min_roc_auc: Annotated[float, typer.Option(help="Quality gate: lowest held-out ROC-AUC allowed.")] = DEFAULT_MIN_ROC_AUC,
    drift_threshold: Annotated[float, typer.Option(help="PSI above which a column counts as drifted.")] = 0.2,
    force: Annotated[bool, typer.Option(help="Rerun every step, ignoring cached outputs.")] = False,
    home: HomeOption = None,
) -> None:
    """Run build features → train → evaluate → quality gate → register → bundle → drift on this machine.

    Each step's outputs are cached by the hash of its inputs; a rerun skips unchanged steps and resumes
    at the one that failed.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from playerguard.features.cutoffs import check_training_cutoffs, resolve_cutoffs
    from playerguard.pipelines.local_runner import PipelineStepError, StepEvent, run_pipeline

    settings = settings_for(home)
    horizon_days = parse_days(horizon, "--horizon")
    explicit = [part.strip() for part in cutoffs.split(",") if part.strip()] if cutoffs else None
    chosen = resolve_cutoffs(
        settings, cutoff=parse_cutoff(cutoff) if cutoff else None, cutoffs=explicit, horizon_days=horizon_days
    )
    check_training_cutoffs(settings, chosen, horizon_days=horizon_days)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), transient=True
    ) as bar:
        tasks: dict[str, Any] = {}

        def show(event: StepEvent) -> None:
            label = f"[{event.index + 1}/{event.total}] {event.step}"
            if event.step not in tasks:
                tasks[event.step] = bar.add_task(label, total=1)
            if event.status != "started":
                bar.update(tasks[event.step], completed=1, description=f"{label}: {event.status}")
            if not bar.console.is_terminal:  # the live display shows nothing when piped: say it in lines
                typer.echo(f"{label}: {event.status}", err=True)

        try:
            result = run_pipeline(
                settings,
                cutoffs=chosen,
                horizon_days=horizon_days,
                lookback_days=parse_days(lookback, "--lookback"),
                feature_set=feature_set,
                min_roc_auc=min_roc_auc,
                drift_threshold=drift_threshold,
                force=force,
                progress=show,
            )
        except PipelineStepError as error:
            bar.stop()
            _render(error.result)
            raise
    _render(result)


@contextmanager
def offline_aws(region: str) -> Iterator[tuple[str, str]]:
    """An in-process AWS mock (moto) with a bucket and a role, SDK telemetry off and role checks skipped;
    yields (bucket, role ARN). Nothing leaves this machine."""
    try:
        from moto import mock_aws
    except ImportError:
        raise ConfigError("--offline needs moto: pip install 'moto[server]'") from None
    import boto3

    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "sagemaker.yaml"
        config.write_text(
            "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
        )
        overrides = {
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
            "SAGEMAKER_VALIDATE_ROLE": "false",
            "AWS_DEFAULT_REGION": region,
        }
        saved = {name: os.environ.get(name) for name in overrides}
        os.environ.update(overrides)
        try:
            with mock_aws():
                session = boto3.Session(region_name=region)
                s3 = session.client("s3")
                if region == "us-east-1":
                    s3.create_bucket(Bucket=OFFLINE_BUCKET)
                else:
                    s3.create_bucket(
                        Bucket=OFFLINE_BUCKET, CreateBucketConfiguration={"LocationConstraint": region}
                    )
                role = session.client("iam").create_role(RoleName=OFFLINE_ROLE, AssumeRolePolicyDocument="{}")
                yield OFFLINE_BUCKET, role["Role"]["Arn"]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _aws_session(settings: Settings, hint: str = "") -> Any:
    import boto3

    session = boto3.Session(region_name=settings.region) if settings.region else boto3.Session()
    if session.region_name is None:
        raise ConfigError("no AWS region: set PLAYERGUARD_REGION or AWS_DEFAULT_REGION")
    if session.get_credentials() is None:
        raise ConfigError(f"no AWS credentials found{hint}")
    return session


def pipeline_definition(settings: Settings, *, role_arn: str | None, offline: bool) -> str:
    """The pipeline definition JSON, from AWS with the caller's credentials, or under moto when `offline`."""
    import boto3

    from playerguard.pipelines.sagemaker_pipeline import SageMakerPipelineConfig, get_pipeline

    config = SageMakerPipelineConfig()
    if offline:
        region = settings.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        with offline_aws(region) as (bucket, mock_role):
            pipeline = get_pipeline(
                settings,
                boto3.Session(region_name=region),
                role_arn=role_arn or mock_role,
                config=config.model_copy(update={"bucket": config.bucket or bucket}),
            )
            return pipeline.definition()
    if not role_arn:
        raise ConfigError("--role-arn is required (or use --offline)")
    session = _aws_session(settings, " (use --offline to build the definition under a local mock)")
    return get_pipeline(settings, session, role_arn=role_arn, config=config).definition()


@pipeline_app.command("definition")
def definition(
    out: Annotated[Path, typer.Option(help="Where to write the definition JSON.")] = Path("pipeline.json"),
    role_arn: Annotated[str | None, typer.Option("--role-arn", help="IAM role the jobs run as.")] = None,
    offline: Annotated[
        bool, typer.Option(help="Build under a local AWS mock (moto): no credentials, nothing uploaded.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Write the SageMaker Pipeline definition JSON.

    Compiling a definition uploads the job code to S3, so this needs AWS credentials and a role ARN.
    With --offline it runs against an in-process moto mock instead: the JSON is the same, but its S3
    locations point at a mock bucket, so use it for review and diffs, not to create the pipeline.
    """
    text = pipeline_definition(settings_for(home), role_arn=role_arn, offline=offline)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(json.loads(text), indent=2) + "\n")
    typer.echo(f"wrote {out}")


@pipeline_app.command("upsert")
def upsert(role_arn: RoleOption, home: HomeOption = None) -> None:
    """Create the SageMaker Pipeline, or update it if it exists."""
    from playerguard.pipelines.sagemaker_pipeline import get_pipeline

    settings = settings_for(home)
    pipeline = get_pipeline(settings, _aws_session(settings), role_arn=role_arn)
    response = pipeline.upsert(role_arn=role_arn)
    typer.echo(response["PipelineArn"])


@pipeline_app.command("start")
def start(
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="NAME=VALUE pipeline parameter, repeatable.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Start an execution of the upserted SageMaker Pipeline; prints its ARN."""
    values = {}
    for item in parameter or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--parameter expects NAME=VALUE, got {item!r}")
        values[name] = value
    boto_session = _aws_session(settings_for(home))  # before the SDK import, which needs a region

    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline

    from playerguard.pipelines.sagemaker_pipeline import SageMakerPipelineConfig

    session = PipelineSession(boto_session=boto_session)
    execution = Pipeline(name=SageMakerPipelineConfig().pipeline_name, sagemaker_session=session).start(
        parameters=values or None
    )
    typer.echo(execution.arn)
