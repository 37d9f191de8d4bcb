"""What the real-log checks (eval_real_purchase.py, eval_real_churn.py) share: a temporary lake ingested
from a frame through a mapping, quiet MLflow, held-out scores and the table they print."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ("roc_auc", "pr_auc", "brier")


def quiet_mlflow() -> None:
    """No progress bars nor info lines from MLflow in the printed figures."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def lake_of(log: pd.DataFrame, mapping: str, name: str) -> Path:
    """A new home in a temporary directory whose lake holds `log`, ingested as a CSV through `mapping`."""
    import playerguard as pg

    home = Path(tempfile.mkdtemp(prefix=f"pg-{name}-"))
    source = home / f"{name}.csv"
    log.to_csv(source, index=False)
    (home / "mapping.yaml").write_text(mapping)
    pg.ingest(source, home / "mapping.yaml", home=home)
    return home


def scores_of(labels: pd.Series, scores: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC and Brier score of probabilities `scores` against 0/1 `labels`."""
    from playerguard.training.metrics import pr_auc, roc_auc

    y = labels.to_numpy(dtype="int8")
    brier = float(np.mean((scores - y) ** 2))
    return {"roc_auc": roc_auc(y, scores), "pr_auc": pr_auc(y, scores), "brier": brier}


def print_table(rows: Mapping[str, Mapping[str, float]]) -> None:
    """One line per model: ROC-AUC, PR-AUC and Brier (nan where a model has no figure)."""
    print(f"{'model':<30}{'ROC-AUC':>9}{'PR-AUC':>9}{'Brier':>9}")
    for name, metrics in rows.items():
        shown = [metrics.get(key, float("nan")) for key in METRICS]
        print(f"{name:<30}" + "".join(f"{value:>9.4f}" for value in shown))
