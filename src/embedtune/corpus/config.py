"""Settings of the corpus stage."""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _fspath(value: Any) -> Any:
    """A ``pathlib.Path`` (or any path-like) given where a path string is expected."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


PathStr = Annotated[str, BeforeValidator(_fspath)]
"""A file or folder path: a ``str`` in the config (and in every artefact that records it),
given as a ``str`` or a ``pathlib.Path``."""


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

    path: PathStr
    format: Literal["auto", "beir", "jsonl", "csv", "folder"] = "auto"
    fields: Fields = Field(default_factory=Fields)
    split: str | None = None
    skip_bad: bool = False


class IngestConfig(CorpusConfig):
    """One ``ingest``: the input (every `CorpusConfig` setting), the folder to write and,
    optionally, the model whose tokenizer splits the documents into passages.

    Attributes:
        output: Folder to write ``corpus.jsonl``, ``manifest.json`` (and queries, qrels,
            ``passages.jsonl``) to; never the input or inside it.
        overwrite: Replace an existing ``output`` (else it is refused).
        model: Model folder or Hub id (``"base"``: the packaged default) whose tokenizer
            splits documents into ``passages.jsonl``; ``None`` writes no passages.
        passages: Passage window and stride; ``None`` uses the `PassageConfig` defaults.
    """

    output: PathStr = Field(description="folder to write")
    overwrite: bool = Field(default=False, description="replace an existing output")
    model: str | None = Field(
        default=None, description="also write passages.jsonl split by this model's tokenizer"
    )
    passages: PassageConfig | None = Field(
        default=None, description="None: the PassageConfig defaults (used with a model only)"
    )

    def corpus_config(self) -> CorpusConfig:
        """The input settings alone, as recorded under ``input`` in ``manifest.json``."""
        return CorpusConfig.model_validate(self.model_dump(include=set(CorpusConfig.model_fields)))
