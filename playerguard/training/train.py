"""Training orchestration: per model, an out-of-time fit of its candidates, held-out evaluation against a
logistic baseline, a report, and (with tracking) the registration path the pipeline shares
(`registration.register`): an MLflow run, a registered version and the gate, which compares the model with
the ROC-AUC floor, its baseline and the current champion.

Churn and purchase put forward XGBoost, or their logistic baseline when XGBoost scores below it on the
held-out cutoff: a studio always gets a model at least as good as the baseline. Inhuman play is judged
only on the held-out rows with the minimum evidence to be judged (a player who did not play scores 0 by
design, whatever their label).
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.features.api import load_feature_set
from playerguard.features.checks import check_before_training
from playerguard.model_names import MODEL_NAMES
from playerguard.settings import Settings
from playerguard.training.base import check_model_name, feature_columns, get_model_class
from playerguard.training.btyd_model import KIND as BTYD_KIND
from playerguard.training.btyd_model import BTYDColumns, btyd_columns
from playerguard.training.fitting import FittedModel, fit_model
from playerguard.training.gate import (
    BASELINE_GATED,
    BASELINE_KIND,
    BOOSTED_KIND,
    DEFAULT_MIN_ROC_AUC,
    CandidateChoice,
    choose_best,
    choose_candidate,
)
from playerguard.training.metrics import DEFAULT_TARGET_FPR, evaluate
from playerguard.training.report import METRIC_LABELS, ReportData, write_report
from playerguard.training.results import ModelResult, TrainResult

if TYPE_CHECKING:
    from playerguard.training.tracking import Tracker

__all__ = ["ModelResult", "TrainResult", "train"]

Progress = Callable[[str], None]
IMPORTANCE_SAMPLE_ROWS = 2000


def _feature_set_identity(feature_set: Any, training_set: pd.DataFrame) -> tuple[str | None, str | None]:
    """Name and hash of the feature set, checked against the training set's feature columns."""
    if feature_set is None:
        return None, None
    if not hasattr(feature_set, "hash"):
        feature_set = load_feature_set(feature_set)
    defined = set(getattr(feature_set, "feature_names", ()) or ())
    unknown = [c for c in feature_columns(training_set) if c not in defined]
    if defined and unknown:
        raise ConfigError(
            f"the training set has features the feature set {feature_set.name!r} does not define "
            f"({', '.join(unknown[:5])}); pass the feature set it was built with"
        )
    return feature_set.name, feature_set.hash


def _model_params(model_name: str, params: Mapping[str, Mapping[str, Any]] | None, target_fpr: float) -> dict:
    """The constructor arguments of `model_name`; a model with its own `target_fpr` gets the run's."""
    chosen = dict((params or {}).get(model_name, {}))
    try:
        accepts = "target_fpr" in get_model_class(model_name)().get_params()
    except ImportError:
        accepts = False
    if accepts:
        chosen.setdefault("target_fpr", target_fpr)
    return chosen


def _importances(model: Any, X: pd.DataFrame) -> pd.Series | None:
    """Mean |contribution| per feature on (a sample of) the test rows."""
    sample = X.iloc[:IMPORTANCE_SAMPLE_ROWS]
    if hasattr(model, "contributions"):
        return model.contributions(sample).abs().mean()
    totals: dict[str, float] = {}
    for reasons in model.explain(sample, top_k=len(model.feature_names_)):
        for reason in reasons:
            if reason["kind"] == "feature" and reason["contribution"] is not None:
                totals[reason["name"]] = totals.get(reason["name"], 0.0) + abs(reason["contribution"])
    return pd.Series(totals, dtype="float64") / max(len(sample), 1) if totals else None


def _choose(fitted: FittedModel, candidate_metrics: Mapping[str, dict[str, float]]) -> CandidateChoice | None:
    """Which candidate a churn or purchase run puts forward; None for a model with a single candidate."""
    if fitted.name not in BASELINE_GATED or len(fitted.candidates) < 2:
        return None
    if set(candidate_metrics) == {BOOSTED_KIND, BASELINE_KIND}:
        return choose_candidate(fitted.name, candidate_metrics[BOOSTED_KIND], candidate_metrics[BASELINE_KIND])
    return choose_best(fitted.name, candidate_metrics)


def _regime_notes(fitted: FittedModel, model: Any, target_fpr: float) -> list[str]:
    """Report lines saying how inhuman play learned when there were no legitimate players labelled."""
    if fitted.label_regime == "unsupervised":
        return [
            (
                "No labels: inhuman play is unsupervised (rules against human limits and the anomaly detector). "
                f"The threshold flags {target_fpr:g} of the validation cutoff's judged players who break no rule, "
                "presumed legitimate; the held-out ranking metrics are undefined without labels."
            )
        ]
    if fitted.label_regime == "positive_unlabelled":
        c = getattr(model, "label_frequency_", float("nan"))
        return [
            (
                "Positives only (a ban list): inhuman play is trained as positive-unlabelled learning; players "
                f"not on the list are unlabelled, not legitimate. Estimated share of cheaters on the list: {c:.3f}. "
                f"The threshold flags {target_fpr:g} of the players estimated legitimate. Held-out metrics rank "
                "listed players against unlabelled ones: a lower bound on the ranking against legitimate players."
            )
        ]
    return []


def _notes(fitted: FittedModel, result: ModelResult) -> list[str]:
    """Report lines on how the candidate was chosen and which rows it was judged on."""
    notes = []
    if result.choice:
        notes.append(f"Model kind: {result.kind}; {result.choice}.")
        for kind, metrics in result.candidate_metrics.items():
            shown = ", ".join(
                f"{METRIC_LABELS[k]} {metrics[k]:.4f}" for k in ("roc_auc", "pr_auc", "brier") if k in metrics
            )
            notes.append(f"{kind} on the test cutoff: {shown}")
    if fitted.refit_cutoffs:
        cutoffs = ", ".join(c.isoformat() for c in fitted.refit_cutoffs)
        notes.append(
            f"Final fit also used the purged cutoffs {cutoffs}, whose labels close by the test cutoff "
            "(early stopping and calibration used the validation cutoff only)."
        )
    if fitted.split.validation_players:
        notes.append(
            f"Too few cutoffs for the horizon to validate out of time: validation used "
            f"{fitted.split.validation_players:.0%} of the players, held out (grouped by player: none of their "
            f"rows was trained on), at the latest training cutoffs, up to {fitted.split.validation_cutoff.isoformat()}"
            ", the last whose label window closes by the test cutoff. No training or validation label reaches past it."
        )
    if fitted.excluded_test_rows:
        notes.append(
            f"{fitted.excluded_test_rows} test rows lack the minimum evidence to be judged (e.g. no match in "
            "the window); the model scores them 0 by design, and they are left out of the test metrics."
        )
    return notes


def _evaluate(
    fitted: FittedModel, directory: Path, target_fpr: float
) -> tuple[ModelResult, ReportData, CandidateChoice | None]:
    """Metrics of every candidate, the one put forward, its saved files and its report data."""
    candidate_metrics = {
        kind: evaluate(fitted.y_test, candidate.scores, target_fpr=target_fpr)
        for kind, candidate in fitted.candidates.items()
    }
    choice = _choose(fitted, candidate_metrics)
    kind = choice.kind if choice else next(iter(fitted.candidates))
    chosen = fitted.candidates[kind]
    chosen.model.save(directory / "model")
    candidate_dirs = {}
    if len(fitted.candidates) > 1:  # kept for comparison; only `model` is registered
        for other, candidate in fitted.candidates.items():
            candidate_dirs[other] = directory / "candidates" / other
            candidate.model.save(candidate_dirs[other])
    result = ModelResult(
        fitted.name,
        "trained",
        metrics=candidate_metrics[kind],
        baseline_metrics=evaluate(fitted.y_test, fitted.baseline_scores, target_fpr=target_fpr),
        model_dir=directory / "model",
        threshold=getattr(chosen.model, "threshold_", None),
        split=fitted.split.describe(),
        report_path=directory / "report" / "report.html",
        kind=kind,
        candidate_metrics=candidate_metrics,
        candidate_dirs=candidate_dirs,
        choice=choice.reason if choice else None,
    )
    result.split["evaluated_test_rows"] = len(fitted.test)
    result.split["label_regime"] = fitted.label_regime
    report = ReportData(
        model=fitted.name,
        y_true=fitted.y_test,
        scores=chosen.scores,
        baseline_scores=fitted.baseline_scores,
        metrics=result.metrics,
        baseline_metrics=result.baseline_metrics,
        importances=_importances(chosen.model, fitted.test[fitted.features]),
        split=result.split,
        target_fpr=target_fpr,
        notes=_regime_notes(fitted, chosen.model, target_fpr) + _notes(fitted, result) + list(fitted.candidate_notes),
        btyd_metrics=candidate_metrics.get(BTYD_KIND),
    )
    return result, report, choice


def _btyd_inputs(feature_set: Any) -> dict[str, BTYDColumns]:
    """Per model, the feature columns BG/NBD reads for its label's event type, where the set has them."""
    labels = getattr(feature_set, "labels", None)
    events = {"churn": getattr(labels, "churn_event", None), "purchase": getattr(labels, "purchase_event", None)}
    found = {name: btyd_columns(feature_set, event) for name, event in events.items()}
    return {name: columns for name, columns in found.items() if columns is not None}


FEATURE_SET_FILE = "feature_set.yaml"
"""Beside every registered model: the definitions it was trained on, so scoring never guesses them."""


def ship_feature_set(feature_set: Any, model_dir: Path | None) -> None:
    """Copy the feature set's file into the model's directory (registered with it)."""
    path = getattr(feature_set, "path", None)
    if model_dir is not None and path is not None:
        shutil.copyfile(path, Path(model_dir) / FEATURE_SET_FILE)


def train(
    settings: Settings,
    training_set: pd.DataFrame,
    models: Sequence[str] = MODEL_NAMES,
    *,
    progress: Progress | None = None,
    feature_set: Any = "default",
    target_fpr: float = DEFAULT_TARGET_FPR,
    track: bool = True,
    horizon_days: int | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    output_dir: Path | None = None,
    min_roc_auc: float = DEFAULT_MIN_ROC_AUC,
) -> TrainResult:
    """Train, evaluate out of time, report and (with `track`) register and gate each of `models`.

    `feature_set` is a name, a path or a loaded FeatureSet (None: not recorded); `params` maps a model
    name to its constructor arguments; `horizon_days` purges training cutoffs whose label window overlaps
    the validation cutoff (those whose labels still close by the test cutoff join the final fit). Models
    whose labels are absent or single-class are skipped with a note. Files go to `output_dir` (default
    `<home>/runs/<timestamp>-<id>/<model>/{model,report,candidates}`); `model` holds the model put
    forward, `candidates/<kind>` every candidate of churn and purchase. With `track`, every trained model
    is registered; the gate (the pipeline's: held-out ROC-AUC at least `min_roc_auc`, not below its
    baseline, better than the champion) decides whether it becomes champion, and the report says why.
    """
    say = progress or (lambda message: None)
    for name in models:
        check_model_name(name)
    if training_set.empty:
        raise DataError("the training set is empty")
    if "cutoff" not in training_set.columns:
        raise DataError("the training set has no 'cutoff' column")
    if isinstance(feature_set, str | Path):
        feature_set = load_feature_set(feature_set, settings)  # `auto` is derived from this lake
    feature_set = check_before_training(settings, training_set, feature_set, models)
    identity = _feature_set_identity(feature_set, training_set)
    btyd_inputs = _btyd_inputs(feature_set)
    output_dir = Path(
        output_dir or settings.home / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    )
    all_cutoffs = sorted(pd.Timestamp(c).isoformat() for c in pd.unique(training_set["cutoff"].dropna()))
    tracker = None
    if track:
        from playerguard.training.tracking import Tracker

        tracker = Tracker(settings)

    results: dict[str, ModelResult] = {}
    for name in models:
        say(f"{name}: fitting")
        try:
            fitted = fit_model(
                name, training_set, _model_params(name, params, target_fpr), horizon_days, btyd_inputs.get(name)
            )
        except DataError as error:
            say(f"{name}: skipped ({error})")
            results[name] = ModelResult(name, "skipped", note=str(error))
            continue
        result, report, choice = _evaluate(fitted, output_dir / name, target_fpr)
        ship_feature_set(feature_set, result.model_dir)
        if tracker is None:
            result.report_path = write_report(output_dir / name / "report", report)
        else:
            say(f"{name}: comparing with the champion and registering")
            _register(
                tracker,
                result,
                fitted,
                report,
                choice=choice,
                target_fpr=target_fpr,
                min_roc_auc=min_roc_auc,
                feature_set=identity,
                all_cutoffs=all_cutoffs,
                training_rows=len(training_set),
            )
            tracker.log_lake_version(result.run_id, training_set)  # what `--as-of-run` rebuilds from
        say(f"{name}: {_headline(result, target_fpr)}")
        results[name] = result
    return TrainResult(results, output_dir, *identity)


def _register(
    tracker: Tracker,
    result: ModelResult,
    fitted: FittedModel,
    report: ReportData,
    *,
    choice: CandidateChoice | None,
    target_fpr: float,
    min_roc_auc: float,
    feature_set: tuple[str | None, str | None],
    all_cutoffs: list[str],
    training_rows: int,
) -> None:
    """Register the model put forward through the path the pipeline shares; the outcome goes into `result`."""
    # Imported here: MLflow is needed only when tracking.
    from playerguard.training.registration import Challenger, register

    split = fitted.split.describe()
    candidates = {
        f"{kind}_{k}": v for kind, metrics in result.candidate_metrics.items() for k, v in metrics.items()
    }
    model = fitted.candidates[result.kind].model
    registration = register(
        tracker,
        Challenger(
            result.model,
            result.model_dir,
            result.kind,
            result.metrics,
            fitted.test[fitted.columns],
            fitted.y_test,
            baseline_metrics=result.baseline_metrics,
            choice=choice,
            unlabelled=fitted.label_regime == "unsupervised",
        ),
        feature_set_hash=feature_set[1],
        params={
            **{f"model.{k}": json.dumps(v) for k, v in model.saved_params().items()},
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
            **{f"rows_{k}": v for k, v in split["rows"].items()},
            **(candidates if len(result.candidate_metrics) > 1 else {}),
            "rows_test_excluded": fitted.excluded_test_rows,
        },
        min_roc_auc=min_roc_auc,
        target_fpr=target_fpr,
        report=report,
        report_dir=result.report_path.parent,
    )
    result.champion_version, result.champion_metrics = (
        registration.champion_version,
        registration.champion_metrics,
    )
    result.gate, result.run_id = registration.decision, registration.run_id
    result.registered_name, result.registered_version = registration.registered_name, registration.version
    result.report_path = registration.report_path


def _headline(result: ModelResult, target_fpr: float) -> str:
    m, b = result.metrics, result.baseline_metrics
    text = f"test ROC-AUC {m['roc_auc']:.3f} (baseline {b['roc_auc']:.3f}), PR-AUC {m['pr_auc']:.3f}"
    if result.model == "inhuman_play":
        text += f", recall at {target_fpr:g} FPR {m['recall_at_fpr']:.3f}"
    text += f" ({result.kind})"
    if result.gate is not None:
        text += f"; {'promoted' if result.gate.promote else 'not promoted'}: {result.gate.reason}"
    elif result.choice:
        text += f"; {result.choice}"
    return text
