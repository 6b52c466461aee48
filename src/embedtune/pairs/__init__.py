"""Pairs stage: (query, positive, hard negatives) training examples with provenance."""

from embedtune.pairs.config import LLMConfig, NegativesConfig, PairsConfig, WeakConfig
from embedtune.pairs.io import Pair, load_pairs, read_pairs_file, write_pairs

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
