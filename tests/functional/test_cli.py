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


def run_with(*arguments: str, home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PLAYERGUARD, *arguments],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PLAYERGUARD_HOME": str(home), "HOME": str(home), **env},
        timeout=300,
    )


def assert_one_line(outcome: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert outcome.returncode == 2, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    assert "Traceback" not in outcome.stderr + outcome.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("arguments", "env", "fragments"),
    [
        (("trian", "all"), {}, ("No such command 'trian'", "Did you mean 'train'")),
        (("score", "--cutof", "2026-03-01"), {}, ("No such option: --cutof", "--cutoff")),
        (("score", "--cutoff", "2026-03-01", "--reasons", "some"), {}, ("--reasons must be acted or all", "'some'")),
        (("simulate", "--players", "abc"), {}, ("--players", "integer")),
        (("serve", "--port", "80000"), {}, ("--port", "65535")),
        (("train", "--horizon", "14"), {}, ("--horizon must be a duration", "14d")),
        (("features", "build", "--cutoff", "2026-03-01", "--lookback", "4 weeks", "--out", "x.parquet"), {},
         ("--lookback must be a duration",)),
        (("lake", "info"), {"PLAYERGUARD_BACKEND": "gcp"}, ("PLAYERGUARD_BACKEND='gcp'", "'local' or 'aws'")),
        (("lake", "info"), {"PLAYERGUARD_BACKNED": "aws"}, ("PLAYERGUARD_BACKNED", "PLAYERGUARD_BACKEND")),
        (("lake", "info"), {"PLAYERGUARD_STREAM_MAX_ATTEMPS": "3"}, ("PLAYERGUARD_STREAM_MAX_ATTEMPTS",)),
    ],
)  # fmt: skip
def test_typos_and_bad_values_are_one_line_with_the_nearest_spelling(
    arguments: tuple[str, ...], env: dict[str, str], fragments: tuple[str, ...], tmp_path: Path
) -> None:
    assert_one_line(run_with(*arguments, home=tmp_path / "home", env=env), *fragments)


def test_cutoffs_outside_the_data_name_the_lakes_range(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("simulate", "--players", "40", "--days", "20", home=home).returncode == 0
    late = run("features", "build", "--cutoff", "2030-01-01", "--out", str(tmp_path / "f.parquet"), home=home)
    assert_one_line(late, "2030-01-01", "lookback", "the lake holds events from")
    early = run("features", "build", "--cutoff", "2001-01-01", "--out", str(tmp_path / "f.parquet"), home=home)
    assert_one_line(early, "before the lake's first event")
    training = run("train", "all", "--cutoff", "2030-01-01", home=home)
    assert_one_line(training, "label window", "runs past the data")
    assert not (tmp_path / "f.parquet").exists()


def test_serve_on_a_port_in_use_says_so_before_claiming_to_serve(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import socket

    from endpoint_fixtures import shared_test_bundle

    bundle = shared_test_bundle(tmp_path_factory)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = run("serve", "--port", str(port), "--bundle", str(bundle), home=tmp_path / "home")
    assert_one_line(outcome, f"127.0.0.1:{port}")
    assert "serving" not in outcome.stdout


def test_lake_info_and_features_sql_describe_a_gap_layout_source(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run("simulate", "--players", "40", "--days", "10", "--layout", "gap", home=home).returncode == 0
    gap = {"PLAYERGUARD_SOURCE_MAPPING": "gap"}
    info = run_with("lake", "info", home=home, env=gap)
    assert info.returncode == 0, info.stderr
    assert "gap.raw_events read through source mapping gap" in info.stdout and "match_end" in info.stdout
    sql = run_with("features", "sql", "--cutoff", "2026-01-08", home=home, env=gap)
    assert sql.returncode == 0, sql.stderr
    assert "json_extract_scalar" in sql.stdout and '"gap"."raw_events"' in sql.stdout
    native = run("features", "sql", "--cutoff", "2026-01-08", home=home)
    assert "json_extract_scalar" not in native.stdout
