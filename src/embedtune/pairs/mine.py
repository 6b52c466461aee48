"""Labeled pairs from qrels: the best passage of each relevant document as the positive, hard
negatives from chosen rank ranges of BM25 and the base model, and a false-negative filter.

Memory stays bounded as the corpus grows: passages are encoded chunk by chunk into a memory-mapped
file, searched chunk by chunk, and BM25 keeps only each query's top ranks.
"""

from __future__ import annotations

import logging
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.pairs import Pair
from embedtune.corpus.passages import Passages, split_passages
from embedtune.corpus.types import Dataset
from embedtune.errors import DataError
from embedtune.pairs.config import PairsConfig
from embedtune.retrieval.bm25 import BM25Index
from embedtune.retrieval.ranking import RunningTopK

if TYPE_CHECKING:
    from embedtune.retrieval.dense import DenseEncoder

logger = logging.getLogger(__name__)


def encode_memmap(encoder: DenseEncoder, passages: Passages, path: Path, chunk: int) -> np.ndarray:
    """All passage embeddings in a disk-backed array, encoded a chunk at a time.

    Chunks follow document boundaries exactly as the evaluation's search does, so the same
    model and passages hit the embedding cache the evaluation filled, and vice versa.
    """
    from embedtune.retrieval.dense import doc_chunks

    texts = passages.texts
    dim = int(encoder.model.get_embedding_dimension() or 0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(texts), dim))
    for d0, d1 in doc_chunks(passages.bounds, chunk):
        p0, p1 = int(passages.bounds[d0]), int(passages.bounds[d1])
        out[p0:p1] = encoder.encode_documents(texts[p0:p1])
    out.flush()
    return out


def dense_top_passages(
    query_vectors: np.ndarray, vectors: np.ndarray, k: int, chunk: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's top ``k`` passage indices and scores, one chunk of passages at a time."""
    best = RunningTopK(len(query_vectors), np.arange(len(vectors)), k)
    for start in range(0, len(vectors), chunk):
        best.add(start, query_vectors @ np.asarray(vectors[start : start + chunk]).T)
    return best.idx, best.scores


class _CrossScorer:
    """Optional local cross-encoder that re-scores (query, passage) for the filter."""

    def __init__(self, path: str) -> None:
        from sentence_transformers import CrossEncoder

        if not Path(path).is_dir():
            raise DataError("cross-encoder folder not found", path=path)
        self.model = CrossEncoder(path, local_files_only=True)

    def __call__(self, query: str, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self.model.predict([(query, t) for t in texts], show_progress_bar=False),
            dtype=np.float64,
        )


def mine_labeled_pairs(
    dataset: Dataset,
    encoder: DenseEncoder,
    passages_config: PassageConfig,
    config: PairsConfig,
    *,
    query_ids: list[str] | None = None,
) -> tuple[list[Pair], dict[str, Any]]:
    """One pair per (query, relevant document) of ``dataset.qrels`` (score ≥ 1)."""
    qids = (
        query_ids
        if query_ids is not None
        else [q for q in dataset.queries if any(s >= 1 for s in dataset.qrels.get(q, {}).values())]
    )
    if not qids:
        raise DataError(f"split '{dataset.split}' has no relevant judgments to make pairs from")
    docs = list(dataset.corpus.values())
    doc_index = {d.id: i for i, d in enumerate(docs)}
    passages = split_passages(docs, encoder.model.tokenizer, passages_config)
    owner = np.repeat(np.arange(len(docs)), np.diff(passages.bounds))
    neg = config.negatives
    depth = neg.ranks[1]
    counts: Counter[str] = Counter()
    cross = _CrossScorer(neg.cross_encoder) if neg.cross_encoder else None
    query_vectors = encoder.encode_queries([dataset.queries[q] for q in qids])
    with tempfile.TemporaryDirectory(prefix="embedtune-pairs-") as tmp:
        vectors = encode_memmap(
            encoder, passages, Path(tmp) / "passages.npy", config.chunk_passages
        )
        dense_idx, _ = dense_top_passages(query_vectors, vectors, depth, config.chunk_passages)
        bm25 = None
        if "bm25" in neg.sources or config.positive == "bm25":
            bm25 = BM25Index([str(i) for i in range(len(passages))], passages.texts)
        pairs = []
        for row, qid in enumerate(qids):
            query = dataset.queries[qid]
            relevant = {doc_index[d] for d, s in dataset.qrels[qid].items() if s >= 1}
            judged = {doc_index[d] for d in dataset.qrels[qid]}
            candidates = _candidates(row, query, dense_idx, bm25, neg.sources, neg.ranks, depth)
            for doc_id, grade in dataset.qrels[qid].items():
                if grade < 1:
                    continue
                pos, pos_score, method = _best_passage(
                    query,
                    query_vectors[row],
                    vectors,
                    passages,
                    doc_index[doc_id],
                    bm25,
                    config.positive,
                )
                chosen = _filter(
                    query,
                    query_vectors[row],
                    vectors,
                    passages,
                    owner,
                    pos,
                    pos_score,
                    candidates,
                    relevant | judged,
                    neg.per_query,
                    neg.margin,
                    cross,
                    counts,
                )
                counts["pairs"] += 1
                counts[f"negatives={len(chosen)}"] += 1
                pairs.append(
                    Pair(
                        query,
                        passages.texts[pos],
                        [passages.texts[c["index"]] for c in chosen],
                        {
                            "source": f"qrels:{dataset.split}",
                            "query_id": qid,
                            "doc_id": doc_id,
                            "grade": grade,
                            "positive": {
                                "method": method,
                                "score": pos_score,
                                "passage": int(pos - passages.bounds[doc_index[doc_id]]),
                            },
                            "negatives": [
                                {k: v for k, v in c.items() if k != "index"} for c in chosen
                            ],
                        },
                    )
                )
    summary = {
        "pairs": len(pairs),
        "queries": len(qids),
        "sources": dict(Counter(p.provenance["source"] for p in pairs)),
        "negatives_per_pair": {
            k.split("=")[1]: v for k, v in sorted(counts.items()) if k.startswith("negatives=")
        },
        "filtered": {k: v for k, v in counts.items() if k.startswith("filtered_")},
        "passages": {"count": len(passages), **passages_config.model_dump()},
        "config": config.model_dump(mode="json"),
        "data": dataset.manifest.to_dict(),
    }
    return pairs, summary


def _candidates(
    row: int,
    query: str,
    dense_idx: np.ndarray,
    bm25: BM25Index | None,
    sources: Sequence[str],
    ranks: tuple[int, int],
    depth: int,
) -> list[tuple[str, int, int]]:
    """(method, rank, passage index) inside the rank range, interleaved across sources."""
    lo, hi = ranks
    per_source: list[list[tuple[str, int, int]]] = []
    if "base" in sources:
        per_source.append(
            [("base", r + 1, int(i)) for r, i in enumerate(dense_idx[row]) if lo <= r + 1 <= hi]
        )
    if "bm25" in sources and bm25 is not None:
        ranked = bm25.search({"q": query}, k=depth)["q"]
        order = sorted(ranked, key=lambda d: (ranked[d], d), reverse=True)
        per_source.append(
            [("bm25", r + 1, int(d)) for r, d in enumerate(order) if lo <= r + 1 <= hi]
        )
    merged: list[tuple[str, int, int]] = []
    for position in range(max((len(s) for s in per_source), default=0)):
        merged.extend(s[position] for s in per_source if position < len(s))
    return merged


def _best_passage(
    query: str,
    qvec: np.ndarray,
    vectors: np.ndarray,
    passages: Passages,
    doc: int,
    bm25: BM25Index | None,
    method: str,
) -> tuple[int, float, str]:
    """The passage of a relevant document that best matches the query."""
    lo, hi = int(passages.bounds[doc]), int(passages.bounds[doc + 1])
    if hi - lo == 1:
        return lo, float(np.asarray(vectors[lo]) @ qvec), "only"
    if method == "bm25" and bm25 is not None:
        scores = bm25.score_rows(query, range(lo, hi))
        if scores.max() > 0:
            best = lo + int(np.argmax(scores))
            return best, float(np.asarray(vectors[best]) @ qvec), "bm25"
    sims = np.asarray(vectors[lo:hi]) @ qvec
    best = lo + int(np.argmax(sims))
    return best, float(sims.max()), "base"


def _filter(
    query: str,
    qvec: np.ndarray,
    vectors: np.ndarray,
    passages: Passages,
    owner: np.ndarray,
    pos: int,
    pos_score: float,
    candidates: list[tuple[str, int, int]],
    excluded_docs: set[int],
    wanted: int,
    margin: float,
    cross: _CrossScorer | None,
    counts: Counter[str],
) -> list[dict[str, Any]]:
    """Up to ``wanted`` negatives: not from a judged document, not a duplicate text, and not
    scoring within ``margin`` of the positive (a likely false negative)."""
    chosen: list[dict[str, Any]] = []
    seen = {passages.texts[pos]}
    pos_ref = float(cross(query, [passages.texts[pos]])[0]) if cross else pos_score
    for method, rank, index in candidates:
        if len(chosen) >= wanted:
            break
        text = passages.texts[index]
        if int(owner[index]) in excluded_docs:
            counts["filtered_judged_document"] += 1
            continue
        if text in seen:
            counts["filtered_duplicate_text"] += 1
            continue
        score = (
            float(cross(query, [text])[0]) if cross else float(np.asarray(vectors[index]) @ qvec)
        )
        if score > pos_ref - margin:
            counts["filtered_false_negative"] += 1
            continue
        seen.add(text)
        chosen.append(
            {
                "index": index,
                "method": method,
                "rank": rank,
                "score": score,
                "doc_id": passages.doc_ids[int(owner[index])],
            }
        )
    return chosen
