"""`playerguard serve`, `deploy` and `undeploy`: the scoring endpoint on this machine or on SageMaker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

BundleOption = Annotated[
    Path | None,
    typer.Option(help="Bundle directory or model.tar.gz (default: the registry's champions, bundled into <home>/bundle)."),
]
FeatureSetOption = Annotated[
    str, typer.Option(help="Feature set the champions were trained on (only used to bundle the champions).")
]


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback exposes the models.")] = "127.0.0.1",
    bundle: BundleOption = None,
    feature_set: FeatureSetOption = "default",
    max_records: Annotated[int, typer.Option(help="Most records (or players) per request.")] = 1000,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body, in bytes.")] = 6 * 1024 * 1024,
) -> None:
    """Serve the three models over SageMaker's HTTP contract: GET /ping, POST /invocations and
    POST /endpoints/<name>/invocations. Reload the bundle with SIGHUP or POST /admin/reload."""
    from playerguard.inference.payloads import Limits
    from playerguard.inference.server import BundleSource
    from playerguard.inference.server import serve as run_server
    from playerguard.settings import Settings

    def ready(info: dict[str, Any]) -> None:
        versions = ", ".join(f"{model} {version}" for model, version in info["model_versions"].items())
        typer.echo(f"serving {versions} from {info['bundle']} on {info['url']}")
        typer.echo(f"  score:  curl -H 'Content-Type: application/json' -d @records.json {info['url']}/invocations")
        typer.echo(f"  reload: kill -HUP {os.getpid()}   or   curl -X POST {info['url']}/admin/reload")

    run_server(
        BundleSource(Settings(), bundle, feature_set),
        host=host,
        port=port,
        limits=Limits(max_records=max_records, max_body_bytes=max_body_bytes),
        on_ready=ready,
    )


def deploy(
    endpoint_name: Annotated[str, typer.Option(help="SageMaker endpoint to create or update.")],
    role_arn: Annotated[
        str, typer.Option(help="IAM role SageMaker assumes to read the model.", envvar="PLAYERGUARD_SAGEMAKER_ROLE_ARN")
    ],
    instance_type: Annotated[str, typer.Option(help="Instance type of the endpoint.")] = "ml.m5.large",
    instance_count: Annotated[int, typer.Option(help="Number of instances.")] = 1,
    bundle: BundleOption = None,
    feature_set: FeatureSetOption = "default",
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
