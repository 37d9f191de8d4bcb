"""PSI on known distributions: identical → about 0, shifted → large, NaN as its own bin."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from playerguard.errors import DataError
from playerguard.pipelines.drift import bin_shares, drift_report, psi, quantile_edges


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def test_identical_distributions_have_psi_near_zero(rng: np.random.Generator) -> None:
    reference = rng.normal(0.0, 1.0, 20_000)
    current = rng.normal(0.0, 1.0, 20_000)
    assert psi(reference, current) < 0.01
    assert psi(reference, reference) == pytest.approx(0.0, abs=1e-12)


def test_shifted_distribution_has_large_psi(rng: np.random.Generator) -> None:
    reference = rng.normal(0.0, 1.0, 20_000)
    assert psi(reference, rng.normal(1.0, 1.0, 20_000)) > 0.5
    small = psi(reference, rng.normal(0.2, 1.0, 20_000))
    assert 0.01 < small < 0.2


def test_psi_matches_the_formula_on_a_hand_computed_case() -> None:
    # Reference quartiles of 1..8 split it into four bins of two; current puts 4 of 8 values in the top bin.
    reference = np.arange(1.0, 9.0)
    current = np.array([1.0, 3.0, 5.0, 7.0, 8.0, 8.0, 8.0, 8.0])
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    actual = np.array([1 / 8, 1 / 8, 1 / 8, 5 / 8])
    want = float(np.sum((actual - expected) * np.log(actual / expected)))
    assert psi(reference, current, bins=4) == pytest.approx(want)


def test_missing_values_are_their_own_bin(rng: np.random.Generator) -> None:
    values = rng.normal(0.0, 1.0, 10_000)
    with_nan = values.copy()
    with_nan[: values.size // 2] = np.nan
    # Same non-missing values, but half of them now missing: a shift in missingness is drift.
    assert psi(values, with_nan) > 1.0
    # The same missing rate on both sides is not drift.
    assert psi(with_nan, with_nan.copy()) == pytest.approx(0.0, abs=1e-12)
    edges = quantile_edges(with_nan, 10)
    shares = bin_shares(with_nan, edges)
    assert shares[-1] == pytest.approx(0.5)
    assert shares.sum() == pytest.approx(1.0)


def test_all_missing_reference_compares_missingness_only() -> None:
    reference = np.full(100, np.nan)
    assert psi(reference, np.full(50, np.nan)) == pytest.approx(0.0, abs=1e-12)
    assert psi(reference, np.ones(50)) > 1.0


def test_empty_bins_use_epsilon_and_stay_finite() -> None:
    reference = np.zeros(1000)
    current = np.full(1000, 5.0)
    value = psi(reference, current, epsilon=1e-4)
    assert np.isfinite(value) and value > 5.0


def test_tied_quantiles_are_merged() -> None:
    reference = np.r_[np.zeros(800), np.ones(150), np.full(50, 3.0)]
    edges = quantile_edges(reference, 10)
    assert list(edges) == sorted(set(edges))
    assert psi(reference, reference[::-1].copy()) == pytest.approx(0.0, abs=1e-12)


def test_bad_input_raises_one_line_errors() -> None:
    with pytest.raises(DataError, match="no rows"):
        psi([], [1.0])
    with pytest.raises(DataError, match="not numeric"):
        psi(["a", "b"], [1.0])
    with pytest.raises(DataError, match="at least one bin"):
        psi([1.0], [1.0], bins=0)


def _frames(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = 4000
    reference = pd.DataFrame(
        {
            "player_id": [f"p{i}" for i in range(n)],
            "cutoff": pd.Timestamp("2025-01-01", tz="UTC"),
            "stable": rng.normal(0, 1, n),
            "shifted": rng.normal(0, 1, n),
            "label_churn": pd.array(rng.integers(0, 2, n), dtype="Int8"),
            "score_churn": rng.beta(2, 5, n),
        }
    )
    current = pd.DataFrame(
        {
            "player_id": [f"q{i}" for i in range(n)],
            "cutoff": pd.Timestamp("2025-02-01", tz="UTC"),
            "stable": rng.normal(0, 1, n),
            "shifted": rng.normal(2, 1, n),
            "label_churn": pd.array(rng.integers(0, 2, n), dtype="Int8"),
            "score_churn": rng.beta(5, 2, n),
        }
    )
    return reference, current


def test_drift_report_sorts_flags_and_labels_kinds(rng: np.random.Generator) -> None:
    reference, current = _frames(rng)
    report = drift_report(reference, current, threshold=0.2)
    assert set(report.table["name"][:2]) == {"shifted", "score_churn"}
    assert set(report.table["name"]) == {"stable", "shifted", "score_churn"}  # no ids, cutoffs or labels
    assert report.table["psi"].is_monotonic_decreasing
    assert set(report.drifted["name"]) == {"shifted", "score_churn"}
    assert report.any_drift
    kinds = dict(zip(report.table["name"], report.table["kind"], strict=True))
    assert kinds == {"stable": "feature", "shifted": "feature", "score_churn": "score"}


def test_drift_report_without_drift(rng: np.random.Generator) -> None:
    reference, _ = _frames(rng)
    current = reference.sample(frac=1.0, random_state=3)
    report = drift_report(reference, current)
    assert not report.any_drift
    assert report.drifted.empty


def test_drift_report_requires_matching_columns(rng: np.random.Generator) -> None:
    reference, current = _frames(rng)
    with pytest.raises(DataError, match="'shifted'"):
        drift_report(reference, current.drop(columns=["shifted"]))
    with pytest.raises(DataError, match="positive"):
        drift_report(reference, current, threshold=0)
    with pytest.raises(DataError, match="rows on both sides"):
        drift_report(reference, current.iloc[:0])


class _SumModel:
    """Scores a row by its `shifted` value: enough to check scores are monitored like features."""

    def predict_score(self, frame: pd.DataFrame) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-frame["shifted"].to_numpy()))


def test_latest_cutoff_drift_compares_the_last_cutoff_with_the_earlier_ones(rng: np.random.Generator) -> None:
    from playerguard.pipelines.drift import latest_cutoff_drift

    parts = []
    for week, shift in ((1, 0.0), (2, 0.0), (3, 2.0)):
        n = 1500
        parts.append(
            pd.DataFrame(
                {
                    "player_id": [f"p{i}" for i in range(n)],
                    "cutoff": pd.Timestamp(f"2026-01-{7 * week:02d}", tz="UTC"),
                    "stable": rng.normal(0, 1, n),
                    "shifted": rng.normal(shift, 1, n),
                    "label_churn": pd.array(rng.integers(0, 2, n), dtype="Int8"),
                }
            )
        )
    report = latest_cutoff_drift(pd.concat(parts, ignore_index=True), {"churn": _SumModel()})
    assert report.reference_rows == 3000 and report.current_rows == 1500
    assert set(report.table["name"]) == {"stable", "shifted", "score_churn"}
    assert set(report.drifted["name"]) == {"shifted", "score_churn"}
    with pytest.raises(DataError, match="at least 2 cutoffs"):
        latest_cutoff_drift(parts[0])
