"""One player explained: the three scores, the actions the policy takes, and each reason's feature value next
to the population's typical value at the same cutoff.

The population is every player batch scoring scores at that cutoff (with an event before it, and recently
active when asked), so "typical" is the median of what batch scoring sees, and the percentile places the
player among them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import DataError
from playerguard.inference.bundle import Bundle
from playerguard.settings import Settings


@dataclass(frozen=True)
class Reason:
    """One reason behind a score: the feature it reads, the player's value, the population's median of that
    feature and the player's percentile among the population (None where undefined)."""

    model: str
    reason: str
    """The feature's name, or the rule's name for a rule reason."""
    kind: str
    feature: str | None
    value: float | None
    typical: float | None
    percentile: float | None
    contribution: float | None


@dataclass(frozen=True)
class Explanation:
    """Why one player scores as they do at a cutoff."""

    player_id: str
    cutoff: datetime
    scores: dict[str, float]
    model_versions: dict[str, str]
    actions: list[dict[str, Any]]
    reasons: list[Reason]
    population: int
    """How many players were scored at the cutoff: what `typical` and `percentile` compare against."""
    notes: list[str] = field(default_factory=list)
    suppressed: list[dict[str, Any]] = field(default_factory=list)
    """Actions the daily budget holds back at this cutoff, as batch scoring does, each with its `reason`."""

    def reasons_frame(self) -> pd.DataFrame:
        """The reasons as a table, one row per reason."""
        return pd.DataFrame([asdict(r) for r in self.reasons], columns=[f.name for f in fields(Reason)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the cutoff as ISO 8601, every number a float or None."""
        return {
            "player_id": self.player_id,
            "cutoff": self.cutoff.isoformat(),
            "scores": self.scores,
            "model_versions": self.model_versions,
            "actions": self.actions,
            "reasons": [asdict(r) for r in self.reasons],
            "population": self.population,
            "notes": self.notes,
            "suppressed": self.suppressed,
        }

    def __str__(self) -> str:
        lines = [f"player {self.player_id} at {self.cutoff.isoformat()} ({self.population:,} players scored)"]
        for model, score in self.scores.items():
            lines.append(f"  {model:13} {score:.3f}  (version {self.model_versions.get(model, '-')})")
        taken = ", ".join(f"{a['action']} ({a['model']}, {a['severity']})" for a in self.actions)
        lines.append(f"actions: {taken or 'none'}")
        for held in self.suppressed:
            lines.append(f"held back: {held['action']} ({held['model']}): {held['reason']}")
        for r in self.reasons:
            shown = r.reason if r.feature in (None, r.reason) else f"{r.reason} ({r.feature})"
            lines.append(
                f"  {r.model:13} {shown}: {_number(r.value)}, typical {_number(r.typical)}"
                + (f", percentile {r.percentile:.0f}" if r.percentile is not None else "")
            )
        return "\n".join(lines + [f"note: {note}" for note in self.notes])


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def default_cutoff(settings: Settings) -> datetime:
    """Midnight (UTC) after the lake's last event day: just after its last event, so every event counts."""
    from playerguard.features.cutoffs import lake_date_range

    _, last_day = lake_date_range(settings)
    return datetime.combine(last_day, time.min, UTC) + timedelta(days=1)


def percentile(population: pd.Series, value: float) -> float:
    """The value's mid-rank percentile (0-100) among the population's defined values; ties count half, so a
    value shared by everyone is the 50th."""
    known = population.dropna().to_numpy(dtype="float64")
    below = np.count_nonzero(known < value)
    equal = np.count_nonzero(known == value)
    return 100.0 * (below + 0.5 * equal) / len(known)


def _rule_features(model: Any) -> dict[str, str]:
    """Rule name → the feature it tests, for models with rules (their reasons name the rule)."""
    return {rule.name: rule.feature for rule in getattr(model, "active_rules_", ()) or ()}


def _reason(model: str, raw: dict[str, Any], feature: str | None, features: pd.DataFrame) -> Reason:
    value = raw.get("value")
    value = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    typical = share = None
    if feature in features.columns and features[feature].notna().any():
        column = features[feature]
        typical = float(column.median())
        share = None if value is None else percentile(column, value)
    contribution = raw.get("contribution")
    return Reason(
        model=model,
        reason=str(raw["name"]),
        kind=str(raw.get("kind", "feature")),
        feature=feature,
        value=value,
        typical=typical,
        percentile=share,
        contribution=None if contribution is None else float(contribution),
    )


def explain_player(
    settings: Settings,
    player_id: str,
    cutoff: datetime,
    *,
    bundle: Bundle,
    lookback_days: int = 28,
    active_within_days: int | None = None,
    top_k: int = 3,
) -> Explanation:
    """Score `player_id` at `cutoff` with the bundle and explain the scores against the population scored at
    the same cutoff (as `score_cutoff` selects it: with `active_within_days`, only the recently active).
    DataError when the cutoff sees none of the lake, or the player has no event before it."""
    from playerguard.features.api import build_features
    from playerguard.features.compiler import normalize_cutoff
    from playerguard.features.cutoffs import check_cutoff
    from playerguard.inference.scoring import score_frame
    from playerguard.model_names import MODEL_NAMES

    check_cutoff(settings, cutoff, lookback_days=lookback_days)
    features = build_features(
        settings,
        cutoff,
        lookback_days=lookback_days,
        feature_set=bundle.feature_set,
        active_within_days=active_within_days,
    )
    row = features.loc[features["player_id"].astype(str) == player_id]
    if row.empty:
        raise DataError(
            f"unknown player {player_id!r}: no event before {cutoff.isoformat()} in the lake "
            f"({len(features):,} players have one)"
        )
    scored = score_frame(bundle, row.head(1), top_k=top_k, reasons="all")[0]
    actions, suppressed, budget_notes = _within_budgets(bundle, features, player_id, scored["actions"])
    reasons = []
    for model, model_reasons in scored["reasons"].items():
        rules = _rule_features(bundle.models[model])
        for raw in model_reasons:
            name = str(raw["name"])
            feature = rules.get(name, name if name in features.columns else None)
            reasons.append(_reason(model, raw, feature, features))
    return Explanation(
        player_id=player_id,
        cutoff=normalize_cutoff(cutoff),
        scores={model: float(score) for model, score in scored["scores"].items()},
        model_versions=dict(scored["model_versions"]),
        actions=list(actions),
        reasons=reasons,
        population=len(features),
        notes=[f"{name}: no champion model, not scored" for name in MODEL_NAMES if name not in bundle.models]
        + budget_notes,
        suppressed=suppressed,
    )


def _within_budgets(
    bundle: Bundle, features: pd.DataFrame, player_id: str, actions: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The player's actions as batch scoring leaves them at this cutoff: an action with a daily budget is
    ranked against the whole population's (`offers.admit_within_budgets`). Returns the admitted actions, the
    held-back ones with their reason, and a note per budgeted action."""
    from playerguard.inference.offers import admit_within_budgets
    from playerguard.inference.scoring import score_frame

    policy = bundle.policy
    taken = [(a["model"], a["action"]) for a in actions]
    budgeted = [(model, action) for model, action in taken if policy.daily_budget(model, action) is not None]
    if not budgeted:
        return actions, [], []
    rows = score_frame(bundle, features, reasons="acted")
    counts = admit_within_budgets(rows, policy)
    mine = next(r for r in rows if str(r["player_id"]) == player_id)
    held = {(a["model"], a["action"]) for a in mine["suppressed"]}
    notes = [
        f"{model} {action}: {'held back' if (model, action) in held else 'admitted'} by the daily budget, "
        f"which admits {counts[model, action][1]:,} of the {counts[model, action][0]:,} players eligible at "
        "this cutoff (highest value first)"
        for model, action in budgeted
    ]
    return mine["actions"], mine["suppressed"], notes


def score_rows(explanation: Explanation) -> list[dict[str, Any]]:
    """One row per model for a printed table: score, model version and the action the policy takes."""
    acted = {a["model"]: a for a in explanation.actions}
    held = {a["model"]: a for a in explanation.suppressed}
    return [
        {
            "model": model,
            "score": score,
            "version": explanation.model_versions.get(model),
            "action": acted[model]["action"] if model in acted else (
                f"{held[model]['action']} (held back)" if model in held else ""),
            "severity": acted[model]["severity"] if model in acted else "",
        }
        for model, score in explanation.scores.items()
    ]


def reason_rows(explanation: Explanation) -> list[dict[str, Any]]:
    """The reasons as rows for a printed table, the rule's feature shown beside a rule's name."""
    return [
        {
            "model": r.model,
            "reason": r.reason,
            "feature": r.feature if r.feature != r.reason else "",
            "value": r.value,
            "typical": r.typical,
            "percentile": None if r.percentile is None else round(r.percentile),
            "contribution": r.contribution,
        }
        for r in explanation.reasons
    ]
