"""BM25 over title + text with bm25s (Lucene variant, English stop words, Snowball stemmer)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from embedtune.console import progress, verbosity
from embedtune.retrieval.metrics import Run
from embedtune.retrieval.ranking import tie_keys, top_k

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BM25Params:
    """Lucene BM25 with the usual k1/b."""

    k1: float = 1.5
    b: float = 0.75
    language: str = "english"


class BM25Index:
    """A sparse BM25 index; queries are scored in blocks, keeping only each one's top k."""

    def __init__(
        self,
        doc_ids: list[str],
        texts: list[str],
        params: BM25Params | None = None,
        show_progress: bool = False,
    ) -> None:
        import bm25s
        import Stemmer

        # bm25s sets its logger to DEBUG on import, which would print on every index build.
        logging.getLogger("bm25s").setLevel(logging.WARNING)

        self.params = params or BM25Params()
        self.doc_ids = doc_ids
        self._keys = tie_keys(doc_ids)
        self._tokenizer = bm25s.tokenization.Tokenizer(
            stopwords="en", stemmer=Stemmer.Stemmer(self.params.language)
        )
        # Streaming tokenisation keeps one document's tokens at a time, not a copy of the text.
        corpus_ids = list(self._tokenizer.streaming_tokenize(texts))
        self._retriever = bm25s.BM25(method="lucene", k1=self.params.k1, b=self.params.b)
        # bm25s draws two bars of its own (count, score); the step's one bar is the search
        self._retriever.index(corpus_ids, show_progress=show_progress and verbosity() == "verbose")
        self._vocab = self._tokenizer.get_vocab_dict()

    def _query_ids(self, text: str) -> list[int]:
        """Stem ids of the query's words that occur in the corpus (a new surface form of a
        known stem counts, as in Lucene); stop words and unknown stems are dropped."""
        ids = next(
            self._tokenizer.streaming_tokenize([text], update_vocab=False, allow_empty=False)
        )
        empty = self._vocab.get("")
        return [i for i in ids if i != empty]

    def score_rows(self, query: str, rows: range) -> np.ndarray:
        """BM25 scores of the given document rows for one query."""
        ids = self._query_ids(query)
        if not ids:
            return np.zeros(len(rows))
        return np.asarray(self._retriever.get_scores(ids), dtype=np.float64)[rows.start : rows.stop]

    def search(self, queries: dict[str, str], k: int = 100, show_progress: bool = False) -> Run:
        """Top ``k`` documents per query; a query with no known term retrieves nothing."""
        run: Run = {}
        for qid, text in progress(
            queries.items(), desc="bm25", unit="query", enabled=show_progress
        ):
            ids = self._query_ids(text)
            if not ids:
                run[qid] = {}
                continue
            scores = np.asarray(self._retriever.get_scores(ids), dtype=np.float64)
            best = top_k(scores, self._keys, k)
            run[qid] = {self.doc_ids[i]: float(scores[i]) for i in best if scores[i] > 0}
        return run
