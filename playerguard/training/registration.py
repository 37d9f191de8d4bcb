"""The one registration path of `train` and the pipeline: score the champion on the challenger's test rows,
gate (`gate.decide_promotion`: the ROC-AUC floor, the logistic baseline, the champion), log the run,
register the version (tagged with its kind), write and log the report, and move the alias if promoted."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import PlayerguardError
from playerguard.training.base import load_model
from playerguard.training.gate import DEFAULT_MIN_ROC_AUC, CandidateChoice, GateDecision, decide_promotion
from playerguard.training.metrics import DEFAULT_TARGET_FPR, evaluate
from playerguard.training.report import ReportData, write_report
from playerguard.training.tracking import (
    KIND_TAG,
    MODEL_ARTIFACT_PATH,
    REPORT_ARTIFACT_PATH,
    TAG_PREFIX,
    Tracker,
    registered_name,
)


@dataclass(frozen=True)
class Challenger:
    """A saved model put forward for registration, with its held-out metrics and the rows (and labels)
    they were measured on: the champion is scored on the same rows."""

    model: str
    directory: Path
    kind: str
    metrics: Mapping[str, float]
    test_rows: pd.DataFrame
    test_labels: np.ndarray
    baseline_metrics: Mapping[str, float] | None = None
    choice: CandidateChoice | None = None
    unlabelled: bool = False


@dataclass(frozen=True)
class Registration:
    """A registered version, the gate's decision on it and the champion it was compared with."""

    registered_name: str
    version: str
    run_id: str
    decision: GateDecision
    champion_version: str | None
    champion_metrics: dict[str, float] | None
    report_path: Path | None = None


def _champion_metrics(
    tracker: Tracker,
    model: str,
    rows: pd.DataFrame,
    labels: np.ndarray,
    target_fpr: float = DEFAULT_TARGET_FPR,
) -> tuple[str | None, dict[str, float] | None, str | None]:
    """Score the current champion (whatever its kind) on `rows`: (version, metrics, error)."""
    from xgboost.core import XGBoostError

    champion = tracker.champion(model)
    if champion is None:
        return None, None, None
    with tempfile.TemporaryDirectory() as scratch:
        files = tracker.download(model, champion, Path(scratch) / "champion")
        try:
            scores = load_model(model, files.directory).predict_score(rows)
            return files.version, evaluate(labels, scores, target_fpr=target_fpr), None
        except (PlayerguardError, ValueError, KeyError, OSError, XGBoostError) as error:
            # A champion that no longer loads or scores cannot block a working replacement.
            return files.version, None, f"{type(error).__name__}: {error}"


def _prefixed(prefix: str, values: Mapping[str, float] | None) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in (values or {}).items()}


def register(
    tracker: Tracker,
    challenger: Challenger,
    *,
    feature_set_hash: str | None,
    params: Mapping[str, Any],
    metrics: Mapping[str, float] | None = None,
    min_roc_auc: float = DEFAULT_MIN_ROC_AUC,
    target_fpr: float = DEFAULT_TARGET_FPR,
    report: ReportData | None = None,
    report_dir: Path | None = None,
) -> Registration:
    """Gate `challenger`, log its run (`params`, the floor, its test, baseline and champion metrics and
    `metrics`), register it as a new version, write `report` (completed with the version, the champion and
    the decision) into `report_dir`, log `report_dir` when it exists, and move `champion` if promoted.

    A version is registered whatever the decision: a rejected one stays in the registry with the reason.
    """
    model = challenger.model
    champion_version, champion, champion_error = _champion_metrics(
        tracker, model, challenger.test_rows, challenger.test_labels, target_fpr
    )
    decision = decide_promotion(
        model,
        challenger.metrics,
        baseline_metrics=challenger.baseline_metrics,
        champion_metrics=champion,
        champion_version=champion_version,
        champion_error=champion_error,
        choice=challenger.choice,
        min_roc_auc=min_roc_auc,
        unlabelled=challenger.unlabelled,
    )
    run_id = tracker.start_run(
        model, {f"{TAG_PREFIX}feature_set_hash": feature_set_hash or "", KIND_TAG: challenger.kind}
    )
    report_path = None
    try:
        tracker.log(
            run_id,
            params={**params, "min_roc_auc": min_roc_auc},
            metrics={
                **_prefixed("test", challenger.metrics),
                **_prefixed("baseline", challenger.baseline_metrics),
                **_prefixed("champion", champion),
                **(metrics or {}),
            },
        )
        source = tracker.log_directory(run_id, challenger.directory, MODEL_ARTIFACT_PATH)
        version = tracker.register(model, run_id, source, kind=challenger.kind)
        if report is not None and report_dir is not None:
            report.version, report.gate = version, decision.as_dict()
            report.champion_metrics, report.champion_version = champion, champion_version
            report_path = write_report(report_dir, report)
        if report_dir is not None and report_dir.is_dir():
            tracker.log_directory(run_id, report_dir, REPORT_ARTIFACT_PATH)
        tracker.record_decision(model, version, run_id, decision)
    except BaseException:
        tracker.end_run(run_id, "FAILED")
        raise
    tracker.end_run(run_id)
    return Registration(
        registered_name(model), version, run_id, decision, champion_version, champion, report_path
    )
