"""The flag policy: per model, ordered score thresholds → action and severity, with a cooldown per action.

Rules of a model are tried in order; the first whose threshold the score reaches, and whose `where:`
conditions on the player's features hold, decides the action. A threshold is a number in [0, 1] or
`model`: the model's own threshold from its bundle manifest. A condition is `<feature> <op> <number>` with
op one of < <= > >= == !=, naming a feature of the models' feature set (checked when the bundle loads); a
player whose feature is undefined (NaN) does not meet it. An action a condition admitted carries it.

A churn `retention_offer` rule may say `rank_by: value_at_risk` with a `spend_feature` (a feature of the
feature set; when the set has none by that name, the value leaves spend out and each action says so): its
actions carry `value_at_risk` = churn probability × purchase
probability × the player's spend feature, what the player would spend and the offer tries to keep. An
undefined spend (a player who never bought) counts as 0: nothing spent is nothing at risk, so such players
come last, in churn order. Without a purchase model the value is the churn probability alone, and the action
says so (`value_at_risk_note`). A rule may set `daily_budget`: how many actions of its model and action are
sent per UTC day, across all players; the notifiers and batch scoring enforce it, highest value first.

`reasons: exact` (the default) explains the rows a rule acts on: the models' exact feature attributions
(TreeSHAP for the boosted ones), the costliest part of scoring. `reasons: none` leaves the rows acted on only
by such rules without feature reasons, for actions nobody reads them for (an automated offer); a request can
still ask for every row's reasons.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from playerguard.durations import parse_duration
from playerguard.errors import ConfigError
from playerguard.inference.offers import (
    VALUE_AT_RISK,
    check_budgets,
    parse_budget,
    parse_ranking,
    value_at_risk,
)
from playerguard.model_names import MODEL_NAMES

if TYPE_CHECKING:  # numpy is imported where it is used: the stream handler imports this module
    import numpy as np

ACTIONS: tuple[str, ...] = ("review", "account_action", "retention_offer", "purchase_offer")
SEVERITIES: tuple[str, ...] = ("low", "medium", "high")
MODEL_THRESHOLD = "model"
RULE_REASONS: tuple[str, ...] = ("exact", "none")
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
    rank_by: str | None = None
    spend_feature: str | None = None
    daily_budget: int | None = None
    explained: bool = True
    """Whether the rows the rule acts on get feature reasons (`reasons: exact`, the default)."""
    no_spend_note: str | None = None
    """Set when the feature set lacks the rule's spend feature (see `Policy.for_features`)."""
    name: str = field(default="rule", compare=False)
    """Where the rule is in its policy, for errors: `<source>: models.<model>.rules[<i>]`."""

    def features(self) -> dict[str, str]:
        """The features the rule reads, each with the key that names it."""
        read = {condition.feature: "where:" for condition in self.where}
        if self.spend_feature is not None:
            read.setdefault(self.spend_feature, "spend_feature")
        return read

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


def _parse_rule(data: Any, where: str, default_cooldown: timedelta, model: str) -> Rule:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping with threshold, action and severity")
    _check_keys(
        data,
        {"threshold", "action", "severity", "cooldown", "where", "rank_by", "spend_feature", "daily_budget",
         "reasons"},
        where,
    )
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
    rank_by, spend_feature = parse_ranking(data, where, model)
    reasons = data.get("reasons", "exact")
    if reasons not in RULE_REASONS:
        raise ConfigError(f"{where}.reasons must be one of {', '.join(RULE_REASONS)}, got {reasons!r}")
    return Rule(
        float(threshold) if numeric else threshold,
        data["action"],
        data["severity"],
        cooldown,
        conditions,
        rank_by=rank_by,
        spend_feature=spend_feature,
        daily_budget=parse_budget(data, where),
        explained=reasons == "exact",
        name=where,
    )


def _parse_model(data: Any, where: str, model: str) -> tuple[Rule, ...]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping with rules (and an optional cooldown)")
    _check_keys(data, {"rules", "cooldown"}, where)
    cooldown = parse_duration(data.get("cooldown", 0), f"{where}.cooldown", allow_zero=True)
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigError(f"{where}.rules must be a non-empty list")
    rules = tuple(
        _parse_rule(rule, f"{where}.rules[{i}]", cooldown, model) for i, rule in enumerate(raw_rules)
    )
    check_budgets(rules, where)
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
            {name: _parse_model(spec, f"{source}: models.{name}", name) for name, spec in models.items()},
            source,
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

    def _rules_of(self, models: Collection[str] | None) -> list[Rule]:
        chosen = [rules for model, rules in self.rules.items() if models is None or model in models]
        return [rule for rules in chosen for rule in rules]

    def features_read(self, models: Collection[str] | None = None) -> set[str]:
        """Every feature the rules of `models` (default: all) read: `where:` conditions and spend features."""
        return {name for rule in self._rules_of(models) for name in rule.features()}

    def for_features(self, feature_names: Collection[str], feature_set: str) -> Policy:
        """This policy over a feature set: a spend feature the set lacks is dropped, so value at risk is
        churn × purchase probability and each action says why (a studio's own set names spend its own way);
        `where:` features stay required (`check_features`)."""
        known = set(feature_names)

        def resolved(rule: Rule) -> Rule:
            if rule.spend_feature is None or rule.spend_feature in known:
                return rule
            note = (
                f"no spend feature {rule.spend_feature} in the feature set {feature_set!r}: "
                "churn × purchase probability"
            )
            return replace(rule, spend_feature=None, no_spend_note=note)

        return replace(self, rules={model: tuple(map(resolved, rules)) for model, rules in self.rules.items()})

    def check_features(
        self, feature_names: Collection[str], feature_set: str, models: Collection[str] | None = None
    ) -> None:
        """A ConfigError naming the first rule of `models` reading a feature the feature set does not have."""
        known = set(feature_names)
        for rule in self._rules_of(models):
            unknown = [f"{name} ({key})" for name, key in rule.features().items() if name not in known]
            if unknown:
                raise ConfigError(
                    f"{rule.name} reads {', '.join(unknown)}: not features of the feature set "
                    f"{feature_set!r} the models use"
                )

    def uses_model_threshold(self, model: str) -> bool:
        return any(rule.threshold == MODEL_THRESHOLD for rule in self.rules.get(model, ()))

    def decide(
        self,
        model: str,
        scores: np.ndarray,
        model_threshold: float | None = None,
        features: Callable[[str], np.ndarray] | None = None,
        *,
        model_scores: Mapping[str, Sequence[float] | np.ndarray] | None = None,
    ) -> list[dict | None]:
        """Per score, the action dict {model, action, score, threshold, severity[, condition]
        [, value_at_risk[, value_at_risk_note]]} of the first rule it reaches whose conditions hold, or None.
        Vectorised over the scores; `features(name)` gives a feature's values for the same rows (needed by
        rules with `where:` or a spend feature), `model_scores` every model's scores for the same rows (a rule
        ranked by value at risk reads the purchase model's)."""
        import numpy as np

        scores = np.asarray(scores, dtype="float64")
        rules = self.rules.get(model, ())
        thresholds = [rule.resolve(model_threshold, model) for rule in rules]
        chosen = np.full(scores.shape, -1)
        for index, (rule, threshold) in enumerate(zip(rules, thresholds, strict=True)):
            admitted = (chosen < 0) & (scores >= threshold)
            for condition in rule.where:
                admitted &= condition.holds(_feature(features, condition.feature, model))
            chosen[admitted] = index
        values = {
            index: value_at_risk(
                scores,
                None if rule.spend_feature is None else _feature(features, rule.spend_feature, model),
                model_scores,
                rule.no_spend_note,
            )
            for index, rule in enumerate(rules)
            if rule.rank_by == VALUE_AT_RISK and (chosen == index).any()
        }
        actions: list[dict | None] = []
        for row, (score, index) in enumerate(zip(scores.tolist(), chosen.tolist(), strict=True)):
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
            if index in values:
                worth, note = values[index]
                action[VALUE_AT_RISK] = float(worth[row])
                if note:
                    action["value_at_risk_note"] = note
            actions.append(action)
        return actions

    def explains(self, model: str, action: str) -> bool:
        """Whether rows that `model`'s rules give `action` get feature reasons (see `reasons:`)."""
        return any(rule.explained for rule in self.rules.get(model, ()) if rule.action == action)

    def daily_budget(self, model: str, action: str) -> int | None:
        """How many `action`s of `model` are sent per UTC day across all players (None: no limit)."""
        budgets = [r.daily_budget for r in self.rules.get(model, ()) if r.action == action]
        return next((budget for budget in budgets if budget is not None), None)

    def cooldown(self, model: str, action: str) -> timedelta:
        """How long after taking `action` for `model` on a player the stream waits before repeating it."""
        cooldowns = [rule.cooldown for rule in self.rules.get(model, ()) if rule.action == action]
        return max(cooldowns, default=timedelta(0))


def _feature(features: Callable[[str], np.ndarray] | None, name: str, model: str) -> np.ndarray:
    import numpy as np

    if features is None:
        raise ConfigError(f"the policy's {model} rule needs the feature {name}")
    return np.asarray(features(name), dtype="float64")


def default_policy_path() -> Path:
    """The policy shipped with playerguard."""
    return Path(str(resources.files("playerguard.inference").joinpath("default_policy.yaml")))


def load_policy(path: Path | None = None) -> Policy:
    """The policy at `path`, or the default policy."""
    return Policy.from_yaml(Path(path) if path is not None else default_policy_path())
