"""The evaluation report of one model's training run: PNG plots plus an HTML page and a Markdown page."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from playerguard.training import metrics as m

METRIC_LABELS: dict[str, str] = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "brier": "Brier score",
    "ece": "Expected calibration error",
    "lift_top_decile": "Lift, top decile",
    "recall_at_fpr": "Recall at target FPR",
    "threshold_at_fpr": "Threshold at target FPR",
    "rows": "Test rows",
    "positives": "Test positives",
    "base_rate": "Base rate",
}


@dataclass
class ReportData:
    """Everything a report shows. Scores and labels are the held-out test rows."""

    model: str
    y_true: np.ndarray
    scores: np.ndarray
    baseline_scores: np.ndarray
    metrics: Mapping[str, float]
    baseline_metrics: Mapping[str, float]
    champion_metrics: Mapping[str, float] | None = None
    champion_version: str | None = None
    gate: Mapping[str, Any] | None = None
    version: str | None = None
    importances: pd.Series | None = None  # mean |SHAP contribution| per feature
    split: Mapping[str, Any] | None = None
    target_fpr: float = m.DEFAULT_TARGET_FPR
    notes: Sequence[str] = field(default_factory=list)
    btyd_metrics: Mapping[str, float] | None = None  # the BG/NBD baseline on the same test rows


def _figure(title: str, xlabel: str, ylabel: str, left: float = 0.13) -> tuple[Any, Any]:
    # The object-oriented API with an explicit Agg canvas: no pyplot, no global backend switch.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Fixed margins rather than a tight layout, which draws every figure twice.
    figure = Figure(figsize=(5.5, 4.2), dpi=100)
    figure.subplots_adjust(left=left, right=0.97, bottom=0.12, top=0.92)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _save(figure: Any, axes: Any, path: Path, legend: bool = True) -> str:
    if legend:
        axes.legend(loc="best", fontsize="small")
    figure.savefig(path, format="png")
    return path.name


def _plots(data: ReportData, directory: Path) -> dict[str, str]:
    y, s, b = data.y_true, data.scores, data.baseline_scores
    files: dict[str, str] = {}

    figure, axes = _figure("ROC curve", "False positive rate", "True positive rate")
    for label, scores in (("model", s), ("baseline", b)):
        fpr, tpr = m.roc_curve(y, scores)
        axes.plot(fpr, tpr, label=f"{label} (AUC {m.roc_auc(y, scores):.3f})")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    files["roc"] = _save(figure, axes, directory / "roc.png")

    figure, axes = _figure("Precision–recall", "Recall", "Precision")
    for label, scores in (("model", s), ("baseline", b)):
        recall, precision = m.precision_recall_curve(y, scores)
        axes.step(recall, precision, where="post", label=f"{label} (AP {m.pr_auc(y, scores):.3f})")
    axes.axhline(float(np.mean(y)), linestyle=":", color="grey", label="base rate")
    files["precision_recall"] = _save(figure, axes, directory / "precision_recall.png")

    figure, axes = _figure("Calibration (10 bins)", "Mean predicted probability", "Observed rate")
    for label, scores in (("model", s), ("baseline", b)):
        predicted, observed, counts = m.calibration_bins(y, scores)
        filled = counts > 0
        axes.plot(predicted[filled], observed[filled], marker="o", label=label)
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    files["calibration"] = _save(figure, axes, directory / "calibration.png")

    figure, axes = _figure("Lift by score decile", "Decile (1 = highest scores)", "Lift")
    lift = m.lift_by_decile(y, s)
    axes.bar(np.arange(1, lift.size + 1), lift, color="tab:blue")
    axes.axhline(1.0, linestyle=":", color="grey")
    files["lift"] = _save(figure, axes, directory / "lift.png", legend=False)

    figure, axes = _figure("Score distribution by label", "Score", "Density")
    bins = np.linspace(0.0, 1.0, 41)
    for value, label in ((0, "negative"), (1, "positive")):
        if np.any(y == value):
            axes.hist(s[y == value], bins=bins, density=True, alpha=0.55, label=label)
    files["score_distribution"] = _save(figure, axes, directory / "score_distribution.png")

    if data.importances is not None and len(data.importances):
        top = data.importances.sort_values(ascending=True).tail(15)
        longest = max(len(str(name)) for name in top.index)
        figure, axes = _figure(
            "Top features by mean |SHAP|",
            "Mean |contribution| (log-odds)",
            "",
            left=min(0.6, 0.04 + 0.013 * longest),
        )
        axes.barh(list(top.index), top.to_numpy(), color="tab:green")
        files["shap_importance"] = _save(figure, axes, directory / "shap_importance.png", legend=False)
    return files


def _format(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value)}"
    return f"{value:.4f}"


def _metric_columns(data: ReportData) -> list[str]:
    champion = f"champion v{data.champion_version}" if data.champion_version else "champion"
    btyd = ["BG/NBD"] if data.btyd_metrics is not None else []
    return ["metric", "model", "logistic baseline", *btyd, champion]


def _metric_rows(data: ReportData) -> list[tuple[str, ...]]:
    champion = data.champion_metrics or {}
    columns = [data.metrics, data.baseline_metrics]
    columns += [data.btyd_metrics] if data.btyd_metrics is not None else []
    return [
        (label, *(_format(values.get(key)) for values in columns), _format(champion.get(key)))
        for key, label in METRIC_LABELS.items()
        if key in data.metrics
    ]


def _gate_line(data: ReportData) -> str:
    if data.gate is None:
        return "not evaluated (no model registry in this run)"
    if data.gate["promote"]:
        outcome = "PROMOTED to champion"
    elif data.gate.get("champion_version") is None:
        outcome = "not promoted (there is no champion)"
    else:
        outcome = "kept the current champion"
    return f"{outcome}: {data.gate['reason']}"


def _title(data: ReportData) -> str:
    version = f" v{data.version}" if data.version else ""
    return f"playerguard {data.model}{version}: evaluation report"


def _split_lines(data: ReportData) -> list[str]:
    if not data.split:
        return []
    rows = data.split.get("rows", {})
    lines = [
        f"train cutoffs: {', '.join(data.split.get('train_cutoffs', []))} ({rows.get('train', '?')} rows)",
        f"validation cutoff: {data.split.get('validation_cutoff')} ({rows.get('validation', '?')} rows)",
        f"test cutoff: {data.split.get('test_cutoff')} ({rows.get('test', '?')} rows)",
    ]
    if data.split.get("purged_cutoffs"):
        lines.append(
            f"purged cutoffs (label window overlaps validation): {', '.join(data.split['purged_cutoffs'])}"
        )
    return lines


def _markdown(data: ReportData, plots: Mapping[str, str]) -> str:
    columns = _metric_columns(data)
    lines = [f"# {_title(data)}", "", f"**Quality gate:** {_gate_line(data)}", ""]
    lines += [f"Target false positive rate: {data.target_fpr:g}", ""]
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in _metric_rows(data)]
    lines += ["", "## Out-of-time split", ""] + [f"- {line}" for line in _split_lines(data)]
    if data.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in data.notes]
    lines += ["", "## Plots", ""] + [f"![{name}]({file})" for name, file in plots.items()]
    return "\n".join(lines) + "\n"


def _html(data: ReportData, plots: Mapping[str, str]) -> str:
    e = html.escape
    header = "".join(f"<th>{e(h)}</th>" for h in _metric_columns(data))
    body = "".join(
        "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in _metric_rows(data)
    )
    split = "".join(f"<li>{e(line)}</li>" for line in _split_lines(data))
    notes = "".join(f"<li>{e(note)}</li>" for note in data.notes)
    images = "".join(
        f'<figure><img src="{e(file)}" alt="{e(name)}"><figcaption>{e(name)}</figcaption></figure>'
        for name, file in plots.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(_title(data))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; max-width: 72rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .7rem; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: .5rem; }} img {{ max-width: 34rem; }}
</style></head><body>
<h1>{e(_title(data))}</h1>
<p><strong>Quality gate:</strong> {e(_gate_line(data))}</p>
<p>Target false positive rate: {data.target_fpr:g}</p>
<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>
<h2>Out-of-time split</h2><ul>{split}</ul>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
<h2>Plots</h2>{images}
</body></html>
"""


def write_report(directory: Path, data: ReportData) -> Path:
    """Write the plots, `report.html` and `report.md` into `directory`; returns the HTML path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    plots = _plots(data, directory)
    (directory / "report.md").write_text(_markdown(data, plots), encoding="utf-8")
    path = directory / "report.html"
    path.write_text(_html(data, plots), encoding="utf-8")
    return path
