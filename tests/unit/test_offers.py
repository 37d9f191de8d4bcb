"""Batch scoring's daily budget: one cutoff is one day of offers, the highest value at risk admitted first."""

from __future__ import annotations

import json

from playerguard.inference.offers import admit_within_budgets
from playerguard.inference.policy import Policy

POLICY = Policy.from_dict(
    {"models": {
        "churn": {"rules": [{"threshold": 0.6, "action": "retention_offer", "severity": "low", "daily_budget": 2,
                             "rank_by": "value_at_risk", "spend_feature": "purchase_amount_mean_lifetime"}]},
        "purchase": {"rules": [{"threshold": 0.5, "action": "purchase_offer", "severity": "low", "daily_budget": 1}]},
        "inhuman_play": {"rules": [{"threshold": 0.5, "action": "review", "severity": "low"}]},
    }}
)  # fmt: skip


def _row(player: str, *actions: dict) -> dict:
    return {"player_id": player, "scores": {}, "actions": list(actions), "reasons": {}, "model_versions": {}}


def _offer(score: float, value: float) -> dict:
    return {"model": "churn", "action": "retention_offer", "score": score, "threshold": 0.6, "severity": "low",
            "value_at_risk": value}  # fmt: skip


def _other(model: str, action: str, score: float) -> dict:
    return {"model": model, "action": action, "score": score, "threshold": 0.5, "severity": "low"}


def test_the_budget_keeps_the_highest_values_and_moves_the_rest_to_suppressed() -> None:
    review = _other("inhuman_play", "review", 0.9)
    rows = [
        _row("a", _offer(0.95, 1.0), review),  # the most likely to churn, but little at risk
        _row("b", _offer(0.70, 30.0)),
        _row("c", _offer(0.65, 12.0), _other("purchase", "purchase_offer", 0.6)),
        _row("d", _other("purchase", "purchase_offer", 0.8)),  # no value at risk: ranked by score
        _row("e"),
    ]
    counts = admit_within_budgets(rows, POLICY)
    assert counts == {("churn", "retention_offer"): (3, 2), ("purchase", "purchase_offer"): (2, 1)}
    kept = {row["player_id"]: [(a["model"], a["action"]) for a in row["actions"]] for row in rows}
    assert kept == {
        "a": [("inhuman_play", "review")],  # no budget on review: untouched
        "b": [("churn", "retention_offer")],
        "c": [("churn", "retention_offer")],
        "d": [("purchase", "purchase_offer")],
        "e": [],
    }
    assert rows[0]["suppressed"] == [{**_offer(0.95, 1.0), "reason": "over daily budget"}]
    assert rows[2]["suppressed"][0]["model"] == "purchase" and rows[4]["suppressed"] == []
    json.dumps(rows)  # the suppressed column of the batch table is JSON


def test_ties_are_broken_by_score_then_player_so_a_rerun_admits_the_same() -> None:
    rows = [_row("z", _offer(0.7, 0.0)), _row("y", _offer(0.7, 0.0)), _row("x", _offer(0.9, 0.0))]
    admit_within_budgets(rows, POLICY)
    assert [row["player_id"] for row in rows if row["actions"]] == ["y", "x"]
