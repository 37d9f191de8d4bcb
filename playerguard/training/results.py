"""What `train` returns: per model, its metrics, the gate's decision and where its files are."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playerguard.training.gate import GateDecision


@dataclass
class ModelResult:
    """The outcome of training one model. `status` is "trained" or "skipped" (then `note` says why).

    `metrics` are the held-out metrics of the model put forward (`kind`, saved in `model_dir`);
    `candidate_metrics` and `candidate_dirs` hold every candidate's metrics and files, by kind, when there
    were several, and `choice` says why this one was put forward.
    """

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
    kind: str | None = None
    candidate_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    candidate_dirs: dict[str, Path] = field(default_factory=dict)
    choice: str | None = None


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
                    "kind": r.kind,
                    **{f"test_{k}": r.metrics.get(k) for k in ("roc_auc", "pr_auc", "recall_at_fpr")},
                    **{f"baseline_{k}": r.baseline_metrics.get(k) for k in ("roc_auc", "pr_auc")},
                    "champion_version": r.champion_version,
                    "promoted": r.gate.promote if r.gate else None,
                    "gate_reason": r.gate.reason if r.gate else r.choice,
                    "registered_version": r.registered_version,
                    "report": str(r.report_path) if r.report_path else None,
                }
            )
        return rows
