"""Settings of the pairs stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from embedtune.corpus.config import PassageConfig
from embedtune.models import check_device


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
    # What the base model encodes to mine: `candidates` encodes only each training query's
    # BM25 top `candidate_depth` passages and the passages of its judged documents (cost grows
    # with the queries), and ranks the dense negatives among those; `corpus` encodes every
    # passage (cost grows with the corpus). Both gave the same test quality on finance10k,
    # mediqa2019-qa and finance10k padded to 10^4 documents (BENCHMARKS.md, issue 18).
    mining: Literal["corpus", "candidates"] = Field(
        default="candidates", description="corpus | candidates: which passages are encoded to mine"
    )
    candidate_depth: int = Field(
        default=100, ge=1, description="candidates: BM25 passages per training query"
    )
    batch_size: int | None = Field(
        default=None, ge=1, description="encoding batch size (default: 64; 256 on a GPU)"
    )
    # Mining encodes with the base model only to rank candidates: on a CUDA device it runs in
    # mixed precision (bf16, else fp16) unless `fp32`; on CPU it is always full precision.
    precision: Literal["auto", "fp32"] = Field(
        default="auto", description="auto (mixed precision on a GPU) | fp32"
    )
    # Mining only ranks candidates, so it may encode with a faster approximation of the base
    # model: an `embedtune export` folder of that same model (checked by its hash), its int8
    # (or fp32) ONNX file run by onnxruntime. Its parity with PyTorch, recorded by the export,
    # is copied into the pairs' summary. Evaluation never uses it.
    mining_encoder: str | None = Field(
        default=None, description="an `embedtune export` folder of the base model to mine with"
    )
    mining_variant: Literal["int8", "fp32"] = Field(
        default="int8", description="which ONNX file of mining_encoder"
    )
    chunk_passages: int = Field(default=8192, ge=1)
    # A learning curve's x axis: the share of the labeled training queries kept (a seeded
    # sample by dev_seed, drawn after the dev split is made, so dev and test do not move).
    query_fraction: float = Field(
        default=1.0, gt=0, le=1, description="share of labeled training queries used"
    )

    def identity(self) -> dict[str, object]:
        """The settings that make the pairs what they are (their fingerprint). Fields added
        after pairs were first fingerprinted are left out at their default, so pairs built
        before them still match."""
        later = {"query_fraction", "mining_variant"}
        defaults = {k for k in later if getattr(self, k) == PairsConfig.model_fields[k].default}
        if self.mining_encoder is None:
            defaults.add("mining_variant")
        # the mining encoder counts by its model file's hash (the pairs stage adds it), not
        # by where the export folder is
        return self.model_dump(mode="json", exclude=defaults | {"mining_encoder"})

    @model_validator(mode="after")
    def _deep_enough(self) -> PairsConfig:
        if self.mining == "candidates" and self.candidate_depth < self.negatives.ranks[1]:
            raise ValueError(
                f"candidate_depth {self.candidate_depth} is shallower than the negatives' last "
                f"rank {self.negatives.ranks[1]}: raise candidate_depth"
            )
        return self


WeakSource = Literal["title", "adjacent", "lead", "sentence", "keyphrase", "llm"]
"""Heuristic pair sources (title, adjacent, lead) and pseudo-query sources (sentence,
keyphrase, title on dev documents, llm)."""


class LLMConfig(BaseModel):
    """An OpenAI-compatible chat-completions endpoint that writes questions per document.

    The API key is read from the environment variable named by ``api_key_env`` at call time;
    it is never stored in a config, a cache entry or a summary.
    """

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        description="chat-completions URL, e.g. http://127.0.0.1:8000/v1/chat/completions "
        "(a base URL ending in /v1 gets /chat/completions appended)"
    )
    model: str = Field(description="model name sent in the request")
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    questions_per_doc: int = Field(default=3, ge=1, le=20, description="questions asked per doc")
    max_docs: int = Field(default=200, ge=1, description="documents sent to the endpoint at most")
    max_doc_chars: int = Field(
        default=6000, ge=200, description="longer documents are cut to this many characters"
    )
    cache_dir: str | None = Field(
        default=None, description="answer cache; default <EMBEDTUNE_CACHE>/llm-questions"
    )
    timeout: float = Field(default=60, gt=0, description="seconds per request")


class WeakConfig(BaseModel):
    """Label-free supervision: heuristic pairs and filtered pseudo-queries from the corpus."""

    model_config = ConfigDict(extra="forbid")

    sources: list[WeakSource] = Field(
        # keyphrase is off by default: chosen on finance10k's pseudo-dev (BENCHMARKS.md)
        default=["title", "adjacent", "lead", "sentence"],
        min_length=1,
        description="title: title/markdown heading → body; adjacent: passage i → i+1; lead: "
        "first sentence → rest; sentence: salient sentence (Inverse Cloze); keyphrase: top "
        "TF-IDF terms (off by default); llm: questions from an endpoint (needs weak.llm)",
    )
    max_queries_per_doc: int = Field(
        default=2,
        ge=1,
        description="per document and source: sentence/keyphrase queries, headings and "
        "adjacent-passage pairs (llm uses llm.questions_per_doc)",
    )
    agreement_k: int = Field(
        default=3,
        ge=1,
        description="keep a pseudo-query only if its BM25 top document is in the base "
        "model's top k documents; raise it to keep more",
    )
    dev_fraction: float = Field(
        default=0.15,
        ge=0.0,
        lt=1.0,
        description="fraction of documents held out; their pseudo-queries form the dev set "
        "and no training pair comes from them (0: no dev set)",
    )
    dev_seed: int = Field(default=0, description="seed of the document hold-out and sampling")
    dev_sources: list[Literal["title", "keyphrase", "llm", "sentence"]] = Field(
        default=["title", "keyphrase", "llm"],
        min_length=1,
        description="pseudo-query kinds made for held-out documents as dev queries, whatever "
        "the training sources; 'sentence' is left out by default because a verbatim sentence "
        "is found by copy, not by understanding ('llm' needs weak.llm)",
    )
    dev_max_queries: int = Field(
        default=200,
        ge=1,
        description="cap on pseudo-dev queries (a seeded sample): every dev evaluation "
        "searches them over the corpus, which on a large corpus costs more than training",
    )
    max_pairs: int | None = Field(
        default=None, ge=1, description="cap on training pairs (a seeded sample)"
    )
    sentence_words: tuple[int, int] = Field(
        default=(6, 30), description="word-count range of salient and lead sentences"
    )
    keyphrase_terms: int = Field(
        default=4, ge=1, le=12, description="terms or bigrams joined into a key-phrase query"
    )
    min_df: int = Field(
        default=2,
        ge=1,
        description="terms in fewer documents are ignored (typos, glued words, identifiers)",
    )
    max_df: float = Field(
        default=0.5, gt=0.0, le=1.0, description="terms in more than this fraction are ignored"
    )
    llm: LLMConfig | None = Field(default=None, description="question writer for source 'llm'")

    @model_validator(mode="after")
    def _check(self) -> WeakConfig:
        lo, hi = self.sentence_words
        if lo < 1 or hi < lo:
            raise ValueError(f"weak.sentence_words must be 1 <= min <= max, got {lo, hi}")
        if "llm" in self.sources and self.llm is None:
            raise ValueError("weak.sources has 'llm' but weak.llm (url, model) is not set")
        return self


# The keys of a training recipe (a preset, a --config YAML, the run's `train:` block) that
# the pairs stage reads; base model, passages, prompts and device are shared with training.
RECIPE_KEYS = ("supervision", "pairs", "weak", "dev_fraction", "dev_seed")
SHARED_KEYS = ("base_model", "passages", "query_prompt", "doc_prompt", "max_seq_length", "device")


class BuildPairsConfig(BaseModel):
    """One run of the pairs stage: where the data is, where the pairs go, how to make them.

    Exactly one source: ``data`` (a BEIR folder: labeled pairs from ``split``'s judgments, or
    with ``supervision: weak`` label-free pairs from its corpus) or ``pairs_file`` (your own
    JSONL/CSV pairs, checked and converted). The dev split follows the one dev rule
    (:mod:`embedtune.corpus.splits`): ``dev_split``, else a split named ``dev``, else
    ``dev_fraction`` of the queries (or pairs) held out.
    """

    model_config = ConfigDict(extra="forbid")

    output: str = Field(description="folder for pairs.jsonl, pairs.summary.json, pairset.json")
    overwrite: bool = Field(
        default=False, description="rebuild in place of pairs made from other inputs"
    )
    data: str | None = Field(default=None, description="BEIR folder (or a parent of splits)")
    pairs_file: str | None = Field(default=None, description="your own pairs (JSONL/CSV)")
    split: str = "train"
    dev_split: str | None = None
    skip_bad: bool = False
    supervision: Literal["labels", "weak"] = "labels"
    base_model: str = "base"
    passages: PassageConfig = Field(default_factory=PassageConfig)
    query_prompt: str = ""
    doc_prompt: str = ""
    max_seq_length: int | None = None
    device: str | None = None

    @field_validator("device")
    @classmethod
    def _device_available(cls, value: str | None) -> str | None:
        return check_device(value)

    pairs: PairsConfig = Field(default_factory=PairsConfig)
    weak: WeakConfig = Field(default_factory=WeakConfig)
    dev_fraction: float = Field(default=0.15, ge=0.05, le=0.5)
    # The held-out dev queries do not move with the training seed: runs over several seeds
    # are then compared on the same dev set, and the pairs mined for training stay the same.
    dev_seed: int = 0
    progress: bool = True
