"""Statistics of ``nas compare`` against numbers worked out by hand (and scipy where it has them)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from nas.compare import stats as cs

A, B = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]


def test_mean_and_sample_std():
    assert cs.mean(A) == 2.0
    assert cs.std(A) == 1.0  # sqrt(((1-2)^2 + 0 + (3-2)^2) / 2)
    assert cs.std([5.0]) is None and cs.mean([]) is None


def test_welch_by_hand_and_against_scipy():
    t, df, p = cs.welch(A, B)
    assert t == pytest.approx(-3.0 / math.sqrt(2.0 / 3.0))  # (2 - 5) / sqrt(1/3 + 1/3)
    assert df == pytest.approx(4.0)  # (2/3)^2 / ((1/3)^2/2 + (1/3)^2/2)
    assert p == pytest.approx(0.021311641128756727, rel=1e-9)
    x, y = [90.1, 91.4, 89.7, 90.9], [88.0, 89.9, 87.2]
    assert cs.welch(x, y)[2] == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue, rel=1e-12)
    assert cs.welch([1.0], B) is None and cs.welch([1.0, 1.0], [2.0, 2.0]) is None


def test_exact_permutation_by_hand():
    # 20 ways to pick 3 of 6; only {1,2,3} vs {4,5,6} and its mirror reach |diff| = 3
    assert cs.permutation(A, B) == pytest.approx(2 / 20)
    assert cs.min_permutation_p(3, 3) == pytest.approx(0.1)
    # [1,2] vs [3,5]: |diff| 2.5; of the 6 splits, {1,2} and {3,5} reach it -> 2/6
    assert cs.permutation([1.0, 2.0], [3.0, 5.0]) == pytest.approx(2 / 6)
    assert cs.permutation([1.0, 2.0], [1.0, 2.0]) == pytest.approx(1.0)


def test_monte_carlo_permutation_is_seeded_and_close_to_exact():
    a = [float(v) for v in range(10)]
    b = [v + 2.5 for v in a]
    exact = cs.permutation(a, b)
    sampled = cs.permutation(a, b, exact_limit=10, resamples=4000, seed=3)
    assert sampled == cs.permutation(a, b, exact_limit=10, resamples=4000, seed=3)
    assert sampled == pytest.approx(exact, abs=0.02)


def test_holm_by_hand_keeps_order():
    assert cs.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert cs.holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert cs.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_hedges_g_by_hand():
    # pooled SD 1, d = -3, J = 1 - 3 / (4 * 6 - 9) = 0.8
    assert cs.hedges_g(A, B) == pytest.approx(-2.4)
    assert cs.hedges_g(B, A) == pytest.approx(2.4)
    assert cs.hedges_g([1.0], B) is None


def test_bootstrap_ci_by_hand():
    # means of resamples of [0, 1]: 0 (1/4), 0.5 (1/2), 1 (1/4) -> the 95% interval is [0, 1]
    assert cs.bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    # [1, 2, 3]: P(mean = 1) = P(mean = 3) = 1/27 > 2.5%
    assert cs.bootstrap_ci(A) == (1.0, 3.0)
    values = [0.0] * 20 + [1.0] * 20  # the mean's SD is 0.5 / sqrt(40) = 0.079 -> about 0.5 +- 0.155
    low, high = cs.bootstrap_ci(values, seed=1)
    assert low == pytest.approx(0.5 - 1.96 * 0.5 / math.sqrt(40), abs=0.03)
    assert high == pytest.approx(0.5 + 1.96 * 0.5 / math.sqrt(40), abs=0.03)
    assert cs.bootstrap_ci(values, seed=1) == (low, high)
    assert cs.bootstrap_ci([7.0]) == (7.0, 7.0) and cs.bootstrap_ci([]) is None
