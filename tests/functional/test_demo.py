"""`playerguard demo`, as the README's first command runs it: a real process, the whole loop on a small game."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from playerguard.stream.notifiers.local import OutboxNotifier


def demo(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "playerguard.cli",
            "demo",
            "--players",
            "400",
            "--days",
            "45",
            "--home",
            str(home),
        ],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home.parent), "COLUMNS": "200"},
        timeout=600,
    )


def test_the_demo_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    home.mkdir()
    (home / "events.parquet").write_text("someone's data")
    result = demo(home)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "is not empty and was not made by the demo" in result.stderr
    assert (home / "events.parquet").read_text() == "someone's data"


def test_the_demo_runs_the_whole_loop_and_measures_its_flags(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    result = demo(home)
    assert result.returncode == 0, result.stderr[-2000:]
    for step in ("1. lake", "2. pipeline", "3. online", "4. stream", "5. flags by model and action"):
        assert step in result.stdout
    quality = re.search(r"precision ([\d.]+)% .* recall ([\d.]+)% of (\d+) cheaters", result.stdout)
    assert quality is not None, result.stdout[-2000:]
    assert float(quality.group(1)) >= 90 and float(quality.group(2)) >= 90 and int(quality.group(3)) > 0
    outbox = OutboxNotifier.from_home(home)
    try:
        assert outbox.entries(model="inhuman_play", limit=1)
    finally:
        outbox.close()
