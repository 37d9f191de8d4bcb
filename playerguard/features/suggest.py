"""A feature set fitted to what a lake holds (`playerguard features suggest`, `--feature-set auto`).

From the lake profile (features/profile.py): per event type, counts over 1, 7 and 28 days and lifetime,
recency, active days, the mean and coefficient of variation of the gaps between events, and a 7-day trend;
for a type the lake holds half a year or more, the player's own cadence over a quarter (and a year): active
days, usual gap and its regularity, and the last 28 days against the rest of it; per numeric attribute,
sums, means, percentiles, spread, maximum (the personal best) and the trend of its total; part-of-whole
ratios between whole-number attributes (hits of shots); the share of each value of a low-cardinality text
attribute; events per session; recency, frequency and monetary value for the event type carrying an amount;
and the `labels:` section. Every choice is a YAML comment. The same profile always gives the same text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from playerguard.features.profile import AttributeProfile, EventTypeProfile, LakeProfile
from playerguard.features.spec import RESERVED_FEATURE_NAMES, FeatureSet, parse_definition, parse_feature_set
from playerguard.lake.envelope import NUMBER, RESERVED_NAMES, STRING

AUTO = "auto"
"""The feature-set name that derives this set from the lake on the fly."""
COUNT_WINDOWS = ("1d", "7d", "28d", "lifetime")
LONG_WINDOWS = (("91d", 182.0), ("364d", 546.0))
"""Longer windows for an event type the lake holds this many days of: slow cadences (monthly purchases,
weekly logins) show in a quarter or a year, not in 28 days."""
WINDOW = "28d"
SHORT_WINDOW = "7d"
SHORT_BASELINE = "21d"
QUANTILES = (0.1, 0.5, 0.9)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")  # what a `where` value may be (spec.py)
_START_WORDS = re.compile(r"start|login|log_in|signin|sign_in|launch|open|begin|connect|join")
_SESSION_WORDS = re.compile(r"session|login|log_in|signin|sign_in|launch|connect")
_AMOUNT_WORDS = re.compile(r"amount|price|revenue|spend|spent|paid|cost|usd|eur|money")
MAX_PRICE_POINTS = 100
_MIN_SHARE_EVENTS = 0.01  # a text value on fewer than 1% of its type's events gets no share feature


@dataclass
class _Entry:
    comment: str
    definition: dict[str, Any]


@dataclass
class _Draft:
    """The features so far, without two definitions computing the same thing."""

    entries: list[_Entry] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def add(self, comment: str, **definition: Any) -> None:
        canonical = parse_definition(definition).canonical()
        key = json.dumps({k: v for k, v in canonical.items() if k != "name"}, sort_keys=True)
        if key in self.seen or definition["name"] in self.names:
            return
        self.seen.add(key)
        self.names.add(definition["name"])
        self.entries.append(_Entry(comment, definition))


def _name(*parts: str) -> str:
    """A feature name from parts; a name longer than an identifier allows keeps a hash of the rest."""
    text = "_".join(p for p in parts if p)
    if text.startswith(("_", "label_")) or text in RESERVED_FEATURE_NAMES:  # reserved by spec.py
        text = f"f_{text}"
    if len(text) <= 63:
        return text
    return f"{text[:54]}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", value.lower()).strip("_") or "blank"


def _long_windows(t: EventTypeProfile) -> tuple[str, ...]:
    return tuple(window for window, needed in LONG_WINDOWS if t.span_days >= needed)


def _before(window: str, recent: str) -> str:
    """The stretch of `window` before its last `recent` days ("91d" less "28d" is "63d")."""
    return f"{int(window[:-1]) - int(recent[:-1])}d"


def _window_words(window: str) -> str:
    return "all history" if window == "lifetime" else f"the last {window}"


def session_event(profile: LakeProfile) -> tuple[str | None, str]:
    """The event type churn is measured on, and why: one event per session (preferring a start/login
    name), else the most frequent type."""
    usable = [t for t in profile.event_types if _IDENTIFIER.match(t.name)]
    if not usable:
        return None, "no event type has a usable name"
    per_session = [
        t for t in usable if t.with_session >= 0.95 * t.events and t.sessions >= 0.95 * t.with_session
    ]
    if per_session:
        chosen = min(
            per_session,
            key=lambda t: (
                not _START_WORDS.search(t.name),
                not _SESSION_WORDS.search(t.name),
                -t.events,
                t.name,
            ),
        )
        return chosen.name, (
            f"{chosen.name} is session-like: one event per session id ({chosen.sessions:,} sessions, "
            f"{chosen.events:,} events)"
        )
    chosen = usable[0]
    return (
        chosen.name,
        f"no event type is one per session; {chosen.name} is the most frequent ({chosen.events:,})",
    )


def _money_rank(a: AttributeProfile) -> tuple[bool, bool, bool]:
    """Sorts first what looks most like money: named like it, then a few price points with cents."""
    return (not _AMOUNT_WORDS.search(a.name), not (a.cents and a.distinct <= MAX_PRICE_POINTS), not a.cents)


def _money_reason(a: AttributeProfile) -> str:
    shape = "a non-negative number" + (" with at most two decimals" if a.cents else "")
    if a.cents and a.distinct <= MAX_PRICE_POINTS:
        shape += f" and {a.distinct} distinct values (price points)"
    return f"named like an amount, {shape}" if _AMOUNT_WORDS.search(a.name) else shape


def amount_attribute(profile: LakeProfile) -> tuple[EventTypeProfile, AttributeProfile] | None:
    """The event type and attribute that look like money: a non-negative number named like an amount, or
    with at most two decimals (some not whole); ties go to fewer price points, then the rarest type."""
    found = [
        (t, a)
        for t in profile.event_types
        if _IDENTIFIER.match(t.name)
        for a in t.attributes
        if a.type == NUMBER
        and a.name not in RESERVED_NAMES
        and (a.minimum or 0) >= 0
        and (a.cents or _AMOUNT_WORDS.search(a.name))
    ]
    if not found:
        return None
    return min(found, key=lambda ta: (*_money_rank(ta[1]), ta[0].events, ta[0].name, ta[1].name))


def _attributes(t: EventTypeProfile, kind: str) -> list[AttributeProfile]:
    return [a for a in t.attributes if a.type == kind and a.name not in RESERVED_NAMES and a.distinct > 1]


def _event_type_features(draft: _Draft, t: EventTypeProfile, session: str | None) -> None:
    name = t.name
    for window in (*COUNT_WINDOWS, *_long_windows(t)):
        draft.add(
            f"{name} events in {_window_words(window)} ({t.events:,} in the lake)",
            name=_name(name, "count", window), kind="count", event_type=name, window=window,
        )  # fmt: skip
    draft.add(
        f"days since the last {name}", name=_name(name, "days_since_last"), kind="recency", event_type=name
    )
    draft.add(
        f"days since the first {name} (with the lifetime count and the recency: a buy-till-you-die history)",
        name=_name(name, "days_since_first"), kind="tenure", event_type=name,
    )  # fmt: skip
    draft.add(
        f"days with a {name} in the last {WINDOW}",
        name=_name(name, "active_days", WINDOW), kind="active_days", event_type=name, window=WINDOW,
    )  # fmt: skip
    draft.add(
        f"mean gap in days between successive {name} events, last {WINDOW}",
        name=_name(name, "gap_mean_days", WINDOW), kind="gap_mean", event_type=name, window=WINDOW,
    )  # fmt: skip
    draft.add(
        f"regularity of {name}: coefficient of variation of its gaps, last {WINDOW} (scripts are regular)",
        name=_name(name, "gap_cv", WINDOW), kind="gap_cv", event_type=name, window=WINDOW,
    )  # fmt: skip
    draft.add(
        f"latest gap between {name} events over the usual gap, last {WINDOW} (> 1: fading, < 1: more often)",
        name=_name(name, "last_gap_ratio", WINDOW), kind="last_gap_ratio", event_type=name, window=WINDOW,
    )  # fmt: skip
    draft.add(
        f"{name} per day in the last {SHORT_WINDOW} over per day in the {SHORT_BASELINE} before "
        "(rising or fading)",
        name=_name(name, "trend", SHORT_WINDOW, "vs", SHORT_BASELINE), kind="trend", event_type=name,
        window=SHORT_WINDOW, baseline=SHORT_BASELINE,
    )  # fmt: skip
    _cadence_features(draft, t)
    if session and session != name:
        draft.add(
            f"{name} events per {session} ({session} is the session-like event), last {WINDOW}",
            name=_name(name, "per", session, WINDOW), kind="ratio", window=WINDOW,
            numerator={"kind": "count", "event_type": name},
            denominator={"kind": "count", "event_type": session},
        )  # fmt: skip


def _cadence_features(draft: _Draft, t: EventTypeProfile) -> None:
    """The player's own rhythm over a quarter or a year, for a type the lake holds long enough: in a thin
    log (a few events a month) 28 days hold too few events to show a habit, or its fading."""
    name = t.name
    for window in _long_windows(t):
        draft.add(
            f"days with a {name} out of the last {window}",
            name=_name(name, "active_days", window), kind="active_days", event_type=name, window=window,
        )  # fmt: skip
        draft.add(
            f"the player's usual gap: mean days between successive {name} events, last {window}",
            name=_name(name, "gap_mean_days", window), kind="gap_mean", event_type=name, window=window,
        )  # fmt: skip
        draft.add(
            f"regularity of {name}: coefficient of variation of its gaps, last {window}",
            name=_name(name, "gap_cv", window), kind="gap_cv", event_type=name, window=window,
        )  # fmt: skip
        before = _before(window, WINDOW)
        draft.add(
            f"{name} per day in the last {WINDOW} over per day in the {before} before: recent play against "
            "the player's own earlier rate",
            name=_name(name, "trend", WINDOW, "vs", before), kind="trend", event_type=name, window=WINDOW,
            baseline=before,
        )  # fmt: skip


def _numeric_trends(draft: _Draft, t: EventTypeProfile, a: AttributeProfile) -> None:
    """The total of an attribute (a score) recently against the stretch before it: rising or fading."""
    pairs = [(SHORT_WINDOW, SHORT_BASELINE)] + [(WINDOW, _before(w, WINDOW)) for w in _long_windows(t)]
    for window, before in pairs:
        draft.add(
            f"total {a.name} on {t.name} per day in the last {window} over per day in the {before} before",
            name=_name(t.name, a.name, "trend", window, "vs", before), kind="trend", event_type=t.name,
            measure="sum", attribute=a.name, window=window, baseline=before,
        )  # fmt: skip


def _numeric_features(draft: _Draft, t: EventTypeProfile, a: AttributeProfile) -> None:
    about = (
        f"{a.name} on {t.name} (number, {a.null_rate:.0%} missing, {a.distinct:,} distinct, "
        f"{a.minimum:g}..{a.maximum:g})"
    )
    base = {"event_type": t.name, "attribute": a.name}
    for window in (SHORT_WINDOW, WINDOW):
        draft.add(f"sum of {about}, last {window}", name=_name(t.name, a.name, "sum", window), kind="sum",
                  window=window, **base)  # fmt: skip
        draft.add(f"mean of {about}, last {window}", name=_name(t.name, a.name, "mean", window), kind="mean",
                  window=window, **base)  # fmt: skip
    for q in QUANTILES:
        label = f"p{round(q * 100)}"
        draft.add(f"{label} of {about}, last {WINDOW}", name=_name(t.name, a.name, label, WINDOW),
                  kind="percentile", quantile=q, window=WINDOW, **base)  # fmt: skip
    draft.add(f"spread (standard deviation) of {about}, last {WINDOW}",
              name=_name(t.name, a.name, "stddev", WINDOW), kind="stddev", window=WINDOW, **base)  # fmt: skip
    draft.add(f"highest {about}, all history (the personal best)", name=_name(t.name, a.name, "max"),
              kind="max", **base)  # fmt: skip
    _numeric_trends(draft, t, a)


def _covers(t: EventTypeProfile, a: AttributeProfile) -> list[str]:
    """The attributes bounding `a` with nothing in between (hits for headshots, not shots)."""
    bounds = set(a.bounded_by)
    covers = []
    for b in sorted(bounds):
        other = t.attribute(b)
        if other is None or a.name in other.bounded_by:  # equal columns bound each other
            continue
        between = [c for c in bounds - {b} if (ca := t.attribute(c)) and b in ca.bounded_by]
        if not between:
            covers.append(b)
    return covers


def _part_of_whole(draft: _Draft, t: EventTypeProfile, a: AttributeProfile) -> None:
    for b in _covers(t, a):
        draft.add(
            f"{a.name} per {b} on {t.name}, last {WINDOW}: {a.name} never exceeds {b} on an event, a part "
            "of a whole (a rate such as hits per shot)",
            name=_name(t.name, a.name, "per", b, WINDOW), kind="ratio", window=WINDOW,
            numerator={"kind": "sum", "event_type": t.name, "attribute": a.name},
            denominator={"kind": "sum", "event_type": t.name, "attribute": b},
        )  # fmt: skip


def _shares(draft: _Draft, t: EventTypeProfile, a: AttributeProfile) -> None:
    for value, count in a.values:
        if not _SAFE_VALUE.match(value) or count < _MIN_SHARE_EVENTS * t.events:
            continue
        draft.add(
            f"share of {t.name} with {a.name} = {value} ({count:,} of {t.events:,} events), last {WINDOW}",
            name=_name(t.name, a.name, _slug(value), "share", WINDOW), kind="ratio", window=WINDOW,
            numerator={"kind": "count", "event_type": t.name,
                       "where": [{"attribute": a.name, "op": "eq", "value": value}]},
            denominator={"kind": "count", "event_type": t.name},
        )  # fmt: skip


def _monetary(draft: _Draft, t: EventTypeProfile, a: AttributeProfile) -> None:
    why = f"{a.name} on {t.name} looks like money: {_money_reason(a)}"
    draft.add(f"R of RFM: days since the last {t.name}; {why}", name=_name(t.name, "days_since_last"),
              kind="recency", event_type=t.name)  # fmt: skip
    for window in (WINDOW, *_long_windows(t), "lifetime"):
        draft.add(f"F of RFM: {t.name} events in {_window_words(window)}",
                  name=_name(t.name, "count", window), kind="count", event_type=t.name, window=window)  # fmt: skip
        draft.add(f"M of RFM: total {a.name} in {_window_words(window)}",
                  name=_name(t.name, a.name, "sum", window), kind="sum", event_type=t.name, attribute=a.name,
                  window=window)  # fmt: skip
    draft.add(f"M of RFM: mean {a.name} per {t.name}, all history",
              name=_name(t.name, a.name, "mean_lifetime"), kind="mean", event_type=t.name, attribute=a.name)  # fmt: skip


@dataclass(frozen=True)
class Suggestion:
    """The suggested feature set as YAML text (with its comments) and as a parsed FeatureSet."""

    text: str
    feature_set: FeatureSet
    skipped: tuple[str, ...]


def _yaml_lines(value: Any, indent: str) -> list[str]:
    dumped = yaml.safe_dump([value], sort_keys=False, default_flow_style=None, width=110)
    return [indent + line for line in dumped.rstrip("\n").splitlines()]


def _render(name: str, header: Iterable[str], labels: dict[str, str], label_notes: dict[str, str],
            entries: list[_Entry]) -> str:  # fmt: skip
    lines = [f"# {line}" if line else "#" for line in header]
    lines += [
        f"name: {name}",
        "description: Suggested from the lake's event types and attributes.",
        "labels:",
    ]
    for key in ("churn_event", "purchase_event"):
        lines.append(f"  # {label_notes[key]}")
        lines.append(f"  {key}: {labels[key]}" if key in labels else f"  # {key}: (none found)")
    lines.append("features:")
    for entry in entries:
        lines.append(f"  # {entry.comment}")
        lines += _yaml_lines(entry.definition, "  ")
    return "\n".join(lines) + "\n"


def suggest_feature_set(profile: LakeProfile, *, name: str = "suggested") -> Suggestion:
    """A feature set fitted to `profile`, with a comment per feature and per label choice."""
    usable = [t for t in profile.event_types if _IDENTIFIER.match(t.name)]
    skipped = tuple(t.name for t in profile.event_types if not _IDENTIFIER.match(t.name))
    session, session_why = session_event(profile)
    money = amount_attribute(profile)
    draft = _Draft()
    draft.add("days from the player's first event of any type", name="tenure_days", kind="tenure")
    draft.add("days since the player's last event of any type", name="days_since_last_event", kind="recency")
    draft.add(f"days with any event in the last {WINDOW}", name=_name("active_days", WINDOW),
              kind="active_days", window=WINDOW)  # fmt: skip
    if money is not None:
        _monetary(draft, *money)
    for t in usable:
        _event_type_features(draft, t, session)
    for t in usable:
        for a in _attributes(t, NUMBER):
            _numeric_features(draft, t, a)
            _part_of_whole(draft, t, a)
        for a in _attributes(t, STRING):
            _shares(draft, t, a)
    labels: dict[str, str] = {}
    notes = {"churn_event": f"churn: active in the lookback but no {session} in the horizon; {session_why}"}
    if session is None:
        notes["churn_event"] = f"churn: not defined; {session_why}"
    else:
        labels["churn_event"] = session
    if money is None:
        notes["purchase_event"] = "purchase: not defined; no event type carries an amount-like attribute"
    else:
        labels["purchase_event"] = money[0].name
        notes["purchase_event"] = (
            f"purchase: at least one {money[0].name} in the horizon; it carries {money[1].name}, "
            + _money_reason(money[1])
        )
    header = [
        (
            f"Suggested by `playerguard features suggest` from {sum(t.events for t in profile.event_types):,} "
            f"events of {len(profile.event_types)} types. Review and edit; semantics of each kind: default.yaml."
        ),
        "Event types: " + ", ".join(f"{t.name} ({t.events:,})" for t in profile.event_types) + ".",
    ]
    if skipped:
        header.append(
            "Not usable as written (lower snake case only; rename with the ingest mapping's `values:`): "
            + ", ".join(skipped) + "."
        )  # fmt: skip
    text = _render(name, header, labels, notes, draft.entries)
    fs = parse_feature_set(yaml.safe_load(text), default_name=name)
    return Suggestion(text, fs, skipped)
