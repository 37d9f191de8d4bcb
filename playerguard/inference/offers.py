"""What makes an offer worth its cost: value at risk (`rank_by: value_at_risk`) and daily budgets.

The policy's rule keys `rank_by`, `spend_feature` and `daily_budget` are parsed here, and value at risk is
computed here: churn probability × purchase probability × the player's typical spend (see policy.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from playerguard.errors import ConfigError

if TYPE_CHECKING:  # numpy is imported where it is used: the stream handler imports this module
    import numpy as np

VALUE_AT_RISK = "value_at_risk"
RANK_KEYS: tuple[str, ...] = (VALUE_AT_RISK,)
RANKED_MODEL, RANKED_ACTION = "churn", "retention_offer"
NO_PURCHASE_MODEL = "no purchase model: churn probability alone"
OVER_BUDGET = "over daily budget"
"""Why an action was not sent: its (model, action) had spent the day's budget."""
_FEATURE = re.compile(r"^[a-z][a-z0-9_]*$")


def parse_ranking(data: Mapping[str, Any], where: str, model: str) -> tuple[str | None, str | None]:
    """`rank_by` and `spend_feature`: both or neither, and only on a churn retention_offer rule."""
    rank_by, spend = data.get("rank_by"), data.get("spend_feature")
    if rank_by is None:
        if spend is not None:
            raise ConfigError(f"{where}.spend_feature is read only with `rank_by: {VALUE_AT_RISK}`")
        return None, None
    if rank_by not in RANK_KEYS:
        raise ConfigError(f"{where}.rank_by must be one of {', '.join(RANK_KEYS)}, got {rank_by!r}")
    if model != RANKED_MODEL or data["action"] != RANKED_ACTION:
        raise ConfigError(
            f"{where}.rank_by: {rank_by} ranks {RANKED_MODEL} {RANKED_ACTION} rules only, "
            f"not {model} {data['action']}"
        )
    if not isinstance(spend, str) or not _FEATURE.match(spend):
        raise ConfigError(
            f"{where}.spend_feature must name the feature of a player's typical purchase amount "
            f"(rank_by: {rank_by} needs it), got {spend!r}"
        )
    return rank_by, spend


def parse_budget(data: Mapping[str, Any], where: str) -> int | None:
    """`daily_budget`: None when absent, else a whole number of actions a day, 0 or more."""
    budget = data.get("daily_budget")
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise ConfigError(
            f"{where}.daily_budget must be a whole number of actions a day, 0 or more, got {budget!r}"
        )
    return budget


def check_budgets(rules: Sequence[Any], where: str) -> None:
    """The budget counts every action of the model, whichever rule took it: rules sharing an action agree."""
    budgets: dict[str, tuple[int, int]] = {}
    for i, rule in enumerate(rules):
        if rule.daily_budget is None:
            continue
        first = budgets.setdefault(rule.action, (i, rule.daily_budget))
        if first[1] != rule.daily_budget:
            raise ConfigError(
                f"{where}.rules[{i}].daily_budget {rule.daily_budget} differs from rules[{first[0]}]'s "
                f"{first[1]}: one budget counts every {rule.action} of the model"
            )


def value_at_risk(
    churn: np.ndarray,
    spend: np.ndarray | None,
    model_scores: Mapping[str, Sequence[float] | np.ndarray] | None,
    no_spend_note: str | None = None,
) -> tuple[np.ndarray, str | None]:
    """churn × purchase probability × typical spend per row, and a note when the purchase model is absent
    (then the churn probability alone). An undefined or negative spend counts as 0; without a spend feature
    (`spend` None) the value is churn × purchase probability, with `no_spend_note`."""
    import numpy as np

    purchase = (model_scores or {}).get("purchase")
    if purchase is None:
        return churn, NO_PURCHASE_MODEL
    purchase = np.asarray(purchase, dtype="float64")
    if purchase.shape != churn.shape:
        raise ValueError(f"purchase scores have shape {purchase.shape}, churn scores {churn.shape}")
    if spend is None:
        return churn * purchase, no_spend_note
    return churn * purchase * np.clip(np.nan_to_num(spend, nan=0.0), 0.0, None), None


def admit_within_budgets(
    rows: Sequence[dict[str, Any]], policy: Any
) -> dict[tuple[str, str], tuple[int, int]]:
    """Batch scoring's daily budgets: `rows` are `scoring.score_frame` rows of one cutoff (one day's offers).

    Per budgeted (model, action), the actions are ranked by value at risk (the score for a rule without it),
    the top `daily_budget` stay in `actions`, and the rest move to the row's `suppressed` list, each with the
    reason. Returns {(model, action): (eligible, admitted)} for every budgeted pair that had actions.
    """
    taken: dict[tuple[str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for row in rows:
        row.setdefault("suppressed", [])
        for action in row["actions"]:
            if policy.daily_budget(action["model"], action["action"]) is not None:
                taken.setdefault((action["model"], action["action"]), []).append((row, action))
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for (model, name), actions in taken.items():
        budget = policy.daily_budget(model, name)
        actions.sort(key=lambda pair: (-_priority(pair[1]), -pair[1]["score"], str(pair[0]["player_id"])))
        for row, action in actions[budget:]:
            row["actions"] = [a for a in row["actions"] if a is not action]
            row["suppressed"].append({**action, "reason": OVER_BUDGET})
        counts[(model, name)] = (len(actions), min(budget, len(actions)))
    return counts


def _priority(action: Mapping[str, Any]) -> float:
    worth = action.get(VALUE_AT_RISK)
    return float(action["score"] if worth is None else worth)
