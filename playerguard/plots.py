"""Plots for the notebooks: distributions compared across groups, and counts over time.

Figures use matplotlib's object-oriented API (no pyplot, no global backend switch); Jupyter shows a
returned `Figure` inline once `%matplotlib inline` is active, and `figure.savefig(path)` writes it out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from playerguard.errors import DataError

_MISSING_GROUP = "(missing)"


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise DataError(f"the frame has no column {missing[0]!r} to plot")


def _groups(frame: pd.DataFrame, by: str | None) -> list[tuple[str, pd.DataFrame]]:
    if by is None:
        return [("all", frame)]
    labels = frame[by].astype("string").fillna(_MISSING_GROUP)
    return [(str(name), part) for name, part in frame.groupby(labels, sort=True)]


def plot_distributions(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    by: str | None = None,
    bins: int = 30,
    per_row: int = 3,
    density: bool = True,
) -> Figure:
    """One histogram per column, each group of `by` overlaid on the same bins; missing values left out.

    With `density`, every group's histogram has area 1, so a small group (the cheaters) stays visible
    beside a large one. Each panel's title says how many values it shows.
    """
    columns = list(columns)
    if not columns:
        raise DataError("plot_distributions needs at least one column")
    _check_columns(frame, columns + ([by] if by else []))
    if bins < 1 or per_row < 1:
        raise DataError(f"bins and per_row must be at least 1, got {bins} and {per_row}")
    groups = _groups(frame, by)
    rows = math.ceil(len(columns) / per_row)
    width = min(per_row, len(columns))
    figure = Figure(figsize=(4.2 * width, 3.2 * rows + 0.6), layout="constrained")
    axes = figure.subplots(rows, width, squeeze=False).ravel()
    for ax, name in zip(axes, columns, strict=False):
        values = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        finite = values[np.isfinite(values)]
        ax.set_title(f"{name} ({finite.size:,} values)", fontsize="medium")
        if finite.empty:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
            continue
        edges = np.histogram_bin_edges(finite.to_numpy(), bins=bins)
        for label, part in groups:
            shown = values.loc[part.index]
            shown = shown[np.isfinite(shown)]
            if not shown.empty:
                ax.hist(shown, bins=edges, density=density, histtype="step", linewidth=1.4, label=label)
        ax.grid(alpha=0.3)
    for ax in axes[len(columns) :]:
        ax.set_visible(False)
    if by is not None:
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 7), title=by)
    return figure


def plot_counts_over_time(
    frame: pd.DataFrame,
    *,
    time: str,
    by: str | None = None,
    weight: str | None = None,
    freq: str = "D",
    log: bool = False,
    title: str = "",
) -> Figure:
    """Rows (or the sum of `weight`) per `freq` period of `time` (UTC), one line per group of `by`.

    `time` may hold timestamps or ISO date strings. With `weight` the frame is already counted (for
    example `event_date, event_type, events`); without it every row counts once.
    """
    _check_columns(frame, [time] + [c for c in (by, weight) if c])
    if frame.empty:
        raise DataError("nothing to plot: the frame has no rows")
    period = pd.to_datetime(frame[time], utc=True).dt.floor(freq).rename("period")
    amount = frame[weight].astype("float64") if weight else pd.Series(1.0, index=frame.index)
    labels = frame[by].astype("string").fillna(_MISSING_GROUP) if by else pd.Series("all", index=frame.index)
    table = amount.groupby([period, labels.rename("group")]).sum().unstack("group", fill_value=0.0)
    table = table.asfreq(freq, fill_value=0.0)
    figure = Figure(figsize=(9, 4), layout="constrained")
    ax = figure.add_subplot()
    order = table.sum().sort_values(ascending=False).index
    for group in order:
        ax.plot(table.index, table[group], marker="." if len(table) < 60 else None, label=str(group))
    ax.set(title=title, ylabel=weight or "count", xlabel=f"period ({freq}, UTC)")
    if log:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.grid(alpha=0.3)
    if by is not None:
        ax.legend(title=by, fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.autofmt_xdate()
    return figure
