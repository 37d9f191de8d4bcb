"""One spelling for every duration, on the command line, in feature sets and in policies: `28d`, `12h`."""

from __future__ import annotations

import re
from datetime import timedelta

from playerguard.errors import ConfigError

_DURATION = re.compile(r"^([0-9]{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: object, what: str = "duration", *, allow_zero: bool = False) -> timedelta:
    """`28d`, `12h`, `30m`, `45s` or `2w` (a whole number and a unit), a timedelta, or a number of seconds.

    Anything else, a negative duration, or zero unless `allow_zero`, is a ConfigError naming `what`.
    """
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        duration = timedelta(seconds=float(value))
    else:
        match = _DURATION.match(value.strip()) if isinstance(value, str) else None
        if match is None:
            hint = f" (did you mean {value.strip()}d?)" if isinstance(value, str) and value.strip().isdigit() else ""
            raise ConfigError(
                f"{what} must be a duration such as 28d or 12h (a whole number then s, m, h, d or w), "
                f"got {value!r}{hint}"
            )
        duration = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if duration < timedelta(0) or (duration == timedelta(0) and not allow_zero):
        raise ConfigError(f"{what} must be a duration longer than zero such as 28d, got {value!r}")
    return duration


def parse_days(value: object, what: str = "duration") -> int:
    """A duration that must be a whole number of days (`28d`, `2w`), as an int."""
    duration = parse_duration(value, what)
    if duration % timedelta(days=1):
        raise ConfigError(f"{what} {value!r} must be a whole number of days (e.g. 28d)")
    return duration.days


def format_days(days: int) -> str:
    """The spelling of a whole number of days, for messages and defaults: 28 → `28d`."""
    return f"{days}d"
