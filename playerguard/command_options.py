"""Options every command spells the same way: `--home DIR`, `--cutoff 2026-03-01`, `--horizon 14d`,
`--lookback 28d`, `--active-within 90d`, `--format table|plain|json`; and the settings they build."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from playerguard.errors import ConfigError
from playerguard.settings import Settings

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="State directory (default: PLAYERGUARD_HOME or ./.playerguard)."),
]
CutoffOption = Annotated[
    str, typer.Option("--cutoff", help="Cutoff: YYYY-MM-DD or ISO 8601 time (UTC if no zone).")
]
HorizonOption = Annotated[str, typer.Option("--horizon", help="Label window after each cutoff, e.g. 14d.")]
LookbackOption = Annotated[str, typer.Option("--lookback", help="Feature window before each cutoff, e.g. 28d.")]
ActiveWithinOption = Annotated[
    str | None, typer.Option("--active-within", help="Only players with an event this recently, e.g. 90d.")
]
FeatureSetOption = Annotated[
    str, typer.Option("--feature-set", help="Packaged set (default, combat) or a path to a .yaml file.")
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", help="table (aligned; the default in a terminal), plain (tab-separated; the default when "
        "piped) or json."
    ),
]


def settings_for(home: Path | None) -> Settings:
    """The settings, with `--home` over PLAYERGUARD_HOME."""
    return Settings(home=home) if home else Settings()


def parse_cutoff(text: str | datetime) -> datetime:
    """A cutoff from `YYYY-MM-DD`, an ISO 8601 timestamp or a datetime; without a zone it is UTC."""
    if isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(str(text).strip())
        except ValueError:
            raise ConfigError(f"invalid cutoff {text!r}: use YYYY-MM-DD or an ISO 8601 timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_active_within(text: str | None) -> int | None:
    """`--active-within` in whole days, or None when it was not given."""
    from playerguard.durations import parse_days

    return parse_days(text, "--active-within") if text else None
