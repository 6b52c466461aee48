"""Settings of the vocabulary-gap analysis."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnalyzeConfig(BaseModel):
    """How the corpus is compared with general English."""

    model_config = ConfigDict(extra="forbid")

    top_terms: int = Field(default=30, ge=1, description="fragmented domain terms listed")
    min_count: int = Field(default=3, ge=1, description="a term must occur this often")
    # A word at least this common in general English (Zipf scale: 3 = once per million words)
    # is general vocabulary, however it is split, and is left out of the domain-term list.
    general_zipf: float = Field(default=3.5, ge=0)
    reference_words: int = Field(default=50_000, ge=1000, le=200_000)
