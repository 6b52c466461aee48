"""Pairs stage: (query, positive, hard negatives) training examples with provenance."""

from embedtune.pairs.config import NegativesConfig, PairsConfig
from embedtune.pairs.io import Pair, load_pairs, read_pairs_file, write_pairs

__all__ = ["NegativesConfig", "Pair", "PairsConfig", "load_pairs", "read_pairs_file", "write_pairs"]
