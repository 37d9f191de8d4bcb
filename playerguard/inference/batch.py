"""Batch scoring (the Batch Transform equivalent): every player in the population at a cutoff."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from playerguard.errors import DataError
from playerguard.inference.bundle import Bundle, load_bundle
from playerguard.model_names import MODEL_NAMES
from playerguard.settings import Settings


@dataclass(frozen=True)
class BatchScores:
    """Scores for every player at a cutoff, and a note per model the bundle does not have."""

    table: pd.DataFrame
    bundle: Bundle
    notes: list[str] = field(default_factory=list)


def champion_bundle(
    settings: Settings, bundle_path: Path | None = None, *, feature_set: str | Path | None = None
) -> Bundle:
    """The bundle at `bundle_path`, or the registry's champions rebuilt into `<home>/bundle`."""
    if bundle_path is not None:
        return load_bundle(bundle_path)
    from playerguard.inference.server import build_registry_bundle

    return load_bundle(build_registry_bundle(settings, None if feature_set is None else str(feature_set)))


def score_cutoff(
    settings: Settings,
    cutoff: datetime,
    *,
    bundle: Bundle,
    lookback_days: int = 28,
    active_within_days: int | None = None,
) -> BatchScores:
    """Build the bundle's features at `cutoff` and score every player with every model it holds."""
    from playerguard.features.api import build_features
    from playerguard.inference.scoring import score_frame, scores_table

    features = build_features(
        settings,
        cutoff,
        lookback_days=lookback_days,
        feature_set=bundle.feature_set,
        active_within_days=active_within_days,
    )
    if features.empty:
        raise DataError(f"no player has an event before {cutoff.isoformat()}")
    table = scores_table(score_frame(bundle, features, exact_reasons="all"))
    table.insert(1, "cutoff", features["cutoff"].to_numpy())
    notes = [f"{name}: no champion model, not scored" for name in MODEL_NAMES if name not in bundle.models]
    return BatchScores(table=table, bundle=bundle, notes=notes)
