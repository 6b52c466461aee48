"""Analysis stage: how badly the base tokenizer fits the domain, and what to do about it.

The stage's verb is `analyze_corpus` (`AnalyzeConfig` in, `AnalyzeResult` out); torch loads
only when it runs.
"""

from embedtune.analyze.analyze import (
    AnalyzeResult,
    DocumentLengths,
    FragmentedTerm,
    analyze_corpus,
)
from embedtune.analyze.config import AnalyzeConfig

__all__ = [
    "AnalyzeConfig",
    "AnalyzeResult",
    "DocumentLengths",
    "FragmentedTerm",
    "analyze_corpus",
]
