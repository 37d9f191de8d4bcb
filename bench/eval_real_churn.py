"""Churn on a real activity log, against the logistic baseline a practitioner tries first and BG/NBD.

    .venv/bin/python bench/eval_real_churn.py [--git-dir DIR] [--start 2021-01-01] [--every 28d]

The log: the commit history of SymPy (github.com/sympy/sympy, BSD-3-Clause; commit metadata is public), read
from a local clone with `git log --all` (every branch and pull-request ref), authors merged by the project's
own .mailmap. No open game play log is reachable here; a contributor's commits are the closest open stand-in
for a player's plays. Player = author ("a" and the first 16 hex digits of the sha256 of the lower-cased
e-mail; no e-mail is printed or stored), event `commit` at the author date (UTC), score `files_changed`
(files the commit touches, from the tree diff: the clone is partial and many blobs are absent, so line counts
cannot be computed; missing on merge commits). Left out as bots: e-mails with `[bot]` or a `bot` word (e.g.
`-bot@`, `+bot@`), `noreply@github.com` itself and `devnull@localhost` (no real author address).
The lake lives in a temporary directory; nothing lands in the repository.

Question, fixed before looking at any figure: among authors with a commit in the 90 days before the cutoff T
(playerguard's churn label: active in the lookback, here `--lookback 90d`), churn = no commit in [T, T+28d).
Cutoffs every `--every` from `--start` to the last whose label window fits; the last is the test cutoff, the
one before it validates (early stopping, calibration), earlier ones train. The default start keeps the run
near half an hour: 26 years of commits make some 6,500 daily partitions, read by every all-history feature.
Every candidate's test figures are printed, whichever one the pipeline puts forward (its gate picks by the
test figure).
Features come from `--feature-set auto` (features suggest on this lake: no hand-written definition).
Compared on the test cutoff, in the same run:
- boosted: playerguard's churn model (XGBoost); logistic: the recency/frequency/tenure baseline it trains
  beside; BG/NBD: the buy-till-you-die candidate fitted on the same training cutoffs;
- logistic as the issue states it: scikit-learn's LogisticRegression (defaults, standardised inputs) on
  recency, commits in the last 28 days and tenure, fitted on the training cutoffs' rows.
Prints ROC-AUC, PR-AUC and Brier score, the same on the validation cutoff (to understand, never to choose),
and a paired bootstrap of the test ROC-AUC gap of boosted over the issue's logistic baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from _real_logs import lake_of, print_table, quiet_mlflow, scores_of

GIT_DIR = Path("/work/.mirror/sympy+sympy/repo")
HORIZON, LOOKBACK = "28d", "90d"
MAPPING = """columns: {player_id: author, event_timestamp: time, event_id: commit}
constants: {event_type: commit, game_id: sympy, platform: git}
"""
FORMAT = "%x1e%H%x1f%P%x1f%at%x1f%aE"
BOT = re.compile(r"\[bot\]|(^|[^a-z0-9])bot([^a-z0-9]|$)|^noreply@github\.com$|^devnull@localhost$")
ISSUE_FEATURES = ("commit_days_since_last", "commit_count_28d", "commit_days_since_first")
BOOTSTRAP = 2000


def commit_log(git_dir: Path) -> pd.DataFrame:
    """One row per non-bot commit: commit, author (hashed), time (ISO, UTC), files_changed."""
    out = subprocess.run(
        ["git", "--git-dir", str(git_dir), "-c", "mailmap.blob=HEAD:.mailmap", "log", "--all", "--no-renames",
         "--raw", f"--format={FORMAT}"],
        capture_output=True, text=True, errors="replace", check=True,
    ).stdout  # fmt: skip
    rows = []
    for record in out.split("\x1e")[1:]:
        head, _, raw = record.partition("\n")
        commit, parents, stamp, email = head.split("\x1f")
        email = email.strip().lower()
        if BOT.search(email):
            continue
        files = float(sum(line.startswith(":") for line in raw.splitlines()))
        author = "a" + hashlib.sha256(email.encode()).hexdigest()[:16]
        rows.append((commit, author, int(stamp), files if len(parents.split()) < 2 else np.nan))
    log = pd.DataFrame(rows, columns=["commit", "author", "stamp", "files_changed"])
    log["time"] = pd.to_datetime(log.pop("stamp"), unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return log


def issue_baseline(train: pd.DataFrame, *others: pd.DataFrame) -> list[np.ndarray]:
    """The issue's logistic baseline fitted on `train`; its probabilities on each of `others`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(train[list(ISSUE_FEATURES)], train["label_churn"].astype(int))
    return [model.predict_proba(frame[list(ISSUE_FEATURES)])[:, 1] for frame in others]


def gap_interval(y: np.ndarray, first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """95% paired bootstrap interval (by row) of ROC-AUC(first) - ROC-AUC(second)."""
    from playerguard.training.metrics import roc_auc

    rng, gaps = np.random.default_rng(0), []
    while len(gaps) < BOOTSTRAP:
        pick = rng.integers(0, len(y), len(y))
        if y[pick].min() != y[pick].max():
            gaps.append(roc_auc(y[pick], first[pick]) - roc_auc(y[pick], second[pick]))
    low, high = np.percentile(gaps, [2.5, 97.5])
    return float(low), float(high)


def cutoffs_of(log: pd.DataFrame, start: str, every: timedelta, horizon: timedelta) -> list[datetime]:
    """Every `every` back from the last cutoff whose label window the log covers, down to `start`."""
    last = pd.Timestamp(log["time"].max())
    test = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1) - horizon
    first = datetime.fromisoformat(start).replace(tzinfo=UTC)
    return sorted(test - k * every for k in range(int((test - first) / every) + 1))


def split_rows(training: pd.DataFrame, split: dict) -> dict[str, pd.DataFrame]:
    """The labelled rows of the training, validation and test cutoffs the churn run used."""
    rows = training.loc[training["label_churn"].notna()]
    cutoff = pd.to_datetime(rows["cutoff"], utc=True)
    return {
        "train": rows.loc[cutoff.isin(pd.to_datetime(split["train_cutoffs"], utc=True))],
        "validation": rows.loc[cutoff == pd.Timestamp(split["validation_cutoff"])],
        "test": rows.loc[cutoff == pd.Timestamp(split["test_cutoff"])],
    }


def describe(name: str, rows: pd.DataFrame) -> None:
    """Cutoffs, rows, authors and churn rate of one split."""
    y = rows["label_churn"].astype(int)
    print(f"{name:<11}{rows['cutoff'].nunique():>4} cutoffs {len(rows):>7,} rows "
          f"{rows['player_id'].nunique():>6,} authors  churn rate {y.mean():.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--git-dir", type=Path, default=GIT_DIR)
    parser.add_argument("--start", default="2021-01-01")
    parser.add_argument("--every", default="28d")
    args = parser.parse_args()
    began = time.perf_counter()
    quiet_mlflow()
    import playerguard as pg
    from playerguard.durations import parse_duration
    from playerguard.training.base import feature_columns, load_model
    from playerguard.training.metrics import roc_auc

    log = commit_log(args.git_dir)
    home = lake_of(log, MAPPING, "sympy")
    every, horizon = parse_duration(args.every, "--every"), parse_duration(HORIZON, "horizon")
    cutoffs = cutoffs_of(log, args.start, every, horizon)
    test_cutoff = cutoffs[-1]
    print(f"load average {os.getloadavg()}; {len(log):,} commits of {log['author'].nunique():,} authors "
          f"{log['time'].min()[:10]}..{log['time'].max()[:10]}; {len(cutoffs)} cutoffs every {args.every} "
          f"from {cutoffs[0]:%Y-%m-%d}, test cutoff {test_cutoff:%Y-%m-%d}, horizon {HORIZON}, "
          f"lookback {LOOKBACK}")  # fmt: skip

    training = pg.build_training_set(cutoffs, horizon=HORIZON, lookback=LOOKBACK, feature_set="auto",
                                     home=home)  # fmt: skip
    result = pg.train("churn", training_set=training, horizon=HORIZON, feature_set="auto", home=home)
    churn = result.models["churn"]
    parts = split_rows(training, churn.split)
    for name, part in parts.items():
        describe(name, part)
    train, validation, test = parts["train"], parts["validation"], parts["test"]
    print(f"{len(feature_columns(training))} features from features suggest; put forward: {churn.choice}")

    issue_val, issue_test = issue_baseline(train, validation, test)
    churned = int(test["label_churn"].sum())
    print(f"\ntest cutoff {test_cutoff:%Y-%m-%d}: {len(test):,} authors, {churned:,} churned")
    print_table({
        "boosted (playerguard)": churn.candidate_metrics.get("xgboost", churn.metrics),
        "logistic, pipeline baseline": churn.baseline_metrics,
        "logistic, issue's R/F28/T": scores_of(test["label_churn"], issue_test),
        "BG/NBD, as trained": churn.candidate_metrics.get("btyd", {}),
    })  # fmt: skip
    models = {kind: load_model("churn", path) for kind, path in churn.candidate_dirs.items()}
    y_test = test["label_churn"].to_numpy(dtype=int)
    boosted_test = np.asarray(models["xgboost"].predict_score(test), dtype=float)
    low, high = gap_interval(y_test, boosted_test, issue_test)
    gap = roc_auc(y_test, boosted_test) - roc_auc(y_test, issue_test)
    print(f"ROC-AUC boosted - issue's logistic: {gap:+.4f} (95% paired bootstrap {low:+.4f}..{high:+.4f})")

    print(f"\nvalidation cutoff {churn.split['validation_cutoff'][:10]} (early stopping and calibration "
          "use it; for understanding only)")  # fmt: skip
    y_val = validation["label_churn"]
    figures = {kind: scores_of(y_val, np.asarray(m.predict_score(validation), dtype=float))
               for kind, m in models.items()}  # fmt: skip
    print_table({**figures, "logistic, issue's R/F28/T": scores_of(y_val, issue_val)})
    print(f"runtime {time.perf_counter() - began:.0f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
