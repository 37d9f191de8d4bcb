"""The pipeline's steps, defined once: name, function, upstream inputs, parameters read, files written.

The local runner (`local_runner.py`) runs these functions in order with caching. The SageMaker Pipeline
(`sagemaker_pipeline.py`) runs each step inside the SageMaker step named by `sagemaker_step`: processing
jobs call the same functions through the thin scripts in `step_scripts/`; the training job runs
`playerguard.pipelines.training_job`, which trains and writes the bundle; the quality gate is a
ConditionStep on the evaluation's PropertyFile; registration is a ModelStep into a model package group.
A step function reads upstream outputs from `context.inputs[<step>]` and writes only into
`context.output_dir`.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from playerguard.errors import DataError, PlayerguardError
from playerguard.features.cutoffs import lake_date_range, resolve_cutoffs
from playerguard.model_names import MODEL_NAMES
from playerguard.settings import Settings
from playerguard.training.gate import DEFAULT_MIN_ROC_AUC

TRAINING_SET_FILE = "training_set.parquet"
EVALUATION_FILE = "evaluation.json"
TRAIN_FILE = "train.json"
REGISTERED_FILE = "registered.json"


@dataclass(frozen=True)
class PipelineParams:
    """Everything a run is parameterised by. `cutoffs` are resolved before a run starts."""

    cutoffs: tuple[datetime, ...] = ()
    horizon_days: int = 14
    lookback_days: int = 28
    feature_set: str = "default"
    min_roc_auc: float = DEFAULT_MIN_ROC_AUC
    drift_threshold: float = 0.2
    models: tuple[str, ...] = MODEL_NAMES

    def value(self, name: str) -> Any:
        """A parameter as a JSON-ready value (cutoffs as ISO strings), for hashing and manifests."""
        value = getattr(self, name)
        if name == "cutoffs":
            return [c.isoformat() for c in value]
        return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class StepContext:
    """What a step function sees: settings, parameters, upstream output directories, its own directory.

    `output_dir` is where the step writes; `published_dir`, where its outputs will be once it succeeds
    (the local runner writes into a scratch directory and renames it).
    """

    settings: Settings
    params: PipelineParams
    output_dir: Path
    inputs: Mapping[str, Path] = field(default_factory=dict)
    published_dir: Path | None = None

    def input(self, step: str) -> Path:
        if step not in self.inputs:
            raise PlayerguardError(f"step input {step!r} was not provided")
        return self.inputs[step]


StepFunction = Callable[[StepContext], dict[str, Any]]


@dataclass(frozen=True)
class PipelineStep:
    """One step: `function(context)` writes `outputs` into `context.output_dir` and returns a summary."""

    name: str
    function: StepFunction
    description: str
    inputs: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    reads_lake: bool = False
    reads_feature_set: bool = False
    reads_labels: bool = False  # the label files (ban lists, review verdicts): a change reruns the step
    sagemaker_step: str = ""  # the SageMaker Pipeline step that runs it (see sagemaker_pipeline.py)


# --------------------------------------------------------------------------------------------- functions


def read_training_set(directory: Path) -> pd.DataFrame:
    path = Path(directory) / TRAINING_SET_FILE
    if not path.exists():
        raise DataError(f"no training set at {path}")
    return pd.read_parquet(path)


def build_features_step(context: StepContext) -> dict[str, Any]:
    """The training set at every cutoff, labels included (Athena on aws, DuckDB locally)."""
    from playerguard.features.api import build_training_set

    params = context.params
    cutoffs = list(params.cutoffs) or list(
        resolve_cutoffs(context.settings, horizon_days=params.horizon_days)
    )
    frame = build_training_set(
        context.settings,
        cutoffs,
        horizon_days=params.horizon_days,
        lookback_days=params.lookback_days,
        feature_set=params.feature_set,
    )
    if frame.empty:
        raise DataError(
            f"the training set is empty at cutoffs {', '.join(c.date().isoformat() for c in cutoffs)}"
        )
    context.output_dir.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(context.output_dir / TRAINING_SET_FILE, index=False)
    return {
        "rows": len(frame),
        "players": int(frame["player_id"].nunique()),
        "cutoffs": [c.date().isoformat() for c in cutoffs],
    }


def train_step(context: StepContext) -> dict[str, Any]:
    """Fit the models on the earlier cutoffs (no registration here: that waits for the quality gate)."""
    from playerguard.training.train import train

    result = train(
        context.settings,
        read_training_set(context.input("build_features")),
        context.params.models,
        feature_set=context.params.feature_set,
        track=False,
        horizon_days=context.params.horizon_days,
        output_dir=context.output_dir,
    )
    summary = {
        "trained": result.trained,
        "skipped": {name: r.note for name, r in result.models.items() if r.status != "trained"},
        "baseline_metrics": {
            name: {k: v for k, v in r.baseline_metrics.items() if not math.isnan(v)}  # NaN is not JSON
            for name, r in result.models.items()
            if r.status == "trained"
        },
    }
    if not summary["trained"]:
        reasons = "; ".join(f"{name}: {note}" for name, note in summary["skipped"].items())
        raise DataError(f"no model could be trained ({reasons})")
    (context.output_dir / TRAIN_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True))
    return {"trained": summary["trained"], "skipped": summary["skipped"]}


def bundle_dir(directory: Path) -> Path:
    """The bundle in `directory`: itself (an unpacked `model.tar.gz`) or its `bundle/` subdirectory."""
    return directory if (directory / "manifest.json").is_file() else directory / "bundle"


def model_dirs(directory: Path) -> dict[str, Path]:
    """Model name → saved model directory, in a bundle (`models/<model>`, what the SageMaker training job
    writes) or in the layout `train` writes (`<model>/model`)."""
    if (directory / "manifest.json").is_file():
        manifest = json.loads((directory / "manifest.json").read_text())
        return {name: directory / "models" / name for name in sorted(manifest["models"])}
    return {name: directory / name / "model" for name in MODEL_NAMES if (directory / name / "model").is_dir()}


def evaluate_step(context: StepContext) -> dict[str, Any]:
    """Reload the saved models and measure them on the held-out (last) cutoff."""
    from playerguard.pipelines.evaluation import evaluate_models

    evaluation = evaluate_models(
        model_dirs(context.input("train")),
        read_training_set(context.input("build_features")),
        horizon_days=context.params.horizon_days,
    )
    context.output_dir.mkdir(parents=True, exist_ok=True)
    (context.output_dir / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=2, sort_keys=True))
    values = {name: m["metrics"]["roc_auc"] for name, m in evaluation["models"].items()}
    return {name: "undefined" if value is None else round(value, 4) for name, value in values.items()}


def quality_gate_step(context: StepContext) -> dict[str, Any]:
    """Fail the run unless every model's held-out ROC-AUC reaches `min_roc_auc`."""
    from playerguard.pipelines.evaluation import check_quality_gate, read_json

    decision = check_quality_gate(
        read_json(context.input("evaluate") / EVALUATION_FILE), context.params.min_roc_auc
    )
    # The floor stays out of the file: a different floor that still passes leaves registration cached.
    passed = {key: value for key, value in decision.items() if key != "min_value"}
    context.output_dir.mkdir(parents=True, exist_ok=True)
    (context.output_dir / "gate.json").write_text(json.dumps(passed, indent=2, sort_keys=True))
    return {
        "passed": True,
        "floor": decision["min_value"],
        "lowest": f"{decision['worst_model']} {decision['worst_value']:.4f}",
    }


def register_step(context: StepContext) -> dict[str, Any]:
    """Register each model in MLflow and move `champion` when it beats the current one on the same test rows."""
    from playerguard.pipelines.evaluation import read_json, register_models

    train_dir = context.input("train")
    registered = register_models(
        context.settings,
        model_dirs(train_dir),
        read_json(context.input("evaluate") / EVALUATION_FILE),
        read_training_set(context.input("build_features")),
        baseline_metrics=read_json(train_dir / TRAIN_FILE)["baseline_metrics"],
        horizon_days=context.params.horizon_days,
        feature_set=context.params.feature_set,
        # Not among the step's hashed params: the quality gate step already stopped the run unless every
        # model reaches this floor, so its value cannot change a decision here, and a new floor that still
        # passes must not register the same models again.
        min_roc_auc=context.params.min_roc_auc,
    )
    context.output_dir.mkdir(parents=True, exist_ok=True)
    (context.output_dir / REGISTERED_FILE).write_text(json.dumps(registered, indent=2, sort_keys=True))
    return {
        name: f"v{r['version']} ({'champion' if r['promoted'] else 'not promoted'})"
        for name, r in registered.items()
    }


def bundle_step(context: StepContext) -> dict[str, Any]:
    """Bundle the registry's champions (`bundle/` and `model.tar.gz`) for the endpoint and the stream."""
    from playerguard.inference.bundle import build_bundle, pack_bundle
    from playerguard.pipelines.evaluation import read_json

    registered = read_json(context.input("register") / REGISTERED_FILE)
    try:
        directory = build_bundle(
            context.settings, context.output_dir / "bundle", feature_set=context.params.feature_set
        )
    except DataError as error:
        rejected = "; ".join(
            f"{name} v{r['version']}: {r['reason']}" for name, r in sorted(registered.items())
        )
        raise DataError(f"{error} (this run's versions were not promoted: {rejected})") from None
    pack_bundle(directory, context.output_dir / "model.tar.gz")
    manifest = json.loads((directory / "manifest.json").read_text())
    return {name: entry["version"] for name, entry in sorted(manifest["models"].items())}


def full_windows_from(settings: Settings, lookback_days: int) -> datetime | None:
    """The first cutoff whose lookback window lies wholly after the lake's first day; None when the lake
    cannot be read from here (a job handed only the training set), which keeps every reference cutoff."""
    try:
        first_day, _ = lake_date_range(settings)
    except DataError:
        return None
    return datetime.combine(first_day, datetime.min.time(), UTC) + timedelta(days=lookback_days)


def drift_step(context: StepContext) -> dict[str, Any]:
    """PSI of features and scores, latest cutoff against the earlier ones; an alert above the threshold."""
    from playerguard.inference.bundle import load_bundle
    from playerguard.pipelines.drift import latest_cutoff_drift
    from playerguard.pipelines.drift_alerts import publish_drift_alert

    bundle = load_bundle(bundle_dir(context.input("bundle")))
    report = latest_cutoff_drift(
        read_training_set(context.input("build_features")),
        bundle.models,
        context.params.drift_threshold,
        age_dependent=bundle.feature_set.age_dependent if bundle.feature_set is not None else (),
        full_windows_from=full_windows_from(context.settings, context.params.lookback_days),
    )
    report.write(context.output_dir)
    alerted: list[str] = []
    if report.any_drift:
        source = (context.published_dir or context.output_dir) / "drift.json"
        alerted = publish_drift_alert(context.settings, report, source=str(source))
    return {
        "max_psi": round(float(report.table["psi"].max()), 4),
        "drifted": [str(name) for name in report.drifted["name"]],
        "alert": alerted[0] if alerted else None,
        "alert_published_to": alerted[1:],
    }


PIPELINE_STEPS: tuple[PipelineStep, ...] = (
    PipelineStep(
        "build_features", build_features_step, "training set at several cutoffs",
        params=("cutoffs", "horizon_days", "lookback_days", "feature_set"), outputs=(TRAINING_SET_FILE,),
        reads_lake=True, reads_feature_set=True, reads_labels=True, sagemaker_step="BuildFeatures",
    ),
    PipelineStep(
        "train", train_step, "fit inhuman-play, churn and purchase models",
        inputs=("build_features",), params=("horizon_days", "feature_set", "models"), outputs=(TRAIN_FILE,),
        reads_feature_set=True, sagemaker_step="Train",
    ),
    PipelineStep(
        "evaluate", evaluate_step, "held-out metrics on the last cutoff",
        inputs=("build_features", "train"), params=("horizon_days",), outputs=(EVALUATION_FILE,),
        sagemaker_step="Evaluate",
    ),
    PipelineStep(
        "quality_gate", quality_gate_step, "every model's held-out ROC-AUC above the floor",
        inputs=("evaluate",), params=("min_roc_auc",), outputs=("gate.json",), sagemaker_step="QualityGate",
    ),
    PipelineStep(
        "register", register_step, "register versions, promote champions",
        inputs=("build_features", "train", "evaluate", "quality_gate"), params=("horizon_days", "feature_set"),
        outputs=(REGISTERED_FILE,), reads_feature_set=True, sagemaker_step="Register",
    ),
    PipelineStep(
        "bundle", bundle_step, "model bundle of the champions",
        inputs=("register",), params=("feature_set",), outputs=("model.tar.gz",), reads_feature_set=True,
        sagemaker_step="Train",
    ),
    PipelineStep(
        "drift", drift_step, "PSI of features and scores, alert above threshold",
        inputs=("build_features", "bundle"), params=("drift_threshold",), outputs=("drift.json", "drift.png"),
        sagemaker_step="Evaluate",
    ),
)  # fmt: skip


def run_job_steps(
    names: Sequence[str],
    settings: Settings,
    params: PipelineParams,
    output_dir: Path,
    inputs: Mapping[str, Path],
) -> None:
    """Run steps inside a SageMaker job, without caching; a user error ends the job with a one-line
    reason, also written where SageMaker shows it as the failure reason."""
    try:
        for name in names:
            summary = get_step(name).function(StepContext(settings, params, output_dir, inputs))
            print(f"{name}: {json.dumps(summary, default=str)}", flush=True)
    except PlayerguardError as error:
        failure = Path("/opt/ml/output/message")
        if failure.parent.is_dir():
            failure.write_text(str(error))
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def get_step(name: str) -> PipelineStep:
    for step in PIPELINE_STEPS:
        if step.name == name:
            return step
    raise PlayerguardError(
        f"unknown pipeline step {name!r}: expected one of {', '.join(s.name for s in PIPELINE_STEPS)}"
    )
