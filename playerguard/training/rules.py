"""Rules against the limits of human play: named, configurable comparisons on one feature.

A rule reads `feature <op> limit`, optionally `when evidence_feature >= evidence_min`, so that a player
is only judged on enough play (three matches, ten sessions...). A config maps rule names to either that
text or a mapping with the same parts:

    superhuman_reaction: "reaction_ms_p50_28d < 150 when matches_28d >= 3"
    sustained_headshots: {feature: headshot_rate_28d, op: ">", limit: 0.45}

A rule whose feature (or evidence feature) is absent from the data is skipped, so one rule set serves
games with different feature sets. A missing value (NaN) never fires a rule.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from playerguard.errors import ConfigError
from playerguard.training.feature_columns import Features, column

_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NAME = r"[a-z_][a-z0-9_]*"
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE_TEXT = re.compile(
    rf"^\s*(?P<feature>{_NAME})\s*(?P<op><=|>=|<|>)\s*(?P<limit>{_NUMBER})"
    rf"(?:\s+when\s+(?P<evidence_feature>{_NAME})\s*>=\s*(?P<evidence_min>{_NUMBER}))?\s*$"
)
_RULE_KEYS = frozenset({"feature", "op", "limit", "evidence_feature", "evidence_min"})

# Limits set from what people can do, for the default (simulator) feature names. Simple visual reaction
# time of trained humans is about 200-250 ms at the median; below ~100 ms sprint starters are ruled to
# have anticipated. Scripted clients keep a far more regular schedule than any person.
DEFAULT_RULES: dict[str, str] = {
    "superhuman_reaction": "reaction_ms_p50_28d < 150 when matches_28d >= 3",
    "anticipated_reactions": "reaction_ms_p10_28d < 100 when matches_28d >= 3",
    "sustained_headshots": "headshot_rate_28d > 0.45 when matches_28d >= 3",
    "robotic_schedule": "session_gap_cv_28d < 0.15 when sessions_28d >= 10",
}


@dataclass(frozen=True)
class Rule:
    """`feature <op> limit`, checked only on rows where `evidence_feature >= evidence_min` (if set)."""

    name: str
    feature: str
    op: str
    limit: float
    evidence_feature: str | None = None
    evidence_min: float | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(_NAME, self.name):
            raise ConfigError(f"invalid rule name {self.name!r}: use lower-case letters, digits and underscores")
        for what, value in (("feature", self.feature), ("evidence_feature", self.evidence_feature)):
            if value is not None and (not isinstance(value, str) or not re.fullmatch(_NAME, value)):
                raise ConfigError(f"rule {self.name!r}: invalid {what} {value!r}")
        if self.op not in _OPERATORS:
            raise ConfigError(f"rule {self.name!r}: unknown comparison {self.op!r}; use <, <=, > or >=")
        if not _is_finite_number(self.limit):
            raise ConfigError(f"rule {self.name!r}: limit must be a finite number, got {self.limit!r}")
        if (self.evidence_feature is None) != (self.evidence_min is None):
            raise ConfigError(f"rule {self.name!r}: give both evidence_feature and evidence_min, or neither")
        if self.evidence_min is not None and not _is_finite_number(self.evidence_min):
            raise ConfigError(f"rule {self.name!r}: evidence_min must be a finite number")

    @property
    def features(self) -> tuple[str, ...]:
        """The features the rule reads."""
        return (self.feature,) if self.evidence_feature is None else (self.feature, self.evidence_feature)

    def applies_to(self, columns: Iterable[str]) -> bool:
        """True when every feature the rule reads is among `columns`."""
        available = set(columns)
        return all(name in available for name in self.features)

    def fires(self, frame: Features) -> np.ndarray:
        """Boolean per row: the rule's limit is crossed with enough evidence (NaN never fires)."""
        values = column(frame, self.feature)
        with np.errstate(invalid="ignore"):
            fired = _OPERATORS[self.op](values, self.limit) & ~np.isnan(values)
            if self.evidence_feature is not None:
                fired &= column(frame, self.evidence_feature) >= self.evidence_min
        return fired

    def text(self) -> str:
        """The rule in its text form, e.g. `reaction_ms_p50_28d < 150 when matches_28d >= 3`."""
        base = f"{self.feature} {self.op} {self.limit:g}"
        if self.evidence_feature is None:
            return base
        return f"{base} when {self.evidence_feature} >= {self.evidence_min:g}"

    def to_dict(self) -> dict[str, Any]:
        """The mapping form, JSON-serialisable."""
        data: dict[str, Any] = {"feature": self.feature, "op": self.op, "limit": self.limit}
        if self.evidence_feature is not None:
            data |= {"evidence_feature": self.evidence_feature, "evidence_min": self.evidence_min}
        return data


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_rule(name: str, spec: str | Mapping[str, Any]) -> Rule:
    """One rule from its text form or its mapping form; ConfigError names what is wrong."""
    if isinstance(spec, str):
        match = _RULE_TEXT.match(spec)
        if match is None:
            raise ConfigError(
                f"rule {name!r}: cannot read {spec!r}; expected 'feature < limit' "
                "(or <=, >, >=), optionally followed by 'when evidence_feature >= minimum'"
            )
        parts = match.groupdict()
        evidence_min = parts["evidence_min"]
        return Rule(
            name=name,
            feature=parts["feature"],
            op=parts["op"],
            limit=float(parts["limit"]),
            evidence_feature=parts["evidence_feature"],
            evidence_min=None if evidence_min is None else float(evidence_min),
        )
    if isinstance(spec, Mapping):
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise ConfigError(f"rule {name!r}: unknown keys {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
        missing = {"feature", "op", "limit"} - set(spec)
        if missing:
            raise ConfigError(f"rule {name!r}: missing {sorted(missing)}")
        return Rule(
            name=name,
            feature=spec["feature"],
            op=spec["op"],
            limit=spec["limit"],
            evidence_feature=spec.get("evidence_feature"),
            evidence_min=spec.get("evidence_min"),
        )
    raise ConfigError(f"rule {name!r}: expected a text or a mapping, got {type(spec).__name__}")


def parse_rules(config: Mapping[str, str | Mapping[str, Any]] | str | Path | None) -> list[Rule]:
    """Rules from a mapping of name → rule, a YAML file path, or YAML text; None gives DEFAULT_RULES."""
    if config is None:
        config = DEFAULT_RULES
    if isinstance(config, Path):
        try:
            config = config.read_text()
        except OSError as error:
            raise ConfigError(f"cannot read rules file {config}: {error.strerror or error}") from error
    if isinstance(config, str):
        try:
            config = yaml.safe_load(config)
        except yaml.YAMLError as error:
            raise ConfigError(f"rules are not valid YAML: {str(error).splitlines()[0]}") from error
        if config is None:
            config = {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"rules must be a mapping of rule name to rule, got {type(config).__name__}")
    return [parse_rule(str(name), spec) for name, spec in config.items()]


def rules_config(rules: Sequence[Rule]) -> dict[str, dict[str, Any]]:
    """The mapping form of `rules`, which `parse_rules` reads back."""
    return {rule.name: rule.to_dict() for rule in rules}


def applicable_rules(rules: Sequence[Rule], columns: Iterable[str]) -> list[Rule]:
    """The rules whose features are all among `columns`; the others are skipped."""
    available = list(columns)
    return [rule for rule in rules if rule.applies_to(available)]


def fired_matrix(rules: Sequence[Rule], frame: Features) -> np.ndarray:
    """Boolean matrix (rows × rules): which rule fires on which row. Every rule must apply to `frame`."""
    if not rules:
        return np.zeros((frame.shape[0], 0), dtype=bool)
    return np.column_stack([rule.fires(frame) for rule in rules])
