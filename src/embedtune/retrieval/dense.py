"""Exact dense search in bounded memory, with an on-disk cache of document embeddings."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embedtune.console import progress
from embedtune.retrieval.cache import EmbeddingStore, text_keys
from embedtune.retrieval.encoder import Encoder, embed
from embedtune.retrieval.metrics import Run
from embedtune.retrieval.ranking import RunningTopK, tie_keys

if TYPE_CHECKING:
    from embedtune.models import ModelRef

logger = logging.getLogger(__name__)


@dataclass
class EncodeStats:
    """How much text was encoded and how fast; ``cached``: texts not encoded (read from the
    cache, or repeats of a text in the same call)."""

    encoded: int = 0
    cached: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.encoded / self.seconds if self.seconds > 0 else 0.0


@dataclass
class DenseEncoder:
    """Encodes queries and documents with one model, prompts and settings.

    Document embeddings are cached on disk one text at a time, in a folder per model content
    hash and encoding settings (``EmbeddingStore``), so no text is encoded twice with the
    same model and settings, whichever search or mining pass encoded it first.
    """

    model: Encoder  # a sentence-transformers model or an OnnxEncoder
    ref: ModelRef
    query_prompt: str = ""
    doc_prompt: str = ""
    batch_size: int = 64
    cache_dir: Path | None = None
    show_progress: bool = False
    # mixed precision on a GPU ("bf16" or "fp16"; None: the model's own): for mining and
    # candidate generation only, never for reported evaluations
    precision: str | None = None
    stats: EncodeStats = field(default_factory=EncodeStats)
    _cache: EmbeddingStore | None = field(default=None, init=False, repr=False, compare=False)

    def _settings_key(self) -> str:
        key = f"{self.ref.sha256}\0{self.doc_prompt}\0{self.model.max_seq_length}\0normalized"
        if self.precision:  # never mixed with full-precision vectors in the cache
            key += f"\0{self.precision}"
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Normalised query embeddings (float32)."""
        return self._encode(texts, self.query_prompt)

    def _encode(self, texts: list[str], prompt: str) -> np.ndarray:
        if self.precision is None:
            return embed(self.model, texts, prompt, self.batch_size)
        import torch

        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        with torch.autocast("cuda", dtype=dtype):
            return embed(self.model, texts, prompt, self.batch_size)

    def encode_documents(
        self, texts: list[str], advance: Callable[[int], object] | None = None
    ) -> np.ndarray:
        """Normalised document embeddings; texts encoded before come from the cache.

        ``advance`` (a progress bar's ``update``) is called with the count of texts done as
        they are encoded, every few hundred texts: a chunk of thousands takes minutes on a
        CPU, which must not pass without visible progress."""
        if self.cache_dir is None or not texts:
            return self._encode_fresh(texts, advance)
        store = self._store()
        keys = text_keys(texts)
        found, vectors = store.lookup(keys)
        if advance is not None and found.any():
            advance(int(found.sum()))
        if found.all():
            self.stats.cached += len(texts)
            return vectors
        # each distinct missing text once, in the callers' order (the model sorts by length)
        missing = np.flatnonzero(~found)
        distinct, first, inverse = np.unique(keys[missing], return_index=True, return_inverse=True)
        order = np.argsort(first)
        fresh = self._encode_fresh([texts[missing[first[i]]] for i in order], advance)
        store.add(distinct[order], fresh)
        # every text not encoded counts as cached: encoded + cached = texts asked for
        self.stats.cached += len(texts) - len(distinct)
        if advance is not None and len(distinct) < len(missing):
            advance(len(missing) - len(distinct))  # repeats: a progress bar counts every text
        per_distinct = np.empty_like(fresh)
        per_distinct[order] = fresh
        out = np.empty((len(texts), fresh.shape[1]), dtype=np.float32)
        out[missing] = per_distinct[inverse.reshape(-1)]
        if found.any():
            out[found] = vectors
        return out

    def _store(self) -> EmbeddingStore:
        assert self.cache_dir is not None
        folder = self.cache_dir / self._settings_key()
        if self._cache is None or self._cache.folder != folder:  # settings may change
            self._cache = EmbeddingStore(folder)
        return self._cache

    def _encode_fresh(
        self, texts: list[str], advance: Callable[[int], object] | None
    ) -> np.ndarray:
        start = time.perf_counter()
        vectors = self._encode_in_blocks(texts, advance)
        self.stats.seconds += time.perf_counter() - start
        self.stats.encoded += len(texts)
        return vectors

    def _encode_in_blocks(
        self, texts: list[str], advance: Callable[[int], object] | None
    ) -> np.ndarray:
        if advance is None:
            return self._encode(texts, self.doc_prompt)
        # blocks of a few batches: progress every ~10 s on a CPU, with length-sorting (inside
        # the model's encode) still grouping similar lengths
        block = max(4 * self.batch_size, 256)
        parts = []
        for start in range(0, len(texts), block):
            parts.append(self._encode(texts[start : start + block], self.doc_prompt))
            advance(len(parts[-1]))
        return np.concatenate(parts) if parts else self._encode(texts, self.doc_prompt)


def doc_chunks(bounds: np.ndarray, chunk_passages: int) -> list[tuple[int, int]]:
    """Document ranges whose passages number about ``chunk_passages``; a document is never
    split across chunks, so a chunk's per-document maximum is the document's true score."""
    chunks, start = [], 0
    n_docs = len(bounds) - 1
    while start < n_docs:
        end = int(np.searchsorted(bounds, bounds[start] + chunk_passages, side="right")) - 1
        end = min(max(end, start + 1), n_docs)
        chunks.append((start, end))
        start = end
    return chunks


def dense_search(
    encoder: DenseEncoder,
    queries: dict[str, str],
    doc_ids: list[str],
    passages: list[str],
    bounds: np.ndarray,
    *,
    k: int = 100,
    chunk_passages: int = 8192,
    desc: str = "encode",
) -> Run:
    """Top ``k`` documents per query; a document scores as its best passage (cosine).
    ``desc`` names the step on the progress bar (shown when ``encoder.show_progress``).

    Passages are encoded and scored one chunk at a time and only each query's running top
    ``k`` is kept, so memory is bounded by queries × (chunk + k), not by the corpus size.
    With one passage per document (``bounds = 0..n``) this is plain truncated-document search.
    """
    qids = list(queries)
    if not qids:
        return {}
    query_vectors = encoder.encode_queries([queries[q] for q in qids])
    best = RunningTopK(len(qids), tie_keys(doc_ids), k)
    chunks = doc_chunks(bounds, chunk_passages)
    bar = progress(total=int(bounds[-1]), desc=desc, unit="psg", enabled=encoder.show_progress)
    for d0, d1 in chunks:
        p0, p1 = int(bounds[d0]), int(bounds[d1])
        vectors = encoder.encode_documents(passages[p0:p1], advance=bar.update)
        sims = query_vectors @ vectors.T  # queries × passages in this chunk
        best.add(d0, np.maximum.reduceat(sims, bounds[d0:d1] - p0, axis=1))
    bar.close()
    best_idx, best_scores = best.idx, best.scores
    return {
        qid: {doc_ids[i]: float(s) for i, s in zip(best_idx[row], best_scores[row], strict=True)}
        for row, qid in enumerate(qids)
    }
