"""The console's own settings, read from `PLAYERGUARD_*` like the package's `Settings`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReviewSettings(BaseSettings):
    """Who reviews, and the token remote clients must present.

    Kept apart from `playerguard.settings.Settings`: those are the pipeline's settings; these only matter to
    the console. Other `PLAYERGUARD_*` variables are the pipeline's business, hence `extra="ignore"`.
    """

    model_config = SettingsConfigDict(env_prefix="PLAYERGUARD_", extra="ignore", frozen=True)

    reviewer: str | None = Field(
        default=None, description="Name recorded on each verdict (PLAYERGUARD_REVIEWER)."
    )
    review_token: str | None = Field(
        default=None,
        description="Token a client must present (PLAYERGUARD_REVIEW_TOKEN); needed off loopback.",
    )
