"""A training set's recipe: everything needed to build exactly the same rows again.

`build_training_set` attaches the recipe to the frame it returns (`frame.attrs[RECIPE_ATTR]`, a JSON text
that Parquet files keep): the cutoffs, horizon, lookback and strategy, the feature set (name, file, hash),
the source mapping document (if any), a digest of the inhuman-play labels, and the version of the lake
the engine read (`lake_version.LakeVersion`). Training records it with each MLflow run;
`rebuild_training_set` builds the set again from it, reading that lake version (an Iceberg snapshot by
time travel, or the recorded Parquet files), or says why it cannot: the snapshot expired, a listed file
is gone or rewritten, the feature set or the labels changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from playerguard.errors import ConfigError, DataError
from playerguard.features.lake_version import LakeVersion
from playerguard.features.spec import FeatureSet, load_feature_set

RECIPE_ATTR = "playerguard.training_set"
RECIPE_VERSION = 1


def labels_digest(labels: pd.DataFrame) -> str:
    """sha256 of the inhuman-play labels (player_id, label), order-independent."""
    rows = sorted(map(tuple, labels.astype(str).itertuples(index=False, name=None)))
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrainingSetRecipe:
    """How a training set was built, and from which version of the lake."""

    cutoffs: tuple[str, ...]
    horizon_days: int
    lookback_days: int
    strategy: str
    feature_set: str
    feature_set_path: str | None
    feature_set_hash: str
    labels_digest: str
    lake: LakeVersion
    source_mapping: dict[str, Any] | None = None

    def to_json(self) -> str:
        data = {"recipe_version": RECIPE_VERSION, **self.__dict__, "cutoffs": list(self.cutoffs),
                "lake": self.lake.to_dict()}  # fmt: skip
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainingSetRecipe:
        """From `to_json`'s output; DataError when it is not a recipe this version reads."""
        try:
            data = json.loads(text)
            if data.pop("recipe_version", None) != RECIPE_VERSION:
                raise DataError("unknown recipe version")
            data["cutoffs"] = tuple(data["cutoffs"])
            data["lake"] = LakeVersion.from_dict(data["lake"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as error:
            raise DataError(f"not a training-set recipe: {error}") from None

    def describe(self) -> str:
        return (
            f"{len(self.cutoffs)} cutoffs ({self.cutoffs[0][:10]} .. {self.cutoffs[-1][:10]}), horizon "
            f"{self.horizon_days}d, feature set {self.feature_set}, {self.lake.describe()}"
        )


def lake_version_of(engine: Any) -> LakeVersion | None:
    """The lake version `engine` reads, when it can say (DuckDB can; Athena cannot yet)."""
    return engine.lake_version() if hasattr(engine, "lake_version") else None


def attach_recipe(
    frame: pd.DataFrame,
    engine: Any,
    version: LakeVersion | None,
    cutoffs: list[datetime],
    horizon_days: int,
    lookback_days: int,
    fs: FeatureSet,
    strategy: str,
    labels: pd.DataFrame,
) -> None:
    """Attach the recipe of a training set built from `version` to `frame` (nothing when it is None)."""
    if version is None:
        return
    source = getattr(engine, "source", None)
    mapping = source.mapping.model_dump(by_alias=True, exclude_none=True, mode="json") if source else None
    recipe = TrainingSetRecipe(
        cutoffs=tuple(c.isoformat() for c in cutoffs),
        horizon_days=horizon_days,
        lookback_days=lookback_days,
        strategy=strategy,
        feature_set=fs.name,
        feature_set_path=str(fs.path) if fs.path else None,
        feature_set_hash=fs.hash,
        labels_digest=labels_digest(labels),
        lake=version,
        source_mapping=mapping,
    )
    frame.attrs[RECIPE_ATTR] = recipe.to_json()


def recipe_of(frame: pd.DataFrame) -> TrainingSetRecipe | None:
    """The recipe `build_training_set` attached to `frame`, or None."""
    text = frame.attrs.get(RECIPE_ATTR)
    return TrainingSetRecipe.from_json(text) if text else None


def feature_set_of_recipe(recipe: TrainingSetRecipe) -> FeatureSet:
    candidates = [c for c in (recipe.feature_set_path, recipe.feature_set) if c]
    for candidate in candidates:
        if candidate == recipe.feature_set_path and not Path(candidate).is_file():
            continue
        try:
            fs = load_feature_set(candidate)
        except ConfigError:
            continue
        if fs.hash == recipe.feature_set_hash:
            return fs
        raise DataError(
            f"feature set {candidate} changed since the training set was built (hash {fs.hash[:12]}, "
            f"recorded {recipe.feature_set_hash[:12]}); pass the feature set it was built with"
        )
    raise DataError(f"feature set {recipe.feature_set} (hash {recipe.feature_set_hash[:12]}) cannot be found")
