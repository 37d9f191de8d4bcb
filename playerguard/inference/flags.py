"""Flag messages: what the stream sends to SNS or the outbox when the policy acts on a score.

A flag's id is a pure function of the event, the model and the model version, so scoring the same event
again (a Kinesis redelivery, a replay) yields the same id and every store can refuse the second copy.
Pure logic: no I/O, nothing heavy imported, safe for the Lambda package.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

ACTIONS: tuple[str, ...] = ("review", "account_action", "retention_offer", "purchase_offer")
MESSAGE_ATTRIBUTES: tuple[str, ...] = ("model", "action", "severity")


class FlagError(ValueError):
    """A prediction or message that cannot become a flag (a contract violation by its producer)."""


def make_flag_id(event_id: str, model: str, model_version: str) -> str:
    """sha256 of (event_id, model, model_version): the same scored event always gives the same flag."""
    key = f"{event_id}\x1f{model}\x1f{model_version}"
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 timestamp as an aware UTC datetime (naive input is taken as UTC)."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """UTC, microsecond precision, 'Z' suffix: one spelling, so stored timestamps sort as text."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@dataclass(frozen=True)
class Flag:
    """One action the policy took on one scored event (the SNS body and the outbox row)."""

    flag_id: str
    player_id: str
    model: str
    action: str
    severity: str
    score: float
    threshold: float
    reasons: list[dict[str, Any]] = field(hash=False, compare=False)
    event_id: str
    event_timestamp: str
    model_version: str
    scored_at: str
    condition: str | None = None
    """The policy's `where:` condition that admitted the action, when its rule has one."""
    value_at_risk: float | None = None
    """What the player would spend and the offer tries to keep, when its rule ranks by value at risk."""

    @cached_property
    def event_time(self) -> datetime:
        return parse_timestamp(self.event_timestamp)

    @property
    def event_day(self) -> str:
        """The UTC day of the event (YYYY-MM-DD): the day whose budget the flag spends."""
        return self.event_time.date().isoformat()

    def to_message(self) -> dict[str, Any]:
        """The JSON-ready message body."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def to_json(self) -> str:
        return json.dumps(self.to_message(), sort_keys=True, separators=(",", ":"))

    def message_attributes(self) -> dict[str, str]:
        """Attributes subscribers filter on (SNS MessageAttributes)."""
        return {name: str(getattr(self, name)) for name in MESSAGE_ATTRIBUTES}

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> Flag:
        """Rebuild a flag from its message body; raise FlagError when a field is missing."""
        names = cls.__dataclass_fields__
        optional = {"condition", "value_at_risk"}  # messages from before these existed lack them
        missing = [name for name in names if name not in message and name not in optional]
        if missing:
            raise FlagError(f"flag message is missing {', '.join(missing)}")
        return cls(**{name: message[name] for name in names if name in message})


def _require(mapping: Mapping[str, Any], key: str, what: str) -> Any:
    if not isinstance(mapping, Mapping) or key not in mapping or mapping[key] is None:
        raise FlagError(f"{what} has no {key!r}")
    return mapping[key]


def flags_from_prediction(
    prediction: Mapping[str, Any],
    *,
    event_id: str,
    player_id: str,
    event_timestamp: str,
    scored_at: datetime,
) -> list[Flag]:
    """The flags for one scored event: one per action the endpoint's policy took.

    `prediction` is one element of the endpoint's `predictions` (scoring.score_frame's row dict).
    A prediction for another player, an unknown action or a missing version raises FlagError: the endpoint
    broke its contract and the batch must not be acknowledged on a guess.
    """
    if _require(prediction, "player_id", "prediction") != player_id:
        raise FlagError(f"prediction for player {prediction['player_id']!r} returned for {player_id!r}")
    if not prediction.get("actions"):
        return []
    versions = _require(prediction, "model_versions", "prediction")
    reasons = prediction.get("reasons") or {}
    scored = format_timestamp(scored_at)
    flags: list[Flag] = []
    seen_models: set[str] = set()
    for taken in prediction.get("actions") or []:
        model = str(_require(taken, "model", "action"))
        action = str(_require(taken, "action", "action"))
        if action not in ACTIONS:
            raise FlagError(f"unknown action {action!r} for model {model!r}")
        if model in seen_models:
            # flag_id is (event, model, version): two actions for one model would collide
            raise FlagError(f"more than one action for model {model!r} on one event")
        seen_models.add(model)
        version = str(_require(versions, model, "model_versions"))
        flags.append(
            Flag(
                flag_id=make_flag_id(event_id, model, version),
                player_id=player_id,
                model=model,
                action=action,
                severity=str(taken.get("severity") or "medium"),
                score=float(_require(taken, "score", "action")),
                threshold=float(_require(taken, "threshold", "action")),
                reasons=list(reasons.get(model) or []),
                event_id=event_id,
                event_timestamp=event_timestamp,
                model_version=version,
                scored_at=scored,
                condition=taken.get("condition"),
                value_at_risk=None if taken.get("value_at_risk") is None else float(taken["value_at_risk"]),
            )
        )
    return flags


@dataclass(frozen=True)
class Cooldowns:
    """How long after a flag the same player is not flagged again for the same (model, action).

    Windows are measured in event time, not processing time, so a replay of a month of events suppresses
    exactly what the live stream would have suppressed, and a redelivery decides the same way twice.
    """

    default: timedelta = timedelta(0)
    per_model: Mapping[str, timedelta] = field(default_factory=dict)
    per_action: Mapping[tuple[str, str], timedelta] = field(default_factory=dict)

    def window(self, model: str, action: str) -> timedelta:
        if (model, action) in self.per_action:
            return self.per_action[(model, action)]
        return self.per_model.get(model, self.default)

    def suppresses(self, previous: datetime, current: datetime, model: str, action: str) -> bool:
        """True when a flag at `current` falls within the window of an earlier (or later) one at `previous`."""
        return abs(current - previous) < self.window(model, action)


def cooldowns_from_policy(policy: Any) -> Cooldowns:
    """The cooldown of every (model, action) a `policy.Policy` can take (duck-typed: no numpy import here)."""
    return Cooldowns(
        per_action={
            (model, rule.action): policy.cooldown(model, rule.action)
            for model, rules in policy.rules.items()
            for rule in rules
        }
    )


def publish_order(flags: Iterable[Flag]) -> list[Flag]:
    """The order notifiers claim flags in: those with a value at risk first, highest first (equal values by
    score), so a daily budget buys the most value; the others by event time, so of two flags within a
    cooldown the earlier event wins."""

    def key(flag: Flag) -> tuple:
        ranked = flag.value_at_risk is not None
        value, score = (flag.value_at_risk, flag.score) if ranked else (0.0, 0.0)
        return (not ranked, -value, -score, flag.event_time, flag.flag_id)

    return sorted(flags, key=key)


@dataclass(frozen=True)
class Budgets:
    """How many flags of a (model, action) are sent per UTC day of event time, across all players.

    Event time, as for cooldowns: a replay spends each day's budget as the live stream would have.
    """

    per_action: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def limit(self, model: str, action: str) -> int | None:
        """The daily budget of (model, action), or None when it has none."""
        return self.per_action.get((model, action))


def budgets_from_policy(policy: Any) -> Budgets:
    """The daily budget of every (model, action) of a `policy.Policy` that sets one (duck-typed, as above)."""
    return Budgets(
        {
            (model, rule.action): policy.daily_budget(model, rule.action)
            for model, rules in policy.rules.items()
            for rule in rules
            if policy.daily_budget(model, rule.action) is not None
        }
    )
