"""Run the pipeline's steps on this machine, caching each step's outputs by the hash of its inputs.

A step's outputs live in `<home>/pipeline/<step>/<input-hash>/`. The input hash covers the step's code,
its parameters, the output hashes of the steps it reads, the feature definitions' hash when it reads
them, the lake's state (files, sizes, mtimes) when it reads the lake, and the backend settings. A step
whose directory already exists is skipped, so a rerun after a failure resumes at the failed step. A step
writes into a scratch directory that is renamed into place only when it succeeds.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import playerguard
from playerguard.backends import backend_for
from playerguard.errors import PlayerguardError
from playerguard.features.cutoffs import resolve_cutoffs
from playerguard.features.labels import labels_fingerprint
from playerguard.model_names import MODEL_NAMES
from playerguard.pipelines.steps import PIPELINE_STEPS, PipelineParams, PipelineStep, StepContext
from playerguard.settings import Settings

MARKER = "_step.json"
EventStatus = Literal["started", "cached", "done", "failed"]


@dataclass(frozen=True)
class StepEvent:
    """A step changing state, for progress displays."""

    step: str
    status: EventStatus
    index: int
    total: int
    seconds: float | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class StepResult:
    """What happened to one step: `ran`, `cached` (skipped, outputs reused), `failed` or `not run`."""

    name: str
    status: str
    input_hash: str | None = None
    output_dir: Path | None = None
    output_hash: str | None = None
    seconds: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class PipelineResult:
    """The steps of one run, in order, and the parameters it ran with."""

    params: PipelineParams
    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(step.status in ("ran", "cached") for step in self.steps)

    def step(self, name: str) -> StepResult:
        for result in self.steps:
            if result.name == name:
                return result
        raise PlayerguardError(f"no step {name!r} in this run")

    def output(self, name: str) -> Path:
        """The output directory of step `name`."""
        result = self.step(name)
        if result.output_dir is None:
            raise PlayerguardError(f"step {name!r} has no outputs ({result.status})")
        return result.output_dir


class PipelineStepError(PlayerguardError):
    """A step failed. `step` names it; `result` holds every step's outcome up to the failure."""

    def __init__(self, step: str, reason: str, result: PipelineResult) -> None:
        super().__init__(f"pipeline step {step!r} failed: {reason}")
        self.step = step
        self.result = result


def _sha256(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def lake_state(settings: Settings) -> str | None:
    """A hash of the local lake's event files (name, size, mtime); None when the lake is not local (the
    steps reading it then always run, since their inputs cannot be fingerprinted cheaply)."""
    return backend_for(settings).lake().fingerprint()


def directory_hash(directory: Path) -> str:
    """sha256 over the relative paths and contents of every file in `directory` (the marker excluded)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file() and p.name != MARKER):
        digest.update(str(path.relative_to(directory)).encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def step_input_hash(
    step: PipelineStep,
    params: PipelineParams,
    upstream: dict[str, str],
    *,
    feature_set_hash: str | None,
    lake: str | None,
    settings: Settings,
    labels: str | None = None,
) -> str:
    """The hash that names a step's cache directory. `labels` fingerprints the label files, for the steps
    that read them (new review verdicts or a new ban list must retrain, not reuse the cache)."""
    return _sha256(
        {
            "step": step.name,
            "code": [
                playerguard.__version__,
                hashlib.sha256(inspect.getsource(step.function).encode()).hexdigest(),
            ],
            "params": {name: params.value(name) for name in step.params},
            "inputs": {name: upstream[name] for name in step.inputs},
            "feature_set": feature_set_hash if step.reads_feature_set else None,
            "lake": lake if step.reads_lake else None,
            "labels": labels if step.reads_labels else None,
            "backend": [
                backend_for(settings).name,
                settings.lake_s3_uri,
                settings.glue_database,
                settings.tracking_uri,
            ],
        }
    )


def _feature_set_hash(feature_set: str) -> str:
    from playerguard.features.api import load_feature_set

    return load_feature_set(feature_set).hash


def _run_one(step: PipelineStep, context: StepContext, target: Path, input_hash: str) -> StepResult:
    """Run `step` into a scratch directory and move it to `target` when it succeeds."""
    scratch = target.parent / f".partial-{input_hash[:12]}-{uuid.uuid4().hex[:8]}"
    scratch.mkdir(parents=True)
    started = time.perf_counter()
    try:
        summary = step.function(
            StepContext(context.settings, context.params, scratch, context.inputs, target)
        )
        seconds = time.perf_counter() - started
        output_hash = directory_hash(scratch)
        (scratch / MARKER).write_text(
            json.dumps(
                {
                    "step": step.name,
                    "input_hash": input_hash,
                    "output_hash": output_hash,
                    "seconds": seconds,
                    "summary": summary,
                    "finished_at": datetime.now(UTC).isoformat(),
                },
                indent=2,
                sort_keys=True,
                default=str,
            )
        )
        if target.exists():  # an incomplete leftover; complete directories always have a marker
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return StepResult(step.name, "ran", input_hash, target, output_hash, seconds, summary or {})


def _cached(step: PipelineStep, target: Path, input_hash: str) -> StepResult | None:
    marker = target / MARKER
    if not marker.exists():
        return None
    stored = json.loads(marker.read_text())
    return StepResult(
        step.name, "cached", input_hash, target, stored["output_hash"], None, stored.get("summary") or {}
    )


def _describe(error: BaseException, log: Path) -> str:
    if isinstance(error, PlayerguardError):
        return str(error)
    return f"{type(error).__name__}: {error} (traceback in {log})"


def run_pipeline(
    settings: Settings,
    *,
    cutoff: datetime | date | str | None = None,
    cutoffs: Sequence[datetime | date | str] | None = None,
    horizon_days: int = 14,
    lookback_days: int = 28,
    feature_set: str = "default",
    min_roc_auc: float = 0.6,
    drift_threshold: float = 0.2,
    models: Sequence[str] = MODEL_NAMES,
    force: bool = False,
    steps: Sequence[PipelineStep] = PIPELINE_STEPS,
    progress: Callable[[StepEvent], None] | None = None,
) -> PipelineResult:
    """Run `steps` in order, skipping those whose inputs are unchanged since they last succeeded.

    Cutoffs: `cutoffs` as given; else weekly cutoffs ending at `cutoff`; else weekly cutoffs over the
    lake's date range, the last one `horizon_days` before its end. `force` reruns every step. Raises
    PipelineStepError (a PlayerguardError naming the step) when a step fails; a rerun resumes there.
    """
    notify = progress or (lambda event: None)
    params = PipelineParams(
        cutoffs=resolve_cutoffs(
            settings, cutoff=cutoff, cutoffs=list(cutoffs) if cutoffs else None, horizon_days=horizon_days
        ),
        horizon_days=horizon_days,
        lookback_days=lookback_days,
        feature_set=str(feature_set),
        min_roc_auc=min_roc_auc,
        drift_threshold=drift_threshold,
        models=tuple(models),
    )
    lake = lake_state(settings)
    labels = labels_fingerprint(settings) if any(s.reads_labels for s in steps) else None
    feature_set_hash = (
        _feature_set_hash(params.feature_set) if any(s.reads_feature_set for s in steps) else None
    )
    root = settings.home / "pipeline"
    result = PipelineResult(params, [StepResult(step.name, "not run") for step in steps])
    output_hashes: dict[str, str] = {}
    output_dirs: dict[str, Path] = {}
    for index, step in enumerate(steps):
        missing = [name for name in step.inputs if name not in output_hashes]
        if missing:
            raise PlayerguardError(f"step {step.name!r} needs {missing[0]!r}, which does not run before it")
        input_hash = step_input_hash(
            step,
            params,
            output_hashes,
            feature_set_hash=feature_set_hash,
            lake=lake,
            settings=settings,
            labels=labels,
        )
        cacheable = not (step.reads_lake and lake is None)
        target = root / step.name / input_hash[:20]
        outcome = _cached(step, target, input_hash) if cacheable and not force else None
        if outcome is not None:
            notify(StepEvent(step.name, "cached", index, len(steps), summary=outcome.summary))
        else:
            notify(StepEvent(step.name, "started", index, len(steps)))
            context = StepContext(settings, params, target, {name: output_dirs[name] for name in step.inputs})
            started = time.perf_counter()
            try:
                outcome = _run_one(step, context, target, input_hash)
            except Exception as error:
                log = root / step.name / "last_error.txt"
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text("".join(traceback.format_exception(error)))
                reason = _describe(error, log)
                seconds = time.perf_counter() - started
                result.steps[index] = StepResult(
                    step.name, "failed", input_hash, seconds=seconds, error=reason
                )
                notify(StepEvent(step.name, "failed", index, len(steps), seconds=seconds, error=reason))
                raise PipelineStepError(step.name, reason, result) from error
            notify(
                StepEvent(
                    step.name, "done", index, len(steps), seconds=outcome.seconds, summary=outcome.summary
                )
            )
        result.steps[index] = outcome
        output_hashes[step.name] = outcome.output_hash or ""
        output_dirs[step.name] = target
    return result
