"""The drift statistics, numpy (and scipy for the binomial tail) only.

Everything here works on arrays already embedded; nothing loads a model, so a long-running
process (the server) can test a window for the price of a few matrix products.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "holm",
    "median_bandwidth",
    "pca_basis",
    "permutation_tests",
    "rff",
    "tail_test",
    "top1",
]


def top1(
    queries: np.ndarray, corpus: np.ndarray, chunk: int = 8192, *, unit: bool = False
) -> np.ndarray:
    """Each query's highest cosine to any corpus passage (vectors normalised first, unless
    ``unit`` says the corpus already is).

    With passages, the best passage is also the best document's max-passage score, so this
    is the top-1 document similarity of max-passage search.
    """
    q = _unit(queries)
    best = np.full(len(q), -1.0, dtype=np.float32)
    for start in range(0, len(corpus), chunk):
        block = corpus[start : start + chunk]
        block = block if unit and block.dtype == np.float32 else _unit(block)
        np.maximum(best, (q @ block.T).max(axis=1), out=best)
    return best


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def pca_basis(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the top ``k`` principal axes (rows) and their explained-variance shares."""
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    k = min(k, vt.shape[0])
    var = s**2
    return mean.astype(np.float32), vt[:k].astype(np.float32), (var[:k] / var.sum())


def median_bandwidth(x: np.ndarray, sample: int = 500, seed: int = 0) -> float:
    """The median pairwise distance (the usual Gaussian-kernel bandwidth heuristic)."""
    rng = np.random.default_rng(seed)
    if len(x) > sample:
        x = x[rng.choice(len(x), sample, replace=False)]
    sq = (x**2).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    upper = d2[np.triu_indices(len(x), k=1)]
    return float(np.sqrt(np.median(upper))) if upper.size else 1.0


def rff(x: np.ndarray, weights: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Random Fourier features: ``φ(x)·φ(y)`` ≈ the Gaussian kernel ``k(x, y)``."""
    scale = np.float32(np.sqrt(2.0 / weights.shape[1]))
    return (np.cos(x @ weights + phases) * scale).astype(np.float32)


def permutation_tests(
    reference: np.ndarray,
    window: np.ndarray,
    blocks: dict[str, tuple[np.ndarray, np.ndarray]],
    permutations: int,
    seed: int,
) -> dict[str, tuple[float, float]]:
    """Two-sample permutation tests of ``‖mean(a) − mean(b)‖²`` on several feature blocks.

    Each block is (reference features, window features); with random Fourier features this
    is the (biased) MMD², with raw embeddings the centroid shift. All blocks share the same
    permutations (one matrix product each), so adding a test costs little.

    Returns:
        Block name → (observed statistic, permutation p-value with the +1 correction).
    """
    n_ref, n_win = len(reference), len(window)
    masks = _masks(n_ref + n_win, n_win, permutations, seed)
    out: dict[str, tuple[float, float]] = {}
    for name, (ref_f, win_f) in blocks.items():
        pooled = np.concatenate([ref_f, win_f]).astype(np.float32)
        total = pooled.sum(axis=0)
        observed = float(((win_f.mean(axis=0) - ref_f.mean(axis=0)) ** 2).sum())
        sums = masks @ pooled  # permutations × features
        diff = sums / n_win - (total - sums) / n_ref
        null = (diff**2).sum(axis=1)
        # a tolerance so float noise in equal sums does not decide the count
        extreme = int(np.count_nonzero(null >= observed - 1e-9))
        out[name] = (observed, (extreme + 1) / (permutations + 1))
    return out


_MASKS: dict[tuple[int, int, int, int], np.ndarray] = {}


def _masks(n: int, n_win: int, permutations: int, seed: int) -> np.ndarray:
    """``permutations`` rows of ``n`` 0/1 floats, ``n_win`` ones each: random windows among
    the pooled vectors. Cached by shape and seed: a process checking windows of one size
    (a server, a benchmark) draws them once; each window's p-value stays exact."""
    key = (n, n_win, permutations, seed)
    if key not in _MASKS:
        if len(_MASKS) >= 8:
            _MASKS.pop(next(iter(_MASKS)))
        r = np.random.default_rng(seed).random((permutations, n), dtype=np.float32)
        # the n_win smallest of each row (ties have probability ~0 in float32 at these sizes)
        kth = np.partition(r, n_win - 1, axis=1)[:, n_win - 1 : n_win]
        _MASKS[key] = (r <= kth).astype(np.float32)
    return _MASKS[key]


def tail_test(below: int, n: int, rate: float) -> float:
    """Exact one-sided binomial p-value of ``below`` or more exceedances in ``n`` queries
    when each falls below the threshold with probability ``rate`` (the same number as
    ``scipy.stats.binomtest(below, n, rate, alternative="greater").pvalue``)."""
    from scipy.stats import binom

    if n == 0:
        return 1.0
    return float(binom.sf(below - 1, n, rate))


def holm(p_values: dict[str, float], alpha: float) -> dict[str, tuple[float, bool]]:
    """Holm's step-down correction: name → (adjusted p-value, rejected at family-wise ``alpha``)."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m = len(order)
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, name in enumerate(order):
        running = max(running, min(1.0, (m - i) * p_values[name]))
        adjusted[name] = running
    return {name: (adjusted[name], adjusted[name] <= alpha) for name in p_values}
