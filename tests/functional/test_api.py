"""The Python API (`import playerguard as pg`): light to import, cutoffs and durations spelled as on the
command line, and the loop from a simulated lake to a reviewed flag in a few calls."""

from __future__ import annotations

import itertools
import json
import logging
import os
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

import playerguard as pg
from playerguard import api
from playerguard.errors import ConfigError, DataError
from playerguard.settings import Settings

CUTOFF = datetime(2026, 2, 5, tzinfo=UTC)


def test_importing_playerguard_loads_nothing_heavy_until_a_name_is_used(tmp_path: Path) -> None:
    probe = (
        "import json, os, sys\n"
        "before = set(os.listdir('.'))\n"
        "import playerguard as pg\n"
        "heavy = ('pandas', 'numpy', 'mlflow', 'duckdb', 'playerguard.api')\n"
        "light = sorted(m for m in heavy if m in sys.modules)\n"
        "assert pg.Settings().backend == 'local'\n"
        "settings_only = 'pandas' in sys.modules\n"
        "pg.score\n"
        "api = 'playerguard.api' in sys.modules\n"
        "created = sorted(set(os.listdir('.')) - before)\n"
        "found = {'light': light, 'settings_only': settings_only, 'api': api, 'created': created}\n"
        "print(json.dumps(found))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"light": [], "settings_only": False, "api": True, "created": []}


def test_every_public_name_resolves_and_none_is_hidden_by_a_subpackage() -> None:
    submodules = {module.name for module in pkgutil.iter_modules(pg.__path__)}
    assert not submodules & set(pg.__all__)
    assert set(api.__all__) <= set(pg.__all__)
    for name in pg.__all__:
        assert getattr(pg, name) is not None
        assert name in dir(pg)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pg.nothing  # noqa: B018


@pytest.mark.parametrize(
    "value",
    ["2026-02-05", "2026-02-05T00:00:00", "2026-02-05T01:00:00+01:00", date(2026, 2, 5), datetime(2026, 2, 5),
     CUTOFF, pd.Timestamp("2026-02-05", tz="UTC")],
)  # fmt: skip
def test_a_cutoff_is_a_string_a_date_or_a_datetime_in_utc(value: object) -> None:
    assert api._cutoff(value) == CUTOFF  # type: ignore[arg-type]


def test_a_bad_cutoff_or_duration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid cutoff"):
        api._cutoff("next tuesday")
    assert api._days("14d", "horizon") == api._days(timedelta(days=14), "horizon") == 14
    with pytest.raises(ConfigError, match="horizon"):
        api._days("14 days", "horizon")
    with pytest.raises(ConfigError, match="whole number of days"):
        api._days("6h", "lookback")


def test_home_is_a_directory_or_settings(tmp_path: Path) -> None:
    assert api._settings(tmp_path).home == tmp_path
    assert api._settings(str(tmp_path)).home == tmp_path
    given = Settings(home=tmp_path / "x")
    assert api._settings(given) is given
    assert api._settings(None).home == Path(os.environ["PLAYERGUARD_HOME"])


# ---- the loop -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("api") / "home"
    pg.simulate(players=300, days=42, seed=7, home=directory)
    yield directory


@pytest.fixture(scope="module")
def trained(home: Path) -> object:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        yield pg.train(horizon="7d", home=home)


def test_features_take_a_string_or_a_datetime_cutoff(home: Path) -> None:
    by_string = pg.build_features("2026-02-05", home=home)
    by_datetime = pg.build_features(datetime(2026, 2, 5), lookback=timedelta(days=28), home=home)
    pd.testing.assert_frame_equal(by_string, by_datetime)
    assert (by_string["cutoff"] == pd.Timestamp(CUTOFF)).all()
    assert pg.feature_sql("2026-02-05").params
    with pytest.raises(DataError, match="the lake holds events from 2026-01-01"):
        pg.build_features("2030-01-01", home=home)
    with pytest.raises(DataError, match="label window"):
        pg.build_training_set(["2026-01-15", "2026-01-22", "2026-02-10"], horizon="14d", home=home)


def test_cutoffs_and_training_sets(home: Path) -> None:
    every = pg.cutoffs(every="7d", start="2026-01-15", end="2026-01-29", home=home)
    assert [c.date() for c in every] == [date(2026, 1, 15), date(2026, 1, 22), date(2026, 1, 29)]
    weekly = pg.cutoffs(horizon="7d", home=home)
    assert all(b - a == timedelta(days=7) for a, b in itertools.pairwise(weekly))
    frame = pg.build_training_set(every="7d", start="2026-01-15", end="2026-01-29", horizon="7d", home=home)
    assert sorted(frame["cutoff"].unique()) == [pd.Timestamp(c) for c in every]
    assert {"label_churn", "label_purchase", "label_inhuman_play"} <= set(frame.columns)
    with pytest.raises(ConfigError, match="every, start and end"):
        pg.cutoffs(every="7d", home=home)


def test_lake_sql_and_ground_truth(home: Path) -> None:
    info = pg.lake_info(home=home)
    counts = pg.sql("SELECT count(*) AS n FROM {events} WHERE event_type = ?", ["match_end"], home=home)
    assert int(counts["n"].iloc[0]) == int(info.by_type.set_index("event_type").loc["match_end", "events"])
    assert pg.open_lake(home=home).has_events()  # type: ignore[attr-defined]
    assert len(pg.ground_truth(home=home)) == 300


def test_train_score_explain_and_write_back(
    home: Path, trained: object, capfd: pytest.CaptureFixture
) -> None:
    assert set(trained.trained) == {"inhuman_play", "churn", "purchase"}  # type: ignore[attr-defined]
    assert logging.getLogger("mlflow").level == logging.WARNING
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert set(pg.champions(home=home)) == {"inhuman_play", "churn", "purchase"}
    assert set(pg.models(home=home)["model"]) == {"inhuman_play", "churn", "purchase"}

    scores = pg.score(home=home)
    assert scores.attrs["notes"] == []
    everywhere = pg.score(home=home, reasons="all")  # the same scores and actions, reasons on every row
    pd.testing.assert_frame_equal(everywhere.drop(columns="reasons"), scores.drop(columns="reasons"))
    assert (everywhere["reasons"] != scores["reasons"]).any()
    with pytest.raises(ConfigError, match="reasons must be acted or all"):
        pg.score(home=home, reasons="some")
    flagged = scores.sort_values("inhuman_play_score", ascending=False)["player_id"].iloc[0]
    explanation = pg.explain(flagged, home=home)
    assert explanation.scores["inhuman_play"] == pytest.approx(
        scores.set_index("player_id").loc[flagged, "inhuman_play_score"]
    )
    assert explanation.actions == json.loads(scores.set_index("player_id").loc[flagged, "actions"])
    written = pg.write_scores(scores, home=home)
    assert written.scores == len(scores)
    assert pg.results("SELECT count(*) AS n FROM player_scores", home=home)["n"].iloc[0] == len(scores)
    assert "INFO mlflow" not in capfd.readouterr().err


def test_serve_replay_and_review(home: Path, trained: object) -> None:
    assert pg.flags(home=home).empty
    with pg.serve(home=home) as endpoint:
        sample = pg.build_features("2026-02-11", home=home).head(3)
        predictions = endpoint.invoke(sample)
        assert [p["player_id"] for p in predictions] == sample["player_id"].tolist()
        summary = pg.replay("2026-02-11", endpoint=endpoint, batch_size=500, refresh_every="1d", home=home)
    assert summary.flagged > 0
    flags = pg.flags(model="inhuman_play", home=home)
    assert set(flags["status"]) == {"pending"}
    reviewed = pg.review_flag(flags["flag_id"].iloc[0][:12], "confirmed", home=home)
    assert reviewed["status"] == "confirmed" and Path(reviewed["labels"]).exists()
    assert pg.flags(status="confirmed", home=home)["flag_id"].tolist() == [flags["flag_id"].iloc[0]]
    with pytest.raises(DataError, match="verdict"):
        pg.review_flag(flags["flag_id"].iloc[0], "maybe", home=home)
