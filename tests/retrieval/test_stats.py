"""Randomization test and bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from embedtune.retrieval.stats import bootstrap_interval, randomization_test


def test_identical_systems_are_not_significant() -> None:
    a = np.random.default_rng(0).random(100)
    assert randomization_test(a, a.copy()) == 1.0
    # the same ranking scored again or rounded to 6 decimals: a tie, not a significant change
    assert randomization_test(a, np.round(a + 3e-7, 6)) == 1.0


def test_clear_difference_is_significant_and_noise_is_not() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(200)
    better = np.clip(base + 0.2, 0, 1)
    assert randomization_test(better, base, permutations=2000) < 0.001
    noise = base + rng.normal(0, 0.05, 200)
    noise -= noise.mean() - base.mean()  # same mean, different per-query values
    assert randomization_test(noise, base, permutations=2000) > 0.5


def test_randomization_matches_exact_enumeration_on_small_sample() -> None:
    # with 8 queries all 256 sign patterns can be enumerated exactly
    diff = np.array([0.3, -0.1, 0.2, 0.05, 0.4, -0.2, 0.1, 0.15])
    signs = np.array([[1 if (m >> i) & 1 else -1 for i in range(8)] for m in range(256)])
    exact = np.mean(np.abs(signs @ diff) >= abs(diff.sum()) - 1e-12)
    p = randomization_test(diff, np.zeros(8), permutations=20_000, seed=3)
    assert p == pytest.approx(exact, abs=0.01)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_more_queries() -> None:
    rng = np.random.default_rng(2)
    small, large = rng.random(50), rng.random(2000)
    lo, hi = bootstrap_interval(small, resamples=2000)
    assert lo < small.mean() < hi
    lo2, hi2 = bootstrap_interval(large, resamples=2000)
    assert (hi2 - lo2) < (hi - lo)
    # normal approximation of the interval of a mean
    assert hi2 - lo2 == pytest.approx(2 * 1.96 * large.std() / np.sqrt(2000), rel=0.15)
