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

    Returns the weight and the metric at every grid point; ties go to the smaller weight.
    """
    points = list(grid) if grid is not None else [i / 20 for i in range(21)]
    curve = {
        f"{w:.2f}": mean(per_query(weighted(dense, sparse, w), qrels, [metric])[metric])
        for w in points
    }
    best = max(points, key=lambda w: (curve[f"{w:.2f}"], -w))
    return best, curve


def dev_fusion(dense: dict[str, Run], sparse: Run, qrels: Qrels) -> dict[str, Any]:
    """The weighted-fusion weight of each dense run with ``sparse``, chosen on dev ``qrels``."""
    out: dict[str, Any] = {}
    for family, run in dense.items():
        weight, curve = choose_weight(run, sparse, qrels)
        out[family] = {"weight": weight, "curve": curve}
    return out
