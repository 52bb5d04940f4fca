"""The training benchmarks' building blocks."""

from __future__ import annotations

import random

import pytest

from evaluators.benchmarks import kendall_tau, run_train_efficiency


def test_kendall_tau_matches_scipy():
    from scipy import stats
    rng = random.Random(0)
    for _ in range(20):
        a = [rng.choice([1.0, 2.0, 3.0, 4.0, 5.0]) for _ in range(12)]
        b = [x + rng.gauss(0, 1.5) for x in a]
        assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0 and kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0


def test_train_efficiency_compares_both_loops_on_the_same_model():
    result = run_train_efficiency(steps=4, rounds=2)
    assert result["evaluator_images_per_s"] > 0 and result["minimal_images_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["evaluator_images_per_s"] / result["minimal_images_per_s"])
