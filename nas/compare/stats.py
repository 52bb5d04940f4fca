"""Statistics of a comparison (torch-free): summaries, bootstrap intervals, tests, Holm, Hedges' g.

Conventions (each checked against hand-computed numbers in ``tests/nas/test_compare_stats.py``):

* ``std`` is the sample standard deviation (n - 1 in the denominator); None below two values.
* ``bootstrap_ci`` is the percentile bootstrap of the mean: ``resamples`` resamples with
  replacement drawn by ``random.Random(seed)``, the 2.5th and 97.5th percentiles of their means
  (linear interpolation between order statistics).
* ``welch`` is Welch's unequal-variance t-test, two-sided; degrees of freedom by
  Welch-Satterthwaite; the p-value from Student's t distribution (``scipy.stats.t``).
* ``permutation`` is the two-sided permutation test of the difference of means of two independent
  samples (no pairing): every relabelling when there are at most ``exact_limit`` of them, else
  ``resamples`` random ones (p = (hits + 1) / (resamples + 1)). With n = 3 per arm there are only
  20 relabellings, so its smallest possible p-value is 0.1: :func:`min_permutation_p` says so.
* ``holm`` is Holm's step-down correction of a family of p-values (order kept).
* ``hedges_g`` is Cohen's d with the pooled standard deviation times the small-sample factor
  ``J = 1 - 3 / (4 (n1 + n2) - 9)``.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Sequence

BOOTSTRAP_RESAMPLES = 10_000
PERMUTATION_RESAMPLES = 20_000
EXACT_LIMIT = 50_000
_TIE = 1e-12  # relative tolerance when comparing permuted differences with the observed one


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values."""
    return math.fsum(values) / len(values) if values else None


def std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (n - 1); None below two values."""
    if len(values) < 2:
        return None
    m = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted values, linear between order statistics (numpy's default)."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap confidence interval of the mean; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return (float(values[0]), float(values[0]))
    rng = random.Random(seed)
    n = len(values)
    means = sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1.0 - level) / 2.0
    return (percentile(means, tail), percentile(means, 1.0 - tail))


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float] | None:
    """Welch's t-test of mean(a) == mean(b): (t, degrees of freedom, two-sided p).

    None when it is undefined: fewer than two values in a sample, or no variance in either.
    """
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = std(a) ** 2 / len(a), std(b) ** 2 / len(b)  # type: ignore[operator]
    if va + vb == 0.0:
        return None
    t = (mean(a) - mean(b)) / math.sqrt(va + vb)  # type: ignore[operator]
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t, df, float(2.0 * stats.t.sf(abs(t), df))


def permutation(a: Sequence[float], b: Sequence[float], resamples: int = PERMUTATION_RESAMPLES,
                seed: int = 0, exact_limit: int = EXACT_LIMIT) -> float | None:
    """Two-sided permutation p-value of the difference of means; None if a sample is empty."""
    if not a or not b:
        return None
    pooled = list(a) + list(b)
    n, total = len(a), math.fsum(pooled)
    observed = abs(_diff(math.fsum(a), total, n, len(pooled)))
    bar = observed * (1.0 - _TIE) - _TIE
    if math.comb(len(pooled), n) <= exact_limit:
        hits = count = 0
        for chosen in itertools.combinations(range(len(pooled)), n):
            count += 1
            hits += abs(_diff(math.fsum(pooled[i] for i in chosen), total, n, len(pooled))) >= bar
        return hits / count
    rng = random.Random(seed)
    hits = 0
    for _ in range(resamples):
        chosen = rng.sample(pooled, n)
        hits += abs(_diff(math.fsum(chosen), total, n, len(pooled))) >= bar
    return (hits + 1) / (resamples + 1)


def _diff(sum_a: float, total: float, n_a: int, n: int) -> float:
    """mean(a) - mean(b) from a's sum and the pooled total."""
    return sum_a / n_a - (total - sum_a) / (n - n_a)


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
