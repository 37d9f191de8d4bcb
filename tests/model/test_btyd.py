"""BG/NBD: the fit recovers the parameters of data drawn from the BG/NBD process itself, stays finite for
players with no repeat purchase, and its predictions behave as the model says they must."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.training.btyd import BGNBD, log_likelihood


def simulate_bgnbd(
    players: int, r: float, alpha: float, a: float, b: float, age: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histories drawn from the BG/NBD story: Poisson purchases at rate λ ~ Gamma(r, α), and after each
    purchase the player leaves with probability p ~ Beta(a, b)."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(r, 1.0 / alpha, players)
    leave = rng.beta(a, b, players)
    frequency, recency = np.zeros(players), np.zeros(players)
    for i in range(players):
        t = 0.0
        while True:
            t += rng.exponential(1.0 / rates[i])
            if t > age:
                break
            frequency[i] += 1
            recency[i] = t
            if rng.random() < leave[i]:
                break
    return frequency, recency, np.full(players, age)


def test_the_fit_recovers_the_parameters_of_its_own_process() -> None:
    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    x, t_x, T = simulate_bgnbd(6000, **truth, age=52.0, seed=1)
    model = BGNBD().fit(x, t_x, T)
    fitted = dict(zip(("r", "alpha", "a", "b"), model.params_, strict=True))
    for name, value in truth.items():
        assert fitted[name] == pytest.approx(value, rel=0.25), (name, fitted)
    # the fitted parameters explain the data at least as well as the true ones
    assert model.log_likelihood_ >= log_likelihood(np.array(list(truth.values())), x, t_x, T).sum() - 1e-6


def test_players_without_repeat_purchases_and_long_histories_stay_finite() -> None:
    x, t_x, T = simulate_bgnbd(500, 0.3, 3.0, 1.2, 3.0, age=30.0, seed=2)
    model = BGNBD().fit(x, t_x, T)
    long_quiet = (np.zeros(3), np.zeros(3), np.array([1.0, 1e4, 1e7]))
    assert np.isfinite(log_likelihood(model.params_, *long_quiet)).all()
    assert (model.p_alive(*long_quiet) == 1.0).all()  # no repeat purchase: nothing to leave after
    probability = model.purchase_probability(30.0, *long_quiet)
    assert np.isfinite(probability).all() and probability[0] > probability[2] >= 0.0


def test_predictions_follow_recency_frequency_and_the_horizon() -> None:
    x, t_x, T = simulate_bgnbd(3000, 0.4, 2.0, 1.5, 4.0, age=40.0, seed=3)
    model = BGNBD().fit(x, t_x, T)
    recent, lapsed = model.p_alive([5, 5], [39.0, 5.0], [40.0, 40.0])
    assert recent > lapsed  # the same five purchases, the last one long ago: more likely gone
    short, long = model.purchase_probability(7.0, [3], [35.0], [40.0]), model.purchase_probability(90.0, [3], [35.0], [40.0])
    assert 0 < short[0] < long[0] < 1
    expected = model.expected_purchases(30.0, x, t_x, T)
    assert np.isfinite(expected).all() and (expected >= 0).all()
    busy = model.expected_purchases(30.0, [10], [39.0], [40.0])[0]
    quiet = model.expected_purchases(30.0, [1], [39.0], [40.0])[0]
    assert busy > quiet


def test_impossible_histories_are_refused() -> None:
    with pytest.raises(DataError, match="recency <= age"):
        BGNBD().fit(np.ones(20), np.full(20, 50.0), np.full(20, 40.0))
    with pytest.raises(DataError, match="not fitted"):
        BGNBD().p_alive([1], [1.0], [2.0])


def _btyd_frame(players: int, cutoffs: int, seed: int) -> pd.DataFrame:

    frames = []
    for k in range(cutoffs):
        x, t_x, T = simulate_bgnbd(players, 0.4, 2.0, 1.5, 4.0, age=40.0 + 7 * k, seed=seed + k)
        horizon_x, _, _ = simulate_bgnbd(players, 0.4, 2.0, 1.5, 4.0, age=14.0, seed=seed + 100 + k)
        frames.append(
            pd.DataFrame(
                {
                    "player_id": [f"p{i}" for i in range(players)],
                    "cutoff": pd.Timestamp("2026-02-01", tz="UTC") + pd.Timedelta(days=7 * k),
                    "purchases_lifetime": x + 1,  # the first purchase too
                    "days_since_last_purchase": T - t_x,
                    "days_since_first_purchase": T,
                    "sessions_7d": np.random.default_rng(seed + k).poisson(3, players).astype(float),
                    "label_purchase": ((x > 0) & (horizon_x > 0)).astype("int8"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).astype({"label_purchase": "Int8"})


def test_bgnbd_is_a_purchase_candidate_that_saves_loads_and_explains(tmp_path) -> None:
    from playerguard.training.base import load_model
    from playerguard.training.btyd_model import BTYDColumns, BTYDPurchaseModel
    from playerguard.training.fitting import fit_model

    frame = _btyd_frame(1500, 4, seed=7)
    columns = BTYDColumns("purchases_lifetime", "days_since_last_purchase", "days_since_first_purchase")
    fitted = fit_model("purchase", frame, {"n_estimators": 30, "n_jobs": 1}, 14, columns)
    assert set(fitted.candidates) == {"xgboost", "logistic_baseline", "btyd"}
    btyd = fitted.candidates["btyd"].model
    assert isinstance(btyd, BTYDPurchaseModel)
    btyd.save(tmp_path / "btyd")
    loaded = load_model("purchase", tmp_path / "btyd")
    rows = fitted.test[columns.as_list()]
    np.testing.assert_allclose(loaded.predict_score(rows), btyd.predict_score(rows))
    reasons = loaded.explain(rows.head(5), top_k=2)
    assert all(1 <= len(r) <= 2 and r[0]["name"] in columns.as_list() for r in reasons)
    without = fit_model("purchase", frame, {"n_estimators": 30, "n_jobs": 1}, 14, None)
    assert "btyd" not in without.candidates
