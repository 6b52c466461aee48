"""Top-k selection in trec_eval order and TREC run files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedtune.io import atomic_open
from embedtune.retrieval.metrics import Run, ranked


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


class RunningTopK:
    """Each query's best ``k`` rows seen so far, merged one chunk of scores at a time, so
    memory stays at queries × (chunk + k) however large the corpus grows."""

    def __init__(self, n_queries: int, keys: np.ndarray, k: int) -> None:
        self.keys = keys
        self.k = k
        self.idx = np.zeros((n_queries, 0), dtype=np.int64)
        self.scores = np.zeros((n_queries, 0), dtype=np.float64)

    def add(self, first: int, chunk_scores: np.ndarray) -> None:
        """Merge the scores of rows ``first .. first + chunk width`` (queries × width)."""
        rows = np.arange(first, first + chunk_scores.shape[1])
        idx = np.concatenate([self.idx, np.broadcast_to(rows, chunk_scores.shape)], axis=1)
        scores = np.concatenate([self.scores, chunk_scores.astype(np.float64)], axis=1)
        width = min(self.k, idx.shape[1])
        new_idx = np.empty((len(idx), width), dtype=np.int64)
        new_scores = np.empty((len(idx), width), dtype=np.float64)
        for row in range(len(idx)):
            pick = top_k(scores[row], self.keys[idx[row]], width)
            new_idx[row] = idx[row, pick]
            new_scores[row] = scores[row, pick]
        self.idx, self.scores = new_idx, new_scores


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
