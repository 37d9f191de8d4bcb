"""`playerguard score`, `serve`, `deploy` and `undeploy`: batch scores, and the scoring endpoint on this machine
or on SageMaker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from playerguard.command_options import (
    ActiveWithinOption,
    FormatOption,
    HomeOption,
    LookbackOption,
    parse_active_within,
    parse_cutoff,
    settings_for,
)
from playerguard.durations import parse_days
from playerguard.errors import ConfigError
from playerguard.output import working

BundleOption = Annotated[
    Path | None,
    typer.Option(help="Bundle directory or model.tar.gz (default: the registry's champions, bundled into <home>/bundle)."),
]
FeatureSetOption = Annotated[
    str | None,
    typer.Option(
        help="Feature set to bundle the champions with (default: the one they were trained on; another is refused)."
    ),
]


def score_command(
    cutoff: Annotated[
        str, typer.Option("--cutoff", help="Score every player with an event before this time (YYYY-MM-DD or ISO 8601).")
    ],
    out: Annotated[Path, typer.Option(help="Output file (.parquet or .csv).")] = Path("scores.parquet"),
    bundle: Annotated[Path | None, typer.Option(help="Model bundle (default: the registry's champions).")] = None,
    lookback: LookbackOption = "28d",
    active_within: ActiveWithinOption = None,
    to_lake: Annotated[bool, typer.Option(help="Also write player_scores/player_flags into the lake (Glue on aws).")] = False,
    reasons: Annotated[
        str,
        typer.Option(
            "--reasons",
            help="Which players get feature reasons: acted (those the policy acts on, per model) or all.",
        ),
    ] = "acted",
    home: HomeOption = None,
) -> None:
    """Batch-score the population at a cutoff with the champion models: scores, actions and reasons."""
    from playerguard.features.cutoffs import check_cutoff
    from playerguard.inference.batch import champion_bundle, score_cutoff
    from playerguard.inference.scoring import check_reasons

    if out.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: use a .parquet or .csv file name")
    check_reasons(reasons, "--reasons")
    settings = settings_for(home)
    moment = parse_cutoff(cutoff)
    lookback_days = parse_days(lookback, "--lookback")
    check_cutoff(settings, moment, lookback_days=lookback_days)
    loaded = champion_bundle(settings, bundle)
    with working(f"scoring the players active before {moment:%Y-%m-%d %H:%M}"):
        scores = score_cutoff(
            settings,
            moment,
            bundle=loaded,
            lookback_days=lookback_days,
            active_within_days=parse_active_within(active_within),
            reasons=reasons,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        scores.table.to_csv(out, index=False)
    else:
        scores.table.to_parquet(out, index=False)
    for note in scores.notes:
        typer.echo(f"note: {note}")
    acted = int((scores.table["actions"] != "[]").sum())
    typer.echo(f"scored {len(scores.table):,} players at {moment.isoformat()}; {acted:,} with an action; wrote {out}")
    if to_lake:
        from playerguard.inference.writeback import write_results

        typer.echo(str(write_results(settings, scores.table, cutoff=moment)))


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback exposes the models.")] = "127.0.0.1",
    bundle: BundleOption = None,
    feature_set: FeatureSetOption = None,
    max_records: Annotated[int, typer.Option(help="Most records (or players) per request.")] = 1000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 6 * 1024 * 1024,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes sharing the port, each with its own bundle; 0: one per core (what a "
            "SageMaker container runs). A request is scored on one core, so one worker serves one core.",
            envvar="PLAYERGUARD_SERVE_WORKERS",
            min=0,
        ),
    ] = 1,
    home: HomeOption = None,
) -> None:
    """Serve the three models over SageMaker's HTTP contract: GET /ping, POST /invocations and
    POST /endpoints/<name>/invocations. Reload the bundle with SIGHUP or POST /admin/reload."""
    from playerguard.inference.payloads import Limits
    from playerguard.inference.server import BundleSource
    from playerguard.inference.server import serve as run_server

    def ready(info: dict[str, Any]) -> None:
        versions = ", ".join(f"{model} {version}" for model, version in info["model_versions"].items())
        typer.echo(f"serving {versions} from {info['bundle']} on {info['url']} ({info['workers']} worker(s))")
        typer.echo(f"  score:  curl -H 'Content-Type: application/json' -d @records.json {info['url']}/invocations")
        typer.echo(f"  reload: kill -HUP {os.getpid()}   or   curl -X POST {info['url']}/admin/reload")

    run_server(
        BundleSource(settings_for(home), bundle, feature_set),
        host=host,
        port=port,
        limits=Limits(max_records=max_records, max_body_bytes=max_body_bytes),
        on_ready=ready,
        workers=workers,
    )


def deploy(
    endpoint_name: Annotated[str, typer.Option(help="SageMaker endpoint to create or update.")],
    role_arn: Annotated[
        str, typer.Option(help="IAM role SageMaker assumes to read the model.", envvar="PLAYERGUARD_SAGEMAKER_ROLE_ARN")
    ],
    instance_type: Annotated[str, typer.Option(help="Instance type of the endpoint.")] = "ml.m5.large",
    instance_count: Annotated[int, typer.Option(help="Number of instances.")] = 1,
    bundle: BundleOption = None,
    feature_set: FeatureSetOption = None,
    image_uri: Annotated[
        str | None,
        typer.Option(help="Serving image (default: SageMaker's scikit-learn 1.9-0 framework image).",
                     envvar="PLAYERGUARD_SERVING_IMAGE_URI"),
    ] = None,
    s3_prefix: Annotated[
        str | None, typer.Option(help="s3://bucket/prefix for model.tar.gz (default: sagemaker-<region>-<account>).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the endpoint is in service.")] = True,
) -> None:
    """Deploy the bundle as a SageMaker real-time endpoint (created, or updated in place), then print how
    to call it."""
    from playerguard.inference.deploy import DeployConfig, deploy_bundle, invocation_example
    from playerguard.inference.server import build_registry_bundle
    from playerguard.settings import Settings

    settings = Settings()
    source = bundle if bundle is not None else build_registry_bundle(settings, feature_set)
    config = DeployConfig(
        endpoint_name=endpoint_name, role_arn=role_arn, instance_type=instance_type, instance_count=instance_count,
        image_uri=image_uri, s3_prefix=s3_prefix, region=settings.region, wait=wait,
    )
    with _aws_errors():
        result = deploy_bundle(source, config)
    typer.echo(f"{result.action} endpoint {result.endpoint_name} ({result.status}) in {result.region}")
    typer.echo(f"  model {result.model_name}: {result.model_data_url}")
    typer.echo(f"  image {result.image_uri}")
    typer.echo("call it with:\n" + invocation_example(result.endpoint_name, result.region))


def undeploy(
    endpoint_name: Annotated[str, typer.Option(help="SageMaker endpoint to delete.")],
) -> None:
    """Delete a SageMaker endpoint and the endpoint config and models it used."""
    from playerguard.inference.deploy import undeploy as remove
    from playerguard.settings import Settings

    with _aws_errors():
        deleted = remove(endpoint_name, region=Settings().region)
    for name in deleted:
        typer.echo(f"deleted {name}")


@contextmanager
def _aws_errors() -> Iterator[None]:
    """AWS refusals (credentials, permissions, limits) as one-line errors, as the CLI prints them."""
    import botocore.exceptions

    from playerguard.errors import ConfigError

    try:
        yield
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise ConfigError(f"AWS refused: {error}") from None


def explain_command(
    player_id: Annotated[str, typer.Argument(help="The player to explain.")],
    cutoff: Annotated[
        str | None,
        typer.Option(
            "--cutoff", help="YYYY-MM-DD or ISO 8601 time (default: just after the lake's last event day)."
        ),
    ] = None,
    lookback: LookbackOption = "28d",
    active_within: ActiveWithinOption = None,
    bundle: BundleOption = None,
    output_format: FormatOption = None,
    home: HomeOption = None,
) -> None:
    """One player's three scores, the actions the policy takes, and the reasons: the player's feature values
    next to the population's typical value (the median over the players scored at the cutoff)."""
    import json

    from playerguard.inference.batch import champion_bundle
    from playerguard.inference.explain import default_cutoff, explain_player, reason_rows, score_rows
    from playerguard.output import render_rows, resolve_format

    settings = settings_for(home)
    chosen = resolve_format(output_format)
    moment = parse_cutoff(cutoff) if cutoff else default_cutoff(settings)
    explanation = explain_player(
        settings,
        player_id,
        moment,
        bundle=champion_bundle(settings, bundle),
        lookback_days=parse_days(lookback, "--lookback"),
        active_within_days=parse_active_within(active_within),
    )
    if chosen == "json":
        typer.echo(json.dumps(explanation.to_dict(), indent=2))
        return
    when, population = explanation.cutoff.isoformat(), explanation.population
    typer.echo(f"player {player_id} at {when}, among {population:,} players scored")
    scores = ("model", "score", "version", "action", "severity")
    render_rows(score_rows(explanation), scores, chosen, title="scores")
    render_rows(
        reason_rows(explanation),
        ("model", "reason", "feature", "value", "typical", "percentile", "contribution"),
        chosen,
        title="reasons (typical: the median over the players scored)",
    )
    for note in explanation.notes:
        typer.echo(f"note: {note}")
