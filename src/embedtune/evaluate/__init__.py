"""Evaluation stage: BM25, dense, max-passage and hybrid retrieval, scored as trec_eval does."""

from embedtune.evaluate.config import PER_QUERY_FILE, SYSTEMS, EvalConfig
from embedtune.retrieval.metrics import DEFAULT_METRICS, per_query

__all__ = [
    "DEFAULT_METRICS",
    "PER_QUERY_FILE",
    "SYSTEMS",
    "EvalConfig",
    "evaluate_models",
    "per_query",
]


def __getattr__(name: str) -> object:
    # evaluate_models pulls in the heavy stack (torch via sentence-transformers) only when used.
    if name == "evaluate_models":
        from embedtune.evaluate.evaluate import evaluate_models

        return evaluate_models
    raise AttributeError(name)
