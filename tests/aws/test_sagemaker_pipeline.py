"""The SageMaker Pipeline definition, compiled against moto's server: structure, uploaded job code, golden copy.

Set PLAYERGUARD_UPDATE_GOLDEN=1 to rewrite tests/golden/pipeline_definition.json after a deliberate change.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from playerguard.pipelines.commands import OFFLINE_BUCKET, OFFLINE_ROLE, pipeline_definition
from playerguard.pipelines.sagemaker_pipeline import SageMakerPipelineConfig, get_pipeline
from playerguard.pipelines.steps import PIPELINE_STEPS
from playerguard.settings import Settings

pytestmark = pytest.mark.aws

GOLDEN = Path(__file__).parents[1] / "golden" / "pipeline_definition.json"
REGION = "us-east-1"
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
_VOLATILE = (
    (re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}"), "<timestamp>"),  # processing job names
    (re.compile(r"(?<![0-9])\d{14}(?![0-9])"), "<timestamp>"),  # training job names
    (re.compile(r"\b[0-9a-f]{64}\b"), "<code-hash>"),  # hashes of uploaded code
)


def normalize(value: Any) -> Any:
    """The definition with timestamps and code hashes replaced by placeholders."""
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        for pattern, placeholder in _VOLATILE:
            value = pattern.sub(placeholder, value)
    return value


def _telemetry_off(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = directory / "sagemaker.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
    )
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")


@pytest.fixture(scope="module", autouse=True)
def _validate_sdk_config_once() -> Iterator[None]:
    """The SDK re-validates its defaults config (here: the telemetry opt-out) against its JSON schema on
    every lookup, about 0.2 s each; validate each distinct config once instead."""
    from sagemaker.core.config.config_manager import SageMakerConfig

    validate = SageMakerConfig.validate_sagemaker_config
    seen: set[str] = set()

    def validate_once(sagemaker_config: dict | None = None) -> None:
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in seen:
            validate(sagemaker_config)
            seen.add(key)

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(SageMakerConfig, "validate_sagemaker_config", staticmethod(validate_once))
        yield


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One moto server for the module (moto's state is per process), with a bucket and a role."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        _telemetry_off(tmp_path_factory.mktemp("sagemaker-config"), monkeypatch)
        session = boto3.Session(region_name=REGION)
        session.client("s3").create_bucket(Bucket=OFFLINE_BUCKET)
        role = session.client("iam").create_role(RoleName=OFFLINE_ROLE, AssumeRolePolicyDocument="{}")
        try:
            yield {"role": role["Role"]["Arn"], "bucket": OFFLINE_BUCKET, "endpoint": f"http://{host}:{port}"}
        finally:
            server.stop()


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        region=REGION,
        lake_s3_uri="s3://game-lake/events-lake",
        athena_output_s3_uri="s3://game-lake/athena-results",
    )


def _s3_text(uri: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def _s3_names(prefix_uri: str) -> dict[str, bytes]:
    bucket, _, prefix = prefix_uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


@pytest.fixture(scope="module")
def compiled(
    moto_server: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, dict[str, Any]]:
    pipeline = get_pipeline(
        _settings(tmp_path_factory.mktemp("home")),
        boto3.Session(region_name=REGION),
        role_arn=moto_server["role"],
        config=SageMakerPipelineConfig(bucket=moto_server["bucket"]),
    )
    return pipeline, json.loads(pipeline.definition())


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step.get("Arguments", {}).get(branch, []):
                found[inner["Name"]] = inner
    return found


def test_step_types_and_order(compiled: tuple[Any, dict[str, Any]]) -> None:
    _, definition = compiled
    assert [step["Name"] for step in definition["Steps"]] == [
        "BuildFeatures",
        "Train",
        "Evaluate",
        "QualityGate",
    ]
    types = {name: step["Type"] for name, step in _steps(definition).items()}
    assert types == {
        "BuildFeatures": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "QualityGate": "Condition",
        "Register": "RegisterModel",
        "QualityGateFailed": "Fail",
    }
    # every step of the shared definition runs inside one of these SageMaker steps
    assert {step.sagemaker_step for step in PIPELINE_STEPS} <= set(types)


def test_parameters(compiled: tuple[Any, dict[str, Any]]) -> None:
    _, definition = compiled
    parameters = {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]}
    assert parameters == {
        "Cutoff": ("String", ""),
        "HorizonDays": ("Integer", 14),
        "LookbackDays": ("Integer", 28),
        "FeatureSet": ("String", "default"),
        "MinRocAuc": ("Float", 0.6),
        "DriftThreshold": ("Float", 0.2),
        "ProcessingInstanceType": ("String", "ml.m5.xlarge"),
        "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
    }
    steps = _steps(definition)
    arguments = steps["BuildFeatures"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[:2] == ["--cutoff", {"Get": "Parameters.Cutoff"}]
    assert steps["Train"]["Arguments"]["ResourceConfig"]["InstanceType"] == {
        "Get": "Parameters.TrainingInstanceType"
    }
    assert steps["Train"]["Arguments"]["HyperParameters"]["horizon_days"] == {"Get": "Parameters.HorizonDays"}


def test_quality_gate_condition_reads_the_evaluation_property_file(
    compiled: tuple[Any, dict[str, Any]],
) -> None:
    _, definition = compiled
    steps = _steps(definition)
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "Evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    (condition,) = steps["QualityGate"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"},
            "Path": "quality_gate.worst_value",
        }
    }
    assert condition["RightValue"] == {"Get": "Parameters.MinRocAuc"}
    assert [s["Name"] for s in steps["QualityGate"]["Arguments"]["IfSteps"]] == ["Register"]
    assert [s["Name"] for s in steps["QualityGate"]["Arguments"]["ElseSteps"]] == ["QualityGateFailed"]
    register = steps["Register"]["Arguments"]
    assert register["ModelPackageGroupName"] == "playerguard"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


def test_images_and_data_flow(compiled: tuple[Any, dict[str, Any]]) -> None:
    _, definition = compiled
    steps = _steps(definition)
    assert steps["BuildFeatures"]["Arguments"]["AppSpecification"]["ImageUri"] == SKLEARN_IMAGE
    assert steps["Evaluate"]["Arguments"]["AppSpecification"]["ImageUri"] == SKLEARN_IMAGE
    assert steps["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"] == SKLEARN_IMAGE
    environment = steps["BuildFeatures"]["Arguments"]["Environment"]
    assert environment["PLAYERGUARD_BACKEND"] == "aws"
    assert environment["PLAYERGUARD_LAKE_S3_URI"] == "s3://game-lake/events-lake"
    features_output = "Steps.BuildFeatures.ProcessingOutputConfig.Outputs['features'].S3Output.S3Uri"
    channels = {c["ChannelName"]: c for c in steps["Train"]["Arguments"]["InputDataConfig"]}
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == {"Get": features_output}
    inputs = {i["InputName"]: i["S3Input"] for i in steps["Evaluate"]["Arguments"]["ProcessingInputs"]}
    assert inputs["features"]["S3Uri"] == {"Get": features_output}
    assert inputs["model"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


def test_the_evaluate_job_gets_the_alert_topic_when_there_is_one(
    compiled: tuple[Any, dict[str, Any]], moto_server: dict[str, str], tmp_path: Path
) -> None:
    assert "Environment" not in _steps(compiled[1])["Evaluate"]["Arguments"]  # no topic: no alert
    topic = f"arn:aws:sns:{REGION}:123456789012:playerguard-flags"
    pipeline = get_pipeline(
        _settings(tmp_path).model_copy(update={"sns_topic_arn": topic}),
        boto3.Session(region_name=REGION),
        role_arn=moto_server["role"],
        config=SageMakerPipelineConfig(bucket=moto_server["bucket"]),
    )
    environment = _steps(json.loads(pipeline.definition()))["Evaluate"]["Arguments"]["Environment"]
    assert environment == {"PLAYERGUARD_SNS_TOPIC_ARN": topic, "PLAYERGUARD_REGION": REGION}


def test_uploaded_code_runs_the_package_entry_points(
    compiled: tuple[Any, dict[str, Any]], moto_server: dict[str, str]
) -> None:
    _, definition = compiled
    steps = _steps(definition)
    for name, script in (("BuildFeatures", "build_features.py"), ("Evaluate", "evaluate.py")):
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in steps[name]["Arguments"]["ProcessingInputs"]}
        runproc = _s3_text(inputs["entrypoint"])
        assert f"python {script}" in runproc and "requirements.txt" in runproc
        (archive,) = [
            body for key, body in _s3_names(inputs["code"]).items() if key.endswith("sourcedir.tar.gz")
        ]
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            names = set(tar.getnames())
        assert {script, "requirements.txt", "playerguard/pipelines/steps.py"} <= names
    channels = {c["ChannelName"]: c for c in steps["Train"]["Arguments"]["InputDataConfig"]}
    drivers = _s3_names(channels["sm_drivers"]["DataSource"]["S3DataSource"]["S3Uri"])
    (train_script,) = [body.decode() for key, body in drivers.items() if key.endswith("sm_train.sh")]
    assert "python -m playerguard.pipelines.training_job" in train_script
    code = _s3_names(channels["code"]["DataSource"]["S3DataSource"]["S3Uri"])
    assert any(key.endswith("/code/playerguard/pipelines/training_job.py") for key in code)
    assert any(key.endswith("/code/requirements.txt") for key in code)


def test_requirements_leave_out_the_sdk(tmp_path: Path) -> None:
    from playerguard.pipelines.sagemaker_pipeline import job_requirements

    names = [re.split(r"[<>=!\[ ]", line)[0] for line in job_requirements(_settings(tmp_path))]
    assert "pandas" in names and "xgboost" in names and "awswrangler" in names
    assert "sagemaker" not in names and "mlflow" not in names
    tracked = Settings(
        home=tmp_path, mlflow_tracking_uri="arn:aws:sagemaker:us-east-1:123:mlflow-tracking-server/x"
    )
    assert "sagemaker-mlflow" in job_requirements(tracked)


def test_upsert_and_start_commands_against_moto(
    compiled: tuple[Any, dict[str, Any]],
    moto_server: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from playerguard.pipelines.commands import pipeline_app

    _, definition = compiled
    monkeypatch.setenv("PLAYERGUARD_SAGEMAKER_BUCKET", moto_server["bucket"])
    monkeypatch.setenv("PLAYERGUARD_REGION", REGION)
    monkeypatch.setenv("PLAYERGUARD_LAKE_S3_URI", "s3://game-lake/events-lake")
    monkeypatch.setenv("PLAYERGUARD_ATHENA_OUTPUT_S3_URI", "s3://game-lake/athena-results")
    home = ["--home", str(tmp_path / "home")]
    upserted = CliRunner().invoke(pipeline_app, ["upsert", "--role-arn", moto_server["role"], *home])
    assert upserted.exit_code == 0, upserted.output
    assert upserted.output.strip().endswith(":pipeline/playerguard")
    described = boto3.client("sagemaker").describe_pipeline(PipelineName="playerguard")
    assert normalize(json.loads(described["PipelineDefinition"])) == normalize(definition)

    started = CliRunner().invoke(pipeline_app, ["start", "-p", "Cutoff=2026-02-01", *home])
    assert started.exit_code == 0, started.output
    arn = started.output.strip().splitlines()[-1]
    assert ":pipeline/playerguard/execution/" in arn
    execution = boto3.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    assert execution["PipelineArn"].endswith(":pipeline/playerguard")

    bad = CliRunner().invoke(pipeline_app, ["start", "-p", "Cutoff", *home])
    assert "--parameter expects NAME=VALUE" in str(bad.exception)


def test_definition_matches_golden(compiled: tuple[Any, dict[str, Any]]) -> None:
    _, definition = compiled
    actual = normalize(definition)
    if os.environ.get("PLAYERGUARD_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    assert GOLDEN.exists(), "no golden definition yet; run with PLAYERGUARD_UPDATE_GOLDEN=1"
    assert actual == json.loads(GOLDEN.read_text()), (
        "definition changed; review, then PLAYERGUARD_UPDATE_GOLDEN=1"
    )


def test_offline_definition_command_matches_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    before = os.environ.get("SAGEMAKER_USER_CONFIG_OVERRIDE")
    text = pipeline_definition(_settings(tmp_path / "home"), role_arn=None, offline=True)
    assert GOLDEN.exists()
    assert normalize(json.loads(text)) == json.loads(GOLDEN.read_text())
    assert os.environ.get("SAGEMAKER_USER_CONFIG_OVERRIDE") == before  # restored after the mock


def test_default_cutoffs_from_the_s3_lake(moto_server: dict[str, str]) -> None:
    from playerguard.features.cutoffs import lake_date_range, resolve_cutoffs

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="cutoff-lake")
    for day in ("2026-01-01", "2026-01-20", "2026-02-12"):
        s3.put_object(Bucket="cutoff-lake", Key=f"lake/events/event_date={day}/part-0.parquet", Body=b"x")
    s3.put_object(Bucket="cutoff-lake", Key="lake/rejected/part-0.parquet", Body=b"x")
    settings = Settings(backend="aws", region=REGION, lake_s3_uri="s3://cutoff-lake/lake/")
    assert [d.isoformat() for d in lake_date_range(settings)] == ["2026-01-01", "2026-02-12"]
    cutoffs = resolve_cutoffs(settings, horizon_days=14)
    assert [c.date().isoformat() for c in cutoffs] == ["2026-01-08", "2026-01-15", "2026-01-22", "2026-01-29"]
