"""The `playerguard` command as a user runs it: a real process, user mistakes as one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PLAYERGUARD = [sys.executable, "-m", "playerguard.cli"]


def run(*arguments: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLAYERGUARD, *arguments],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PLAYERGUARD_HOME": str(home), "HOME": str(home)},
        timeout=300,
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("features", "build", "--cutoff", "notadate", "--out", "f.parquet"), "invalid cutoff"),
        (("ingest", "missing.csv", "--mapping", "missing.yaml"), "mapping"),
        (("train", "everything"), "unknown model"),
        (("simulate", "--players", "0", "--days", "3"), "players"),
        (("models", "promote", "churn", "99"), "nothing is registered"),
        (("pipeline", "run"), "no events"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(arguments: tuple[str, ...], message: str, tmp_path: Path) -> None:
    outcome = run(*arguments, home=tmp_path / "home")
    assert outcome.returncode == 2, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    assert message in lines[0]
    assert "Traceback" not in outcome.stderr + outcome.stdout


def test_simulate_then_lake_info_and_a_second_simulate_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    simulated = run("simulate", "--players", "40", "--days", "10", home=home)
    assert simulated.returncode == 0, simulated.stderr
    assert "added to the lake" in simulated.stdout
    info = run("lake", "info", home=home)
    assert info.returncode == 0, info.stderr
    assert "match_end" in info.stdout
    again = run("simulate", "--players", "40", "--days", "10", home=home)
    assert again.returncode == 2 and "--replace" in again.stderr
