"""Deploying a bundle to SageMaker, against moto's server: the archive, the model, endpoint config and
endpoint, the update of an existing endpoint, and undeploy."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
from endpoint_fixtures import shared_test_bundle

from playerguard.errors import ConfigError, DataError
from playerguard.inference.bundle import pack_bundle
from playerguard.inference.deploy import DeployConfig, deploy_bundle, package_model, undeploy

pytestmark = pytest.mark.aws

REGION = "us-east-1"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    "SAGEMAKER_REGION": REGION,
}


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_test_bundle(tmp_path_factory)


@pytest.fixture
def moto(aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh moto account with a bucket and an IAM role; yields the role's ARN."""
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(tmp_path / "no-sagemaker-config.yaml"))
    session = boto3.Session(region_name=REGION)
    session.client("s3").create_bucket(Bucket="deploy-bucket")
    return session.client("iam").create_role(RoleName="endpoint-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def _session() -> boto3.Session:
    """A session for moto. moto describes an unset structure as `{}` (`VpcConfig`, `DataCaptureConfig`),
    where SageMaker leaves the key out and the SDK's resources then fail validation; drop them."""

    def drop_empty_structures(parsed: dict, **kwargs: object) -> None:
        for key in [key for key, value in parsed.items() if value == {}]:
            del parsed[key]

    session = boto3.Session(region_name=REGION)
    for operation in ("DescribeModel", "DescribeEndpointConfig", "DescribeEndpoint"):
        session.events.register(f"after-call.sagemaker.{operation}", drop_empty_structures)
    return session


def _session_with_update_endpoint(calls: list[dict]) -> boto3.Session:
    """A session whose UpdateEndpoint calls are applied to moto's state directly: moto does not implement
    that API. The call our code makes is recorded, so the test still checks it."""
    from botocore.awsrequest import AWSResponse
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sagemaker.models import sagemaker_backends

    def update_endpoint(params: dict, **kwargs: object) -> tuple[AWSResponse, dict]:
        request = json.loads(params["body"])
        calls.append(request)
        backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
        endpoint = backend.endpoints[request["EndpointName"]]
        endpoint.endpoint_config_name = request["EndpointConfigName"]
        endpoint.production_variants = endpoint._process_production_variants(
            backend.describe_endpoint_config(request["EndpointConfigName"])["ProductionVariants"]
        )
        return AWSResponse("", 200, {}, None), {"EndpointArn": endpoint.arn}

    session = _session()
    session.events.register("before-call.sagemaker.UpdateEndpoint", update_endpoint)
    return session


def test_model_archive_is_the_bundle_plus_a_self_contained_entry_point(bundle_path: Path, tmp_path: Path) -> None:
    archive = package_model(pack_bundle(bundle_path, tmp_path / "bundle.tar.gz"), tmp_path / "model.tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "model", filter="data")
    assert {"manifest.json", "features.yaml", "policy.yaml", "code/inference.py", "code/setup.py",
            "code/requirements.txt", "code/playerguard/inference/sagemaker_inference.py",
            "code/playerguard/features/definitions/default.yaml"} <= names
    assert not [name for name in names if "__pycache__" in name]
    requirements = (tmp_path / "model" / "code" / "requirements.txt").read_text().split()
    assert any(line.startswith("pandas") and ">=3.1" in line for line in requirements)
    assert not [line for line in requirements if line.startswith(("mlflow", "sagemaker", "awswrangler"))]

    # What the container does: code/ on the path, the entry point's handlers on /opt/ml/model.
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(tmp_path / 'model' / 'code')!r})\n"
        "import inference, playerguard\n"
        f"model = inference.model_fn({str(tmp_path / 'model')!r})\n"
        "csv = 'player_id,' + ','.join(model.feature_names) + '\\np1' + ',' * len(model.feature_names) + '\\n'\n"
        "body, kind = inference.output_fn(inference.predict_fn(inference.input_fn(csv, 'text/csv'), model), '*/*')\n"
        "print(json.dumps({'package': playerguard.__file__, 'kind': kind, 'body': json.loads(body)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["package"].startswith(str(tmp_path / "model" / "code"))
    assert result["kind"] == "application/json"
    assert set(result["body"]["predictions"][0]["scores"]) == {"churn", "purchase", "inhuman_play"}


def test_deploy_creates_the_model_endpoint_config_and_endpoint(moto: str, bundle_path: Path) -> None:
    config = DeployConfig(endpoint_name="pg-create", role_arn=moto, s3_prefix="s3://deploy-bucket/models",
                          region=REGION)
    result = deploy_bundle(bundle_path, config, session=_session())
    assert (result.action, result.status, result.image_uri) == ("created", "InService", SKLEARN_IMAGE)
    sagemaker = boto3.client("sagemaker", region_name=REGION)

    model = sagemaker.describe_model(ModelName=result.model_name)
    assert model["PrimaryContainer"]["Image"] == SKLEARN_IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == result.model_data_url
    assert result.model_data_url == f"s3://deploy-bucket/models/{result.model_name}/model.tar.gz"
    assert model["PrimaryContainer"]["Environment"] == ENVIRONMENT
    assert model["ExecutionRoleArn"] == moto

    variant = sagemaker.describe_endpoint_config(EndpointConfigName=result.endpoint_config_name)["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        result.model_name, "ml.m5.large", 1)
    endpoint = sagemaker.describe_endpoint(EndpointName="pg-create")
    assert (endpoint["EndpointConfigName"], endpoint["EndpointStatus"]) == (result.endpoint_config_name, "InService")

    key = result.model_data_url.removeprefix("s3://deploy-bucket/")
    archive = boto3.client("s3", region_name=REGION).get_object(Bucket="deploy-bucket", Key=key)["Body"].read()
    path = bundle_path.parent / "uploaded.tar.gz"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        assert {"manifest.json", "code/inference.py"} <= set(tar.getnames())


def test_deploying_again_updates_the_endpoint_and_removes_what_it_replaced(moto: str, bundle_path: Path) -> None:
    calls: list[dict] = []
    session = _session_with_update_endpoint(calls)
    first = deploy_bundle(bundle_path, DeployConfig("pg-update", moto, s3_prefix="s3://deploy-bucket/m",
                                                    region=REGION), session=session)
    custom = "111122223333.dkr.ecr.us-east-1.amazonaws.com/playerguard-serving:1"
    second = deploy_bundle(bundle_path, DeployConfig("pg-update", moto, instance_type="ml.c5.xlarge",
                                                     image_uri=custom, s3_prefix="s3://deploy-bucket/m",
                                                     region=REGION), session=session)
    assert (first.action, second.action) == ("created", "updated")
    assert calls == [{"EndpointName": "pg-update", "EndpointConfigName": second.endpoint_config_name}]
    sagemaker = session.client("sagemaker")
    assert sagemaker.describe_endpoint(EndpointName="pg-update")["EndpointConfigName"] == second.endpoint_config_name
    assert sagemaker.describe_model(ModelName=second.model_name)["PrimaryContainer"]["Image"] == custom
    variant = sagemaker.describe_endpoint_config(EndpointConfigName=second.endpoint_config_name)["ProductionVariants"]
    assert variant[0]["InstanceType"] == "ml.c5.xlarge"
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_endpoint_config(EndpointConfigName=first.endpoint_config_name)
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_model(ModelName=first.model_name)


def test_default_s3_location_is_the_sdk_bucket_of_the_account(moto: str, bundle_path: Path) -> None:
    result = deploy_bundle(bundle_path, DeployConfig("pg-default", moto, region=REGION), session=_session())
    assert result.model_data_url.startswith("s3://sagemaker-us-east-1-123456789012/playerguard/pg-default-")


def test_undeploy_deletes_the_endpoint_its_config_and_model(moto: str, bundle_path: Path) -> None:
    session = _session()
    result = deploy_bundle(bundle_path, DeployConfig("pg-remove", moto, s3_prefix="s3://deploy-bucket/r",
                                                     region=REGION), session=session)
    deleted = undeploy("pg-remove", session=session, region=REGION)
    assert deleted == ["endpoint pg-remove", f"endpoint config {result.endpoint_config_name}",
                       f"model {result.model_name}"]
    sagemaker = session.client("sagemaker")
    with pytest.raises(sagemaker.exceptions.ClientError):
        sagemaker.describe_endpoint(EndpointName="pg-remove")
    with pytest.raises(DataError, match="no SageMaker endpoint named 'pg-remove'"):
        undeploy("pg-remove", session=session, region=REGION)


def test_bad_names_and_prefixes_are_refused_before_anything_is_created(moto: str, bundle_path: Path) -> None:
    session = _session()
    with pytest.raises(ConfigError, match="invalid endpoint name"):
        deploy_bundle(bundle_path, DeployConfig("bad_name!", moto, region=REGION), session=session)
    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        deploy_bundle(bundle_path, DeployConfig("pg-prefix", moto, s3_prefix="deploy-bucket", region=REGION),
                      session=session)
    models = session.client("sagemaker").list_models()["Models"]
    assert not [m for m in models if m["ModelName"].startswith(("pg-prefix", "bad_name"))]


def test_deploy_and_undeploy_commands(moto: str, bundle_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer
    from typer.testing import CliRunner

    from playerguard.inference import commands as serve_commands

    app = typer.Typer()
    app.command("deploy")(serve_commands.deploy)
    app.command("undeploy")(serve_commands.undeploy)
    monkeypatch.setenv("PLAYERGUARD_REGION", REGION)
    session = _session()
    monkeypatch.setattr(boto3, "Session", lambda **kwargs: session)  # with moto's describe quirk handled
    runner = CliRunner()
    deployed = runner.invoke(app, ["deploy", "--endpoint-name", "pg-cli", "--role-arn", moto, "--bundle",
                                   str(bundle_path), "--s3-prefix", "s3://deploy-bucket/cli"])
    assert deployed.exit_code == 0, deployed.output
    assert "created endpoint pg-cli (InService) in us-east-1" in deployed.output
    assert 'invoke_endpoint(EndpointName="pg-cli"' in deployed.output
    removed = runner.invoke(app, ["undeploy", "--endpoint-name", "pg-cli"])
    assert removed.exit_code == 0 and "deleted endpoint pg-cli" in removed.output
