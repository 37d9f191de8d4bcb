"""`playerguard train --ban-list FILE` on a game whose only labels are a ban list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from playerguard.settings import Settings


def run(*arguments: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playerguard.cli", *arguments],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PLAYERGUARD_HOME": str(home), "HOME": str(home)},
        timeout=600,
    )


def test_train_with_a_ban_list_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("simulate", "--players", "1500", "--days", "35", home=home).returncode == 0
    truth_path = Settings(home=home).ground_truth_path
    truth = pd.read_parquet(truth_path)
    truth_path.unlink()  # a studio has no simulator truth: the ban list is all it knows
    cheaters = truth.loc[truth["is_inhuman"], "player_id"]
    ban_list = tmp_path / "banned.csv"
    cheaters.iloc[::3].to_frame().to_csv(ban_list, index=False)

    outcome = run("train", "inhuman_play", "--ban-list", str(ban_list), home=home)
    assert outcome.returncode == 0, outcome.stderr
    assert "ban list stored as labels" in outcome.stdout
    assert "single class" not in outcome.stdout + outcome.stderr
    stored = pd.read_parquet(home / "labels" / "ban_list.parquet")
    assert set(stored["player_id"]) == set(cheaters.iloc[::3]) and set(stored["label"]) == {1}
    report = next(home.glob("runs/*/inhuman_play/report/report.html")).read_text()
    assert "positive-unlabelled learning" in report


def test_train_with_reviewer_verdicts_only(tmp_path: Path) -> None:
    """A studio whose only labels are reviewers' verdicts: a few confirmed cheaters, a few dismissed."""
    home = tmp_path / "home"
    assert run("simulate", "--players", "1500", "--days", "35", home=home).returncode == 0
    truth_path = Settings(home=home).ground_truth_path
    truth = pd.read_parquet(truth_path)
    truth_path.unlink()
    confirmed = truth.loc[truth["is_inhuman"], "player_id"].iloc[:25]
    dismissed = truth.loc[~truth["is_inhuman"], "player_id"].iloc[:25]
    verdicts = pd.DataFrame(
        {
            "player_id": [*confirmed, *dismissed],
            "label": pd.array([1] * len(confirmed) + [0] * len(dismissed), dtype="int8"),
            "source": "review",
        }
    )
    (home / "labels").mkdir(parents=True)
    verdicts.to_parquet(home / "labels" / "review_verdicts.parquet", index=False)

    outcome = run("train", "inhuman_play", home=home)
    assert outcome.returncode == 0, outcome.stderr
    assert "inhuman_play: skipped" not in outcome.stdout and "single class" not in outcome.stdout
    model = next(home.glob("runs/*/inhuman_play/model/model.json"))
    assert model.is_file()
