"""The pipeline's evaluate, quality-gate and register logic, shared by the local runner and the SageMaker
evaluation job: held-out metrics of saved models on the last cutoff, the ROC-AUC floor, MLflow registration."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import DataError, PlayerguardError
from playerguard.settings import Settings
from playerguard.training.base import binary_labels, label_column, load_model, saved_kind
from playerguard.training.fitting import judged_rows
from playerguard.training.metrics import evaluate
from playerguard.training.splits import OutOfTimeSplit, labelled_rows, split_by_cutoff

GATE_METRIC = "roc_auc"


def _json_number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def held_out_split(training_set: pd.DataFrame, model: str, *, horizon_days: int | None) -> OutOfTimeSplit:
    """The same out-of-time split `train` uses: labelled rows of `model`, the last cutoff held out."""
    return split_by_cutoff(labelled_rows(training_set, label_column(model)), horizon_days=horizon_days)


def evaluate_models(
    model_dirs: Mapping[str, Path], training_set: pd.DataFrame, *, horizon_days: int | None
) -> dict[str, Any]:
    """Load each saved model, score the held-out cutoff's rows and compute its metrics.

    Returns a JSON-ready dict; `quality_gate.worst_value` is the lowest held-out ROC-AUC over the models
    (0.0 when one is undefined), the number the SageMaker ConditionStep reads through a PropertyFile.
    """
    if not model_dirs:
        raise DataError("no trained model to evaluate (every model was skipped; see the train step)")
    models: dict[str, Any] = {}
    for name, directory in sorted(model_dirs.items()):
        split = held_out_split(training_set, name, horizon_days=horizon_days)
        model = load_model(name, Path(directory))
        test = split.test.loc[judged_rows(model, split.test)]
        y_test = binary_labels(test[label_column(name)], f"{name} test labels")
        scores = np.asarray(model.predict_score(test), dtype="float64")
        models[name] = {
            "test_cutoff": split.test_cutoff.isoformat(),
            "metrics": {key: _json_number(value) for key, value in evaluate(y_test, scores).items()},
        }
    values = {name: result["metrics"][GATE_METRIC] for name, result in models.items()}
    undefined = sorted(name for name, value in values.items() if value is None)
    worst = min(values, key=lambda name: -1.0 if values[name] is None else values[name])
    return {
        "models": models,
        "quality_gate": {
            "metric": GATE_METRIC,
            "worst_model": worst,
            "worst_value": 0.0 if values[worst] is None else values[worst],
            "undefined": undefined,
        },
    }


def check_quality_gate(evaluation: Mapping[str, Any], min_value: float) -> dict[str, Any]:
    """Pass when every model's held-out ROC-AUC is at least `min_value`; otherwise PlayerguardError."""
    gate = evaluation["quality_gate"]
    below = {
        name: result["metrics"][GATE_METRIC]
        for name, result in evaluation["models"].items()
        if result["metrics"][GATE_METRIC] is None or result["metrics"][GATE_METRIC] < min_value
    }
    if below:
        detail = ", ".join(
            f"{name} {'undefined' if value is None else f'{value:.3f}'}"
            for name, value in sorted(below.items())
        )
        raise PlayerguardError(f"quality gate: held-out {GATE_METRIC} below {min_value:g} for {detail}")
    return {"passed": True, "min_value": min_value, **gate}


def _champion_metrics(
    tracker: Any, model: str, split: OutOfTimeSplit
) -> tuple[str | None, dict[str, float] | None, str | None]:
    """Score the current champion on the same held-out rows: (version, metrics, error)."""
    from xgboost.core import XGBoostError

    champion = tracker.champion(model)
    if champion is None:
        return None, None, None
    with tempfile.TemporaryDirectory() as scratch:
        files = tracker.download(model, champion, Path(scratch) / "champion")
        try:
            champion_model = load_model(model, files.directory)
            test = split.test.loc[judged_rows(champion_model, split.test)]
            scores = champion_model.predict_score(test)
            return files.version, evaluate(binary_labels(test[label_column(model)]), scores), None
        except (PlayerguardError, ValueError, KeyError, OSError, XGBoostError) as error:
            # A champion that no longer loads or scores must not block its replacement.
            return files.version, None, f"{type(error).__name__}: {error}"


def register_models(
    settings: Settings,
    model_dirs: Mapping[str, Path],
    evaluation: Mapping[str, Any],
    training_set: pd.DataFrame,
    *,
    baseline_metrics: Mapping[str, Mapping[str, float]],
    horizon_days: int | None,
    feature_set: str,
) -> dict[str, dict[str, Any]]:
    """Register every evaluated model as a new MLflow version; move `champion` when the training gate
    (`tracking.decide_promotion`: not below the baseline, better than the champion) promotes it."""
    from playerguard.features.api import load_feature_set
    from playerguard.training.tracking import (
        MODEL_ARTIFACT_PATH,
        REPORT_ARTIFACT_PATH,
        Tracker,
        decide_promotion,
    )

    definitions = load_feature_set(feature_set)
    tracker = Tracker(settings)
    registered: dict[str, dict[str, Any]] = {}
    for name, directory in sorted(model_dirs.items()):
        if name not in evaluation["models"]:
            raise DataError(f"model {name!r} was trained but not evaluated")
        split = held_out_split(training_set, name, horizon_days=horizon_days)
        metrics = {
            k: (math.nan if v is None else v) for k, v in evaluation["models"][name]["metrics"].items()
        }
        champion_version, champion_metrics, champion_error = _champion_metrics(tracker, name, split)
        decision = decide_promotion(
            name,
            metrics,
            baseline_metrics=baseline_metrics.get(name),
            champion_metrics=champion_metrics,
            champion_version=champion_version,
            champion_error=champion_error,
        )
        run_id = tracker.start_run(name, {"playerguard.feature_set_hash": definitions.hash})
        try:
            described = split.describe()
            tracker.log(
                run_id,
                params={
                    "feature_set": definitions.name,
                    "feature_set_hash": definitions.hash,
                    "train_cutoffs": ",".join(described["train_cutoffs"]),
                    "validation_cutoff": described["validation_cutoff"],
                    "test_cutoff": described["test_cutoff"],
                    "source": "pipeline",
                },
                metrics={
                    **{f"test_{k}": v for k, v in metrics.items()},
                    **{f"baseline_{k}": v for k, v in (baseline_metrics.get(name) or {}).items()},
                    **{f"champion_{k}": v for k, v in (champion_metrics or {}).items()},
                },
            )
            source = tracker.log_directory(run_id, Path(directory), MODEL_ARTIFACT_PATH)
            version = tracker.register(name, run_id, source, kind=saved_kind(name, Path(directory)))
            report = Path(directory).parent / "report"
            if report.is_dir():
                tracker.log_directory(run_id, report, REPORT_ARTIFACT_PATH)
            tracker.record_decision(name, version, run_id, decision)
        except BaseException:
            tracker.end_run(run_id, "FAILED")
            raise
        tracker.end_run(run_id)
        registered[name] = {
            "version": version,
            "run_id": run_id,
            "promoted": decision.promote,
            "reason": decision.reason,
            "champion_before": champion_version,
        }
    return registered


def read_json(path: Path) -> Any:
    if not Path(path).exists():
        raise DataError(f"missing pipeline file {path}")
    return json.loads(Path(path).read_text())
