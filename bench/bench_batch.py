"""Batch scoring benchmark: `playerguard score` over a simulated population vs the feature build it needs.

    .venv/bin/python bench/bench_batch.py [--players 100000 --days 30 --repeats 2]

Reuses the lake of bench/bench_features.py (same --home, simulated on first use). The bundle is
bench/bench_endpoint.py's: the three models at their default sizes, fitted on 5,000 synthetic feature rows. Measured in the same run,
in this process, medians of `--repeats`:
- the feature build at the cutoff (`build_features`, DuckDB on every core), what `score` starts with;
- `score_cutoff` end to end (the build, three models with exact TreeSHAP reasons for every player as batch
  scoring gives them, the policy, the output table); goal: within 2x the build;
- the scoring part alone, split into exact TreeSHAP (pred_contribs) and everything else, and the same
  with exact reasons only where the policy acts (`exact_reasons="acted"`, the endpoint's setting).
`os.getloadavg()` is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))


def timed(call: Any, repeats: int) -> tuple[float, Any]:
    """Median seconds of `repeats` calls, and the last result."""
    seconds, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), result


def tree_shap_seconds(bundle: Any, features: Any) -> float:
    """Seconds of exact pred_contribs of every booster on every row (what `exact_reasons="all"` computes)."""
    import xgboost

    total = 0.0
    for model in bundle.models.values():
        booster = getattr(model, "booster_", None)
        if booster is None:
            continue
        data = xgboost.DMatrix(features[model.feature_names_].to_numpy(dtype="float64"))
        start = time.perf_counter()
        booster.predict(data, pred_contribs=True, validate_features=False)
        total += time.perf_counter() - start
    return total


def main() -> None:
    import bench_features
    from endpoint_fixtures import bundle_models, fit_test_models

    from playerguard.features.api import build_features
    from playerguard.inference.batch import score_cutoff
    from playerguard.inference.bundle import load_bundle
    from playerguard.inference.scoring import score_frame, scores_table
    from playerguard.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "playerguard-bench-features"))
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    events = bench_features.ensure_lake(args)
    settings = Settings(home=Path(args.home))
    cutoff = bench_features.START + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        models = fit_test_models(Path(scratch), rows=5000, seed=1, full_size=True)  # bench_endpoint's bundle
        bundle = load_bundle(bundle_models(models, Path(scratch) / "bundle"))
        print(f"lake: {events:,} events, {args.players:,} players; cutoff {cutoff:%Y-%m-%d}; {os.cpu_count()} CPUs; "
              f"load average {os.getloadavg()}")
        build, features = timed(lambda: build_features(settings, cutoff, feature_set=bundle.feature_set), args.repeats)
        total, scores = timed(lambda: score_cutoff(settings, cutoff, bundle=bundle), args.repeats)
        exact_all, _ = timed(lambda: scores_table(score_frame(bundle, features, exact_reasons="all")), args.repeats)
        acted, _ = timed(lambda: scores_table(score_frame(bundle, features, exact_reasons="acted")), args.repeats)
        shap = tree_shap_seconds(bundle, features)
        flagged = int((scores.table["actions"] != "[]").sum())
        print(f"feature build: {len(features):,} players, median {build:.2f} s")
        print(f"score_cutoff end to end: median {total:.2f} s = {total / build:.2f}x the build (goal <= 2x); "
              f"{flagged:,} players with an action")
        print(f"  scoring alone (exact reasons everywhere): {exact_all:.2f} s, of which exact TreeSHAP of the three "
              f"boosters on every row {shap:.2f} s")
        print(f"  scoring alone, exact reasons only where the policy acts: {acted:.2f} s; build + that = "
              f"{(build + acted) / build:.2f}x the build")
        import xgboost

        print(f"XGBoost nthread {xgboost.get_config()['nthread']} (0: every core); load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
