"""The quality gate, as pure functions of held-out metrics: which candidate a run registers, and whether
it replaces the champion. One gate for `train` and the pipeline: the ROC-AUC floor, the logistic baseline
and the champion comparison are rules of one decision, which names the rule that decided it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from playerguard.model_names import check_model_name

# The held-out metric a new version must beat the champion on: inhuman play is rare, so precision–recall.
GATE_METRICS: dict[str, str] = {"inhuman_play": "pr_auc", "churn": "roc_auc", "purchase": "roc_auc"}
# Models that must never ship worse than their logistic baseline out of time. The inhuman-play baseline
# (a logistic regression on every feature, fitted on the same labels) is reported for reference only.
BASELINE_GATED: frozenset[str] = frozenset({"churn", "purchase"})
BOOSTED_KIND = "xgboost"
BASELINE_KIND = "logistic_baseline"
# Every model, whatever its gate metric, must reach this held-out ROC-AUC to be promoted.
FLOOR_METRIC = "roc_auc"
DEFAULT_MIN_ROC_AUC = 0.6

# The rule that decided a GateDecision, in the order the rules apply.
RULE_UNDEFINED = "undefined_metric"
RULE_UNLABELLED = "unlabelled"
RULE_FLOOR = "roc_auc_floor"
RULE_BASELINE = "baseline"
RULE_CHAMPION = "champion"


@dataclass(frozen=True)
class GateDecision:
    """Whether a new version becomes champion, and why."""

    promote: bool
    reason: str
    metric: str
    new_value: float
    baseline_value: float | None = None
    champion_value: float | None = None
    champion_version: str | None = None
    kind: str | None = None
    rule: str = RULE_CHAMPION
    min_roc_auc: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _value(metrics: Mapping[str, float] | None, metric: str) -> float | None:
    return float(metrics[metric]) if metrics and metric in metrics and metrics[metric] is not None else None


def reaches_floor(roc_auc: float | None, min_roc_auc: float) -> bool:
    """Whether a held-out ROC-AUC reaches the floor; an undefined one never does."""
    return roc_auc is not None and not math.isnan(roc_auc) and roc_auc >= min_roc_auc


@dataclass(frozen=True)
class CandidateChoice:
    """The kind of model a churn or purchase run puts forward, and why."""

    kind: str
    reason: str


def choose_candidate(
    model: str, boosted_metrics: Mapping[str, float], baseline_metrics: Mapping[str, float]
) -> CandidateChoice:
    """XGBoost, unless its held-out gate metric is below the logistic baseline's (or undefined while the
    baseline's is not): then the baseline itself is the candidate, so a studio still gets a model that is
    at least as good as its baseline."""
    metric = GATE_METRICS[check_model_name(model)]
    boosted, baseline = _value(boosted_metrics, metric), _value(baseline_metrics, metric)
    if not _known(baseline):
        return CandidateChoice(BOOSTED_KIND, f"XGBoost is the candidate (the logistic baseline's test {metric} is undefined)")
    if not _known(boosted):
        return CandidateChoice(
            BASELINE_KIND, f"the logistic baseline is the candidate: XGBoost's test {metric} is undefined"
        )
    if boosted < baseline:
        return CandidateChoice(
            BASELINE_KIND,
            f"the logistic baseline is the candidate: XGBoost's test {metric} {boosted:.4f} is below "
            f"the baseline's {baseline:.4f}",
        )
    return CandidateChoice(
        BOOSTED_KIND,
        f"XGBoost is the candidate: its test {metric} {boosted:.4f} is not below the logistic baseline's "
        f"{baseline:.4f}",
    )


def choose_best(model: str, candidate_metrics: Mapping[str, Mapping[str, float]]) -> CandidateChoice:
    """XGBoost, unless another candidate (the logistic baseline, BG/NBD) has a higher held-out gate metric
    (or XGBoost's is undefined): then the best of them is the candidate. The reason lists every one."""
    metric = GATE_METRICS[check_model_name(model)]
    known = {kind: _value(m, metric) for kind, m in candidate_metrics.items() if _known(_value(m, metric))}
    listed = ", ".join(f"{kind} {value:.4f}" for kind, value in sorted(known.items(), key=lambda kv: -kv[1]))
    if not known:
        return CandidateChoice(BOOSTED_KIND, f"XGBoost is the candidate (no candidate's test {metric} is defined)")
    best = max(known, key=lambda kind: (known[kind], kind == BOOSTED_KIND))
    if BOOSTED_KIND in known and known[BOOSTED_KIND] >= known[best]:
        best = BOOSTED_KIND
    return CandidateChoice(best, f"{best} is the candidate: best test {metric} of {listed}")


def decide_promotion(
    model: str,
    new_metrics: Mapping[str, float],
    *,
    baseline_metrics: Mapping[str, float] | None = None,
    champion_metrics: Mapping[str, float] | None = None,
    champion_version: str | None = None,
    champion_error: str | None = None,
    choice: CandidateChoice | None = None,
    min_roc_auc: float = DEFAULT_MIN_ROC_AUC,
    unlabelled: bool = False,
) -> GateDecision:
    """The quality gate. Its rules, in order, the first that rejects deciding: the new model's gate metric
    is defined; its held-out ROC-AUC reaches `min_roc_auc`; for churn and purchase, it is not worse than
    its logistic baseline; it beats the champion's metric on the same test set (or there is no champion,
    or it cannot be scored). `rule` names the rule that decided; `choice` (how the candidate was chosen)
    is appended to the reason. An `unlabelled` model (trained with no labels at all) has nothing to be
    measured on: it becomes champion when there is none, and never replaces one."""
    metric = GATE_METRICS[check_model_name(model)]
    new = float(new_metrics.get(metric, math.nan))
    baseline = _value(baseline_metrics, metric)
    champion = _value(champion_metrics, metric)
    roc_auc = _value(new_metrics, FLOOR_METRIC)

    def decision(promote: bool, rule: str, reason: str) -> GateDecision:
        if choice is not None:
            reason = f"{reason}; {choice.reason}"
        kind = choice.kind if choice is not None else None
        return GateDecision(
            promote, reason, metric, new, baseline, champion, champion_version, kind, rule, min_roc_auc
        )

    if unlabelled:
        if champion_version is None:
            first = "no labels to measure it on; the first model trained without labels becomes champion"
            return decision(True, RULE_UNLABELLED, first)
        kept = f"no labels to compare it with champion v{champion_version}: promote it by hand if wanted"
        return decision(False, RULE_UNLABELLED, kept)
    if not _known(new):
        return decision(False, RULE_UNDEFINED, f"the new model's test {metric} is undefined")
    if not reaches_floor(roc_auc, min_roc_auc):
        shown = f"{roc_auc:.4f}" if _known(roc_auc) else "undefined"
        floor = f"new test {FLOOR_METRIC} {shown} is below the {FLOOR_METRIC} floor {min_roc_auc:g}"
        return decision(False, RULE_FLOOR, floor)
    if model in BASELINE_GATED and _known(baseline) and new < baseline:
        below = f"new test {metric} {new:.4f} is below the logistic baseline's {baseline:.4f}"
        return decision(False, RULE_BASELINE, below)
    versus_baseline = f" (logistic baseline {baseline:.4f})" if _known(baseline) else ""
    if champion_version is None:
        return decision(True, RULE_CHAMPION, f"no champion yet; new test {metric} {new:.4f}{versus_baseline}")
    if champion_error is not None or not _known(champion):
        problem = champion_error or f"its {metric} is undefined"
        unscored = f"champion v{champion_version} could not be scored on the test set ({problem})"
        return decision(True, RULE_CHAMPION, unscored)
    if new > champion:
        return decision(
            True,
            RULE_CHAMPION,
            f"new test {metric} {new:.4f} beats champion v{champion_version}'s {champion:.4f} on the same test set",
        )
    return decision(
        False,
        RULE_CHAMPION,
        f"new test {metric} {new:.4f} does not beat champion v{champion_version}'s {champion:.4f} "
        "on the same test set",
    )
