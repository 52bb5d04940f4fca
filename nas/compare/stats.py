"""Statistics of a comparison (torch-free): summaries, bootstrap intervals, tests, Holm, Hedges' g.

Conventions (each checked against hand-computed numbers in ``tests/nas/test_compare_stats.py``):

* ``std`` is the sample standard deviation (n - 1 in the denominator); None below two values.
* ``bootstrap_ci`` is SciPy's percentile bootstrap of the mean: ``resamples`` resamples drawn by
  ``numpy.random.default_rng(seed)``, the 2.5th and 97.5th percentiles of their means.
* ``welch`` is Welch's unequal-variance t-test, two-sided (``scipy.stats.ttest_ind``).
* ``permutation`` is SciPy's permutation test of ``|mean(a) - mean(b)|`` for two independent
  samples (no pairing): every relabelling when there are at most ``exact_limit`` of them, else
  ``resamples`` random ones (p = (hits + 1) / (resamples + 1)). With n = 3 per arm there are only
  20 relabellings, so its smallest possible p-value is 0.1: :func:`min_permutation_p` says so.
* ``holm`` is Holm's step-down correction of a family of p-values (order kept). Written here:
  SciPy has only Benjamini-Hochberg (``false_discovery_control``), and statsmodels would be a
  dependency for ten lines.
* ``hedges_g`` is Cohen's d with the pooled standard deviation times the small-sample factor
  ``J = 1 - 3 / (4 (n1 + n2) - 9)``; SciPy has no effect sizes.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
PERMUTATION_RESAMPLES = 20_000
EXACT_LIMIT = 50_000


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values."""
    return statistics.fmean(values) if len(values) else None


def std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (n - 1); None below two values."""
    return statistics.stdev(values) if len(values) >= 2 else None


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of the mean (``scipy.stats.bootstrap``); None for no values."""
    if not len(values):
        return None
    if len(set(values)) == 1:  # SciPy refuses a degenerate sample; every resample's mean is the value
        return (float(values[0]), float(values[0]))
    from scipy import stats

    result = stats.bootstrap((np.asarray(values, dtype=float),), np.mean, confidence_level=level,
                             n_resamples=resamples, method="percentile", vectorized=True,
                             rng=np.random.default_rng(seed))
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float] | None:
    """Welch's t-test of mean(a) == mean(b) (``scipy.stats.ttest_ind``): (t, degrees of freedom, two-sided p).

    None when it is undefined: fewer than two values in a sample, or no variance in either.
    """
    if len(a) < 2 or len(b) < 2 or std(a) == std(b) == 0.0:
        return None
    from scipy import stats

    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.df), float(result.pvalue)


def permutation(a: Sequence[float], b: Sequence[float], resamples: int = PERMUTATION_RESAMPLES,
                seed: int = 0, exact_limit: int = EXACT_LIMIT) -> float | None:
    """Two-sided permutation p-value of the difference of means (``scipy.stats.permutation_test``,
    independent samples, statistic ``|mean(a) - mean(b)|``); None if a sample is empty."""
    if not len(a) or not len(b):
        return None
    from scipy import stats

    exact = math.comb(len(a) + len(b), len(a)) <= exact_limit
    result = stats.permutation_test((np.asarray(a, dtype=float), np.asarray(b, dtype=float)), _abs_diff,
                                    permutation_type="independent", alternative="greater", vectorized=True,
                                    n_resamples=np.inf if exact else resamples, rng=np.random.default_rng(seed))
    return float(result.pvalue)


def _abs_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """|mean(x) - mean(y)| along ``axis`` (the permutation test's statistic)."""
    return np.abs(np.mean(x, axis=axis) - np.mean(y, axis=axis))


def min_permutation_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p-value an exact permutation test can give (distinct values)."""
    return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values in the input order (None entries stay None and are not counted)."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Hedges' g of mean(a) - mean(b) (pooled SD, small-sample corrected); None if undefined."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return None
    pooled = math.sqrt(((na - 1) * std(a) ** 2 + (nb - 1) * std(b) ** 2) / (na + nb - 2))  # type: ignore[operator]
    if pooled == 0.0:
        return None
    return (1.0 - 3.0 / (4.0 * (na + nb) - 9.0)) * (mean(a) - mean(b)) / pooled  # type: ignore[operator]
