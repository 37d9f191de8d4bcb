"""Retention offers that reach players who are still there, and drift alerts on an unchanging game.

    .venv/bin/python bench/bench_offers_and_drift.py [--players 2000] [--days 60] [--seed 7]

1. Offers: a simulated game, the local pipeline (features → train → ... → bundle), then batch scoring at the
   lake's last day with the champions. Prints how many `retention_offer` players had been inactive for more
   than 14 days (`days_since_last_event`), with the packaged policy (its churn rule has
   `where: days_since_last_event <= 7`) and, in the same run, with that condition removed — the old policy.
   Then the daily budget: how many of the eligible offers the packaged budget admits, and the value at risk
   the budgeted offers cover against the same number of offers chosen by churn probability alone, at the
   packaged budget and at budgets that bind (a quarter and a half of the eligible offers).
2. Drift: the pipeline's drift step on two consecutive weeks of the same unchanging simulated game (the
   training set's cutoffs ending a week apart): columns alerted, with the age-dependent features (tenure,
   totals over all history) reported but not alerted on, and what the alert would have said without that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from playerguard.features.api import build_features, build_training_set
from playerguard.features.cutoffs import lake_date_range, resolve_cutoffs
from playerguard.inference.batch import champion_bundle, score_cutoff
from playerguard.inference.policy import Policy, default_policy_path
from playerguard.pipelines.drift import latest_cutoff_drift
from playerguard.pipelines.local_runner import run_pipeline
from playerguard.pipelines.steps import full_windows_from
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation


def offers_to_the_inactive(settings: Settings, bundle: object, cutoff: datetime) -> tuple[int, int, object]:
    """Inactive > 14 days among the players offered, the players offered, and the scores table."""
    scores = score_cutoff(settings, cutoff, bundle=bundle)
    recency = build_features(settings, cutoff).set_index("player_id")["days_since_last_event"]
    offered = scores.table.loc[scores.table["actions"].str.contains('"retention_offer"'), "player_id"]
    return int((recency.reindex(offered) > 14).sum()), len(offered), scores.table


def eligible_offers(table: object) -> list[dict]:
    """Every retention offer the policy made at the cutoff, admitted by the budget or held back by it."""
    taken = [a for column in ("actions", "suppressed") for text in table[column] for a in json.loads(text)]
    return [a for a in taken if a["action"] == "retention_offer"]


def value_covered(offers: list[dict], count: int, key: str) -> float:
    """The value at risk of the `count` offers highest in `key` ("value_at_risk" or "score")."""
    chosen = sorted(offers, key=lambda a: a[key], reverse=True)[:count]
    return sum(a["value_at_risk"] for a in chosen)


def print_budget(table: object, budget: int | None) -> None:
    offers = eligible_offers(table)
    admitted = sum('"retention_offer"' in text for text in table["actions"])
    print(f"budget: the daily budget of {budget} admits {admitted} of {len(offers)} eligible retention offers")
    nothing = sum(a["value_at_risk"] == 0 for a in offers)
    print(f"budget: {nothing} of the {len(offers)} have no value at risk (never bought: ranked last, by churn)")
    notes = {a.get("value_at_risk_note") for a in offers} - {None}
    if notes:
        print(f"budget: value at risk is {', '.join(notes)}")
    total = sum(a["value_at_risk"] for a in offers)
    for label, count in (("packaged", admitted), ("1/4", len(offers) // 4), ("1/2", len(offers) // 2)):
        ranked, by_churn = value_covered(offers, count, "value_at_risk"), value_covered(offers, count, "score")
        print(f"budget {label} ({count} offers): value at risk covered {ranked:.2f} ranked by value at risk vs "
              f"{by_churn:.2f} by churn probability alone ({ranked / max(by_churn, 1e-12):.2f}x; "
              f"{ranked / max(total, 1e-12):.1%} vs {by_churn / max(total, 1e-12):.1%} of all eligible)")


def main() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    parser = argparse.ArgumentParser()
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pg-offers-"))
    settings = Settings(home=home)
    write_simulation(settings, players=args.players, days=args.days, seed=args.seed)
    run_pipeline(settings)
    first, last = lake_date_range(settings)
    cutoff = datetime.combine(last, datetime.min.time(), UTC)
    print(f"load average {os.getloadavg()}; {args.players} players x {args.days} days, seed {args.seed}")

    bundle = champion_bundle(settings)
    inactive, offered, table = offers_to_the_inactive(settings, bundle, cutoff)
    print(f"offers, packaged policy: {inactive} of {offered} retention_offer players inactive > 14 days "
          f"({inactive / max(offered, 1):.1%})")
    print_budget(table, bundle.policy.daily_budget("churn", "retention_offer"))
    document = yaml.safe_load(default_policy_path().read_text())
    for rule in document["models"]["churn"]["rules"]:
        for key in ("where", "daily_budget"):  # the old policy: no condition, and every offer sent
            rule.pop(key, None)
    old = Policy.from_dict(document, "policy without where:")
    inactive, offered, _ = offers_to_the_inactive(settings, dataclasses.replace(bundle, policy=old), cutoff)
    print(f"offers, without the condition: {inactive} of {offered} inactive > 14 days "
          f"({inactive / max(offered, 1):.1%})")

    aging = bundle.feature_set.age_dependent
    for week in (1, 0):
        end = cutoff - timedelta(days=14 + 7 * week)
        cutoffs = resolve_cutoffs(settings, cutoff=end, horizon_days=14)
        frame = build_training_set(settings, list(cutoffs), horizon_days=14, lookback_days=28)
        report = latest_cutoff_drift(
            frame, bundle.models, age_dependent=aging, full_windows_from=full_windows_from(settings, 28)
        )
        before = latest_cutoff_drift(frame, bundle.models)
        print(f"drift, week ending {end:%Y-%m-%d}: {len(report.drifted)} alerted {list(report.drifted['name'])}; "
              f"without age adjustment {len(before.drifted)} {list(before.drifted['name'])}")


if __name__ == "__main__":
    main()
