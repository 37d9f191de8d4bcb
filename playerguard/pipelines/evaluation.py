"""The pipeline's evaluate, quality-gate and register logic, shared by the local runner and the SageMaker
evaluation job: held-out metrics of saved models on the last cutoff, the ROC-AUC floor that stops a run, and
registration through `train`'s path (`training.registration.register`, whose gate applies the same floor)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import DataError, PlayerguardError
from playerguard.settings import Settings
from playerguard.training.base import ScoringModel, label_column, load_model, saved_kind
from playerguard.training.fitting import held_out_labels, judged_rows, modelled_rows
from playerguard.training.gate import DEFAULT_MIN_ROC_AUC, FLOOR_METRIC, reaches_floor
from playerguard.training.metrics import evaluate
from playerguard.training.splits import OutOfTimeSplit, split_by_cutoff


def _json_number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


@dataclass(frozen=True)
class HeldOut:
    """The held-out rows a saved model is judged on, and their labels."""

    split: OutOfTimeSplit
    rows: pd.DataFrame
    labels: np.ndarray


def held_out(
    training_set: pd.DataFrame, name: str, model: ScoringModel, *, horizon_days: int | None
) -> HeldOut:
    """The same out-of-time split `train` uses (labelled rows of `name`, the last cutoff held out), and
    the test rows `model` judges."""
    modelled, regime = modelled_rows(name, training_set)
    split = split_by_cutoff(modelled, horizon_days=horizon_days)
    rows = split.test.loc[judged_rows(model, split.test)]
    return HeldOut(split, rows, held_out_labels(rows[label_column(name)], regime, f"{name} test labels"))


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
        model = load_model(name, Path(directory))
        test = held_out(training_set, name, model, horizon_days=horizon_days)
        scores = np.asarray(model.predict_score(test.rows), dtype="float64")
        models[name] = {
            "test_cutoff": test.split.test_cutoff.isoformat(),
            "metrics": {key: _json_number(value) for key, value in evaluate(test.labels, scores).items()},
        }
    values = {name: result["metrics"][FLOOR_METRIC] for name, result in models.items()}
    undefined = sorted(name for name, value in values.items() if value is None)
    worst = min(values, key=lambda name: -1.0 if values[name] is None else values[name])
    return {
        "models": models,
        "quality_gate": {
            "metric": FLOOR_METRIC,
            "worst_model": worst,
            "worst_value": 0.0 if values[worst] is None else values[worst],
            "undefined": undefined,
        },
    }


def check_quality_gate(evaluation: Mapping[str, Any], min_value: float) -> dict[str, Any]:
    """Pass when every model's held-out ROC-AUC reaches the gate's floor `min_value`; otherwise
    PlayerguardError, which fails the step: the run (or SageMaker execution) stops before registering."""
    gate = evaluation["quality_gate"]
    below = {
        name: result["metrics"][FLOOR_METRIC]
        for name, result in evaluation["models"].items()
        if not reaches_floor(result["metrics"][FLOOR_METRIC], min_value)
    }
    if below:
        detail = ", ".join(
            f"{name} {'undefined' if value is None else f'{value:.3f}'}"
            for name, value in sorted(below.items())
        )
        raise PlayerguardError(f"quality gate: held-out {FLOOR_METRIC} below {min_value:g} for {detail}")
    return {"passed": True, "min_value": min_value, **gate}


def register_models(
    settings: Settings,
    model_dirs: Mapping[str, Path],
    evaluation: Mapping[str, Any],
    training_set: pd.DataFrame,
    *,
    baseline_metrics: Mapping[str, Mapping[str, float]],
    horizon_days: int | None,
    feature_set: str,
    min_roc_auc: float = DEFAULT_MIN_ROC_AUC,
) -> dict[str, dict[str, Any]]:
    """Register every evaluated model as a new MLflow version through `train`'s registration path; its
    gate (the ROC-AUC floor, the baseline, the champion on the same test rows) decides the promotion."""
    from playerguard.features.api import load_feature_set
    from playerguard.training.registration import Challenger, register
    from playerguard.training.tracking import Tracker

    definitions = load_feature_set(feature_set)
    tracker = Tracker(settings)
    registered: dict[str, dict[str, Any]] = {}
    for name, directory in sorted(model_dirs.items()):
        if name not in evaluation["models"]:
            raise DataError(f"model {name!r} was trained but not evaluated")
        directory = Path(directory)
        test = held_out(training_set, name, load_model(name, directory), horizon_days=horizon_days)
        metrics = {
            k: (math.nan if v is None else v) for k, v in evaluation["models"][name]["metrics"].items()
        }
        described = test.split.describe()
        registration = register(
            tracker,
            Challenger(
                name,
                directory,
                saved_kind(name, directory),
                metrics,
                test.rows,
                test.labels,
                baseline_metrics=baseline_metrics.get(name),
            ),
            feature_set_hash=definitions.hash,
            params={
                "feature_set": definitions.name,
                "feature_set_hash": definitions.hash,
                "train_cutoffs": ",".join(described["train_cutoffs"]),
                "validation_cutoff": described["validation_cutoff"],
                "test_cutoff": described["test_cutoff"],
                "source": "pipeline",
            },
            min_roc_auc=min_roc_auc,
            report_dir=directory.parent / "report",
        )
        registered[name] = {
            "version": registration.version,
            "run_id": registration.run_id,
            "promoted": registration.decision.promote,
            "reason": registration.decision.reason,
            "rule": registration.decision.rule,
            "champion_before": registration.champion_version,
        }
    return registered


def read_json(path: Path) -> Any:
    if not Path(path).exists():
        raise DataError(f"missing pipeline file {path}")
    return json.loads(Path(path).read_text())
