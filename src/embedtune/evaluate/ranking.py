"""Top-k selection in trec_eval order and TREC run files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedtune.evaluate.metrics import Run, ranked
from embedtune.io import atomic_open


def tie_keys(doc_ids: list[str]) -> np.ndarray:
    """Rank of each document id in ascending string order, used to break score ties."""
    order = sorted(range(len(doc_ids)), key=doc_ids.__getitem__)
    keys = np.empty(len(doc_ids), dtype=np.int64)
    keys[order] = np.arange(len(doc_ids))
    return keys


def top_k(scores: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best rows: score descending, then document id descending.

    Everything tied with the k-th score is kept as a candidate before the final sort, so a
    tie at the cut is decided by document id, as trec_eval would, not by partition order.
    """
    n = scores.shape[0]
    if n <= k:
        candidates = np.arange(n)
    else:
        kth = np.partition(scores, n - k)[n - k]
        candidates = np.flatnonzero(scores >= kth)
    order = np.lexsort((-keys[candidates], -scores[candidates]))
    return candidates[order[:k]]


def write_run(path: str | Path, run: Run, tag: str, depth: int = 100) -> None:
    """A standard 6-column TREC run file with full-precision scores."""
    with atomic_open(path) as handle:
        for qid in sorted(run):
            for rank, doc in enumerate(ranked(run[qid])[:depth], start=1):
                handle.write(f"{qid} Q0 {doc} {rank} {float(run[qid][doc])!r} {tag}\n")


def read_run(path: str | Path) -> Run:
    """Read a TREC run file back (for re-scoring)."""
    run: Run = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            qid, _, doc, _, score, _ = line.split()
            run.setdefault(qid, {})[doc] = float(score)
    return run
