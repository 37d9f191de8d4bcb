"""Purchase propensity on a real purchase log, against the baselines a practitioner tries first.

    .venv/bin/python bench/eval_real_purchase.py [--horizon 91d] [--every 28d] [--data CDNOW_master.txt]

The log: CDNOW_master, the full CDNOW purchase history of 23,570 customers who first bought in Q1 1997, to
June 1998 (69,659 purchases: customer, date, CDs, dollars) — the data set the BG/NBD paper (Fader, Hardie
and Lee, 2005) was fitted on, as distributed by Bruce Hardie for research use and shipped in the `lifetimes`
package. Without `--data`, the script fetches that package's wheel from the package index into a cache
directory and reads the file from it (nothing is installed, nothing lands in the repository).

Question: "buys in the next 91 days", out of time. Features come from `--feature-set auto` (features suggest
on this lake: no hand-written definition); cutoffs every `--every` up to the last one whose label window
fits; the last cutoff is held out as test. Compared on that test cutoff, in the same run:
- boosted: playerguard's purchase model (XGBoost, validated and recalibrated out of time);
- logistic: the recency/frequency/tenure logistic baseline it always trains beside;
- BG/NBD as trained: the buy-till-you-die candidate every run fits beside them on the training cutoffs
  (recalibrated on the validation cutoff), which the gate may put forward;
- BG/NBD fit at the test cutoff: the same model fitted on every customer's history before the test cutoff
  (no labels), scoring P(at least one purchase in the horizon) — the baseline as a practitioner runs it.
Prints ROC-AUC, PR-AUC and Brier score of the three.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _real_logs import lake_of, print_table, quiet_mlflow, scores_of

CACHE = Path.home() / ".cache" / "playerguard-bench"
MAPPING = """columns: {player_id: customer_id, event_timestamp: date, event_id: line}
constants: {event_type: purchase, game_id: cdnow, platform: web}
timestamp_format: "%Y%m%d"
"""


def cdnow_master(path: Path | None) -> pd.DataFrame:
    """The CDNOW master log as a frame: customer_id, date, cds, amount, line."""
    if path is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        wheels = sorted(CACHE.glob("[Ll]ifetimes-0.11.3-*.whl"))
        if not wheels:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "lifetimes==0.11.3", "-d", str(CACHE)],
                check=True,
            )
            wheels = sorted(CACHE.glob("[Ll]ifetimes-0.11.3-*.whl"))
        with zipfile.ZipFile(wheels[0]) as wheel:
            text = wheel.read("lifetimes/datasets/CDNOW_master.txt").decode()
    else:
        text = path.read_text()
    rows = [line.split() for line in text.splitlines()[1:] if line.strip()]  # after the header
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "cds", "amount"])
    frame["line"] = [f"cdnow-{i}" for i in range(len(frame))]
    return frame.astype({"cds": "float64", "amount": "float64"})


def histories(log: pd.DataFrame, cutoff: datetime) -> pd.DataFrame:
    """BG/NBD's (frequency, recency, age) per customer from purchases before `cutoff`, in days; repeat
    purchases counted by distinct day, as in the paper."""
    days = pd.to_datetime(log["date"], format="%Y%m%d").dt.tz_localize(UTC)
    before = pd.DataFrame({"customer": log["customer_id"], "day": days})
    before = before.loc[before["day"] < cutoff].drop_duplicates()
    grouped = before.groupby("customer")["day"]
    first, last, count = grouped.min(), grouped.max(), grouped.count()
    return pd.DataFrame(
        {
            "frequency": (count - 1).astype("float64"),
            "recency": (last - first).dt.total_seconds() / 86400,
            "age": (pd.Timestamp(cutoff) - first).dt.total_seconds() / 86400,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--horizon", default="91d")
    parser.add_argument("--every", default="28d")
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    quiet_mlflow()
    import playerguard as pg
    from playerguard.durations import parse_duration
    from playerguard.training.btyd import BGNBD

    horizon, every = parse_duration(args.horizon, "--horizon"), parse_duration(args.every, "--every")
    log = cdnow_master(args.data)
    home = lake_of(log, MAPPING, "cdnow")
    last_day = pd.to_datetime(log["date"], format="%Y%m%d").max()
    end = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
    test_cutoff = end - horizon
    cutoffs = []
    cutoff = test_cutoff
    while cutoff >= datetime(1997, 4, 1, tzinfo=UTC):
        cutoffs.append(cutoff)
        cutoff -= every
    cutoffs = sorted(cutoffs)
    print(f"load average {os.getloadavg()}; {len(log):,} purchases of {log['customer_id'].nunique():,} customers; "
          f"{len(cutoffs)} cutoffs every {args.every}, test cutoff {test_cutoff:%Y-%m-%d}, horizon {args.horizon}")

    training = pg.build_training_set(cutoffs, horizon=args.horizon, lookback="364d", feature_set="auto", home=home)
    result = pg.train("purchase", training_set=training, horizon=args.horizon, feature_set="auto", home=home)
    purchase = result.models["purchase"]
    test = training.loc[pd.to_datetime(training["cutoff"], utc=True) == pd.Timestamp(test_cutoff)]
    labels = test.set_index("player_id")["label_purchase"].dropna()

    story = histories(log, test_cutoff).reindex(labels.index)
    bgnbd = BGNBD().fit(story["frequency"], story["recency"], story["age"])
    btyd = bgnbd.purchase_probability(horizon / timedelta(days=1), story["frequency"], story["recency"], story["age"])
    rows = {
        "boosted (playerguard)": purchase.candidate_metrics.get("xgboost", purchase.metrics),
        "logistic RFM baseline": purchase.baseline_metrics,
        "BG/NBD, as trained": purchase.candidate_metrics.get("btyd", {}),
        "BG/NBD, fit at the test": scores_of(labels, btyd),
    }
    print(f"test cutoff rows: {len(labels):,}, positives {int(labels.sum()):,}; model put forward: {purchase.kind}")
    print_table(rows)
    print(f"BG/NBD parameters r, alpha, a, b = {np.round(bgnbd.params_, 4).tolist()}")


if __name__ == "__main__":
    main()
