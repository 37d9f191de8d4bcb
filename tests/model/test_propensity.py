"""Behaviour of the churn and purchase models on synthetic players with a known generating process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from scipy.special import expit

from playerguard.errors import ConfigError, DataError
from playerguard.training.metrics import expected_calibration_error, roc_auc
from playerguard.training.propensity import Calibrator, ChurnModel, LogisticBaseline, PurchaseModel

FAST = {"n_estimators": 60, "learning_rate": 0.15, "max_depth": 3, "early_stopping_rounds": 10, "n_jobs": 1}


def _players(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sessions_7d = rng.poisson(3, n).astype(float)
    return pd.DataFrame(
        {
            "player_id": [f"s{seed}-p{i}" for i in range(n)],
            "sessions_7d": sessions_7d,
            "sessions_28d": sessions_7d + rng.poisson(8, n),
            "days_since_last_session": rng.exponential(5, n),
            "purchases_28d": rng.poisson(0.5, n).astype(float),
            "session_seconds_mean_28d": rng.uniform(0, 3600, n),
            "accuracy_28d": np.where(rng.random(n) < 0.1, np.nan, rng.beta(5, 10, n)),
        }
    )


def _churn_probability(x: pd.DataFrame) -> np.ndarray:
    return expit(0.3 - 0.5 * x["sessions_7d"] + 0.3 * x["days_since_last_session"] - 0.02 * x["sessions_28d"])


def _with_labels(x: pd.DataFrame, probability: np.ndarray, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    y = (np.random.default_rng(seed + 1000).random(len(x)) < probability).astype(int)
    return x, pd.Series(y, dtype="Int8")


@pytest.fixture(scope="module")
def churn_data() -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    parts = {"train": 1, "val": 2, "test": 3}
    return {
        part: _with_labels(x, _churn_probability(x), seed)
        for part, seed in parts.items()
        for x in [_players(3000, seed)]
    }


@pytest.fixture(scope="module")
def churn(churn_data: dict[str, tuple[pd.DataFrame, pd.Series]]) -> ChurnModel:
    (X, y), (X_val, y_val) = churn_data["train"], churn_data["val"]
    return ChurnModel(**FAST).fit(X, y, X_val=X_val, y_val=y_val)


def test_more_sessions_in_the_last_week_never_raise_churn_risk(
    churn: ChurnModel, churn_data: dict[str, tuple[pd.DataFrame, pd.Series]]
) -> None:
    rows = churn_data["test"][0].head(200)
    grid = np.arange(0, 15)
    scores = np.column_stack([churn.predict_score(rows.assign(sessions_7d=float(v))) for v in grid])
    assert np.all(np.diff(scores, axis=1) <= 1e-12)
    longer_absence = np.column_stack(
        [churn.predict_score(rows.assign(days_since_last_session=float(v))) for v in range(0, 30, 3)]
    )
    assert np.all(np.diff(longer_absence, axis=1) >= -1e-12)
    assert churn.monotone_constraints_["sessions_7d"] == -1
    assert "days_since_last_event" not in churn.monotone_constraints_  # absent from the data


def test_more_purchases_never_lower_purchase_propensity() -> None:
    def probability(x: pd.DataFrame) -> np.ndarray:
        return expit(-2.0 + 1.0 * x["purchases_28d"] + 0.1 * x["sessions_7d"])

    (X, y), (X_val, y_val) = (
        _with_labels(x, probability(x), seed) for seed in (4, 5) for x in [_players(2500, seed)]
    )
    model = PurchaseModel(**FAST).fit(X, y, X_val=X_val, y_val=y_val)
    rows = X.head(200)
    scores = np.column_stack([model.predict_score(rows.assign(purchases_28d=float(v))) for v in range(8)])
    assert np.all(np.diff(scores, axis=1) >= -1e-12)


def test_score_does_not_depend_on_player_id(churn: ChurnModel, churn_data: dict) -> None:
    rows = churn_data["test"][0].head(300)
    renamed = rows.assign(player_id=[f"other-{i}" for i in range(len(rows))])
    expected = churn.predict_score(rows)
    np.testing.assert_array_equal(churn.predict_score(renamed), expected)
    np.testing.assert_array_equal(churn.predict_score(rows.drop(columns="player_id")), expected)
    assert "player_id" not in churn.feature_names_


def test_calibrated_probabilities_match_observed_rates_on_held_out_players(
    churn: ChurnModel, churn_data: dict
) -> None:
    X_test, y_test = churn_data["test"]
    scores = churn.predict_score(X_test)
    y = y_test.to_numpy(dtype=int)
    assert expected_calibration_error(y, scores) < 0.04
    assert abs(scores.mean() - y.mean()) < 0.03
    # Class weighting alone would inflate the probabilities; the calibrator must have undone it.
    raw = expit(churn._margin(X_test[churn.feature_names_]))
    assert expected_calibration_error(y, raw) > expected_calibration_error(y, scores)


def test_boosting_beats_logistic_where_the_signal_is_not_linear() -> None:
    # Purchases peak for mid-length sessions: a bump no linear model can express.
    def bump(x: pd.DataFrame) -> np.ndarray:
        return expit(-2.5 + 4.0 * (np.abs(x["session_seconds_mean_28d"] - 1800) < 600))

    (X, y), (X_val, y_val), (X_test, y_test) = (
        _with_labels(x, bump(x), seed) for seed in (6, 7, 8) for x in [_players(2500, seed)]
    )
    model = PurchaseModel(**FAST).fit(X, y, X_val=X_val, y_val=y_val)
    baseline = LogisticBaseline(features=None).fit(X, y)
    truth = y_test.to_numpy(dtype=int)
    boosted, linear = (
        roc_auc(truth, model.predict_score(X_test)),
        roc_auc(truth, baseline.predict_score(X_test)),
    )
    assert boosted > linear + 0.1, (boosted, linear)


def test_save_and_load_round_trip_is_identical(churn: ChurnModel, churn_data: dict, tmp_path: Path) -> None:
    rows = churn_data["test"][0].head(500)
    churn.save(tmp_path / "churn")
    assert sorted(p.name for p in (tmp_path / "churn").iterdir()) == ["booster.json", "model.json"]
    loaded = ChurnModel.load(tmp_path / "churn")
    np.testing.assert_array_equal(loaded.predict_score(rows), churn.predict_score(rows))
    assert loaded.explain(rows, top_k=3) == churn.explain(rows, top_k=3)
    assert loaded.feature_names_ == churn.feature_names_ and loaded.saved_params() == churn.saved_params()
    with pytest.raises(DataError, match="not a 'purchase' model"):
        PurchaseModel.load(tmp_path / "churn")


def test_reasons_are_treeshap_contributions_most_important_first(churn: ChurnModel, churn_data: dict) -> None:
    rows = churn_data["test"][0].head(50).reset_index(drop=True)
    rows.loc[0, "accuracy_28d"] = np.nan
    contributions = churn.contributions(rows)
    bias = churn.booster_.predict(xgb.DMatrix(rows[churn.feature_names_]), pred_contribs=True)[:, -1]
    # TreeSHAP is exact: contributions plus bias add up to the margin.
    np.testing.assert_allclose(
        contributions.sum(axis=1) + bias, churn._margin(rows[churn.feature_names_]), atol=1e-4
    )
    reasons = churn.explain(rows, top_k=3)
    assert len(reasons) == len(rows)
    for row, row_reasons in enumerate(reasons):
        assert 1 <= len(row_reasons) <= 3
        magnitudes = [abs(r["contribution"]) for r in row_reasons]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert magnitudes[0] == pytest.approx(contributions.iloc[row].abs().max())
        for reason in row_reasons:
            assert reason["kind"] == "feature" and reason["name"] in churn.feature_names_
            value = rows.loc[row, reason["name"]]
            assert reason["value"] == (None if pd.isna(value) else pytest.approx(value))


def test_missing_columns_are_nan_and_extra_columns_ignored(churn: ChurnModel, churn_data: dict) -> None:
    rows = churn_data["test"][0].head(100)
    without = rows.drop(columns="accuracy_28d").assign(unrelated=1.0)
    np.testing.assert_array_equal(
        churn.predict_score(without), churn.predict_score(rows.assign(accuracy_28d=np.nan))
    )
    with pytest.raises(DataError, match="none of the"):
        churn.predict_score(pd.DataFrame({"player_id": ["a"], "other": [1.0]}))


def test_fit_without_a_validation_window_holds_out_rows(churn_data: dict) -> None:
    X, y = churn_data["train"]
    model = ChurnModel(**FAST).fit(X, y)
    scores = model.predict_score(churn_data["test"][0])
    assert scores.shape == (len(churn_data["test"][0]),)
    assert 0.0 <= scores.min() and scores.max() <= 1.0


def test_invalid_input_is_a_clear_error(churn_data: dict) -> None:
    X, y = churn_data["train"]
    with pytest.raises(DataError, match="both positive and negative"):
        ChurnModel(**FAST).fit(X, pd.Series(np.zeros(len(X), dtype=int)))
    with pytest.raises(DataError, match="missing values"):
        ChurnModel(**FAST).fit(X, pd.Series([pd.NA] * len(X), dtype="Int8"))
    with pytest.raises(ConfigError, match="must be -1, 0 or 1"):
        ChurnModel(monotone={"sessions_7d": 2}, **FAST).fit(X, y)
    with pytest.raises(ConfigError, match="unknown calibration"):
        Calibrator("magic")


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibrators_round_trip_through_json(method: str) -> None:
    rng = np.random.default_rng(0)
    margin = rng.normal(size=2000)
    y = (rng.random(2000) < expit(2 * margin - 1)).astype(int)
    calibrator = Calibrator(method).fit(margin, y)
    again = Calibrator.from_dict(calibrator.to_dict())
    np.testing.assert_array_equal(again.predict(margin), calibrator.predict(margin))
    assert np.all(np.diff(calibrator.predict(np.sort(margin))) >= 0)
