"""A model carries its feature set: bundles take the champions' own, and a mismatch is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from playerguard.errors import DataError
from playerguard.features.online.snapshot import materialize_snapshot
from playerguard.features.spec import load_feature_set
from playerguard.inference.bundle import champions_feature_set
from playerguard.settings import Settings
from playerguard.stream.replay import check_snapshot_fits
from playerguard.training.train import FEATURE_SET_FILE, ship_feature_set


def model_dir(root: Path, name: str, feature_set_file: Path | None) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    if feature_set_file is not None:
        ship_feature_set(load_feature_set(feature_set_file), directory)
    return directory


DEFAULT = load_feature_set("default").path


def my_game(tmp_path: Path) -> Path:
    """The default set under another name, its first feature left out: another hash."""
    document = yaml.safe_load(DEFAULT.read_text())
    document["name"] = "my_game"
    document["features"] = document["features"][1:]
    path = tmp_path / "my_game.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_champions_own_feature_set_is_the_bundles(tmp_path: Path) -> None:
    game = my_game(tmp_path)
    dirs = {name: model_dir(tmp_path / "m", name, game) for name in ("churn", "purchase")}
    chosen = champions_feature_set(dirs)
    assert chosen.name == "my_game" and chosen.hash == load_feature_set(game).hash
    assert (dirs["churn"] / FEATURE_SET_FILE).read_text() == game.read_text()
    assert champions_feature_set(dirs, game).hash == chosen.hash  # naming their own is fine


def test_a_feature_set_other_than_the_champions_is_refused(tmp_path: Path) -> None:
    dirs = {"churn": model_dir(tmp_path / "m", "churn", my_game(tmp_path))}
    with pytest.raises(DataError, match=r"'default' is not the one the champions were trained on \('my_game'"):
        champions_feature_set(dirs, "default")


def test_champions_trained_on_different_sets_are_refused(tmp_path: Path) -> None:
    dirs = {
        "churn": model_dir(tmp_path / "m", "churn", my_game(tmp_path)),
        "purchase": model_dir(tmp_path / "m", "purchase", DEFAULT),
    }
    with pytest.raises(DataError, match="different feature sets .*churn on my_game.*purchase on default"):
        champions_feature_set(dirs)


def test_models_from_before_feature_sets_travelled_take_the_default(tmp_path: Path) -> None:
    dirs = {"churn": model_dir(tmp_path / "m", "churn", None)}
    assert champions_feature_set(dirs).name == "default"


def test_replay_refuses_a_snapshot_built_with_other_features(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    default = load_feature_set("default")
    frame = pd.DataFrame({"player_id": ["p1", "p2"], "sessions_7d": [1.0, 2.0]})
    materialize_snapshot(settings, frame)
    with pytest.raises(DataError, match="another feature set than the models' .*--refresh-snapshot"):
        check_snapshot_fits(settings, default)
    full = pd.DataFrame({"player_id": ["p1"], **{name: [0.0] for name in default.feature_names}})
    materialize_snapshot(settings, full)
    check_snapshot_fits(settings, default)  # fits: no error
    shutil.rmtree(settings.home)
