"""Fusing a dense run with BM25: reciprocal-rank fusion or a normalised weighted sum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from embedtune.corpus.types import Qrels
from embedtune.retrieval.metrics import Run, mean, per_query, ranked

RRF_K = 60
DEPTH = 100


def rrf(runs: Iterable[Run], *, k: int = RRF_K, depth: int = DEPTH) -> Run:
    """Reciprocal-rank fusion: a document scores sum(1 / (k + rank)) over each run's top hits."""
    fused: Run = {}
    for run in runs:
        for qid, scores in run.items():
            target = fused.setdefault(qid, {})
            for rank, doc in enumerate(ranked(scores)[:depth], start=1):
                target[doc] = target.get(doc, 0.0) + 1.0 / (k + rank)
    return cut(fused, depth)


def cut(run: Run, depth: int) -> Run:
    """Each query's top ``depth`` documents, so fused runs are as deep as the others."""
    return {
        qid: {doc: scores[doc] for doc in ranked(scores)[:depth]} for qid, scores in run.items()
    }


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {doc: (s - lo) / span if span > 0 else 1.0 for doc, s in scores.items()}


def weighted(dense: Run, sparse: Run, weight: float, *, depth: int = DEPTH) -> Run:
    """``weight`` × min-max(dense) + (1 − weight) × min-max(BM25) over each run's top ``depth``;
    a document missing from one run gets 0 from it (below that run's lowest kept score)."""
    fused: Run = {}
    for qid in set(dense) | set(sparse):
        d = _minmax({doc: dense.get(qid, {})[doc] for doc in ranked(dense.get(qid, {}))[:depth]})
        s = _minmax({doc: sparse.get(qid, {})[doc] for doc in ranked(sparse.get(qid, {}))[:depth]})
        fused[qid] = {
            doc: weight * d.get(doc, 0.0) + (1 - weight) * s.get(doc, 0.0)
            for doc in d.keys() | s.keys()
        }
    return cut(fused, depth)


def choose_weight(
    dense: Run,
    sparse: Run,
    qrels: Qrels,
    *,
    metric: str = "ndcg@10",
    grid: Iterable[float] | None = None,
) -> tuple[float, dict[str, float]]:
    """The weight maximising ``metric`` on tuning (train/dev) queries; never pass test qrels.

    Returns the weight and the metric at every grid point; exact ties go to the middle of
    the tied weights (see :func:`_best_weight`).
    """
    points = list(grid) if grid is not None else [i / 20 for i in range(21)]
    curve = {
        f"{w:.2f}": mean(per_query(weighted(dense, sparse, w), qrels, [metric])[metric])
        for w in points
    }
    best = _best_weight({w: curve[f"{w:.2f}"] for w in points})
    return best, curve


def _best_weight(scores: dict[float, float]) -> float:
    """The weight with the highest score; among exactly equal best scores, the one nearest the
    middle of the tied weights, and of two equally near the larger (toward the dense model).

    Why the middle: a tie means dev cannot tell the weights apart (a small or saturated dev
    set, where often every weight ties). The smallest tied weight, the old rule, then gave
    the dense model weight 0, a "hybrid" that is BM25 alone; the largest would drop BM25.
    The middle keeps both, as far from either extreme as dev allows. Only exact ties count,
    so a unique maximum (e.g. the finance10k weights in BENCHMARKS.md) is never changed.
    """
    top = max(scores.values())
    tied = sorted(w for w, s in scores.items() if s == top)
    middle = (tied[0] + tied[-1]) / 2
    return min(tied, key=lambda w: (abs(w - middle), -w))


def dev_fusion(dense: dict[str, Run], sparse: Run, qrels: Qrels) -> dict[str, Any]:
    """The weighted-fusion weight of each dense run with ``sparse``, chosen on dev ``qrels``."""
    out: dict[str, Any] = {}
    for family, run in dense.items():
        weight, curve = choose_weight(run, sparse, qrels)
        out[family] = {"weight": weight, "curve": curve}
    return out
