"""Labeled pairs from qrels: the best passage of each relevant document as the positive, hard
negatives from chosen rank ranges of BM25 and the base model, and a false-negative filter.

Memory stays bounded as the corpus grows: passages are encoded chunk by chunk into a memory-mapped
file, searched chunk by chunk, and BM25 keeps only each query's top ranks. With ``mining:
candidates`` only the passages some training query can use are encoded (its BM25 top ranks and
its judged documents), so the encoding cost follows the number of queries, not the corpus.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedtune.console import progress
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
    """All passage embeddings in a disk-backed array, encoded a chunk at a time (passages
    the same model encoded before, for an evaluation or another mining, come from the cache).
    """
    texts = passages.texts
    dim = int(encoder.model.get_embedding_dimension() or 0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(texts), dim))
    bar = progress(total=len(texts), desc="encode passages", unit="psg")
    for p0 in range(0, len(texts), chunk):
        out[p0 : p0 + chunk] = encoder.encode_documents(texts[p0 : p0 + chunk], advance=bar.update)
    bar.close()
    out.flush()
    return out


class SubsetVectors:
    """Embeddings of some passages, indexed by their position in the whole corpus (what
    the mining code indexes by), so candidate mining needs no corpus-sized array."""

    def __init__(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        self.rows = rows
        self.vectors = vectors
        self._position = {int(row): i for i, row in enumerate(rows)}

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | slice) -> np.ndarray:
        if isinstance(key, slice):
            return self.vectors[[self._position[i] for i in range(key.start, key.stop)]]
        return self.vectors[self._position[int(key)]]


def encode_rows(
    encoder: DenseEncoder, passages: Passages, rows: np.ndarray, chunk: int
) -> SubsetVectors:
    """The embeddings of the passages at ``rows`` (sorted), encoded a chunk at a time."""
    dim = int(encoder.model.get_embedding_dimension() or 0)
    vectors = np.empty((len(rows), dim), dtype=np.float32)
    bar = progress(total=len(rows), desc="encode candidates", unit="psg")
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        vectors[start : start + len(part)] = encoder.encode_documents(
            [passages.texts[int(i)] for i in part], advance=bar.update
        )
    bar.close()
    return SubsetVectors(rows, vectors)


def candidate_rows(
    bm25_order: list[list[int]], judged: list[set[int]], bounds: np.ndarray
) -> np.ndarray:
    """Sorted passage rows worth encoding: every query's BM25 ranks and every passage of a
    document it has a judgment for (its positives are chosen among them)."""
    rows: set[int] = set()
    for order, docs in zip(bm25_order, judged, strict=True):
        rows.update(order)
        for doc in docs:
            rows.update(range(int(bounds[doc]), int(bounds[doc + 1])))
    return np.array(sorted(rows), dtype=np.int64)


def bm25_orders(bm25: BM25Index, queries: list[str], depth: int) -> list[list[int]]:
    """Each query's top ``depth`` passage rows by BM25, best first (ties: higher row first)."""
    ranked = bm25.search({str(i): q for i, q in enumerate(queries)}, k=depth, show_progress=True)
    orders = []
    for i in range(len(queries)):
        scores = ranked[str(i)]
        orders.append([int(d) for d in sorted(scores, key=lambda d: (scores[d], d), reverse=True)])
    return orders


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
    query_texts = [dataset.queries[q] for q in qids]
    query_vectors = encoder.encode_queries(query_texts)
    judged_docs = [{doc_index[d] for d in dataset.qrels[q]} for q in qids]
    bm25 = orders = None
    if "bm25" in neg.sources or config.positive == "bm25" or config.mining == "candidates":
        started = time.perf_counter()
        bm25 = BM25Index([str(i) for i in range(len(passages))], passages.texts)
        logger.info(
            "pairs: BM25 over %d passages in %.0f s", len(passages), time.perf_counter() - started
        )
        # corpus mining asks BM25 for exactly the ranks it uses (the same ties at the cut)
        wide = config.mining == "candidates"
        orders = bm25_orders(
            bm25, query_texts, max(depth, config.candidate_depth) if wide else depth
        )
    vectors: Any
    with tempfile.TemporaryDirectory(prefix="embedtune-pairs-") as tmp:
        if config.mining == "candidates":
            assert orders is not None
            rows = candidate_rows(orders, judged_docs, passages.bounds)
            logger.info(
                "pairs: encoding %d candidate passages of %d (%d queries)",
                len(rows),
                len(passages),
                len(qids),
            )
            vectors = encode_rows(encoder, passages, rows, config.chunk_passages)
            local, _ = dense_top_passages(
                query_vectors, vectors.vectors, depth, config.chunk_passages
            )
            dense_idx = rows[local]
        else:
            vectors = encode_memmap(
                encoder, passages, Path(tmp) / "passages.npy", config.chunk_passages
            )
            dense_idx, _ = dense_top_passages(query_vectors, vectors, depth, config.chunk_passages)
        pairs = []
        for row, qid in enumerate(qids):
            query = dataset.queries[qid]
            relevant = {doc_index[d] for d, s in dataset.qrels[qid].items() if s >= 1}
            judged = judged_docs[row]
            bm25_order = orders[row][:depth] if orders is not None else None
            candidates = _candidates(row, dense_idx, bm25_order, neg.sources, neg.ranks)
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
    dense_idx: np.ndarray,
    bm25_order: list[int] | None,
    sources: Sequence[str],
    ranks: tuple[int, int],
) -> list[tuple[str, int, int]]:
    """(method, rank, passage index) inside the rank range, interleaved across sources."""
    lo, hi = ranks
    per_source: list[list[tuple[str, int, int]]] = []
    if "base" in sources:
        per_source.append(
            [("base", r + 1, int(i)) for r, i in enumerate(dense_idx[row]) if lo <= r + 1 <= hi]
        )
    if "bm25" in sources and bm25_order is not None:
        per_source.append(
            [("bm25", r + 1, d) for r, d in enumerate(bm25_order) if lo <= r + 1 <= hi]
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
