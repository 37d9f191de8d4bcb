"""Positive-unlabelled learning for the inhuman-play model: a ban list names cheaters, nobody is known
to play fair, and the players not on the list are unlabelled, not legitimate.

The method is Elkan and Noto's (2008). Under "selected completely at random" (the banned cheaters are a
random share `c` of all cheaters, whatever their features), a classifier g(x) = P(labelled | x) of
labelled against unlabelled rows ranks players exactly as P(cheater | x) does, and P(cheater | x) =
g(x) / c. `c` is estimated as the mean out-of-fold g over the labelled positives. The model keeps its score
on the odds scale: odds(score) = odds(g) / c, which equals g / c where g is small (nearly everyone) and
stays below 1 where it is not.

An unlabelled row is a hidden cheater with probability w = (1 − c)/c · g/(1 − g) = (1 − c) · odds(score).
Averaged over the out-of-fold scores of the unlabelled rows, w gives the share of them that are hidden
cheaters. The flag threshold spends the false positive budget on the others, the players estimated
legitimate: among the unlabelled rows it flags that share plus `target_fpr` of the rest, by rank. Only the
share is taken from out-of-fold scores; the threshold itself uses the ranking of whichever scores it is
read on (the final fit's, on a validation cutoff), whose calibration fitting on players seen unlabelled
(hidden cheaters among them) pulls down.
"""

from __future__ import annotations

import math

import numpy as np

from playerguard.errors import DataError


def label_frequency(held_out: np.ndarray, labelled: np.ndarray) -> float:
    """c: the mean held-out P(labelled | x) over the labelled positives, kept in (0, 1]."""
    scores = np.asarray(held_out, dtype="float64")[np.asarray(labelled, dtype=bool)]
    if scores.size == 0:
        raise DataError("estimating the label frequency needs held-out labelled positives")
    return float(min(max(scores.mean(), 1e-6), 1.0))


def hidden_share(unlabelled_scores: np.ndarray, c: float) -> float:
    """The expected share of hidden positives among unlabelled rows, from their out-of-fold scores (on the
    odds scale of the module docstring): the mean of (1 − c) · odds(score), each clipped to [0, 1]."""
    s = np.clip(np.asarray(unlabelled_scores, dtype="float64"), 0.0, 1.0 - 1e-12)
    if s.size == 0:
        return 0.0
    return float(np.mean(np.clip((1.0 - c) * s / (1.0 - s), 0.0, 1.0)))


def pu_flag_rate(hidden: float, fpr: float) -> float:
    """The share of unlabelled rows to flag: the `hidden` share of positives plus `fpr` of the others."""
    return hidden + fpr * (1.0 - hidden)


def budget_threshold(scores: np.ndarray, fpr: float, weights: np.ndarray | None = None) -> float:
    """The lowest threshold t such that rows with `score >= t` weigh at most `fpr` of the total weight.

    Every row of `scores` is presumed legitimate, with `weights` its probability of being so (all 1 when
    None): the threshold then flags `fpr` of the legitimate population, the false positive budget.
    """
    s = np.asarray(scores, dtype="float64")
    w = np.ones(s.size) if weights is None else np.asarray(weights, dtype="float64")
    if s.size == 0 or w.sum() <= 0:
        return math.nan
    if not 0 <= fpr <= 1:
        raise DataError("fpr must be in [0, 1]")
    order = np.argsort(-s, kind="mergesort")
    s, w = s[order], w[order]
    distinct = np.r_[s[1:] != s[:-1], True]  # last row of each run of tied scores
    flagged = np.cumsum(w)[distinct]
    levels = s[distinct]
    within = np.flatnonzero(flagged <= fpr * w.sum() + 1e-9)
    if within.size == levels.size:
        return float(levels[-1])
    if within.size == 0:
        return float(np.nextafter(levels[0], np.inf))
    return float(np.nextafter(levels[within[-1] + 1], np.inf))
