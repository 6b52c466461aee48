"""Settings of the vocabulary-gap analysis."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from embedtune.corpus.config import PassageConfig, PathStr

# The options that shape the numbers, recorded under "settings" in analysis.json.
OPTIONS = ("top_terms", "min_count", "general_zipf", "reference_words")


class AnalyzeConfig(BaseModel):
    """One analysis: which corpus, which tokenizer, where to write, and how the corpus is
    compared with general English.

    Attributes:
        data: BEIR folder (or a parent holding ``<split>/``); ingest other formats first.
        split: Split whose folder to read (for split subfolders); ``None``: the folder itself.
        model: Base model folder or Hub id whose tokenizer is measured (``"base"``: default).
        output: Folder for ``analysis.json`` and ``analysis.html``; never inside ``data``.
        overwrite: Replace an existing ``output`` (else it is refused).
        passages: Passage window and stride counted; ``None``: the `PassageConfig` defaults.
        skip_bad: Skip (and count) bad records instead of failing.
        top_terms: Fragmented domain terms listed.
        min_count: A term must occur this often to be listed.
        general_zipf: Words at least this common in general English are not domain terms.
        reference_words: Size of the general-English word list.
    """

    model_config = ConfigDict(extra="forbid")

    data: PathStr = Field(description="BEIR folder (or a parent holding <split>/)")
    split: str | None = None
    model: str = Field(default="base", description="base model folder ('base' = default)")
    output: PathStr = Field(description="folder for analysis.json and analysis.html")
    overwrite: bool = Field(default=False, description="replace an existing output")
    passages: PassageConfig | None = Field(
        default=None, description="None: the PassageConfig defaults"
    )
    skip_bad: bool = False
    top_terms: int = Field(default=30, ge=1, description="fragmented domain terms listed")
    min_count: int = Field(default=3, ge=1, description="a term must occur this often")
    # A word at least this common in general English (Zipf scale: 3 = once per million words)
    # is general vocabulary, however it is split, and is left out of the domain-term list.
    general_zipf: float = Field(default=3.5, ge=0)
    reference_words: int = Field(default=50_000, ge=1000, le=200_000)

    def options(self) -> dict[str, Any]:
        """The analysis options (no paths), as recorded under ``settings`` in the report."""
        return self.model_dump(include=set(OPTIONS))
