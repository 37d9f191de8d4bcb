"""Population Stability Index (PSI) between a reference frame (the training set) and a current one.

Bins are quantiles of the reference (outer bins open-ended, tied quantiles merged), missing values are a
bin of their own, and an empty bin counts as `epsilon` so that the logarithm stays finite. PSI below 0.1 is
usually read as stable, 0.1-0.2 as a moderate shift, above 0.2 as a shift worth looking at.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from playerguard.errors import DataError

DEFAULT_THRESHOLD = 0.2
DEFAULT_BINS = 10
DEFAULT_EPSILON = 1e-4
SCORE_PREFIX = "score_"
AGE_DEPENDENT = "age_dependent"
_NOT_MONITORED = frozenset({"player_id", "cutoff"})
_LABEL_PREFIX = "label_"


def quantile_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """The distinct interior quantile edges of the finite values of `reference` (at most `bins - 1`)."""
    if bins < 1:
        raise DataError(f"PSI needs at least one bin, got {bins}")
    finite = reference[np.isfinite(reference)]
    if finite.size == 0:
        return np.empty(0, dtype="float64")
    interior = np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(interior)


def bin_shares(values: np.ndarray, edges: np.ndarray, epsilon: float = DEFAULT_EPSILON) -> np.ndarray:
    """Share of `values` in each bin (`edges` intervals closed on the right, then NaN), empty bins at epsilon."""
    missing = np.isnan(values)
    index = np.searchsorted(edges, values[~missing], side="left")
    counts = np.bincount(index, minlength=edges.size + 1).astype("float64")
    counts = np.append(counts, float(missing.sum()))
    shares = counts / values.size
    return np.where(shares > 0.0, shares, epsilon)


def _as_float(values: Any, what: str) -> np.ndarray:
    try:
        array = np.asarray(pd.Series(values).astype("Float64").to_numpy(dtype="float64", na_value=np.nan))
    except (TypeError, ValueError) as error:
        raise DataError(f"{what} is not numeric ({error})") from None
    if array.size == 0:
        raise DataError(f"{what} has no rows; PSI needs at least one")
    return array


def psi(
    reference: Any,
    current: Any,
    *,
    bins: int = DEFAULT_BINS,
    epsilon: float = DEFAULT_EPSILON,
    what: str = "values",
) -> float:
    """Population Stability Index of `current` against `reference` (array-likes of numbers, NaN allowed)."""
    ref = _as_float(reference, f"the reference {what}")
    cur = _as_float(current, f"the current {what}")
    edges = quantile_edges(ref, bins)
    expected = bin_shares(ref, edges, epsilon)
    actual = bin_shares(cur, edges, epsilon)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def monitored_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric columns of `frame` worth monitoring: features and `score_*` columns, not ids or labels."""
    return [
        str(column)
        for column in frame.columns
        if column not in _NOT_MONITORED
        and not str(column).startswith(_LABEL_PREFIX)
        and pd.api.types.is_numeric_dtype(frame[column])
        and not pd.api.types.is_bool_dtype(frame[column])
    ]


@dataclass(frozen=True)
class DriftReport:
    """PSI per monitored column, highest first, with the columns above `threshold` flagged."""

    table: pd.DataFrame
    threshold: float
    reference_rows: int
    current_rows: int

    @property
    def drifted(self) -> pd.DataFrame:
        """The rows of `table` whose PSI is above the threshold."""
        return self.table.loc[self.table["drifted"]]

    @property
    def any_drift(self) -> bool:
        return bool(self.table["drifted"].any())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: threshold, row counts, and every column's PSI."""
        return {
            "threshold": self.threshold,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "drifted": [str(name) for name in self.drifted["name"]],
            "columns": [
                {
                    "name": str(row.name),
                    "kind": str(row.kind),
                    "psi": _json_float(row.psi),
                    "drifted": bool(row.drifted),
                    "reference_missing": _json_float(row.reference_missing),
                    "current_missing": _json_float(row.current_missing),
                }
                for row in self.table.itertuples(index=False)
            ],
        }

    def write(self, directory: Path) -> dict[str, Path]:
        """Write `drift.json` and the bar plot `drift.png` into `directory`; returns their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path = directory / "drift.json"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        return {"json": json_path, "plot": self.plot(directory / "drift.png")}

    def plot(self, path: Path, *, top: int = 30) -> Path:
        """A horizontal bar plot of the `top` highest PSIs with the threshold marked, saved as PNG."""
        from matplotlib.figure import Figure

        shown = self.table.head(top).iloc[::-1]
        figure = Figure(figsize=(8, max(2.5, 0.3 * len(shown) + 1.2)))
        axes = figure.add_subplot()
        colours = ["#c0392b" if flag else "#7f8c8d" for flag in shown["drifted"]]
        axes.barh([str(name) for name in shown["name"]], shown["psi"].fillna(0.0), color=colours)
        axes.axvline(
            self.threshold,
            color="#c0392b",
            linestyle="--",
            linewidth=1,
            label=f"threshold {self.threshold:g}",
        )
        axes.set_xlabel("population stability index")
        axes.set_title(f"drift: {self.current_rows:,} current vs {self.reference_rows:,} reference rows")
        axes.legend(loc="lower right")
        figure.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png", dpi=100)
        return path


def _json_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    columns: Iterable[str] | None = None,
    bins: int = DEFAULT_BINS,
    epsilon: float = DEFAULT_EPSILON,
) -> DriftReport:
    """PSI of every monitored column (features, and `score_<model>` columns) of `current` against `reference`.

    `columns` defaults to the monitored columns of `reference`; each must also be in `current`.
    """
    if threshold <= 0:
        raise DataError(f"the drift threshold must be positive, got {threshold}")
    names = list(columns) if columns is not None else monitored_columns(reference)
    if not names:
        raise DataError("no numeric feature or score columns to compare for drift")
    missing = [name for name in names if name not in current.columns or name not in reference.columns]
    if missing:
        raise DataError(f"drift: column {missing[0]!r} is in one frame but not the other")
    if reference.empty or current.empty:
        raise DataError(
            f"drift needs rows on both sides (reference {len(reference)}, current {len(current)})"
        )
    rows = []
    for name in names:
        ref, cur = reference[name], current[name]
        rows.append(
            {
                "name": name,
                "kind": "score" if name.startswith(SCORE_PREFIX) else "feature",
                "psi": psi(ref, cur, bins=bins, epsilon=epsilon, what=f"column {name!r}"),
                "reference_missing": float(ref.isna().mean()),
                "current_missing": float(cur.isna().mean()),
            }
        )
    table = pd.DataFrame(rows).sort_values("psi", ascending=False, kind="mergesort").reset_index(drop=True)
    table["drifted"] = table["psi"] > threshold
    return DriftReport(
        table=table, threshold=float(threshold), reference_rows=len(reference), current_rows=len(current)
    )


def add_scores(frame: pd.DataFrame, models: Mapping[str, Any]) -> pd.DataFrame:
    """`frame` with a `score_<model>` column per model (one vectorised predict per model)."""
    scores = {
        f"{SCORE_PREFIX}{name}": np.asarray(model.predict_score(frame), dtype="float64")
        for name, model in sorted(models.items())
    }
    return frame.assign(**scores)


def latest_cutoff_drift(
    training_set: pd.DataFrame,
    models: Mapping[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    *,
    bins: int = DEFAULT_BINS,
    age_dependent: Iterable[str] = (),
    full_windows_from: Any = None,
) -> DriftReport:
    """Drift of the training set's latest cutoff (current) against all its earlier cutoffs (reference),
    on every feature and, with `models`, on every model's score.

    `age_dependent` features (tenure, totals over all history) grow with the game's age, so their PSI
    against earlier cutoffs is large in a game that does not change: it is reported, with kind
    `age_dependent`, and never raises the alert. Windowed features and the scores carry the alert, against
    the reference cutoffs from `full_windows_from` on (the first cutoff whose lookback window lies wholly
    after the lake's first event): before it, every window is cut short by the game's start and every
    trend and rate looks shifted. With no such earlier cutoff, every earlier one is the reference."""
    if "cutoff" not in training_set.columns:
        raise DataError("the training set has no 'cutoff' column")
    cutoffs = sorted(pd.unique(training_set["cutoff"].dropna()))
    if len(cutoffs) < 2:
        raise DataError(f"drift needs at least 2 cutoffs (reference and current), got {len(cutoffs)}")
    latest = training_set["cutoff"] == cutoffs[-1]
    reference = training_set.loc[~latest]
    if full_windows_from is not None:
        complete = reference.loc[pd.to_datetime(reference["cutoff"], utc=True) >= pd.Timestamp(full_windows_from)]
        reference = complete if len(complete) else reference
    current = training_set.loc[latest]
    columns = monitored_columns(training_set)
    if models:
        reference, current = add_scores(reference, models), add_scores(current, models)
        columns += [f"{SCORE_PREFIX}{name}" for name in sorted(models)]
    report = drift_report(reference, current, threshold, columns=columns, bins=bins)
    aging = report.table["name"].isin(set(age_dependent))
    report.table.loc[aging, "kind"] = AGE_DEPENDENT
    report.table.loc[aging, "drifted"] = False
    return report
