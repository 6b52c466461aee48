"""Analysis stage: how badly the base tokenizer fits the domain, and what to do about it."""

from embedtune.analyze.config import AnalyzeConfig

__all__ = ["AnalyzeConfig"]
