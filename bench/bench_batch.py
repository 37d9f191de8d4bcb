"""Batch scoring benchmark: `playerguard score` over a simulated population vs the feature build it needs.

    .venv/bin/python bench/bench_batch.py [--players 100000 --days 30 --repeats 2]

Reuses the lake of bench/bench_features.py (same --home, simulated on first use). The bundle is
bench/bench_endpoint.py's: the three models at their default sizes, fitted on 5,000 synthetic feature rows.
Measured in the same run, in this process, medians of `--repeats`:
- the feature build at the cutoff (`build_features`, DuckDB on every core), what `score` starts with;
- `score_cutoff` end to end as `score` runs it by default (the build, three models, the policy, exact
  TreeSHAP reasons for the players the policy acts on, none for the others, the output table); goal: within
  2x the build;
- the same with reasons for every player (`score --reasons all`);
- the scoring part alone, both ways, with the exact TreeSHAP (pred_contribs) each needs: of the rows the
  policy acts on, per model, or of every row.
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


def tree_shap_seconds(bundle: Any, features: Any, rows: dict[str, Any] | None = None) -> float:
    """Seconds of exact pred_contribs of every booster on `rows[model]` (a boolean per row), or on every row."""
    import xgboost

    total = 0.0
    for name, model in bundle.models.items():
        booster = getattr(model, "booster_", None)
        if booster is None:
            continue
        values = features[model.feature_names_].to_numpy(dtype="float64")
        data = xgboost.DMatrix(values if rows is None else values[rows[name]])
        start = time.perf_counter()
        booster.predict(data, pred_contribs=True, validate_features=False)
        total += time.perf_counter() - start
    return total


def acted_rows(results: list[dict], models: Any) -> dict[str, Any]:
    """Per model, a boolean per row: the policy acts on it (what `score_frame` explains by default)."""
    import numpy as np

    return {name: np.array([any(a["model"] == name for a in r["actions"]) for r in results]) for name in models}


def scored(bundle: Any, features: Any, reasons: str) -> list[dict]:
    """`score_frame` and its table, as `score_cutoff` makes them; the rows."""
    from playerguard.inference.scoring import score_frame, scores_table

    results = score_frame(bundle, features, reasons=reasons)
    scores_table(results)
    return results


def main() -> None:
    import bench_features
    from endpoint_fixtures import bundle_models, fit_test_models

    from playerguard.features.api import build_features
    from playerguard.inference.batch import score_cutoff
    from playerguard.inference.bundle import load_bundle
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
        total_all, _ = timed(lambda: score_cutoff(settings, cutoff, bundle=bundle, reasons="all"), args.repeats)
        acted, results = timed(lambda: scored(bundle, features, "acted"), args.repeats)
        everywhere, _ = timed(lambda: scored(bundle, features, "all"), args.repeats)
        rows = acted_rows(results, bundle.models)
        shap_acted, shap_all = tree_shap_seconds(bundle, features, rows), tree_shap_seconds(bundle, features)
        flagged = int((scores.table["actions"] != "[]").sum())
        counts = ", ".join(f"{name} {int(mask.sum()):,}" for name, mask in rows.items())
        print(f"feature build: {len(features):,} players, median {build:.2f} s")
        print(f"score_cutoff end to end (reasons where the policy acts): median {total:.2f} s = {total / build:.2f}x "
              f"the build (goal <= 2x); {flagged:,} players with an action")
        print(f"score_cutoff end to end, reasons for every player (--reasons all): median {total_all:.2f} s = "
              f"{total_all / build:.2f}x the build")
        print(f"  scoring alone, reasons where the policy acts: {acted:.2f} s, of which exact TreeSHAP of the rows "
              f"acted on ({counts}) {shap_acted:.2f} s")
        print(f"  scoring alone, reasons for every player: {everywhere:.2f} s, of which exact TreeSHAP of the three "
              f"boosters on every row {shap_all:.2f} s")
        import xgboost

        print(f"XGBoost nthread {xgboost.get_config()['nthread']} (0: every core); load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
