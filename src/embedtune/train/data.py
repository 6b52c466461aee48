"""Train/dev data: the dev split rule and the dev set's max-passage evaluation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.passages import split_passages
from embedtune.corpus.types import Dataset, Qrels
from embedtune.retrieval.fusion import cut
from embedtune.retrieval.metrics import Run, mean, per_query
from embedtune.retrieval.stats import randomization_test

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.models import ModelRef

logger = logging.getLogger(__name__)


@dataclass
class DevSet:
    """Dev queries searched over a corpus with max-passage scoring, as the report does."""

    queries: dict[str, str]
    qrels: Qrels
    doc_ids: list[str]
    passages: list[str]
    bounds: np.ndarray
    doc_texts: list[str]
    # how checkpoints encode it: mixed precision and a larger batch on a GPU (dev scores only
    # choose the checkpoint; the reported test evaluation is always full precision)
    precision: str | None = None
    batch_size: int = 64

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, dev_ids: list[str], tokenizer: Any, passages: PassageConfig
    ) -> DevSet:
        docs = list(dataset.corpus.values())
        split = split_passages(docs, tokenizer, passages)
        return cls(
            {q: dataset.queries[q] for q in dev_ids},
            {q: dataset.qrels[q] for q in dev_ids},
            split.doc_ids,
            split.texts,
            split.bounds,
            [d.full_text for d in docs],
        )

    def pooled(self, runs: list[Run], depth: int) -> DevSet:
        """The dev set over a smaller corpus: the judged documents plus each run's top
        ``depth`` documents per query, in corpus order.

        A checkpoint is then scored by how it orders the candidates that BM25 and the base
        model find, plus the answers; on a large corpus this is a small fraction of the
        encoding, at every dev evaluation.
        """
        keep = {d for rels in self.qrels.values() for d in rels}
        for run in runs:
            for scores in cut(run, depth).values():
                keep.update(scores)
        rows = [i for i, d in enumerate(self.doc_ids) if d in keep]
        texts, bounds = [], [0]
        for i in rows:
            texts.extend(self.passages[int(self.bounds[i]) : int(self.bounds[i + 1])])
            bounds.append(len(texts))
        return DevSet(
            self.queries,
            self.qrels,
            [self.doc_ids[i] for i in rows],
            texts,
            np.asarray(bounds, dtype=np.int64),
            [self.doc_texts[i] for i in rows],
            self.precision,
            self.batch_size,
        )

    def search(
        self,
        model: SentenceTransformer,
        *,
        query_prompt: str = "",
        doc_prompt: str = "",
        cached_as: ModelRef | None = None,
    ) -> Run:
        """Max-passage dense search of the dev queries over the dev corpus.

        Weights that are still moving are never cached; pass ``cached_as`` for a model that
        does not change (the base), whose passage embeddings then come from the disk cache.
        """
        from embedtune.models import ModelRef
        from embedtune.retrieval.cache import default_cache_dir
        from embedtune.retrieval.dense import DenseEncoder, dense_search

        encoder = DenseEncoder(
            model,
            cached_as or ModelRef("training", "", "training"),
            query_prompt=query_prompt,
            doc_prompt=doc_prompt,
            batch_size=self.batch_size,
            cache_dir=Path(default_cache_dir()) / "embeddings" if cached_as else None,
            show_progress=True,  # a dev evaluation can take minutes on a large pool
            precision=self.precision,
        )
        return dense_search(
            encoder, self.queries, self.doc_ids, self.passages, self.bounds, desc="dev: encode"
        )

    def bm25_search(self) -> Run:
        """BM25 over the same dev queries and corpus (documents, not passages)."""
        from embedtune.retrieval.bm25 import BM25Index

        return BM25Index(self.doc_ids, self.doc_texts).search(self.queries)

    def bm25(self) -> dict[str, float]:
        """The BM25 baseline's dev metrics."""
        return self.score(self.bm25_search())

    def score(self, run: Run) -> dict[str, float]:
        values = per_query(run, self.qrels, ["ndcg@10", "mrr@10", "recall@100"])
        return {metric: mean(v) for metric, v in values.items()}

    def per_query(self, run: Run, metric: str = "ndcg@10") -> dict[str, float]:
        """``metric`` of ``run`` per judged query."""
        return per_query(run, self.qrels, [metric])[metric]

    def p_value(self, run: Run, other: Run, metric: str = "ndcg@10") -> float:
        """Paired randomization test of two runs' per-query ``metric`` (the report's test)."""
        a, b = self.per_query(run, metric), self.per_query(other, metric)
        return randomization_test(np.array(list(a.values())), np.array([b[q] for q in a]))
