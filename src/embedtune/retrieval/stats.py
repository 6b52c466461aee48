"""Paired significance and uncertainty over per-query metric values."""

from __future__ import annotations

import numpy as np

PERMUTATIONS = 10_000
TIE = 1e-6  # per-query score differences below this are float noise or rounding
SIGNIFICANCE_LEVEL = 0.05  # every p-value embedtune reports is judged at this level
BOOTSTRAP = 10_000
_BLOCK = 1_000  # resamples per block: bounds memory at queries × block floats


def randomization_test(
    a: np.ndarray, b: np.ndarray, *, permutations: int = PERMUTATIONS, seed: int = 0
) -> float:
    """Two-sided paired randomization test of mean(a) vs mean(b); returns the p-value.

    Each permutation swaps the two systems' values on a random subset of queries (a sign
    flip of the per-query difference); p counts permutations at least as extreme as observed,
    with the +1 correction so p is never 0.
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return 1.0
    # per-query scores equal to within TIE are ties: kept results are rounded to 6 decimals,
    # and any change of a ranking moves a query's score by far more
    diff[np.abs(diff) < TIE] = 0.0
    observed = abs(diff.mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, permutations, _BLOCK):
        n = min(_BLOCK, permutations - start)
        signs = rng.integers(0, 2, size=(n, diff.size), dtype=np.int8) * 2 - 1
        means = np.abs(signs @ diff) / diff.size
        # a tolerance so float noise in equal sums does not decide the count
        extreme += int(np.count_nonzero(means >= observed - 1e-12))
    return (extreme + 1) / (permutations + 1)


def bootstrap_interval(
    values: np.ndarray, *, resamples: int = BOOTSTRAP, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over queries."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return (0.0, 0.0)
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for start in range(0, resamples, _BLOCK):
        n = min(_BLOCK, resamples - start)
        idx = rng.integers(0, values.size, size=(n, values.size))
        means[start : start + n] = values[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(lo), float(hi)
