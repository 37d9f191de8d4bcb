"""Held-out metrics for binary scores, on numpy arrays: ranking, calibration, lift and operating points.

Every function takes `y_true` (0/1) and `scores` (higher = more likely positive) of equal length.
Ranking metrics return NaN when `y_true` has a single class, since they are undefined there.
"""

from __future__ import annotations

import math

import numpy as np

from playerguard.errors import DataError

DEFAULT_TARGET_FPR = 0.01


def _check(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype="float64").ravel()
    s = np.asarray(scores, dtype="float64").ravel()
    if y.shape != s.shape:
        raise DataError(f"labels and scores differ in length ({y.size} vs {s.size})")
    if y.size == 0:
        raise DataError("cannot compute metrics on zero rows")
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("labels must be 0 or 1")
    if not np.isfinite(s).all():
        raise DataError("scores must be finite numbers")
    return y.astype("int8"), s


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < y.size


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.r_[first[1:], values.size] - 1
    average = (first + last) / 2.0 + 1.0
    ranks = np.empty(values.size, dtype="float64")
    ranks[order] = average[group]
    return ranks


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (probability that a random positive outranks a random negative)."""
    y, s = _check(y_true, scores)
    if not _both_classes(y):
        return math.nan
    ranks = _average_ranks(s)
    positives = int(y.sum())
    negatives = y.size - positives
    rank_sum = float(ranks[y == 1].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def _threshold_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with the true and false positives flagged at each."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last_of_group = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    true_positives = np.cumsum(y_sorted)[last_of_group]
    flagged = np.flatnonzero(last_of_group) + 1
    return (
        s_sorted[last_of_group],
        true_positives.astype("float64"),
        (flagged - true_positives).astype("float64"),
    )


def pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision–recall curve as average precision (step-wise, no interpolation)."""
    y, s = _check(y_true, scores)
    if not _both_classes(y):
        return math.nan
    _, tp, fp = _threshold_counts(y, s)
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct threshold, starting at (0, 0)."""
    y, s = _check(y_true, scores)
    _, tp, fp = _threshold_counts(y, s)
    positives, negatives = max(tp[-1], 1.0), max(fp[-1], 1.0)
    return np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]


def precision_recall_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision at each distinct threshold, from the highest threshold down."""
    y, s = _check(y_true, scores)
    _, tp, fp = _threshold_counts(y, s)
    return tp / max(tp[-1], 1.0), tp / (tp + fp)


def brier_score(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared difference between probability and outcome."""
    y, p = _check(y_true, probabilities)
    return float(np.mean((p - y) ** 2))


def calibration_bins(
    y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width probability bin on [0, 1]: mean predicted probability, observed rate, row count.

    Bins are [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]; empty bins hold NaN means and a zero count.
    """
    y, p = _check(y_true, probabilities)
    if n_bins < 1:
        raise DataError("n_bins must be at least 1")
    if (p < 0).any() or (p > 1).any():
        raise DataError("probabilities must lie in [0, 1]")
    index = np.minimum((p * n_bins).astype("int64"), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins).astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.bincount(index, weights=p, minlength=n_bins) / counts
        observed = np.bincount(index, weights=y.astype("float64"), minlength=n_bins) / counts
    return mean_predicted, observed, counts


def expected_calibration_error(y_true: np.ndarray, probabilities: np.ndarray, n_bins: int = 10) -> float:
    """Row-weighted mean of |observed rate − mean probability| over equal-width bins."""
    mean_predicted, observed, counts = calibration_bins(y_true, probabilities, n_bins)
    filled = counts > 0
    gaps = np.abs(observed[filled] - mean_predicted[filled])
    return float(np.sum(gaps * counts[filled]) / counts.sum())


def _top_order(s: np.ndarray) -> np.ndarray:
    # Stable descending order: among tied scores the earlier row ranks first, so results are reproducible.
    return np.argsort(-s, kind="mergesort")


def lift_by_decile(y_true: np.ndarray, scores: np.ndarray, n_groups: int = 10) -> np.ndarray:
    """Positive rate of each score group (highest scores first) divided by the overall positive rate."""
    y, s = _check(y_true, scores)
    base_rate = y.mean()
    groups = np.array_split(y[_top_order(s)], min(n_groups, y.size))
    if base_rate == 0:
        return np.full(len(groups), math.nan)
    return np.array([group.mean() / base_rate for group in groups])


def lift_at_top(y_true: np.ndarray, scores: np.ndarray, fraction: float = 0.1) -> float:
    """Positive rate among the top `fraction` of rows by score, over the overall positive rate."""
    y, s = _check(y_true, scores)
    if not 0 < fraction <= 1:
        raise DataError("fraction must be in (0, 1]")
    base_rate = y.mean()
    if base_rate == 0:
        return math.nan
    top = max(1, math.ceil(fraction * y.size))
    return float(y[_top_order(s)[:top]].mean() / base_rate)


def threshold_at_fpr(y_true: np.ndarray, scores: np.ndarray, fpr: float = DEFAULT_TARGET_FPR) -> float:
    """The lowest threshold t such that flagging `score >= t` keeps the false positive rate at most `fpr`.

    With k = floor(fpr × negatives) false positives allowed, t sits just above the (k+1)-th highest
    negative score. NaN when there are no negatives.
    """
    y, s = _check(y_true, scores)
    if not 0 <= fpr <= 1:
        raise DataError("fpr must be in [0, 1]")
    negatives = np.sort(s[y == 0])[::-1]
    if negatives.size == 0:
        return math.nan
    allowed = math.floor(fpr * negatives.size + 1e-9)
    if allowed >= negatives.size:
        return float(s.min())
    return float(np.nextafter(negatives[allowed], np.inf))


def operating_threshold(y_true: np.ndarray, scores: np.ndarray, fpr: float = DEFAULT_TARGET_FPR) -> float:
    """A flagging threshold that catches the positives a false positive rate of `fpr` allows, spending no
    more of that budget than the catch needs.

    `threshold_at_fpr` is the lowest threshold within the budget. Up to the lowest-scoring positive it
    catches, every threshold catches the same positives and fewer negatives, so the budget beyond that
    point buys nothing. The threshold returned sits midway between the two in log-odds: a margin for new
    positives scoring a little lower and for new negatives scoring a little higher than these. Without
    positives it is `threshold_at_fpr`.
    """
    y, s = _check(y_true, scores)
    lowest = threshold_at_fpr(y, s, fpr)
    caught = s[(y == 1) & (s >= lowest)]
    if math.isnan(lowest) or caught.size == 0:
        return lowest
    edge = float(caught.min())
    if not 0 <= lowest <= edge <= 1:  # not probabilities: midway between the scores themselves
        return (lowest + edge) / 2
    low, high = (min(max(value, 1e-12), 1 - 1e-12) for value in (lowest, edge))
    middle = (math.log(low / (1 - low)) + math.log(high / (1 - high))) / 2
    return max(lowest, min(edge, 1 / (1 + math.exp(-middle))))


def recall_at_fpr(y_true: np.ndarray, scores: np.ndarray, fpr: float = DEFAULT_TARGET_FPR) -> float:
    """Share of positives flagged at the threshold that keeps the false positive rate at most `fpr`."""
    y, s = _check(y_true, scores)
    if not _both_classes(y):
        return math.nan
    threshold = threshold_at_fpr(y, s, fpr)
    return float(np.mean(s[y == 1] >= threshold))


def evaluate(
    y_true: np.ndarray, scores: np.ndarray, *, target_fpr: float = DEFAULT_TARGET_FPR
) -> dict[str, float]:
    """All headline metrics of a binary score, keyed by metric name."""
    y, s = _check(y_true, scores)
    return {
        "roc_auc": roc_auc(y, s),
        "pr_auc": pr_auc(y, s),
        "brier": brier_score(y, s),
        "ece": expected_calibration_error(y, s),
        "lift_top_decile": lift_at_top(y, s, 0.1),
        "recall_at_fpr": recall_at_fpr(y, s, target_fpr),
        "threshold_at_fpr": threshold_at_fpr(y, s, target_fpr),
        "rows": float(y.size),
        "positives": float(y.sum()),
        "base_rate": float(y.mean()),
    }
