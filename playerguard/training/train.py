"""Training orchestration: per model, an out-of-time fit, held-out evaluation against a logistic baseline
and the current champion, a report, and (with tracking) an MLflow run, a registered version and the gate."""

from __future__ import annotations

import inspect
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from playerguard.errors import ConfigError, DataError, PlayerguardError
from playerguard.settings import Settings
from playerguard.training.base import (
    MODEL_NAMES,
    binary_labels,
    check_model_name,
    feature_columns,
    get_model_class,
    label_column,
    load_model,
)
from playerguard.training.metrics import DEFAULT_TARGET_FPR, evaluate
from playerguard.training.propensity import RECENCY_FREQUENCY_FEATURES, LogisticBaseline
from playerguard.training.report import ReportData, write_report
from playerguard.training.splits import OutOfTimeSplit, labelled_rows, split_by_cutoff

if TYPE_CHECKING:
    from playerguard.training.tracking import GateDecision, Tracker

Progress = Callable[[str], None]
IMPORTANCE_SAMPLE_ROWS = 2000


@dataclass
class ModelResult:
    """The outcome of training one model. `status` is "trained" or "skipped" (then `note` says why)."""

    model: str
    status: str
    note: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    champion_version: str | None = None
    gate: GateDecision | None = None
    registered_name: str | None = None
    registered_version: str | None = None
    run_id: str | None = None
    report_path: Path | None = None
    model_dir: Path | None = None
    threshold: float | None = None
    split: dict[str, Any] | None = None


@dataclass
class TrainResult:
    """Per-model results of one `train` call, and where its files were written."""

    models: dict[str, ModelResult]
    output_dir: Path
    feature_set_name: str | None = None
    feature_set_hash: str | None = None

    @property
    def trained(self) -> list[str]:
        return [name for name, result in self.models.items() if result.status == "trained"]

    def summary(self) -> list[dict[str, Any]]:
        """One flat row per model, for tables and logs."""
        rows = []
        for name, r in self.models.items():
            rows.append(
                {
                    "model": name,
                    "status": r.status,
                    "note": r.note,
                    **{f"test_{k}": r.metrics.get(k) for k in ("roc_auc", "pr_auc", "recall_at_fpr")},
                    **{f"baseline_{k}": r.baseline_metrics.get(k) for k in ("roc_auc", "pr_auc")},
                    "champion_version": r.champion_version,
                    "promoted": r.gate.promote if r.gate else None,
                    "gate_reason": r.gate.reason if r.gate else None,
                    "registered_version": r.registered_version,
                    "report": str(r.report_path) if r.report_path else None,
                }
            )
        return rows


def _feature_set_identity(feature_set: Any, training_set: pd.DataFrame) -> tuple[str | None, str | None]:
    """Name and hash of the feature set, checked against the training set's feature columns."""
    if feature_set is None:
        return None, None
    if not hasattr(feature_set, "hash"):
        from playerguard.features.api import load_feature_set

        feature_set = load_feature_set(feature_set)
    defined = set(getattr(feature_set, "feature_names", ()) or ())
    unknown = [c for c in feature_columns(training_set) if c not in defined]
    if defined and unknown:
        raise ConfigError(
            f"the training set has features the feature set {feature_set.name!r} does not define "
            f"({', '.join(unknown[:5])}); pass the feature set it was built with"
        )
    return feature_set.name, feature_set.hash


@dataclass
class _Fitted:
    model: Any
    split: OutOfTimeSplit
    features: list[str]
    columns: list[str]  # the features, plus player_id when present (for models that group by player)
    y_test: np.ndarray
    scores: np.ndarray
    baseline_scores: np.ndarray


def _both_classes(labels: pd.Series) -> bool:
    return labels.nunique() == 2


def _fit(
    model_name: str, training_set: pd.DataFrame, params: Mapping[str, Any], horizon_days: int | None
) -> _Fitted:
    """Split, fit the model and its baseline, score the test window. DataError means: skip this model."""
    label = label_column(model_name)
    if label not in training_set.columns:
        raise DataError(f"the training set has no {label} column")
    rows = labelled_rows(training_set, label)
    if rows.empty:
        raise DataError(f"every {label} is missing")
    split = split_by_cutoff(rows, horizon_days=horizon_days)
    for part, frame in (("training", split.train), ("validation", split.validation), ("test", split.test)):
        if not _both_classes(frame[label]):
            raise DataError(f"the {part} rows' {label} has a single class ({len(frame)} rows)")
    features = feature_columns(training_set)
    # The player id is not a feature; models may use it to keep a player's rows in one cross-fitting fold.
    columns = (["player_id"] if "player_id" in training_set.columns else []) + features
    try:
        model_class = get_model_class(model_name)
    except ImportError as error:
        raise DataError(f"the {model_name} model is not available ({error})") from error
    try:
        model = model_class(**params)
    except TypeError as error:
        raise ConfigError(f"invalid parameters for the {model_name} model: {error}") from None
    model = model.fit(
        split.train[columns],
        split.train[label],
        X_val=split.validation[columns],
        y_val=split.validation[label],
    )
    baseline_features = None if model_name == "inhuman_play" else RECENCY_FREQUENCY_FEATURES
    baseline = LogisticBaseline(baseline_features).fit(split.train[features], split.train[label])
    X_test = split.test[columns]
    return _Fitted(
        model=model,
        split=split,
        features=features,
        columns=columns,
        y_test=binary_labels(split.test[label]),
        scores=np.asarray(model.predict_score(X_test), dtype="float64"),
        baseline_scores=baseline.predict_score(X_test),
    )


def _model_params(model_name: str, params: Mapping[str, Mapping[str, Any]] | None, target_fpr: float) -> dict:
    """The constructor arguments of `model_name`; a model with its own `target_fpr` gets the run's."""
    chosen = dict((params or {}).get(model_name, {}))
    try:
        accepts = "target_fpr" in inspect.signature(get_model_class(model_name)).parameters
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


def _champion_metrics(
    tracker: Tracker, model_name: str, fitted: _Fitted, target_fpr: float
) -> tuple[str | None, dict[str, float] | None, str | None]:
    """Score the current champion on this run's test rows: (version, metrics, error)."""
    from xgboost.core import XGBoostError

    champion = tracker.champion(model_name)
    if champion is None:
        return None, None, None
    with tempfile.TemporaryDirectory() as scratch:
        files = tracker.download(model_name, champion, Path(scratch) / "champion")
        try:
            scores = load_model(model_name, files.directory).predict_score(fitted.split.test[fitted.columns])
            return files.version, evaluate(fitted.y_test, scores, target_fpr=target_fpr), None
        except (PlayerguardError, ValueError, KeyError, OSError, XGBoostError) as error:
            # A champion that no longer loads or scores cannot block a working replacement.
            return files.version, None, f"{type(error).__name__}: {error}"


def _prefixed(prefix: str, values: Mapping[str, float] | None) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in (values or {}).items()}


def _track(
    tracker: Tracker,
    result: ModelResult,
    fitted: _Fitted,
    report: ReportData,
    *,
    target_fpr: float,
    feature_set: tuple[str | None, str | None],
    all_cutoffs: list[str],
    training_rows: int,
) -> None:
    """Gate, log the run, register the version, write and log the report, move the alias if promoted."""
    from playerguard.training.tracking import (
        MODEL_ARTIFACT_PATH,
        REPORT_ARTIFACT_PATH,
        decide_promotion,
        registered_name,
    )

    model_name = result.model
    champion_version, champion_metrics, champion_error = _champion_metrics(
        tracker, model_name, fitted, target_fpr
    )
    gate = decide_promotion(
        model_name,
        result.metrics,
        baseline_metrics=result.baseline_metrics,
        champion_metrics=champion_metrics,
        champion_version=champion_version,
        champion_error=champion_error,
    )
    result.champion_version, result.champion_metrics, result.gate = champion_version, champion_metrics, gate
    params = getattr(fitted.model, "get_params", dict)()
    run_id = tracker.start_run(model_name, {"playerguard.feature_set_hash": feature_set[1] or ""})
    result.run_id = run_id
    try:
        split = fitted.split.describe()
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
                "validation_cutoff": split["validation_cutoff"],
                "test_cutoff": split["test_cutoff"],
                "n_features": len(fitted.features),
            },
            metrics={
                **_prefixed("test", result.metrics),
                **_prefixed("baseline", result.baseline_metrics),
                **_prefixed("champion", champion_metrics),
                **_prefixed("rows", split["rows"]),
            },
        )
        source = tracker.log_directory(run_id, result.model_dir, MODEL_ARTIFACT_PATH)
        result.registered_version = tracker.register(model_name, run_id, source)
        result.registered_name = registered_name(model_name)
        report.version, report.gate = result.registered_version, gate.as_dict()
        report.champion_metrics, report.champion_version = champion_metrics, champion_version
        result.report_path = write_report(result.report_path.parent, report)
        tracker.log_directory(run_id, result.report_path.parent, REPORT_ARTIFACT_PATH)
        tracker.record_decision(model_name, result.registered_version, run_id, gate)
    except BaseException:
        tracker.end_run(run_id, "FAILED")
        raise
    tracker.end_run(run_id)


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
) -> TrainResult:
    """Train, evaluate out of time, report and (with `track`) register and gate each of `models`.

    `feature_set` is a name, a path or a loaded FeatureSet (None: not recorded); `params` maps a model
    name to its constructor arguments; `horizon_days` purges training cutoffs whose label window overlaps
    the validation cutoff. Models whose labels are absent or single-class are skipped with a note.
    Files go to `output_dir` (default `<home>/runs/<timestamp>-<id>/<model>/{model,report}`).
    """
    say = progress or (lambda message: None)
    for name in models:
        check_model_name(name)
    if training_set.empty:
        raise DataError("the training set is empty")
    if "cutoff" not in training_set.columns:
        raise DataError("the training set has no 'cutoff' column")
    identity = _feature_set_identity(feature_set, training_set)
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
            fitted = _fit(name, training_set, _model_params(name, params, target_fpr), horizon_days)
        except DataError as error:
            say(f"{name}: skipped ({error})")
            results[name] = ModelResult(name, "skipped", note=str(error))
            continue
        directory = output_dir / name
        fitted.model.save(directory / "model")
        result = ModelResult(
            name,
            "trained",
            metrics=evaluate(fitted.y_test, fitted.scores, target_fpr=target_fpr),
            baseline_metrics=evaluate(fitted.y_test, fitted.baseline_scores, target_fpr=target_fpr),
            model_dir=directory / "model",
            threshold=getattr(fitted.model, "threshold_", None),
            split=fitted.split.describe(),
            report_path=directory / "report" / "report.html",
        )
        report = ReportData(
            model=name,
            y_true=fitted.y_test,
            scores=fitted.scores,
            baseline_scores=fitted.baseline_scores,
            metrics=result.metrics,
            baseline_metrics=result.baseline_metrics,
            importances=_importances(fitted.model, fitted.split.test[fitted.features]),
            split=result.split,
            target_fpr=target_fpr,
        )
        if tracker is None:
            result.report_path = write_report(directory / "report", report)
        else:
            say(f"{name}: comparing with the champion and registering")
            _track(
                tracker,
                result,
                fitted,
                report,
                target_fpr=target_fpr,
                feature_set=identity,
                all_cutoffs=all_cutoffs,
                training_rows=len(training_set),
            )
        say(f"{name}: {_headline(result, target_fpr)}")
        results[name] = result
    return TrainResult(results, output_dir, *identity)


def _headline(result: ModelResult, target_fpr: float) -> str:
    m, b = result.metrics, result.baseline_metrics
    text = f"test ROC-AUC {m['roc_auc']:.3f} (baseline {b['roc_auc']:.3f}), PR-AUC {m['pr_auc']:.3f}"
    if result.model == "inhuman_play":
        text += f", recall at {target_fpr:g} FPR {m['recall_at_fpr']:.3f}"
    if result.gate is not None:
        text += f"; {'promoted' if result.gate.promote else 'not promoted'}: {result.gate.reason}"
    return text
