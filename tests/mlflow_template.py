"""One migrated, empty MLflow SQLite database per test session, copied into each test's home.

Creating an MLflow SQLite store runs every schema migration (seconds per database); copying a migrated
empty one takes milliseconds. Import what a test module needs:

    from mlflow_template import mlflow_template_db, seed_mlflow_store, tracked_settings  # noqa: F401

`tracked_settings` is a per-test `Settings` whose home already holds the empty store; for module-scoped
fixtures, call `seed_mlflow_store(Settings(home=...), mlflow_template_db)` yourself. Under pytest-xdist
each worker builds its own template once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from playerguard.settings import Settings

SQLITE_PREFIX = "sqlite:///"


def _database_path(settings: Settings) -> Path:
    uri = settings.tracking_uri
    if not uri.startswith(SQLITE_PREFIX):
        raise ValueError(f"the MLflow template only seeds local SQLite stores, not {uri}")
    return Path(uri.removeprefix(SQLITE_PREFIX))


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated MLflow database (tracking and registry tables) with nothing in it."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"{SQLITE_PREFIX}{path}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.search_experiments()  # creates and migrates the tracking tables
    client.search_registered_models()  # and opens the registry store on the same file
    return path


def seed_mlflow_store(settings: Settings, template: Path) -> Settings:
    """Copy the template into the settings' (not yet existing) SQLite tracking store; returns `settings`."""
    target = _database_path(settings)
    if target.exists():
        raise FileExistsError(f"{target} already exists; seed a fresh home")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return settings


@pytest.fixture
def tracked_settings(tmp_path: Path, mlflow_template_db: Path) -> Settings:
    """Settings for a fresh home under `tmp_path` whose MLflow store is a copy of the template."""
    return seed_mlflow_store(Settings(home=tmp_path / "tracked-home"), mlflow_template_db)
