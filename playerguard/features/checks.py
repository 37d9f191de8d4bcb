"""Checks of a feature set against the lake before training: definitions naming event types or attributes
the lake lacks (one warning), and churn/purchase labels with a single class (an error naming the event
type the label used and the types the lake has); and which features are constant over a training set."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import pandas as pd

from playerguard.backends import backend_for
from playerguard.errors import DataError
from playerguard.features.profile import event_type_counts
from playerguard.features.spec import FeatureSet
from playerguard.settings import Settings

log = logging.getLogger(__name__)

LABELS = {"churn": ("label_churn", "churn_event"), "purchase": ("label_purchase", "purchase_event")}
"""Model -> (label column, the LabelSpec field naming its event type)."""
_ALWAYS_THERE = frozenset({"player_id", "event_type", "event_timestamp"})
_WARNED: set[tuple[str, tuple[str, ...]]] = set()


def missing_from_lake(
    feature_set: FeatureSet, event_types: Collection[str], columns: Collection[str]
) -> list[str]:
    """One line per definition (or label) naming event types or attributes the lake does not have."""
    problems = []
    for d in feature_set.definitions:
        parts = [d.selection] + [m.selection for m in (d.numerator, d.denominator) if m]
        types = sorted({t for part in parts for t in part.event_types} - set(event_types))
        attributes = sorted(d.attributes() - set(columns) - _ALWAYS_THERE)
        named = [f"event type {t}" for t in types] + [f"attribute {a}" for a in attributes]
        if named:
            problems.append(f"{d.name} ({', '.join(named)})")
    for field in ("churn_event", "purchase_event"):
        event_type = getattr(feature_set.labels, field)
        if event_type and event_type not in event_types:
            problems.append(f"labels.{field} (event type {event_type})")
    return problems


def warn_missing(
    feature_set: FeatureSet, event_types: Collection[str], columns: Collection[str]
) -> list[str]:
    """`missing_from_lake`, logged as one warning when not empty and not already said in this process."""
    problems = missing_from_lake(feature_set, event_types, columns)
    said = (feature_set.hash, tuple(problems))
    if problems and said not in _WARNED:  # building a training set and training it say it once
        _WARNED.add(said)
        log.warning(
            "feature set %r names what the lake does not have (those features read as 0 or missing): %s; "
            "the lake's event types: %s. `playerguard features suggest` writes a set fitted to the lake.",
            feature_set.name,
            "; ".join(problems),
            ", ".join(event_types) or "none",
        )
    return problems


def single_class_labels(training_set: pd.DataFrame, models: Sequence[str]) -> dict[str, int]:
    """Model -> the one value its label takes, for the churn/purchase models of `models` whose labelled
    rows all have the same label (labels missing everywhere are not a single class)."""
    found = {}
    for model in models:
        column = LABELS.get(model, ("", ""))[0]
        if column not in training_set.columns:
            continue
        known = training_set[column].dropna()
        if len(known) and known.nunique() == 1:
            found[model] = int(known.iloc[0])
    return found


def single_class_error(
    feature_set: FeatureSet, model: str, value: int, rows: int, event_types: Mapping[str, int] | None
) -> DataError:
    """The error for a label with one class: the event type it was measured on and the lake's types."""
    column, field = LABELS[model]
    event_type = getattr(feature_set.labels, field)
    meaning = {
        ("churn", 1): f"no player had a {event_type} in the horizon",
        ("churn", 0): f"every active player had a {event_type} in the horizon",
        ("purchase", 0): f"no player had a {event_type} in the horizon",
        ("purchase", 1): f"every player had a {event_type} in the horizon",
    }[(model, value)]
    if event_types is None:
        lake = "the lake's event types could not be read"
    else:
        lake = "the lake has " + (", ".join(f"{t} ({n:,})" for t, n in event_types.items()) or "no events")
        if event_type not in event_types:
            lake = f"{event_type} is not in the lake; {lake}"
    return DataError(
        f"{column} has a single class ({value} on all {rows:,} labelled rows): {model} is measured on event "
        f"type {event_type} (labels.{field} of feature set {feature_set.name!r}) and {meaning}; {lake}. "
        f"Set labels.{field} to one of the lake's types, or use `playerguard features suggest`"
    )


def _lake(settings: Settings) -> tuple[dict[str, int], list[str]] | None:
    """The lake's event types with counts and its columns; None when the lake cannot be read here (a
    training job without access to it, an empty lake): the checks are advice and never block training."""
    engine = backend_for(settings).sql_engine()
    try:
        return event_type_counts(engine), list(engine.column_types())
    except Exception as error:  # noqa: BLE001 - any backend failure only skips the advice
        log.info("lake checks skipped: the lake cannot be read (%s)", error)
        return None
    finally:
        close = getattr(engine, "close", None)
        if close is not None:
            close()


def check_before_training(
    settings: Settings, training_set: pd.DataFrame, feature_set: Any, models: Sequence[str]
) -> Any:
    """Check a loaded feature set against the lake: one warning for what the lake lacks; a DataError for a
    churn/purchase label with a single class. Anything but a FeatureSet is returned unchecked."""
    if not isinstance(feature_set, FeatureSet):
        return feature_set
    fs = feature_set
    lake = _lake(settings)
    if lake is not None:
        warn_missing(fs, *lake)
    with_labels = [m for m in models if m in LABELS and getattr(fs.labels, LABELS[m][1])]
    single = single_class_labels(training_set, with_labels)
    if single:
        model, value = next(iter(single.items()))
        rows = int(training_set[LABELS[model][0]].notna().sum())
        raise single_class_error(fs, model, value, rows, lake[0] if lake else None)
    return fs


def constant_features(training_set: pd.DataFrame, feature_names: Collection[str]) -> list[str]:
    """The features of `feature_names` that take one value (or none) over the whole training set: they
    cannot help a model, and usually name something the lake does not have."""
    present = [n for n in feature_names if n in training_set.columns]
    return [n for n in present if training_set[n].nunique(dropna=True) <= 1]
