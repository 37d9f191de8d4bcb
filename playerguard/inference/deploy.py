"""Deploy a model bundle as a SageMaker real-time endpoint, and take it down again (sagemaker SDK 3.x).

The image is SageMaker's scikit-learn framework container (`1.9-0`, Python 3.12: pandas 3 needs ≥ 3.11),
retrieved with the SDK's image-URI helper and overridable (`image_uri`). Its model server runs a user
module's `model_fn`/`input_fn`/`predict_fn`/`output_fn`, lets `output_fn` set the HTTP status, and at start
installs the module directory's `requirements.txt`. So `model.tar.gz` is the bundle plus `code/`:

    code/inference.py       the entry point: re-exports playerguard.inference.sagemaker_inference
    code/playerguard/       this playerguard's source
    code/setup.py           installs that source without dependencies (`pip install .`)
    code/requirements.txt   the scoring path's dependencies, with playerguard's own version bounds

The container runs `pip install . -r requirements.txt` in `code/`. playerguard's source rides in the
archive instead of its full dependency set (mlflow, sagemaker, awswrangler...), which scoring does not
need and which would slow every container start.

Each deploy makes a new model and endpoint config named `<endpoint>-<UTC stamp>`, then creates the
endpoint or updates it to the new config (SageMaker swaps instances without downtime); once the endpoint
is in service again, the config and model it replaced are deleted.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from playerguard.errors import ConfigError, DataError
from playerguard.inference.bundle import MANIFEST_FILE, pack_bundle, unpack_bundle

SKLEARN_FRAMEWORK_VERSION = "1.9-0"
ENTRY_POINT = "inference.py"
CODE_DIR = "code"
VARIANT_NAME = "AllTraffic"
SERVING_REQUIREMENTS: tuple[str, ...] = (
    "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "xgboost", "skops", "pyyaml", "duckdb",
    "sqlglot", "pydantic", "pydantic-settings", "orjson",
)  # fmt: skip
"""Distributions the scoring path imports (loading models, scoring, features from raw events)."""
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


@dataclass(frozen=True)
class DeployConfig:
    """What to deploy where. `s3_prefix` (s3://bucket/prefix) receives model.tar.gz; by default the
    SageMaker SDK's convention, `s3://sagemaker-<region>-<account>/playerguard/`, created if missing."""

    endpoint_name: str
    role_arn: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    image_uri: str | None = None
    s3_prefix: str | None = None
    region: str | None = None
    wait: bool = True
    timeout_seconds: int = 1800


@dataclass(frozen=True)
class Deployment:
    """What a deploy did."""

    endpoint_name: str
    model_name: str
    endpoint_config_name: str
    model_data_url: str
    image_uri: str
    action: str  # "created" or "updated"
    status: str
    region: str


def check_endpoint_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise ConfigError(
            f"invalid endpoint name {name!r}: 1-63 letters, digits and hyphens, starting with a letter or digit"
        )
    return name


def default_image_uri(region: str, instance_type: str = "ml.m5.large") -> str:
    """The scikit-learn framework inference image for `region` (the SDK's image-URI helper)."""
    from sagemaker.core import image_uris

    return image_uris.retrieve(
        "sklearn", region, version=SKLEARN_FRAMEWORK_VERSION, instance_type=instance_type, image_scope="inference"
    )


def serving_requirements() -> list[str]:
    """requirements.txt lines: SERVING_REQUIREMENTS with the version bounds playerguard declares."""
    declared: dict[str, str] = {}
    for requirement in metadata.requires("playerguard") or []:
        if "extra ==" in requirement:
            continue
        spec = requirement.split(";", 1)[0].strip()
        name = re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0]
        declared[name.lower().replace("_", "-")] = spec
    return [declared.get(name, name) for name in SERVING_REQUIREMENTS]


def container_environment(region: str) -> dict[str, str]:
    """The model's environment: which module the framework container serves, from where."""
    return {
        "SAGEMAKER_PROGRAM": ENTRY_POINT,
        "SAGEMAKER_SUBMIT_DIRECTORY": f"/opt/ml/model/{CODE_DIR}",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": region,
    }


def _write_code(code: Path) -> None:
    import playerguard

    package = Path(playerguard.__file__).parent
    shutil.copytree(package, code / "playerguard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (code / ENTRY_POINT).write_text(
        '"""SageMaker entry point: the handlers live in playerguard."""\n\n'
        "from playerguard.inference.sagemaker_inference import input_fn, model_fn, output_fn, predict_fn\n\n"
        '__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]\n'
    )
    (code / "requirements.txt").write_text("\n".join(serving_requirements()) + "\n")
    (code / "setup.py").write_text(
        "from setuptools import find_packages, setup\n\n"
        f'setup(name="playerguard-serving", version="{playerguard.__version__}", py_modules=["inference"],\n'
        '      packages=find_packages(include=["playerguard", "playerguard.*"]),\n'
        '      package_data={"playerguard": ["**/*.yaml", "**/*.json"]})\n'
    )


def package_model(bundle: Path, out_tar: Path) -> Path:
    """model.tar.gz for SageMaker: the bundle (directory or .tar.gz) at the root, plus `code/`."""
    bundle = Path(bundle)
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / "model"
        if bundle.is_dir():
            shutil.copytree(bundle, staged)
        elif bundle.is_file():
            unpack_bundle(bundle, staged)
        else:
            raise DataError(f"no model bundle at {bundle}")
        if not (staged / MANIFEST_FILE).is_file():
            raise DataError(f"{bundle} is not a model bundle (no {MANIFEST_FILE})")
        shutil.rmtree(staged / CODE_DIR, ignore_errors=True)
        _write_code(staged / CODE_DIR)
        return pack_bundle(staged, Path(out_tar))


def _session(session: Any, region: str | None) -> Any:
    if session is None:
        import boto3

        session = boto3.Session(region_name=region)
    if not (region or session.region_name):
        raise ConfigError("no AWS region: set PLAYERGUARD_REGION or AWS_DEFAULT_REGION")
    return session


def _default_prefix(session: Any, region: str) -> str:
    """s3://sagemaker-<region>-<account>/playerguard, creating the bucket as the SageMaker SDK does."""
    account = session.client("sts").get_caller_identity()["Account"]
    bucket = f"sagemaker-{region}-{account}"
    s3 = session.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        options = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **options)
    return f"s3://{bucket}/playerguard"


def _split_s3(prefix: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/?(.*)$", prefix)
    if not match:
        raise ConfigError(f"S3 prefix must look like s3://bucket/prefix, got {prefix!r}")
    return match.group(1), match.group(2).strip("/")


def _upload(session: Any, archive: Path, prefix: str, model_name: str) -> str:
    bucket, key_prefix = _split_s3(prefix)
    key = "/".join(filter(None, [key_prefix, model_name, "model.tar.gz"]))
    session.client("s3").upload_file(str(archive), bucket, key)
    return f"s3://{bucket}/{key}"


def _existing_endpoint(name: str, session: Any, region: str) -> Any | None:
    import botocore.exceptions
    from sagemaker.core.resources import Endpoint

    try:
        return Endpoint.get(endpoint_name=name, session=session, region=region)
    except botocore.exceptions.ClientError as error:
        if "Could not find" in error.response["Error"].get("Message", ""):
            return None
        raise


def _resource_name(endpoint_name: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    return f"{endpoint_name[: 62 - len(stamp)]}-{stamp}"


def deploy_bundle(bundle: Path, config: DeployConfig, *, session: Any = None) -> Deployment:
    """Package, upload and serve `bundle`: a new model and endpoint config, then create or update the
    endpoint; with `config.wait`, wait until it is in service and delete what the update replaced."""
    from sagemaker.core.resources import Endpoint, EndpointConfig, Model
    from sagemaker.core.shapes import ContainerDefinition, ProductionVariant

    check_endpoint_name(config.endpoint_name)
    if config.s3_prefix is not None:
        _split_s3(config.s3_prefix)
    session = _session(session, config.region)
    region = config.region or session.region_name
    image_uri = config.image_uri or default_image_uri(region, config.instance_type)
    name = _resource_name(config.endpoint_name)
    with tempfile.TemporaryDirectory() as scratch:
        archive = package_model(bundle, Path(scratch) / "model.tar.gz")
        model_data_url = _upload(session, archive, config.s3_prefix or _default_prefix(session, region), name)

    container = ContainerDefinition(
        image=image_uri, model_data_url=model_data_url, environment=container_environment(region)
    )
    Model.create(
        model_name=name, primary_container=container, execution_role_arn=config.role_arn,
        session=session, region=region,
    )
    variant = ProductionVariant(
        variant_name=VARIANT_NAME, model_name=name, initial_instance_count=config.instance_count,
        instance_type=config.instance_type,
    )
    EndpointConfig.create(endpoint_config_name=name, production_variants=[variant], session=session, region=region)

    endpoint = _existing_endpoint(config.endpoint_name, session, region)
    replaced = None
    if endpoint is None:
        endpoint = Endpoint.create(
            endpoint_name=config.endpoint_name, endpoint_config_name=name, session=session, region=region
        )
        action = "created"
    else:
        replaced = endpoint.endpoint_config_name
        endpoint.endpoint_config_name = name
        endpoint.update()
        action = "updated"
    if config.wait:
        _wait_in_service(endpoint, config.timeout_seconds)
        if replaced and replaced != name:
            _delete_config_and_models(replaced, session, region)
    endpoint.refresh()
    return Deployment(
        config.endpoint_name, name, name, model_data_url, image_uri, action, str(endpoint.endpoint_status), region
    )


def _wait_in_service(endpoint: Any, timeout_seconds: int) -> None:
    from sagemaker.core.utils.exceptions import WaiterError

    try:
        endpoint.wait_for_status("InService", poll=15, timeout=timeout_seconds)
    except WaiterError as error:  # failed, rolled back or timed out: the SDK's message says which
        raise DataError(f"endpoint {endpoint.endpoint_name} is not in service: {error}") from None


def _delete_config_and_models(config_name: str, session: Any, region: str) -> list[str]:
    import botocore.exceptions
    from sagemaker.core.resources import EndpointConfig, Model

    deleted = []
    try:
        endpoint_config = EndpointConfig.get(endpoint_config_name=config_name, session=session, region=region)
    except botocore.exceptions.ClientError:
        return deleted
    models = [variant.model_name for variant in endpoint_config.production_variants or []]
    endpoint_config.delete()
    deleted.append(f"endpoint config {config_name}")
    for model_name in models:
        try:
            Model.get(model_name=model_name, session=session, region=region).delete()
            deleted.append(f"model {model_name}")
        except botocore.exceptions.ClientError:
            continue  # already gone, or shared with another config
    return deleted


def undeploy(endpoint_name: str, *, session: Any = None, region: str | None = None, wait: bool = True) -> list[str]:
    """Delete the endpoint, then its endpoint config and models; returns what was deleted."""
    check_endpoint_name(endpoint_name)
    session = _session(session, region)
    region = region or session.region_name
    endpoint = _existing_endpoint(endpoint_name, session, region)
    if endpoint is None:
        raise DataError(f"no SageMaker endpoint named {endpoint_name!r} in {region}")
    config_name = endpoint.endpoint_config_name
    endpoint.delete()
    if wait:
        endpoint.wait_for_delete(poll=10, timeout=900)
    return [f"endpoint {endpoint_name}", *_delete_config_and_models(config_name, session, region)]


def invocation_example(endpoint_name: str, region: str) -> str:
    """How to call the endpoint, for the deploy command to print."""
    return (
        "import boto3, json\n"
        f'runtime = boto3.client("sagemaker-runtime", region_name="{region}")\n'
        f'response = runtime.invoke_endpoint(EndpointName="{endpoint_name}", ContentType="application/json",\n'
        '                                   Body=json.dumps([{"player_id": "p1", ...features}]))\n'
        'print(json.loads(response["Body"].read())["predictions"])'
    )
