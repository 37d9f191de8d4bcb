"""Drift on an unchanging game: features that grow with its age are reported, never alerted on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from playerguard.features.spec import load_feature_set
from playerguard.pipelines.drift import AGE_DEPENDENT, latest_cutoff_drift


def unchanging_game(weeks: int = 4, players: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Weekly cutoffs of one stationary population: only tenure and lifetime totals grow with age."""
    rng = np.random.default_rng(seed)
    frames = []
    for week in range(weeks):
        days = 7.0 * (week + 1)
        frames.append(
            pd.DataFrame(
                {
                    "player_id": [f"p{i}" for i in range(players)],
                    "cutoff": pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(days=days),
                    "tenure_days": rng.uniform(0, days, players),
                    "purchases_lifetime": rng.poisson(0.2 * days, players).astype(float),
                    "sessions_7d": rng.poisson(4, players).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_the_default_sets_age_dependent_features_are_tenure_and_lifetime_totals() -> None:
    aging = load_feature_set("default").age_dependent
    assert "tenure_days" in aging and "purchases_lifetime" in aging and "spend_lifetime" in aging
    assert "sessions_7d" not in aging and "days_since_last_event" not in aging
    assert "purchase_amount_mean_lifetime" not in aging  # a mean over all history does not grow


def test_an_unchanging_game_raises_no_alert_but_the_shift_is_reported() -> None:
    frame = unchanging_game()
    alarmed = latest_cutoff_drift(frame)
    assert set(alarmed.drifted["name"]) == {"tenure_days", "purchases_lifetime"}  # what the alert used to say
    report = latest_cutoff_drift(frame, age_dependent=load_feature_set("default").age_dependent)
    assert not report.any_drift
    aging = report.table.set_index("name").loc[["tenure_days", "purchases_lifetime"]]
    assert (aging["kind"] == AGE_DEPENDENT).all() and (aging["psi"] > 0.2).all()


def test_a_real_shift_in_a_windowed_feature_still_alerts() -> None:
    frame = unchanging_game()
    latest = frame["cutoff"] == frame["cutoff"].max()
    frame.loc[latest, "sessions_7d"] *= 3
    report = latest_cutoff_drift(frame, age_dependent=["tenure_days", "purchases_lifetime"])
    assert list(report.drifted["name"]) == ["sessions_7d"]


def test_reference_cutoffs_whose_windows_the_games_start_cut_short_are_left_out() -> None:
    frame = unchanging_game(weeks=6)
    cutoffs = sorted(frame["cutoff"].unique())
    early = frame["cutoff"] < cutoffs[3]  # windows reaching back before the game started: truncated
    frame.loc[early, "sessions_7d"] *= 3
    assert "sessions_7d" in set(latest_cutoff_drift(frame).drifted["name"])
    report = latest_cutoff_drift(frame, age_dependent=["tenure_days", "purchases_lifetime"], full_windows_from=cutoffs[3])
    assert not report.any_drift and report.reference_rows == 2 * 2000
