"""Settings of the pairs stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class NegativesConfig(BaseModel):
    """Hard negatives: which retrievers, which ranks, and the false-negative filter."""

    model_config = ConfigDict(extra="forbid")

    sources: list[Literal["bm25", "base"]] = Field(default=["bm25", "base"])
    ranks: tuple[int, int] = Field(default=(3, 30), description="1-based rank range, inclusive")
    per_query: int = Field(default=1, ge=0, description="hard negatives per pair")
    margin: float = Field(
        default=0.05,
        description="drop a candidate scoring above positive − margin (a likely "
        "unjudged relevant passage); base-model cosine, or cross-encoder score when configured",
    )
    cross_encoder: str | None = Field(default=None, description="local cross-encoder folder")

    @model_validator(mode="after")
    def _ranks_ordered(self) -> NegativesConfig:
        lo, hi = self.ranks
        if lo < 1 or hi < lo:
            raise ValueError(f"negatives.ranks must be 1 <= first <= last, got {self.ranks}")
        return self


class PairsConfig(BaseModel):
    """How (query, positive, negatives) training pairs are made."""

    model_config = ConfigDict(extra="forbid")

    positive: Literal["base", "bm25"] = Field(
        default="base", description="how the passage inside a relevant document is chosen"
    )
    negatives: NegativesConfig = Field(default_factory=NegativesConfig)
    batch_size: int = Field(default=64, ge=1, description="encoding batch size")
    chunk_passages: int = Field(default=8192, ge=1)
