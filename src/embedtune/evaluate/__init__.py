"""Evaluation stage: BM25, dense, max-passage and hybrid retrieval, scored as trec_eval does."""

from embedtune.evaluate.config import SYSTEMS, EvalConfig
from embedtune.retrieval.metrics import DEFAULT_METRICS, per_query

__all__ = ["DEFAULT_METRICS", "SYSTEMS", "EvalConfig", "per_query", "run_evaluation"]


def __getattr__(name: str) -> object:
    # run_evaluation pulls in the heavy stack (torch via sentence-transformers) only when used.
    if name == "run_evaluation":
        from embedtune.evaluate.evaluate import run_evaluation

        return run_evaluation
    raise AttributeError(name)
