"""The flag policy: per model, ordered score thresholds → action and severity, with a cooldown per action.

Rules of a model are tried in order; the first whose threshold the score reaches, and whose `where:`
conditions on the player's features hold, decides the action. A threshold is a number in [0, 1] or
`model`: the model's own threshold from its bundle manifest. A condition is `<feature> <op> <number>` with
op one of < <= > >= == !=, naming a feature of the models' feature set (checked when the bundle loads); a
player whose feature is undefined (NaN) does not meet it. An action a condition admitted carries it.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from playerguard.durations import parse_duration
from playerguard.errors import ConfigError
from playerguard.model_names import MODEL_NAMES

if TYPE_CHECKING:  # numpy is imported where it is used: the stream handler imports this module
    import numpy as np

ACTIONS: tuple[str, ...] = ("review", "account_action", "retention_offer", "purchase_offer")
SEVERITIES: tuple[str, ...] = ("low", "medium", "high")
MODEL_THRESHOLD = "model"
_CONDITION = re.compile(r"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")
_OPERATORS: dict[str, Callable[[Any, float], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """`feature op value`, e.g. `days_since_last_event <= 7`."""

    feature: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: Any, where: str) -> Condition:
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if match is None:
            raise ConfigError(
                f"{where} must read `<feature> <op> <number>` (op one of < <= > >= == !=), got {text!r}"
            )
        return cls(match.group(1), match.group(2), float(match.group(3)))

    def holds(self, values: np.ndarray) -> np.ndarray:
        """Where the condition holds; NaN (undefined) never does."""
        import numpy as np

        return _OPERATORS[self.op](values, self.value) & ~np.isnan(values)

    def __str__(self) -> str:
        return f"{self.feature} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Rule:
    """Score ≥ threshold (a number, or "model" for the model's own threshold) → action with a severity."""

    threshold: float | str
    action: str
    severity: str
    cooldown: timedelta
    where: tuple[Condition, ...] = ()

    def resolve(self, model_threshold: float | None, model: str) -> float:
        if self.threshold != MODEL_THRESHOLD:
            return float(self.threshold)
        if model_threshold is None:
            raise ConfigError(
                f"the policy's {model} rule uses threshold 'model', but the {model} model has no threshold"
            )
        return float(model_threshold)


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _parse_rule(data: Any, where: str, default_cooldown: timedelta) -> Rule:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping with threshold, action and severity")
    _check_keys(data, {"threshold", "action", "severity", "cooldown", "where"}, where)
    for key in ("threshold", "action", "severity"):
        if key not in data:
            raise ConfigError(f"{where} has no {key}")
    threshold = data["threshold"]
    numeric = isinstance(threshold, int | float) and not isinstance(threshold, bool)
    if threshold != MODEL_THRESHOLD and not (numeric and 0 <= threshold <= 1):
        raise ConfigError(f"{where}.threshold must be a number in [0, 1] or 'model', got {threshold!r}")
    if data["action"] not in ACTIONS:
        raise ConfigError(f"{where}.action must be one of {', '.join(ACTIONS)}, got {data['action']!r}")
    if data["severity"] not in SEVERITIES:
        raise ConfigError(
            f"{where}.severity must be one of {', '.join(SEVERITIES)}, got {data['severity']!r}"
        )
    cooldown = (
        parse_duration(data["cooldown"], f"{where}.cooldown", allow_zero=True)
        if "cooldown" in data
        else default_cooldown
    )
    raw = data.get("where", [])
    listed = [raw] if isinstance(raw, str) else raw
    if not isinstance(listed, list):
        raise ConfigError(f"{where}.where must read `<feature> <op> <number>`, or be a list of such, got {raw!r}")
    conditions = tuple(Condition.parse(text, f"{where}.where[{i}]") for i, text in enumerate(listed))
    return Rule(
        float(threshold) if numeric else threshold, data["action"], data["severity"], cooldown, conditions
    )


def _parse_model(data: Any, where: str) -> tuple[Rule, ...]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping with rules (and an optional cooldown)")
    _check_keys(data, {"rules", "cooldown"}, where)
    cooldown = parse_duration(data.get("cooldown", 0), f"{where}.cooldown", allow_zero=True)
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigError(f"{where}.rules must be a non-empty list")
    rules = tuple(_parse_rule(rule, f"{where}.rules[{i}]", cooldown) for i, rule in enumerate(raw_rules))
    numeric = [
        (i, r.threshold) for i, r in enumerate(rules) if r.threshold != MODEL_THRESHOLD and not r.where
    ]
    for (_, earlier), (i, later) in itertools.pairwise(numeric):
        if later >= earlier:
            raise ConfigError(
                f"{where}.rules[{i}] can never fire: its threshold {later:g} is not below an earlier one "
                f"({earlier:g}); list rules from the highest threshold down"
            )
    return rules


@dataclass(frozen=True)
class Policy:
    """Rules per model, parsed and validated; see the module docstring."""

    rules: Mapping[str, tuple[Rule, ...]]
    source: str = "policy"

    @classmethod
    def from_dict(cls, data: Any, source: str = "policy") -> Policy:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: the policy must be a mapping with 'models'")
        _check_keys(data, {"version", "models"}, source)
        if data.get("version", 1) != 1:
            raise ConfigError(f"{source}: unsupported policy version {data.get('version')!r} (expected 1)")
        models = data.get("models")
        if not isinstance(models, Mapping):
            raise ConfigError(f"{source}: 'models' must be a mapping of model name to rules")
        for name in models:
            if name not in MODEL_NAMES:
                raise ConfigError(f"{source}: unknown model {name!r} (expected {', '.join(MODEL_NAMES)})")
        return cls(
            {name: _parse_model(spec, f"{source}: models.{name}") for name, spec in models.items()}, source
        )

    @classmethod
    def from_yaml(cls, path: Path) -> Policy:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read policy {path}: {error.strerror or error}") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"{path}: invalid YAML{line}: {problem}") from None
        return cls.from_dict(data, str(path))

    def condition_features(self, models: Collection[str] | None = None) -> set[str]:
        """Every feature a `where:` condition of `models` (default: all) names."""
        chosen = self.rules if models is None else {m: r for m, r in self.rules.items() if m in models}
        return {c.feature for rules in chosen.values() for rule in rules for c in rule.where}

    def check_features(
        self, feature_names: Collection[str], feature_set: str, models: Collection[str] | None = None
    ) -> None:
        """A ConfigError naming the conditions of `models` whose feature the feature set does not have."""
        unknown = sorted(self.condition_features(models) - set(feature_names))
        if unknown:
            raise ConfigError(
                f"{self.source}: where: conditions name {', '.join(unknown)}, not features of the "
                f"feature set {feature_set!r} the models use"
            )

    def uses_model_threshold(self, model: str) -> bool:
        return any(rule.threshold == MODEL_THRESHOLD for rule in self.rules.get(model, ()))

    def decide(
        self,
        model: str,
        scores: np.ndarray,
        model_threshold: float | None = None,
        features: Callable[[str], np.ndarray] | None = None,
    ) -> list[dict | None]:
        """Per score, the action dict {model, action, score, threshold, severity[, condition]} of the
        first rule it reaches whose conditions hold, or None. Vectorised over the scores; `features(name)`
        gives a feature's values for the same rows (needed by rules with `where:`)."""
        import numpy as np

        scores = np.asarray(scores, dtype="float64")
        rules = self.rules.get(model, ())
        thresholds = [rule.resolve(model_threshold, model) for rule in rules]
        chosen = np.full(scores.shape, -1)
        for index, (rule, threshold) in enumerate(zip(rules, thresholds, strict=True)):
            admitted = (chosen < 0) & (scores >= threshold)
            for condition in rule.where:
                if features is None:
                    raise ConfigError(f"the policy's {model} rule needs the feature {condition.feature}")
                admitted &= condition.holds(np.asarray(features(condition.feature), dtype="float64"))
            chosen[admitted] = index
        actions: list[dict | None] = []
        for score, index in zip(scores.tolist(), chosen.tolist(), strict=True):
            if index < 0:
                actions.append(None)
                continue
            rule = rules[index]
            action = {
                "model": model,
                "action": rule.action,
                "score": score,
                "threshold": thresholds[index],
                "severity": rule.severity,
            }
            if rule.where:
                action["condition"] = " and ".join(str(c) for c in rule.where)
            actions.append(action)
        return actions

    def cooldown(self, model: str, action: str) -> timedelta:
        """How long after taking `action` for `model` on a player the stream waits before repeating it."""
        cooldowns = [rule.cooldown for rule in self.rules.get(model, ()) if rule.action == action]
        return max(cooldowns, default=timedelta(0))


def default_policy_path() -> Path:
    """The policy shipped with playerguard."""
    return Path(str(resources.files("playerguard.inference").joinpath("default_policy.yaml")))


def load_policy(path: Path | None = None) -> Policy:
    """The policy at `path`, or the default policy."""
    return Policy.from_yaml(Path(path) if path is not None else default_policy_path())
