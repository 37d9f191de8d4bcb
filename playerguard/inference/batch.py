"""Batch scoring (the Batch Transform equivalent): every player in the population at a cutoff."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
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
    """Scores for every player at a cutoff (with `suppressed`: the actions the daily budgets held back, as
    JSON), and a note per model the bundle does not have and per budget that held actions back."""

    table: pd.DataFrame
    bundle: Bundle
    notes: list[str] = field(default_factory=list)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused (reference counting still frees what is dropped): scoring a
    population builds millions of small acyclic dicts and lists, and the collector's passes over them took
    a fifth of the scoring time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
    reasons: str = "acted",
) -> BatchScores:
    """Build the bundle's features at `cutoff` and score every player with every model it holds; feature
    reasons for the players the policy acts on, or (`reasons="all"`) for every player (`score_frame`).

    The cutoff is one day of offers: a (model, action) with a `daily_budget` keeps its top `daily_budget`
    actions by value at risk (by score without one); the others move to `suppressed` with the reason.
    """
    from playerguard.features.api import build_features
    from playerguard.inference.offers import admit_within_budgets
    from playerguard.inference.scoring import check_reasons, json_strings, score_frame, scores_table

    check_reasons(reasons)
    features = build_features(
        settings,
        cutoff,
        lookback_days=lookback_days,
        feature_set=bundle.feature_set,
        active_within_days=active_within_days,
    )
    if features.empty:
        raise DataError(f"no player has an event before {cutoff.isoformat()}")
    with collector_paused():
        rows = score_frame(bundle, features, reasons=reasons)
        admitted = admit_within_budgets(rows, bundle.policy)
        table = scores_table(rows)
        table.insert(1, "cutoff", features["cutoff"].to_numpy())
        held_back = [row["suppressed"] for row in rows]
        table["suppressed"] = json_strings(held_back, lambda held: () if not held else None)
    notes = [f"{name}: no champion model, not scored" for name in MODEL_NAMES if name not in bundle.models]
    notes += [
        f"{model} {action}: the daily budget admits {kept:,} of {eligible:,} (highest value first); "
        "the others are in the suppressed column"
        for (model, action), (eligible, kept) in admitted.items()
        if kept < eligible
    ]
    return BatchScores(table=table, bundle=bundle, notes=notes)
