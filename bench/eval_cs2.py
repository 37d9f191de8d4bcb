"""Print the inhuman-play model's figures on real CS2 matches (CS2CD, Loo and Lužkov 2025, CC-BY-4.0).

    .venv/bin/python bench/eval_cs2.py [--folds 5] [--seed 0] [--data-dir PATH]
        [--feature-source feature_layer|pandas] [--json out.json]

Grouped k-fold by match on the hand-labelled `with_cheater` matches; see
playerguard/training/cs2_evaluation.py for the protocol. Takes about a minute on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from playerguard.training.cs2_evaluation import evaluate_cs2

METRICS = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "fpr_at_threshold", "recall_at_threshold")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--feature-source", choices=("feature_layer", "pandas"), default="feature_layer")
    parser.add_argument("--json", type=Path, default=None, help="also write the full result here")
    args = parser.parse_args()

    started = time.perf_counter()
    result = evaluate_cs2(args.data_dir, folds=args.folds, seed=args.seed, feature_source=args.feature_source)
    elapsed = time.perf_counter() - started

    data = result["data"]
    print(
        f"CS2CD: {data['players_with_cheater_matches']} players in {data['matches_with_cheater']} with_cheater "
        f"matches ({data['cheaters']} cheaters), {data['reference_players_no_cheater']} no_cheater players; "
        f"{data['folds']}-fold grouped by match, seed {data['seed']}; features: {data['feature_source']}"
    )
    print(f"{'model':42s}" + "".join(f"{m:>24s}" for m in METRICS))
    for name, summary in result.items():
        if name == "data":
            continue
        cells = []
        for metric in METRICS:
            if metric in summary:
                cells.append(f"{summary[metric]['mean']:.4f} ± {summary[metric]['std']:.4f}")
            else:
                cells.append("-")
        print(f"{name:42s}" + "".join(f"{cell:>24s}" for cell in cells))
    print(f"(mean ± std over folds; evaluation took {elapsed:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
