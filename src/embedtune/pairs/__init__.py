"""Pairs stage: (query, positive, hard negatives) training examples with provenance."""

from embedtune.corpus.pairs import Pair, load_pairs, read_pairs_file, write_pairs
from embedtune.pairs.config import LLMConfig, NegativesConfig, PairsConfig, WeakConfig

__all__ = [
    "LLMConfig",
    "NegativesConfig",
    "Pair",
    "PairsConfig",
    "WeakConfig",
    "load_pairs",
    "read_pairs_file",
    "write_pairs",
]
