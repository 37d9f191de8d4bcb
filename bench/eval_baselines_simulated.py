"""Churn and purchase against their baselines on simulated games: three seeds, two feature sets.

    .venv/bin/python bench/eval_baselines_simulated.py [--players 2000] [--days 70] [--seeds 7 8 9]

For each seed: a simulated game, a training set at weekly cutoffs (14-day horizon), and every candidate a
run fits — the boosted model, the logistic recency/frequency baseline and BG/NBD (both sets carry its inputs:
lifetime count, days since the last and since the first event of the label's type) — judged on the same
held-out last cutoff: ROC-AUC, PR-AUC, Brier.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--players", type=int, default=2000)
    parser.add_argument("--days", type=int, default=70)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import playerguard as pg

    print(f"load average {os.getloadavg()}; {args.players} players x {args.days} days")
    print(f"{'seed':<6}{'set':<9}{'model':<10}{'candidate':<19}{'ROC-AUC':>9}{'PR-AUC':>9}{'Brier':>9}")
    for seed in args.seeds:
        home = Path(tempfile.mkdtemp(prefix=f"pg-baselines-{seed}-"))
        pg.simulate(players=args.players, days=args.days, seed=seed, home=home)
        for feature_set in ("default", "auto"):
            training = pg.build_training_set(horizon="14d", feature_set=feature_set, home=home)
            from playerguard.settings import Settings
            from playerguard.training.train import train

            result = train(
                Settings(home=home), training, ("churn", "purchase"), feature_set=feature_set, track=False,
                horizon_days=14,
            )
            for name, model in result.models.items():
                for kind, metrics in model.candidate_metrics.items():
                    shown = [metrics.get(k, float("nan")) for k in ("roc_auc", "pr_auc", "brier")]
                    put = "*" if kind == model.kind else " "
                    print(f"{seed:<6}{feature_set:<9}{name:<10}{kind + put:<19}" + "".join(f"{v:>9.4f}" for v in shown))


if __name__ == "__main__":
    main()
