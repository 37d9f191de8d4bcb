"""Feature definitions as data: the model, YAML loading, validation and the feature-set hash.

A feature set is a YAML file with a list of definitions. Each definition names one feature, its `kind`
(what it computes), the events it looks at (`event_type`, `where`), an `attribute` where the kind needs
one, and a `window` ending at the cutoff. Adding a feature for a new attribute is adding one definition.
See `definitions/default.yaml` for the semantics of each kind and of empty windows.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from playerguard.durations import parse_duration
from playerguard.errors import ConfigError
from playerguard.lake.envelope import check_identifier

KINDS = (
    "count", "sum", "mean", "min", "max", "stddev", "distinct_count", "percentile",
    "ratio", "trend", "recency", "tenure", "gap_cv", "gap_mean", "last_gap_ratio", "active_days",
)  # fmt: skip
NUMERIC_KINDS = frozenset({"sum", "mean", "min", "max", "stddev", "percentile"})
MEASURES = ("count", "sum")
"""What a ratio's numerator/denominator or a trend aggregates."""
CUMULATIVE_KINDS = frozenset({"count", "sum", "max", "distinct_count", "active_days"})
"""Kinds whose value over all history only grows as the game ages."""
HOLISTIC_KINDS = frozenset({"percentile", "stddev", "distinct_count", "active_days"})
"""Kinds computed from all matching values at once, not from a running total."""
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in")
ORDERING_OPERATORS = frozenset({"lt", "le", "gt", "ge"})
LIFETIME = "lifetime"
LOOKBACK = "lookback"
UNREADABLE_COLUMNS = frozenset({"event_timestamp", "event_date"})
RESERVED_FEATURE_NAMES = frozenset({"player_id", "cutoff", "segment", "cutoff_idx"})

_COMMON_KEYS = {"name", "kind", "description"}
_SELECTION_KEYS = {"event_type", "where", "window"}
_ALLOWED_KEYS: dict[str, set[str]] = {
    "count": _SELECTION_KEYS,
    "distinct_count": _SELECTION_KEYS | {"attribute"},
    "percentile": _SELECTION_KEYS | {"attribute", "quantile"},
    "ratio": {"numerator", "denominator", "window"},
    "trend": _SELECTION_KEYS | {"measure", "attribute", "baseline"},
    "recency": _SELECTION_KEYS,
    "tenure": {"event_type", "where"},
    "gap_cv": _SELECTION_KEYS,
    "gap_mean": _SELECTION_KEYS,
    "last_gap_ratio": _SELECTION_KEYS,
    "active_days": _SELECTION_KEYS,
    **{kind: _SELECTION_KEYS | {"attribute"} for kind in ("sum", "mean", "min", "max", "stddev")},
}
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_PACKAGED_DIR = Path(__file__).parent / "definitions"


@dataclass(frozen=True)
class Window:
    """The stretch of time before the cutoff a feature looks at: `seconds` long, or all history (None).

    `symbol` is what the YAML said (`28d`, `lifetime`, `lookback`); `lookback` takes the build's lookback.
    """

    symbol: str
    seconds: int | None

    @classmethod
    def parse(cls, value: object, where: str) -> Window:
        if value is None or value == LIFETIME:
            return cls(LIFETIME, None)
        if value == LOOKBACK:
            return cls(LOOKBACK, None)
        duration = parse_duration(value, f"window of {where}")  # type: ignore[arg-type]
        return cls(str(value).strip(), int(duration.total_seconds()))

    def resolve(self, lookback_days: int) -> int | None:
        """Length in seconds for a build with this lookback; None is all history."""
        return lookback_days * 86400 if self.symbol == LOOKBACK else self.seconds

    def canonical(self) -> str | int:
        """`lifetime`, `lookback`, or the length in seconds (so 28d and 4w hash alike)."""
        return self.symbol if self.seconds is None else self.seconds


@dataclass(frozen=True)
class Condition:
    """`attribute <op> value`. An event whose attribute is missing never satisfies a condition."""

    attribute: str
    op: str
    value: str | float | tuple[str | float, ...]

    @property
    def is_numeric(self) -> bool:
        first = self.value[0] if isinstance(self.value, tuple) else self.value
        return isinstance(first, float)

    def canonical(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"attribute": self.attribute, "op": self.op, "value": value}


@dataclass(frozen=True)
class Selection:
    """Which events count: any of `event_types` (all types when empty) meeting every `where` condition."""

    event_types: tuple[str, ...] = ()
    where: tuple[Condition, ...] = ()

    def canonical(self) -> dict[str, Any]:
        return {"event_type": list(self.event_types), "where": [c.canonical() for c in self.where]}


@dataclass(frozen=True)
class Measure:
    """A count or sum over a selection: a ratio's numerator or denominator."""

    kind: str
    selection: Selection
    attribute: str | None = None

    def canonical(self) -> dict[str, Any]:
        return {"kind": self.kind, "attribute": self.attribute, **self.selection.canonical()}


@dataclass(frozen=True)
class FeatureDefinition:
    """One feature. Fields a kind does not use are None."""

    name: str
    kind: str
    selection: Selection = field(default_factory=Selection)
    window: Window = Window(LIFETIME, None)
    attribute: str | None = None
    quantile: float | None = None
    measure: str | None = None
    baseline: Window | None = None
    numerator: Measure | None = None
    denominator: Measure | None = None
    description: str = ""

    def attributes(self) -> set[str]:
        """Every event column this definition reads besides player_id, event_type and event_timestamp."""
        parts = [self.selection] + [m.selection for m in (self.numerator, self.denominator) if m]
        names = {c.attribute for part in parts for c in part.where}
        names |= {
            a for a in (self.attribute, *(m.attribute for m in (self.numerator, self.denominator) if m)) if a
        }
        return names

    @property
    def grows_with_age(self) -> bool:
        """True when the value grows with the game's age by construction (tenure, and totals over all
        history): its distribution shifts week after week in a game that does not change."""
        lifetime = self.window.symbol == LIFETIME
        return self.kind == "tenure" or (self.kind in CUMULATIVE_KINDS and lifetime)

    def canonical(self) -> dict[str, Any]:
        """Everything that changes the feature's value (not its description), in a stable shape."""
        data: dict[str, Any] = {"name": self.name, "kind": self.kind, "window": self.window.canonical()}
        data.update(self.selection.canonical())
        for key in ("attribute", "quantile", "measure"):
            data[key] = getattr(self, key)
        data["baseline"] = self.baseline.canonical() if self.baseline else None
        data["numerator"] = self.numerator.canonical() if self.numerator else None
        data["denominator"] = self.denominator.canonical() if self.denominator else None
        return data


@dataclass(frozen=True)
class LabelSpec:
    """Which event types define the churn and purchase labels (None: that label is not defined)."""

    churn_event: str | None = None
    purchase_event: str | None = None


@dataclass(frozen=True)
class FeatureSet:
    """A named, hashed list of feature definitions and the label events that go with them."""

    name: str
    definitions: tuple[FeatureDefinition, ...]
    labels: LabelSpec = LabelSpec()
    description: str = ""
    path: Path | None = None

    @property
    def feature_names(self) -> list[str]:
        return [d.name for d in self.definitions]

    @property
    def age_dependent(self) -> list[str]:
        """The features that grow with the game's age by construction (see FeatureDefinition)."""
        return [d.name for d in self.definitions if d.grows_with_age]

    @cached_property
    def hash(self) -> str:
        """sha256 of the canonical JSON of the definitions (names, kinds, selections, windows...)."""
        canonical = json.dumps(
            [d.canonical() for d in self.definitions], sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def _fail(feature: str, message: str) -> ConfigError:
    return ConfigError(f"feature {feature!r}: {message}")


def _event_types(value: object, feature: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise _fail(feature, "event_type must be an event type or a non-empty list of them")
    return tuple(sorted({check_identifier(item, f"event type in feature {feature!r}") for item in items}))


def _attribute(value: object, feature: str) -> str:
    name = check_identifier(value, f"attribute in feature {feature!r}")  # type: ignore[arg-type]
    if name in UNREADABLE_COLUMNS:
        raise _fail(feature, f"{name!r} cannot be used as an attribute")
    return name


def _scalar(value: object, feature: str) -> str | float:
    if isinstance(value, bool):
        raise _fail(feature, f"condition value {value!r}: write booleans as 1 or 0")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise _fail(feature, f"condition value {value!r} is not a finite number")
        return float(value)
    if isinstance(value, str) and _SAFE_VALUE.match(value):
        return value
    raise _fail(
        feature, f"condition value {value!r}: use a number or up to 64 letters, digits, '_', '.', ':' or '-'"
    )


def _condition(raw: object, feature: str) -> Condition:
    if not isinstance(raw, dict) or set(raw) != {"attribute", "op", "value"}:
        raise _fail(feature, "each `where` item needs exactly: attribute, op, value")
    op = raw["op"]
    if op not in OPERATORS:
        raise _fail(feature, f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    attribute = _attribute(raw["attribute"], feature)
    if op in ("in", "not_in"):
        if not isinstance(raw["value"], list) or not raw["value"]:
            raise _fail(feature, f"operator {op!r} needs a non-empty list of values")
        values = tuple(_scalar(v, feature) for v in raw["value"])
        if len({type(v) for v in values}) > 1:
            raise _fail(feature, f"the values of {op!r} on {attribute!r} mix numbers and strings")
        return Condition(attribute, op, values)
    value = _scalar(raw["value"], feature)
    if op in ORDERING_OPERATORS and not isinstance(value, float):
        raise _fail(feature, f"operator {op!r} needs a number, got {value!r}")
    return Condition(attribute, op, value)


def _selection(raw: dict[str, Any], feature: str) -> Selection:
    where = raw.get("where") or []
    if not isinstance(where, list):
        raise _fail(feature, "`where` must be a list of {attribute, op, value}")
    return Selection(
        _event_types(raw.get("event_type"), feature), tuple(_condition(c, feature) for c in where)
    )


def _measure(raw: object, feature: str, part: str) -> Measure:
    if not isinstance(raw, dict):
        raise _fail(feature, f"{part} must be a mapping with kind (count or sum)")
    unknown = set(raw) - {"kind", "attribute", "event_type", "where"}
    if unknown:
        raise _fail(feature, f"unknown key {min(unknown)!r} in {part}")
    kind = raw.get("kind")
    if kind not in MEASURES:
        raise _fail(feature, f"{part} kind must be one of {', '.join(MEASURES)}, got {kind!r}")
    attribute = raw.get("attribute")
    if kind == "count" and attribute is not None:
        raise _fail(feature, f"{part} of kind 'count' takes no attribute")
    if kind != "count" and attribute is None:
        raise _fail(feature, f"{part} of kind {kind!r} needs an attribute")
    return Measure(kind, _selection(raw, feature), _attribute(attribute, feature) if attribute else None)


def parse_definition(raw: object) -> FeatureDefinition:
    """One definition from its YAML mapping; every mistake is a ConfigError naming the feature."""
    if not isinstance(raw, dict):
        raise ConfigError(f"each feature definition must be a mapping, got {raw!r}")
    name = check_identifier(raw.get("name"), "feature")  # type: ignore[arg-type]
    if name.startswith(("_", "label_")) or name in RESERVED_FEATURE_NAMES:
        raise _fail(name, "names starting with '_' or 'label_', and player_id/cutoff, are reserved")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise _fail(name, f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    unknown = set(raw) - _COMMON_KEYS - _ALLOWED_KEYS[kind]
    if unknown:
        raise _fail(name, f"unknown key {min(unknown)!r} for kind {kind!r}")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise _fail(name, "description must be text")
    window = Window.parse(raw.get("window"), f"feature {name!r}")
    values: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "window": window,
        "description": description.strip(),
    }
    if kind == "ratio":
        values["numerator"] = _measure(raw.get("numerator"), name, "numerator")
        values["denominator"] = _measure(raw.get("denominator"), name, "denominator")
        return FeatureDefinition(**values)
    values["selection"] = _selection(raw, name)
    needs_attribute = kind in NUMERIC_KINDS or kind == "distinct_count"
    if kind == "trend":
        measure = raw.get("measure", "count")
        if measure not in MEASURES:
            raise _fail(name, f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")
        values["measure"] = measure
        needs_attribute = measure != "count"
        if window.symbol == LIFETIME or "baseline" not in raw:
            raise _fail(name, "a trend needs a finite window (the recent period) and a baseline duration")
        values["baseline"] = Window.parse(raw["baseline"], f"baseline of feature {name!r}")
        if values["baseline"].symbol in (LIFETIME, LOOKBACK):
            raise _fail(name, "baseline must be a duration such as 21d")
    if needs_attribute:
        if raw.get("attribute") is None:
            raise _fail(name, f"kind {kind!r} needs an attribute")
        values["attribute"] = _attribute(raw["attribute"], name)
    elif raw.get("attribute") is not None:
        raise _fail(name, "this kind takes no attribute")
    if kind == "percentile":
        quantile = raw.get("quantile")
        if isinstance(quantile, bool) or not isinstance(quantile, (int, float)) or not 0 < quantile < 1:
            raise _fail(name, f"quantile must be a number strictly between 0 and 1, got {quantile!r}")
        values["quantile"] = float(quantile)
    return FeatureDefinition(**values)


def _labels(raw: object, set_name: str) -> LabelSpec:
    if raw is None:
        return LabelSpec()
    if not isinstance(raw, dict) or set(raw) - {"churn_event", "purchase_event"}:
        raise ConfigError(f"feature set {set_name!r}: labels takes only churn_event and purchase_event")
    return LabelSpec(
        **{key: check_identifier(value, f"label event type ({key})") for key, value in raw.items() if value}
    )


def parse_feature_set(document: object, *, default_name: str, path: Path | None = None) -> FeatureSet:
    """A FeatureSet from a parsed YAML document."""
    if not isinstance(document, dict):
        raise ConfigError(f"feature set {default_name!r} must be a mapping with a `features` list")
    unknown = set(document) - {"name", "description", "features", "labels"}
    if unknown:
        raise ConfigError(f"feature set {default_name!r}: unknown key {min(unknown)!r}")
    name = check_identifier(str(document.get("name", default_name)), "feature set")
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise ConfigError(f"feature set {name!r} has no `features` list")
    definitions = tuple(parse_definition(raw) for raw in features)
    seen: set[str] = set()
    for definition in definitions:
        if definition.name in seen:
            raise ConfigError(f"feature set {name!r} defines {definition.name!r} twice")
        seen.add(definition.name)
    return FeatureSet(
        name=name,
        definitions=definitions,
        labels=_labels(document.get("labels"), name),
        description=str(document.get("description") or "").strip(),
        path=path,
    )


def packaged_feature_sets() -> list[str]:
    """Names of the feature sets shipped with playerguard."""
    return sorted(p.stem for p in _PACKAGED_DIR.glob("*.yaml") if not p.stem.endswith("_source"))


def load_feature_set(name_or_path: str | Path) -> FeatureSet:
    """A packaged feature set by name (`default`, `combat`) or a YAML file by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(f"feature set file {str(path)!r} does not exist")
    else:
        if text not in packaged_feature_sets():
            raise ConfigError(
                f"unknown feature set {text!r}; packaged sets: {', '.join(packaged_feature_sets())}, "
                "auto (derived from the lake), or a path to a .yaml file"
            )
        path = _PACKAGED_DIR / f"{text}.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(
            f"feature set {str(path)!r} is not valid YAML: {str(error).splitlines()[0]}"
        ) from None
    return parse_feature_set(document, default_name=path.stem, path=path.resolve())
