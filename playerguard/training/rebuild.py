"""The training set an MLflow run was trained on, built again from the recipe recorded with the run."""

from __future__ import annotations

import pandas as pd

from playerguard.features.api import rebuild_training_set
from playerguard.features.rebuild import TrainingSetRecipe
from playerguard.features.spec import FeatureSet
from playerguard.settings import Settings
from playerguard.training.tracking import Tracker


def recorded_recipe(settings: Settings, run_id: str) -> TrainingSetRecipe:
    """The training-set recipe (lake version included) recorded with `run_id`; DataError if none."""
    return TrainingSetRecipe.from_json(Tracker(settings).lake_version_recipe(run_id))


def training_set_as_of_run(
    settings: Settings, run_id: str, *, feature_set: FeatureSet | None = None
) -> pd.DataFrame:
    """Exactly the rows run `run_id` was trained on, read from the lake version it recorded (an Iceberg
    snapshot by time travel, or the Parquet files it read); DataError saying why when they cannot be."""
    return rebuild_training_set(settings, recorded_recipe(settings, run_id), feature_set=feature_set)
