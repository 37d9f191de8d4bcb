"""The logistic baseline as a model that ships: calibration, reasons, JSON persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from playerguard.errors import DataError
from playerguard.training.base import class_path_of, kind_of, load_model
from playerguard.training.logistic import LogisticBaseline, LogisticChurnModel, LogisticPurchaseModel
from playerguard.training.metrics import expected_calibration_error, roc_auc


def _players(n: int, seed: int, base: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "player_id": [f"s{seed}-{i}" for i in range(n)],
            "sessions_7d": rng.poisson(3, n).astype(float),
            "days_since_last_session": rng.exponential(5, n),
            "days_since_last_purchase": np.where(rng.random(n) < 0.4, np.nan, rng.exponential(10, n)),
            "accuracy_28d": rng.beta(5, 10, n),  # not a recency/frequency feature: left out by default
        }
    )
    y = pd.Series((rng.random(n) < expit(_true_logit(frame, base))).astype(int), dtype="Int8")
    return frame, y


def _true_logit(frame: pd.DataFrame, base: float) -> np.ndarray:
    logit = base + 0.3 - 0.5 * frame["sessions_7d"] + 0.25 * frame["days_since_last_session"]
    return (logit + np.where(frame["days_since_last_purchase"].isna(), 1.0, 0.0)).to_numpy()


@pytest.fixture(scope="module")
def fitted() -> tuple[LogisticChurnModel, dict]:
    data = {"train": _players(3000, 1), "val": _players(2000, 2, base=1.0), "test": _players(2000, 3, base=1.0)}
    (X, y), (X_val, y_val) = data["train"], data["val"]
    return LogisticChurnModel().fit(X, y, X_val=X_val, y_val=y_val), data


def test_uses_the_recency_frequency_features_and_ranks_well(fitted: tuple) -> None:
    model, data = fitted
    assert model.feature_names_ == ["days_since_last_session", "days_since_last_purchase", "sessions_7d"]
    assert model.flagged_.tolist() == [False, True, False]  # only a feature that can be missing gets a flag
    X_test, y_test = data["test"]
    y = y_test.to_numpy(int)
    assert roc_auc(y, model.predict_score(X_test)) > roc_auc(y, _true_logit(X_test, 1.0)) - 0.005
    assert kind_of(model) == "logistic_baseline"
    assert class_path_of(model) == "playerguard.training.logistic:LogisticChurnModel"


def test_recalibration_on_the_validation_window_follows_a_moved_base_rate(fitted: tuple) -> None:
    model, data = fitted
    X_test, y_test = data["test"]  # its base rate moved (intercept + 1) since the training rows
    y = y_test.to_numpy(int)
    calibrated, raw = model.predict_score(X_test), expit(model.margin(X_test))
    assert abs(calibrated.mean() - y.mean()) < 0.03
    assert expected_calibration_error(y, calibrated) < 0.04 < expected_calibration_error(y, raw)


def test_contributions_are_coefficient_times_standardised_value_and_sum_to_the_log_odds(fitted: tuple) -> None:
    model, data = fitted
    rows = data["test"][0].head(50)
    contributions = model.contributions(rows)
    np.testing.assert_allclose(contributions.sum(axis=1) + model.intercept_, model.margin(rows))
    sessions = model.feature_names_.index("sessions_7d")
    z = (rows["sessions_7d"] - model.mean_[sessions]) / model.scale_[sessions]
    np.testing.assert_allclose(contributions["sessions_7d"], model.coef_[sessions] * z)
    reasons = model.explain(rows, top_k=2)
    for row, row_reasons in zip(range(len(rows)), reasons, strict=True):
        assert len(row_reasons) == 2
        magnitudes = [abs(r["contribution"]) for r in row_reasons]
        assert magnitudes == sorted(magnitudes, reverse=True)
        assert magnitudes[0] == pytest.approx(contributions.iloc[row].abs().max())
    missing = rows.loc[rows["days_since_last_purchase"].isna()].head(1)
    reason = next(
        r for r in model.explain(missing, top_k=3)[0] if r["name"] == "days_since_last_purchase"
    )
    assert reason["value"] is None and reason["contribution"] > 0  # never buying raised the risk


def test_save_load_is_json_and_identical(fitted: tuple, tmp_path: Path) -> None:
    model, data = fitted
    rows = data["test"][0].head(300)
    model.save(tmp_path / "churn")
    assert [p.name for p in (tmp_path / "churn").iterdir()] == ["model.json"]
    loaded = load_model("churn", tmp_path / "churn")  # the saved kind picks the class
    assert type(loaded) is LogisticChurnModel
    np.testing.assert_array_equal(loaded.predict_score(rows), model.predict_score(rows))
    assert loaded.explain(rows) == model.explain(rows)
    assert loaded.saved_params() == model.saved_params()
    with pytest.raises(DataError, match="not a 'purchase' model of kind 'logistic_baseline'"):
        LogisticPurchaseModel.load(tmp_path / "churn")
    from playerguard.training.propensity import ChurnModel

    with pytest.raises(DataError, match="of kind 'logistic_baseline'"):
        ChurnModel.load(tmp_path / "churn")


def test_extra_rows_join_the_fit_and_bad_input_is_refused() -> None:
    (X, y), (X_more, y_more) = _players(400, 4), _players(400, 5)
    alone = LogisticBaseline().fit(X, y)
    more = LogisticBaseline().fit(X, y, X_extra=X_more, y_extra=y_more)
    both = LogisticBaseline().fit(pd.concat([X, X_more]), pd.concat([y, y_more]))
    np.testing.assert_allclose(more.coef_, both.coef_)
    assert not np.allclose(alone.coef_, more.coef_)
    with pytest.raises(DataError, match="both positive and negative"):
        LogisticBaseline().fit(X, pd.Series(np.zeros(len(X), dtype=int)))
    with pytest.raises(DataError, match="X_extra was given without y_extra"):
        LogisticBaseline().fit(X, y, X_extra=X_more)
    # Unknown features fall back to every feature column; the baseline never uses player_id.
    assert LogisticBaseline(features=("nope",)).fit(X, y).feature_names_ == [
        "sessions_7d", "days_since_last_session", "days_since_last_purchase", "accuracy_28d",
    ]  # fmt: skip
