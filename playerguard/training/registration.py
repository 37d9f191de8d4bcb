"""One trained model into MLflow: score the champion on the same test rows, gate, log the run, register
the version (tagged with its kind), write and log the report, and move the alias if the gate promotes."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from playerguard.errors import PlayerguardError
from playerguard.training.base import load_model
from playerguard.training.fitting import FittedModel
from playerguard.training.gate import CandidateChoice, decide_promotion
from playerguard.training.metrics import evaluate
from playerguard.training.report import ReportData, write_report
from playerguard.training.tracking import (
    KIND_TAG,
    MODEL_ARTIFACT_PATH,
    REPORT_ARTIFACT_PATH,
    Tracker,
    registered_name,
)

if TYPE_CHECKING:
    from playerguard.training.train import ModelResult


def champion_metrics(
    tracker: Tracker, fitted: FittedModel, target_fpr: float
) -> tuple[str | None, dict[str, float] | None, str | None]:
    """Score the current champion (whatever its kind) on this run's evaluation rows: (version, metrics, error)."""
    from xgboost.core import XGBoostError

    champion = tracker.champion(fitted.name)
    if champion is None:
        return None, None, None
    with tempfile.TemporaryDirectory() as scratch:
        files = tracker.download(fitted.name, champion, Path(scratch) / "champion")
        try:
            scores = load_model(fitted.name, files.directory).predict_score(fitted.test[fitted.columns])
            return files.version, evaluate(fitted.y_test, scores, target_fpr=target_fpr), None
        except (PlayerguardError, ValueError, KeyError, OSError, XGBoostError) as error:
            # A champion that no longer loads or scores cannot block a working replacement.
            return files.version, None, f"{type(error).__name__}: {error}"


def _prefixed(prefix: str, values: dict[str, float] | None) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in (values or {}).items()}


def track_model(
    tracker: Tracker,
    result: ModelResult,
    fitted: FittedModel,
    report: ReportData,
    *,
    choice: CandidateChoice | None,
    target_fpr: float,
    feature_set: tuple[str | None, str | None],
    all_cutoffs: list[str],
    training_rows: int,
) -> None:
    """Gate, log the run, register the version, write and log the report, move the alias if promoted."""
    model_name = result.model
    champion_version, champion, champion_error = champion_metrics(tracker, fitted, target_fpr)
    gate = decide_promotion(
        model_name,
        result.metrics,
        baseline_metrics=result.baseline_metrics,
        champion_metrics=champion,
        champion_version=champion_version,
        champion_error=champion_error,
        choice=choice,
    )
    result.champion_version, result.champion_metrics, result.gate = champion_version, champion, gate
    params = getattr(fitted.candidates[result.kind].model, "get_params", dict)()
    run_id = tracker.start_run(
        model_name, {"playerguard.feature_set_hash": feature_set[1] or "", KIND_TAG: result.kind or ""}
    )
    result.run_id = run_id
    try:
        split = fitted.split.describe()
        candidates = {
            f"{kind}_{k}": v for kind, metrics in result.candidate_metrics.items() for k, v in metrics.items()
        }
        tracker.log(
            run_id,
            params={
                **{f"model.{k}": json.dumps(v) for k, v in params.items()},
                "target_fpr": target_fpr,
                "feature_set": feature_set[0],
                "feature_set_hash": feature_set[1],
                "training_set_cutoffs": ",".join(all_cutoffs),
                "training_set_rows": training_rows,
                "train_cutoffs": ",".join(split["train_cutoffs"]),
                "refit_cutoffs": ",".join(c.isoformat() for c in fitted.refit_cutoffs),
                "validation_cutoff": split["validation_cutoff"],
                "test_cutoff": split["test_cutoff"],
                "n_features": len(fitted.features),
            },
            metrics={
                **_prefixed("test", result.metrics),
                **_prefixed("baseline", result.baseline_metrics),
                **_prefixed("champion", champion),
                **_prefixed("rows", split["rows"]),
                **(candidates if len(result.candidate_metrics) > 1 else {}),
                "rows_test_excluded": fitted.excluded_test_rows,
            },
        )
        source = tracker.log_directory(run_id, result.model_dir, MODEL_ARTIFACT_PATH)
        result.registered_version = tracker.register(model_name, run_id, source, kind=result.kind)
        result.registered_name = registered_name(model_name)
        report.version, report.gate = result.registered_version, gate.as_dict()
        report.champion_metrics, report.champion_version = champion, champion_version
        result.report_path = write_report(result.report_path.parent, report)
        tracker.log_directory(run_id, result.report_path.parent, REPORT_ARTIFACT_PATH)
        tracker.record_decision(model_name, result.registered_version, run_id, gate)
    except BaseException:
        tracker.end_run(run_id, "FAILED")
        raise
    tracker.end_run(run_id)
