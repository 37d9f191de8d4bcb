"""The notebooks run top to bottom, each alone in a fresh PLAYERGUARD_HOME, on the venv's own kernel.

The kernel is the `python3` spec of this interpreter's prefix only (a kernel registered elsewhere on the
machine is never picked up); jupyter_client starts it with `sys.executable`. Committed notebooks carry
no outputs, so what is checked is what runs now.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from playerguard.errors import DataError
from playerguard.plots import plot_counts_over_time, plot_distributions

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = (
    "01_lake_and_features.ipynb",
    "02_train_and_evaluate.ipynb",
    "03_score_review_drift.ipynb",
    "04_real_cs2_data.ipynb",
    "05_bring_your_own_lake.ipynb",
    "06_bring_your_own_game.ipynb",
    "07_gap_v3_iceberg.ipynb",
)
CELL_TIMEOUT_SECONDS = 300


def _kernel_manager() -> KernelManager:
    kernels = Path(sys.prefix) / "share" / "jupyter" / "kernels"
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _execute(notebook: nbformat.NotebookNode, home: Path, workdir: Path) -> nbformat.NotebookNode:
    """Run every cell in a new kernel whose environment points PLAYERGUARD_HOME at `home`."""
    env = {**os.environ, "PLAYERGUARD_HOME": str(home)}
    env.pop("PLAYERGUARD_ENDPOINT_URL", None)  # notebook 3 starts its own endpoint
    client = NotebookClient(
        notebook,
        km=_kernel_manager(),
        timeout=CELL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(workdir)}},
    )
    return client.execute(env=env)


def _outputs(cell: nbformat.NotebookNode, kind: str) -> list[nbformat.NotebookNode]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == kind]


@pytest.mark.notebooks
def test_the_kernel_is_this_virtual_environment(tmp_path: Path) -> None:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import os, sys\nprint(sys.executable)\nprint(os.environ['PLAYERGUARD_HOME'])"
            )
        ]
    )
    executed = _execute(notebook, tmp_path / "home", tmp_path)
    printed = "".join(o["text"] for o in _outputs(executed.cells[0], "stream")).splitlines()
    assert Path(printed[0]).resolve() == Path(sys.executable).resolve()
    assert printed[1] == str(tmp_path / "home")


def test_the_notebooks_are_committed_without_outputs() -> None:
    assert sorted(path.name for path in NOTEBOOKS_DIR.glob("*.ipynb")) == list(NOTEBOOKS)
    for name in NOTEBOOKS:
        notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata["kernelspec"]["name"] == "python3"
        for cell in notebook.cells:
            if cell.cell_type == "code":
                stale = cell.outputs or cell.execution_count is not None or "execution" in cell.metadata
                assert not stale, f"{name} has outputs from a past run in cell {cell.get('id')}"


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(
    name: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    home, workdir = tmp_path / "home", tmp_path / "work"
    workdir.mkdir()
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    started = time.perf_counter()
    executed = _execute(notebook, home, workdir)
    elapsed = time.perf_counter() - started
    print(f"{name}: {elapsed:.1f} s")
    record_property("seconds", round(elapsed, 1))

    code_cells = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    assert not any(_outputs(cell, "error") for cell in code_cells)
    images = sum("image/png" in o.get("data", {}) for c in code_cells for o in c.get("outputs", []))
    assert images >= 1, f"{name} showed no plot"
    assert list(workdir.iterdir()) == [], f"{name} wrote into its working directory instead of the home"
    assert home.is_dir(), f"{name} did not use PLAYERGUARD_HOME"


# ---- the plotting helpers the notebooks use ---------------------------------------------------------------


def test_plot_distributions_draws_one_panel_per_column_and_a_histogram_per_group() -> None:
    frame = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0, np.nan], "b": [0.1, 0.2, 0.2, 0.3], "kind": ["x", "y", "x", None]}
    )
    figure = plot_distributions(frame, ["a", "b"], by="kind", bins=4)
    panels = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["a (3 values)", "b (4 values)"]
    assert len(panels[1].patches) == 3  # x, y and (missing)
    with pytest.raises(DataError, match="no column 'c'"):
        plot_distributions(frame, ["c"])


def test_plot_counts_over_time_sums_per_period_and_fills_empty_periods() -> None:
    counts = pd.DataFrame(
        {"day": ["2026-01-01", "2026-01-01", "2026-01-03"], "kind": ["a", "b", "a"], "n": [5, 2, 7]}
    )
    figure = plot_counts_over_time(counts, time="day", by="kind", weight="n")
    lines = {line.get_label(): list(line.get_ydata()) for line in figure.axes[0].get_lines()}
    assert lines == {"a": [5.0, 0.0, 7.0], "b": [2.0, 0.0, 0.0]}
    rows = pd.DataFrame(
        {"at": pd.to_datetime(["2026-01-01T01:10Z", "2026-01-01T01:50Z", "2026-01-01T03:00Z"])}
    )
    line = plot_counts_over_time(rows, time="at", freq="h").axes[0].get_lines()[0]
    assert list(line.get_ydata()) == [2.0, 0.0, 1.0]
    with pytest.raises(DataError, match="no rows"):
        plot_counts_over_time(rows.iloc[:0], time="at")
