"""`explain`: one player's scores, actions and reasons next to the population's typical values, in process
and as `playerguard explain` in a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from endpoint_fixtures import shared_test_bundle

from playerguard.errors import DataError
from playerguard.features.api import build_features
from playerguard.inference.bundle import Bundle, load_bundle
from playerguard.inference.explain import default_cutoff, explain_player, percentile
from playerguard.settings import Settings
from playerguard.simulator.writer import write_simulation

CUTOFF = datetime(2026, 1, 15, tzinfo=UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(home=tmp_path_factory.mktemp("explain") / "home")
    write_simulation(settings, players=80, days=20, seed=3)
    return settings


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_test_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(bundle_path: Path) -> Bundle:
    return load_bundle(bundle_path)


@pytest.fixture(scope="module")
def population(lake: Settings) -> pd.DataFrame:
    return build_features(lake, CUTOFF)


def test_the_explanation_puts_each_reason_beside_the_population(
    lake: Settings, bundle: Bundle, population: pd.DataFrame
) -> None:
    player = population["player_id"].iloc[5]
    explanation = explain_player(lake, player, CUTOFF, bundle=bundle)

    assert explanation.player_id == player and explanation.cutoff == CUTOFF
    assert set(explanation.scores) == {"inhuman_play", "churn", "purchase"}
    assert all(0.0 <= score <= 1.0 for score in explanation.scores.values())
    assert explanation.model_versions == {"inhuman_play": "1", "churn": "1", "purchase": "1"}
    assert explanation.population == len(population)
    assert explanation.reasons, "the boosted models always give reasons"
    row = population.loc[population["player_id"] == player].iloc[0]
    for reason in explanation.reasons:
        assert reason.feature in population.columns
        column = population[reason.feature]
        assert reason.typical == pytest.approx(column.median())
        if pd.isna(row[reason.feature]):
            assert reason.value is None and reason.percentile is None
        else:
            assert reason.value == pytest.approx(row[reason.feature])
            assert 0.0 <= reason.percentile <= 100.0
    frame = explanation.reasons_frame()
    assert list(frame.columns) == [
        "model", "reason", "kind", "feature", "value", "typical", "percentile", "contribution",
    ]  # fmt: skip
    assert json.loads(json.dumps(explanation.to_dict()))["player_id"] == player
    assert player in str(explanation)


def test_actions_are_the_policys_decisions_on_the_scores(lake: Settings, bundle: Bundle, population) -> None:
    for player in population["player_id"].head(20):
        explanation = explain_player(lake, player, CUTOFF, bundle=bundle)
        for action in explanation.actions:
            assert action["score"] == pytest.approx(explanation.scores[action["model"]])
            assert action["score"] >= action["threshold"]


def test_an_unknown_player_is_a_data_error(lake: Settings, bundle: Bundle) -> None:
    with pytest.raises(DataError, match="unknown player 'nobody'"):
        explain_player(lake, "nobody", CUTOFF, bundle=bundle)


def test_the_default_cutoff_is_midnight_after_the_last_event_day(lake: Settings) -> None:
    days = sorted(p.name.partition("=")[2] for p in (lake.lake_dir / "events").glob("event_date=*"))
    assert default_cutoff(lake) == datetime.fromisoformat(days[-1]).replace(tzinfo=UTC) + pd.Timedelta(days=1)


def test_percentile_counts_ties_half_and_skips_undefined_values() -> None:
    values = pd.Series([1.0, 2.0, 2.0, 3.0, float("nan")])
    assert percentile(values, 2.0) == 50.0
    assert percentile(values, 0.5) == 0.0
    assert percentile(values, 3.0) == 87.5
    assert percentile(pd.Series([4.0, 4.0]), 4.0) == 50.0


# ---- the command --------------------------------------------------------------------------------------


def run(*arguments: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playerguard.cli", *arguments],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PLAYERGUARD_HOME": str(home), "HOME": str(home)},
        timeout=300,
    )


def test_the_explain_command_prints_json(lake: Settings, bundle_path: Path, population: pd.DataFrame) -> None:
    player = population["player_id"].iloc[5]
    outcome = run(
        "explain", player, "--cutoff", "2026-01-15", "--bundle", str(bundle_path), "--format", "json",
        "--home", str(lake.home), home=lake.home.parent / "elsewhere",
    )  # fmt: skip
    assert outcome.returncode == 0, outcome.stderr
    printed = json.loads(outcome.stdout)
    assert printed["player_id"] == player and printed["cutoff"] == CUTOFF.isoformat()
    assert set(printed["scores"]) == {"inhuman_play", "churn", "purchase"}
    assert {"feature", "value", "typical", "percentile"} <= set(printed["reasons"][0])


def test_the_explain_command_prints_tables_and_defaults_the_cutoff(lake: Settings, bundle_path: Path) -> None:
    player = build_features(lake, default_cutoff(lake))["player_id"].iloc[0]
    outcome = run("explain", player, "--bundle", str(bundle_path), "--format", "plain", home=lake.home)
    assert outcome.returncode == 0, outcome.stderr
    assert f"player {player} at {default_cutoff(lake).isoformat()}" in outcome.stdout
    assert "model\tscore\tversion\taction\tseverity" in outcome.stdout
    assert "model\treason\tfeature\tvalue\ttypical\tpercentile" in outcome.stdout


def test_the_explain_command_refuses_an_unknown_player_in_one_line(lake: Settings, bundle_path: Path) -> None:
    outcome = run("explain", "nobody", "--bundle", str(bundle_path), home=lake.home)
    assert outcome.returncode == 2, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown player 'nobody'")
    assert "Traceback" not in outcome.stderr + outcome.stdout


def test_the_explain_command_refuses_a_cutoff_past_the_lake(lake: Settings, bundle_path: Path) -> None:
    player = build_features(lake, CUTOFF)["player_id"].iloc[0]
    outcome = run("explain", player, "--cutoff", "2030-01-01", "--bundle", str(bundle_path), home=lake.home)
    assert outcome.returncode == 2, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and "the lake holds events from 2026-01-01" in lines[0]


def test_a_daily_budget_holds_back_in_explain_what_batch_scoring_holds_back(
    lake: Settings, tmp_path: Path
) -> None:
    """Budgeted actions are ranked against the population, as `score` ranks them: explain agrees with the
    batch `suppressed` column, player by player, and says which way the budget went."""
    import yaml
    from endpoint_fixtures import bundle_models, fit_test_models

    from playerguard.inference.batch import score_cutoff

    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"models": {"churn": {"rules": [
        {"threshold": 0.0, "action": "retention_offer", "severity": "low", "daily_budget": 2}]}}}))  # fmt: skip
    bundle = load_bundle(bundle_models(fit_test_models(tmp_path), tmp_path / "bundle", policy_path=policy))
    table = score_cutoff(lake, CUTOFF, bundle=bundle).table
    held = table.loc[table["suppressed"] != "[]", "player_id"].tolist()
    admitted = table.loc[table["actions"] != "[]", "player_id"].tolist()
    assert len(admitted) == 2 and len(held) == len(table) - 2
    for player in [*admitted, held[0]]:
        explanation = explain_player(lake, player, CUTOFF, bundle=bundle)
        verdict = "held back" if player in held else "admitted"
        assert [a["action"] for a in explanation.actions] == ([] if player in held else ["retention_offer"])
        assert [(a["action"], a["reason"]) for a in explanation.suppressed] == (
            [("retention_offer", "over daily budget")] if player in held else [])
        assert any(f"retention_offer: {verdict} by the daily budget, which admits 2 of the {len(table)}" in note
                   for note in explanation.notes)  # fmt: skip
        if player in held:
            assert "held back: retention_offer (churn): over daily budget" in str(explanation)
