"""The SageMaker Pipeline: the steps of `steps.py` as SageMaker jobs (sagemaker SDK 3.x).

BuildFeatures (processing, Athena) → Train (training job, `playerguard.pipelines.training_job`, writes the
bundle as model.tar.gz) → Evaluate (processing: held-out metrics into the `evaluation.json` PropertyFile,
drift) → QualityGate (ConditionStep: the lowest held-out ROC-AUC ≥ MinRocAuc) → Register (ModelStep into
a model package group) or QualityGateFailed (FailStep).

`get_pipeline` builds the Pipeline object and stages the package source for the jobs under
`<home>/sagemaker/source`; it creates no AWS resource. Compiling the definition (`pipeline.definition()`,
`upsert`) uploads the job code to S3, so it needs credentials (or moto, as the tests and
`playerguard pipeline definition --offline` use).
"""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

import playerguard
from playerguard.errors import ConfigError
from playerguard.pipelines.steps import EVALUATION_FILE
from playerguard.settings import Settings

ENTRY_MODULE = "playerguard.pipelines.training_job"
STEP_SCRIPTS = ("build_features.py", "evaluate.py")
SAGEMAKER_STEPS = ("BuildFeatures", "Train", "Evaluate", "QualityGate", "Register", "QualityGateFailed")
# Not imported inside the jobs: the SDK, the Lambda toolkit, and MLflow unless the jobs track (see below).
_NOT_IN_JOBS = frozenset({"sagemaker", "aws-lambda-powertools", "mlflow"})
_PROCESSING = "/opt/ml/processing"


class SageMakerPipelineConfig(BaseSettings):
    """How the SageMaker Pipeline is built; `PLAYERGUARD_SAGEMAKER_*` environment variables override."""

    model_config = SettingsConfigDict(env_prefix="PLAYERGUARD_SAGEMAKER_", extra="forbid", frozen=True)

    pipeline_name: str = "playerguard"
    model_package_group: str = "playerguard"
    bucket: str | None = None  # default: the session's default bucket
    prefix: str = "playerguard/pipeline"
    image_uri: str | None = None  # default: the SageMaker scikit-learn image of `sklearn_version`
    sklearn_version: str = "1.9-0"  # the first scikit-learn image on Python 3.12 (playerguard needs ≥ 3.11)
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    inference_instance_type: str = "ml.m5.large"
    horizon_days: int = 14
    lookback_days: int = 28
    feature_set: str = "default"
    min_roc_auc: float = 0.6
    drift_threshold: float = 0.2


def framework_image(region: str, config: SageMakerPipelineConfig, scope: str) -> str:
    """The image the jobs run in: `config.image_uri`, else the SDK's scikit-learn image for the region."""
    if config.image_uri:
        return config.image_uri
    from sagemaker.core import image_uris

    return image_uris.retrieve(
        framework="sklearn",
        region=region,
        version=config.sklearn_version,
        py_version="py3",
        instance_type=config.processing_instance_type,
        image_scope=scope,
    )


def job_requirements(settings: Settings) -> list[str]:
    """playerguard's runtime requirements, minus what the jobs never import (MLflow only when tracking)."""
    try:
        requirements = metadata.requires("playerguard") or []
    except metadata.PackageNotFoundError:
        raise ConfigError("playerguard is not installed; run `pip install -e .` first") from None
    kept = []
    for requirement in requirements:
        if "extra ==" in requirement:
            continue
        specifier = requirement.split(";")[0].strip()
        project = re.match(r"[A-Za-z0-9._-]+", specifier)
        if project and project.group(0).lower() not in _NOT_IN_JOBS:
            kept.append(specifier)
    if settings.mlflow_tracking_uri:
        kept += ["mlflow", "sagemaker-mlflow"]
    return sorted(kept)


def stage_source(settings: Settings, directory: Path) -> Path:
    """Write what the jobs run into `directory` (replaced): the playerguard package, the step scripts at
    its root (SageMaker processing runs `python <script>` there) and `requirements.txt`."""
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    package = Path(playerguard.__file__).parent
    shutil.copytree(package, directory / "playerguard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for script in STEP_SCRIPTS:
        shutil.copyfile(package / "pipelines" / "step_scripts" / script, directory / script)
    (directory / "requirements.txt").write_text("\n".join(job_requirements(settings)) + "\n")
    return directory


def _job_environment(settings: Settings) -> dict[str, str]:
    """The PLAYERGUARD_* settings the feature job needs to reach the lake through Athena."""
    values = {
        "PLAYERGUARD_BACKEND": "aws",
        "PLAYERGUARD_HOME": "/tmp/playerguard",
        "PLAYERGUARD_REGION": settings.region,
        "PLAYERGUARD_LAKE_S3_URI": settings.lake_s3_uri,
        "PLAYERGUARD_GLUE_DATABASE": settings.glue_database,
        "PLAYERGUARD_ATHENA_WORKGROUP": settings.athena_workgroup,
        "PLAYERGUARD_ATHENA_OUTPUT_S3_URI": settings.athena_output_s3_uri,
    }
    return {key: value for key, value in values.items() if value}


def _alert_environment(settings: Settings) -> dict[str, str] | None:
    """The topic the evaluate job publishes drift alerts to, when there is one (its role needs sns:Publish)."""
    if not settings.sns_topic_arn:
        return None
    values = {"PLAYERGUARD_SNS_TOPIC_ARN": settings.sns_topic_arn, "PLAYERGUARD_REGION": settings.region}
    return {key: value for key, value in values.items() if value}


def _pipeline_session(session: Any, bucket: str | None) -> Any:
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    if isinstance(session, PipelineSession):
        return session
    boto_session = getattr(session, "boto_session", session)
    return PipelineSession(boto_session=boto_session, default_bucket=bucket)


def _parameters(config: SageMakerPipelineConfig) -> dict[str, Any]:
    """The pipeline parameters, by name; their defaults come from `config`."""
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

    return {
        parameter.name: parameter
        for parameter in (
            ParameterString("Cutoff", default_value=""),  # empty: weekly cutoffs over the lake's dates
            ParameterInteger("HorizonDays", default_value=config.horizon_days),
            ParameterInteger("LookbackDays", default_value=config.lookback_days),
            ParameterString("FeatureSet", default_value=config.feature_set),
            ParameterFloat("MinRocAuc", default_value=config.min_roc_auc),
            ParameterFloat("DriftThreshold", default_value=config.drift_threshold),
            ParameterString("ProcessingInstanceType", default_value=config.processing_instance_type),
            ParameterString("TrainingInstanceType", default_value=config.training_instance_type),
            ParameterString("ModelApprovalStatus", default_value="PendingManualApproval"),
        )
    }


class _StepFactory:
    """Builds the SageMaker steps of one pipeline from shared pieces (session, role, code, images)."""

    def __init__(
        self, settings: Settings, session: Any, role_arn: str, config: SageMakerPipelineConfig, source: str
    ) -> None:
        self.settings = settings
        self.session = session
        self.role_arn = role_arn
        self.config = config
        self.source = source
        self.root = f"s3://{config.bucket or session.default_bucket()}/{config.prefix.strip('/')}"
        self.training_image = framework_image(session.boto_region_name, config, "training")
        self.inference_image = framework_image(session.boto_region_name, config, "inference")
        self.parameters = _parameters(config)

    def _processor(self, name: str, env: dict[str, str] | None = None) -> Any:
        from sagemaker.core.processing import FrameworkProcessor

        return FrameworkProcessor(
            image_uri=self.training_image,
            role=self.role_arn,
            instance_count=1,
            instance_type=self.parameters["ProcessingInstanceType"],
            env=env,
            code_location=f"{self.root}/code",
            base_job_name=f"playerguard-{name}",
            sagemaker_session=self.session,
        )

    def _output(self, name: str) -> Any:
        """A processing output written to `<root>/<execution id>/<name>`."""
        from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
        from sagemaker.core.workflow.execution_variables import ExecutionVariables
        from sagemaker.core.workflow.functions import Join

        uri = Join(on="/", values=[self.root, ExecutionVariables.PIPELINE_EXECUTION_ID, name])
        local = f"{_PROCESSING}/output/{name}"
        return ProcessingOutput(
            output_name=name,
            s3_output=ProcessingS3Output(s3_uri=uri, local_path=local, s3_upload_mode="EndOfJob"),
        )

    @staticmethod
    def _input(name: str, uri: Any) -> Any:
        from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

        local = f"{_PROCESSING}/input/{name}"
        return ProcessingInput(
            input_name=name, s3_input=ProcessingS3Input(s3_uri=uri, local_path=local, s3_data_type="S3Prefix")
        )

    def features(self) -> Any:
        from sagemaker.mlops.workflow import ProcessingStep

        p = self.parameters
        arguments = [
            "--cutoff",
            p["Cutoff"],
            "--horizon-days",
            p["HorizonDays"].to_string(),
            "--lookback-days",
            p["LookbackDays"].to_string(),
            "--feature-set",
            p["FeatureSet"],
        ]
        return ProcessingStep(
            name="BuildFeatures",
            description="the training set at weekly cutoffs, through Athena",
            step_args=self._processor("features", _job_environment(self.settings)).run(
                code="build_features.py",
                source_dir=self.source,
                requirements="requirements.txt",
                outputs=[self._output("features")],
                arguments=arguments,
            ),
        )

    def train(self, features_uri: Any) -> Any:
        from sagemaker.core.shapes import OutputDataConfig
        from sagemaker.mlops.workflow import TrainingStep
        from sagemaker.train import ModelTrainer
        from sagemaker.train.configs import Compute, InputData, SourceCode

        tracking = self.settings.mlflow_tracking_uri
        trainer = ModelTrainer(
            training_image=self.training_image,
            role=self.role_arn,
            sagemaker_session=self.session,
            base_job_name="playerguard-train",
            compute=Compute(instance_type=self.parameters["TrainingInstanceType"], instance_count=1),
            source_code=SourceCode(
                source_dir=self.source, requirements="requirements.txt", command=f"python -m {ENTRY_MODULE}"
            ),
            hyperparameters={
                "horizon_days": self.parameters["HorizonDays"],
                "feature_set": self.parameters["FeatureSet"],
            },
            environment={"MLFLOW_TRACKING_URI": tracking} if tracking else {},
            input_data_config=[InputData(channel_name="train", data_source=features_uri)],
            output_data_config=OutputDataConfig(s3_output_path=f"{self.root}/models"),
        )
        return TrainingStep(
            name="Train", description="fit the three models; write the bundle", step_args=trainer.train()
        )

    def evaluate(self, features_uri: Any, model_uri: Any, evaluation_file: Any) -> Any:
        from sagemaker.mlops.workflow import ProcessingStep

        arguments = [
            "--horizon-days",
            self.parameters["HorizonDays"].to_string(),
            "--drift-threshold",
            self.parameters["DriftThreshold"].to_string(),
        ]
        return ProcessingStep(
            name="Evaluate",
            description="held-out metrics on the last cutoff; drift of features and scores",
            step_args=self._processor("evaluate", _alert_environment(self.settings)).run(
                code="evaluate.py",
                source_dir=self.source,
                requirements="requirements.txt",
                inputs=[self._input("features", features_uri), self._input("model", model_uri)],
                outputs=[self._output("evaluation")],
                arguments=arguments,
            ),
            property_files=[evaluation_file],
        )

    def register(self, model_uri: Any, evaluation_uri: Any) -> Any:
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow import ModelStep
        from sagemaker.serve.model_builder import ModelBuilder

        builder = ModelBuilder(
            s3_model_data_url=model_uri,
            image_uri=self.inference_image,
            role_arn=self.role_arn,
            sagemaker_session=self.session,
        )
        statistics = MetricsSource(
            content_type="application/json", s3_uri=Join(on="/", values=[evaluation_uri, EVALUATION_FILE])
        )
        return ModelStep(
            name="Register",
            step_args=builder.register(
                model_package_group_name=self.config.model_package_group,
                content_types=["application/json"],
                response_types=["application/json"],
                inference_instances=[self.config.inference_instance_type],
                approval_status=self.parameters["ModelApprovalStatus"],
                model_metrics=ModelMetrics(model_statistics=statistics),
            ),
        )

    def gate(self, lowest_roc_auc: Any, register: Any) -> Any:
        from sagemaker.core.workflow.conditions import ConditionGreaterThanOrEqualTo
        from sagemaker.core.workflow.functions import Join
        from sagemaker.mlops.workflow import ConditionStep, FailStep

        floor = self.parameters["MinRocAuc"]
        failed = FailStep(
            name="QualityGateFailed",
            error_message=Join(
                on=" ", values=["quality gate: lowest held-out ROC-AUC", lowest_roc_auc, "is below", floor]
            ),
        )
        return ConditionStep(
            name="QualityGate",
            conditions=[ConditionGreaterThanOrEqualTo(left=lowest_roc_auc, right=floor)],
            if_steps=[register],
            else_steps=[failed],
        )


def get_pipeline(
    settings: Settings,
    session: Any,
    *,
    role_arn: str,
    config: SageMakerPipelineConfig | None = None,
    source_dir: Path | None = None,
) -> Any:
    """The playerguard SageMaker Pipeline (a `sagemaker.mlops.workflow.Pipeline`).

    `session` is a `PipelineSession`, a SageMaker `Session` or a `boto3.Session` (its region is used).
    `source_dir` is where the job code is staged (default `<home>/sagemaker/source`).
    """
    from sagemaker.core.workflow.functions import JsonGet
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import Pipeline

    if not role_arn:
        raise ConfigError("a SageMaker execution role ARN is required (--role-arn)")
    config = config or SageMakerPipelineConfig()
    session = _pipeline_session(session, config.bucket)
    source = stage_source(settings, source_dir or settings.home / "sagemaker" / "source")
    make = _StepFactory(settings, session, role_arn, config, str(source))

    features = make.features()
    features_uri = features.properties.ProcessingOutputConfig.Outputs["features"].S3Output.S3Uri
    train = make.train(features_uri)
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts
    evaluation_file = PropertyFile(name="Evaluation", output_name="evaluation", path=EVALUATION_FILE)
    evaluate = make.evaluate(features_uri, model_uri, evaluation_file)
    evaluation_uri = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
    lowest = JsonGet(
        step_name=evaluate.name, property_file=evaluation_file, json_path="quality_gate.worst_value"
    )
    gate = make.gate(lowest, make.register(model_uri, evaluation_uri))
    return Pipeline(
        name=config.pipeline_name,
        parameters=list(make.parameters.values()),
        steps=[features, train, evaluate, gate],
        sagemaker_session=session,
    )
