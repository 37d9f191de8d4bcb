"""Metrics against scikit-learn where it has them, and against hand-worked examples where it does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from playerguard.errors import DataError
from playerguard.training import metrics as m


@pytest.fixture(params=[0, 1, 2])
def labelled_scores(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(request.param)
    y = (rng.random(500) < 0.2).astype(int)
    # Rounded scores so that ties occur, which is where hand-written metrics usually go wrong.
    scores = np.round(np.clip(0.3 * y + rng.normal(0.4, 0.2, y.size), 0, 1), 2)
    return y, scores


def test_roc_auc_matches_sklearn(labelled_scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = labelled_scores
    assert m.roc_auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_pr_auc_matches_sklearn_average_precision(labelled_scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = labelled_scores
    assert m.pr_auc(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)


def test_brier_matches_sklearn(labelled_scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = labelled_scores
    assert m.brier_score(y, s) == pytest.approx(skm.brier_score_loss(y, s), abs=1e-12)


def test_roc_curve_matches_sklearn(labelled_scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = labelled_scores
    fpr, tpr = m.roc_curve(y, s)
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.2])
def test_recall_at_fpr_is_the_best_recall_sklearn_reaches_within_that_fpr(
    labelled_scores: tuple[np.ndarray, np.ndarray], fpr: float
) -> None:
    y, s = labelled_scores
    sk_fpr, sk_tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    assert m.recall_at_fpr(y, s, fpr) == pytest.approx(sk_tpr[sk_fpr <= fpr].max())
    threshold = m.threshold_at_fpr(y, s, fpr)
    assert np.mean(s[y == 0] >= threshold) <= fpr


def test_threshold_at_fpr_on_a_known_example() -> None:
    negatives = np.arange(100) / 100.0  # 0.00 .. 0.99
    y = np.r_[np.zeros(100), np.ones(3)]
    s = np.r_[negatives, 0.985, 0.97, 0.5]
    # 1% of 100 negatives: one false positive allowed (0.99); the threshold sits just above 0.98.
    threshold = m.threshold_at_fpr(y, s, 0.01)
    assert 0.98 < threshold <= 0.985
    assert m.recall_at_fpr(y, s, 0.01) == pytest.approx(1 / 3)
    assert m.threshold_at_fpr(y, s, 0.0) > 0.99


def test_the_operating_threshold_spends_only_the_budget_that_buys_recall() -> None:
    rng = np.random.default_rng(4)
    negatives, positives = rng.uniform(0, 0.01, 1000), rng.uniform(0.6, 1.0, 50)
    y, s = np.r_[np.zeros(1000), np.ones(50)], np.r_[negatives, positives]
    lowest, chosen = m.threshold_at_fpr(y, s, 0.01), m.operating_threshold(y, s, 0.01)
    assert lowest < 0.01 and positives.min() > chosen > 0.05  # midway in log-odds, ~0.07
    assert np.mean(positives >= chosen) == np.mean(positives >= lowest) == 1.0
    assert np.mean(negatives >= chosen) == 0 < np.mean(negatives >= lowest)
    # overlapping classes: the edge is the lowest positive caught within the budget
    y, s = np.r_[np.zeros(100), np.ones(3)], np.r_[np.arange(100) / 100.0, 0.985, 0.97, 0.5]
    assert m.threshold_at_fpr(y, s, 0.01) <= m.operating_threshold(y, s, 0.01) <= 0.985
    # without positives there is nothing to buy: the budget's own threshold
    assert m.operating_threshold(np.zeros(1000), negatives, 0.01) == m.threshold_at_fpr(
        np.zeros(1000), negatives, 0.01
    )


def test_ece_is_zero_when_every_bin_matches_its_observed_rate() -> None:
    y = np.r_[np.ones(2), np.zeros(8), np.ones(7), np.zeros(3)]
    p = np.r_[np.full(10, 0.2), np.full(10, 0.7)]
    assert m.expected_calibration_error(y, p) == pytest.approx(0.0)


def test_ece_on_hand_worked_examples() -> None:
    # One bin: mean prediction 0.8, observed rate 0.5.
    assert m.expected_calibration_error(np.r_[np.ones(5), np.zeros(5)], np.full(10, 0.8)) == pytest.approx(
        0.3
    )
    # Two bins: 4 rows at 0.1 with 2 positives (gap 0.4), 6 rows at 0.95 with 6 positives (gap 0.05).
    y = np.r_[1, 1, 0, 0, np.ones(6)]
    p = np.r_[np.full(4, 0.1), np.full(6, 0.95)]
    assert m.expected_calibration_error(y, p) == pytest.approx(0.4 * 0.4 + 0.6 * 0.05)
    # A probability of exactly 1 falls in the last bin, not an eleventh one.
    assert m.expected_calibration_error(np.array([1, 1]), np.array([1.0, 1.0])) == pytest.approx(0.0)


def test_calibration_bins_count_rows_per_bin() -> None:
    _, observed, counts = m.calibration_bins(np.array([0, 1, 1, 0]), np.array([0.05, 0.15, 0.95, 1.0]))
    assert counts.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert observed[9] == pytest.approx(0.5)
    assert math.isnan(observed[5])


def test_lift_in_the_top_decile() -> None:
    y = np.r_[np.ones(5), np.zeros(5), np.ones(5), np.zeros(85)]  # base rate 0.1
    s = np.linspace(1, 0, y.size)  # the top 10 rows hold 5 positives
    assert m.lift_at_top(y, s, 0.1) == pytest.approx(5.0)
    deciles = m.lift_by_decile(y, s)
    assert deciles.size == 10
    assert deciles[0] == pytest.approx(5.0) and deciles[1] == pytest.approx(5.0)
    assert deciles.mean() == pytest.approx(1.0)


def test_ranking_metrics_are_nan_with_a_single_class() -> None:
    y, s = np.zeros(10), np.linspace(0, 1, 10)
    for metric in (m.roc_auc, m.pr_auc, m.recall_at_fpr):
        assert math.isnan(metric(y, s))
    assert math.isnan(m.threshold_at_fpr(np.ones(3), np.ones(3)))


def test_evaluate_reports_every_headline_metric(labelled_scores: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = labelled_scores
    result = m.evaluate(y, s, target_fpr=0.05)
    assert set(result) == {
        "roc_auc", "pr_auc", "brier", "ece", "lift_top_decile", "recall_at_fpr", "threshold_at_fpr",
        "rows", "positives", "base_rate",
    }  # fmt: skip
    assert result["recall_at_fpr"] == m.recall_at_fpr(y, s, 0.05)
    assert result["rows"] == y.size and result["positives"] == y.sum()


@pytest.mark.parametrize(
    ("y", "s", "message"),
    [
        (np.array([0, 1]), np.array([0.5]), "length"),
        (np.array([0, 2]), np.array([0.5, 0.5]), "0 or 1"),
        (np.array([0, 1]), np.array([0.5, np.nan]), "finite"),
        (np.array([]), np.array([]), "zero rows"),
    ],
)
def test_bad_input_is_a_clear_error(y: np.ndarray, s: np.ndarray, message: str) -> None:
    with pytest.raises(DataError, match=message):
        m.roc_auc(y, s)


def test_probabilities_outside_unit_interval_are_rejected_by_calibration_metrics() -> None:
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        m.expected_calibration_error(np.array([0, 1]), np.array([-0.1, 0.5]))
