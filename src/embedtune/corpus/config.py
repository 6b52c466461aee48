"""Settings of the corpus stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Fields(BaseModel):
    """Field (or CSV column) names of records in JSONL/CSV inputs."""

    model_config = ConfigDict(extra="forbid")

    id: str = "_id"
    title: str = "title"
    text: str = "text"


class PassageConfig(BaseModel):
    """How documents are split into passages, in tokens of the model's tokenizer.

    The defaults were chosen on finance10k/train and mediqa2019-qa train/dev with the base
    model (bench/tune_passages.py), never on a test split.
    """

    model_config = ConfigDict(extra="forbid")

    window: int = Field(default=96, ge=8, description="tokens per passage (without the title)")
    stride: int = Field(default=48, ge=1, description="tokens between passage starts")
    title: bool = Field(default=True, description="prepend the document title to each passage")


class CorpusConfig(BaseModel):
    """Where the data comes from and how to read it."""

    model_config = ConfigDict(extra="forbid")

    path: str
    format: Literal["auto", "beir", "jsonl", "csv", "folder"] = "auto"
    fields: Fields = Field(default_factory=Fields)
    split: str | None = None
    skip_bad: bool = False
