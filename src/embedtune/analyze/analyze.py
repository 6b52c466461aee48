"""``embedtune analyze``: the vocabulary gap between a corpus and the base tokenizer.

Writes ``analysis.json`` and a self-contained ``analysis.html`` (inline SVG, no scripts).
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.analyze.config import AnalyzeConfig
from embedtune.analyze.html import render_html
from embedtune.corpus.config import PassageConfig
from embedtune.corpus.load import load_beir
from embedtune.corpus.vocab import (
    Fragmentation,
    count_words,
    fragmentation,
    fragmented_terms,
    is_uncased,
    reference_weights,
    tokenize_words,
)
from embedtune.errors import require
from embedtune.io import write_json, write_text
from embedtune.outputs import check_output, replacing
from embedtune.provenance import library_versions

__all__ = ["AnalyzeResult", "DocumentLengths", "FragmentedTerm", "analyze_corpus"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FragmentedTerm:
    """A frequent domain word the tokenizer splits into 3+ pieces.

    Attributes:
        term: The word as it occurs in the corpus (lower-cased for an uncased tokenizer).
        count: Occurrences in the corpus.
        pieces: Tokens the word is split into.
        tokens: The tokens themselves.
        general_zipf: How common the word is in general English (Zipf scale).
    """

    term: str
    count: int
    pieces: int
    tokens: list[str]
    general_zipf: float


@dataclass(frozen=True)
class DocumentLengths:
    """Document lengths in tokens against the model's limit.

    Attributes:
        max_tokens: Tokens the model reads per document (its limit less [CLS] and [SEP]).
        mean: Mean document length.
        p50: Median document length.
        p95: 95th-percentile document length.
        max: Longest document.
        truncated_share: Share of documents longer than ``max_tokens``.
        text_lost_share: Share of all tokens past ``max_tokens``, cut off by truncation.
    """

    max_tokens: int
    mean: float
    p50: int
    p95: int
    max: int
    truncated_share: float
    text_lost_share: float


@dataclass(frozen=True)
class AnalyzeResult:
    """The vocabulary gap between a corpus and general English under one tokenizer.

    Numbers are rounded as in ``analysis.json``.

    Attributes:
        output: Folder holding ``analysis.json`` and ``analysis.html``.
        corpus: Fragmentation of the corpus's running words.
        reference: Fragmentation of general English (the wordfreq list).
        top_terms: The most frequent fragmented domain terms, most costly first.
        lengths: Document lengths against the model's limit.
        passages: Passages the documents split into.
        recommendations: Plain advice, each line naming the number it follows from.
        report: The content of ``analysis.json``.
    """

    output: Path
    corpus: Fragmentation
    reference: Fragmentation
    top_terms: list[FragmentedTerm]
    lengths: DocumentLengths
    passages: int
    recommendations: list[str]
    report: dict[str, Any] = field(repr=False)

    @property
    def html(self) -> Path:
        """The self-contained HTML page of the analysis."""
        return self.output / "analysis.html"

    def to_dict(self) -> dict[str, Any]:
        """The report as written to ``analysis.json`` (a copy)."""
        return copy.deepcopy(self.report)

    @classmethod
    def from_report(cls, output: Path, report: dict[str, Any]) -> AnalyzeResult:
        """The typed view of an ``analysis.json`` report written to ``output``."""

        def frag(part: dict[str, Any]) -> Fragmentation:
            return Fragmentation(
                words=part["words"],
                tokens_per_word=part["tokens_per_word"],
                share_3plus=part["share_3plus"],
                unk_share=part["unk_share"],
                pieces=dict(part["pieces"]),
            )

        lengths = {k: v for k, v in report["lengths"].items() if k != "histogram"}
        return cls(
            output=output,
            corpus=frag(report["corpus"]),
            reference=frag(report["reference"]),
            top_terms=[FragmentedTerm(**term) for term in report["top_terms"]],
            lengths=DocumentLengths(**lengths),
            passages=report["passages"]["count"],
            recommendations=list(report["recommendations"]),
            report=report,
        )


def _lengths(tokenizer: Any, texts: list[str], max_tokens: int) -> dict[str, Any]:
    """Document lengths in tokens against the model's limit: truncation and text lost."""
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), 256):
        batch = texts[start : start + 256]
        # verbose=False: lengths past the model limit are the point here, not a mistake
        ids = tokenizer(batch, add_special_tokens=False, verbose=False)["input_ids"]
        lengths[start : start + len(ids)] = [len(x) for x in ids]
    kept = np.minimum(lengths, max_tokens)
    edges = sorted({0, *np.linspace(0, max(int(lengths.max()), max_tokens + 1), 31).astype(int)})
    counts, _ = np.histogram(lengths, bins=edges)
    return {
        "max_tokens": max_tokens,
        "mean": round(float(lengths.mean()), 1),
        "p50": int(np.percentile(lengths, 50)),
        "p95": int(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "truncated_share": round(float((lengths > max_tokens).mean()), 4),
        "text_lost_share": round(1 - float(kept.sum()) / max(1, int(lengths.sum())), 4),
        "histogram": {"edges": [int(e) for e in edges], "counts": counts.tolist()},
    }


def _top_terms(
    tokenizer: Any, counts: Counter[str], ids: dict[str, list[int]], config: AnalyzeConfig
) -> list[dict[str, Any]]:
    """Frequent words split into 3+ pieces that general English rarely uses."""
    ranked, zipf = fragmented_terms(counts, ids, config.min_count, config.general_zipf)
    return [
        {
            "term": w,
            "count": counts[w],
            "pieces": len(ids[w]),
            "tokens": tokenizer.convert_ids_to_tokens(ids[w]),
            "general_zipf": round(zipf[w], 2),
        }
        for w in ranked[: config.top_terms]
    ]


def _recommendations(report: dict[str, Any]) -> list[str]:
    """Plain advice derived from the numbers; each line says which number it follows from."""
    corpus, ref = report["corpus"], report["reference"]
    lengths = report["lengths"]
    out = []
    gap = corpus["tokens_per_word"] - ref["tokens_per_word"]
    share_gap = corpus["share_3plus"] - ref["share_3plus"]
    if share_gap > 0.03 or gap > 0.1:
        out.append(
            f"The tokenizer fragments this vocabulary: {corpus['tokens_per_word']:.2f} tokens "
            f"per word against {ref['tokens_per_word']:.2f} in general English, "
            f"{corpus['share_3plus']:.1%} of words in 3+ pieces against "
            f"{ref['share_3plus']:.1%}. Fine-tuning on domain pairs teaches the model these "
            "splits; continued masked-language-model training on the corpus (strategy `mlm`) "
            "and new tokens for the costliest terms (`--extend-vocab N`) are the usual "
            "next steps; measure them against plain fine-tuning (BENCHMARKS.md)."
        )
    else:
        out.append(
            f"The tokenizer fits this vocabulary about as well as general English "
            f"({corpus['tokens_per_word']:.2f} vs {ref['tokens_per_word']:.2f} tokens per "
            "word): vocabulary is not the bottleneck; fine-tune on domain pairs."
        )
    if corpus["unk_share"] > 0.001:
        out.append(
            f"{corpus['unk_share']:.2%} of words contain the unknown token: the tokenizer "
            "cannot represent some characters; check the text encoding or normalise it."
        )
    if lengths["truncated_share"] > 0.05:
        line = (
            f"{lengths['truncated_share']:.0%} of documents are longer than the model's "
            f"{lengths['max_tokens']} tokens and {lengths['text_lost_share']:.0%} of the text "
            "would be cut off: score documents by their best passage (the *-maxp systems, "
            f"which training and evaluation use; {report['passages']['count']} passages here)."
        )
        limit = report["model"]["position_limit"]
        if limit and limit > lengths["max_tokens"]:
            line += (
                f" For whole-document scoring, raising train.max_seq_length towards {limit} "
                "(the model's position limit) keeps more of each document, at a higher cost "
                "per step."
            )
        out.append(line)
    else:
        out.append(
            f"Documents fit the model's {lengths['max_tokens']} tokens "
            f"({lengths['truncated_share']:.0%} longer): truncation loses little."
        )
    return out


def analyze_corpus(config: AnalyzeConfig) -> AnalyzeResult:
    """Measure how badly ``config.model``'s tokenizer fragments the corpus of ``config.data``,
    against general English, and how document lengths compare with the model's limit.

    Writes ``analysis.json`` and a self-contained ``analysis.html`` (inline SVG, no scripts)
    to ``config.output`` and logs each recommendation.

    Args:
        config: The data (``data``, ``split``, ``skip_bad``), the ``model``, the ``output``
            folder, the ``passages`` counted and the analysis options.

    Returns:
        Fragmentation of corpus and reference, the costliest domain terms, document lengths,
        the passage count and recommendations; ``to_dict()`` gives ``analysis.json``.

    Raises:
        ConfigError: ``config.output`` already holds an analysis, or the model is not found.
        DataError: The data is missing or malformed (and ``skip_bad`` is off).
        MissingExtraError: The ``eval`` extra (wordfreq) is not installed.

    Example:
        >>> from embedtune.analyze import AnalyzeConfig, analyze_corpus
        >>> result = analyze_corpus(
        ...     AnalyzeConfig(data="data/finance10k", split="train", output="runs/fin-analysis")
        ... )
        >>> round(result.corpus.tokens_per_word, 3), round(result.reference.tokens_per_word, 3)
        (1.149, 1.037)
        >>> result.top_terms[0].term, result.lengths.truncated_share
        ('lyft', 0.74)
    """
    require("wordfreq", "eval")
    from embedtune.corpus.passages import split_passages
    from embedtune.models import load_model, resolve_model

    out = Path(config.output)
    check_output(out, [config.data], overwrite=config.overwrite)
    dataset = load_beir(config.data, config.split, skip_bad=config.skip_bad)
    ref = resolve_model(config.model)
    st = load_model(ref)
    tokenizer = st.tokenizer
    docs = list(dataset.corpus.values())
    texts = [d.full_text for d in docs]
    uncased = is_uncased(tokenizer)
    counts = count_words(t.lower() if uncased else t for t in texts)
    reference, about = reference_weights(config.reference_words)
    ids = tokenize_words(tokenizer, sorted(set(counts) | set(reference)))
    unk = tokenizer.unk_token_id
    corpus_frag = fragmentation(dict(counts), ids, unk)
    ref_frag = fragmentation(reference, ids, unk)
    passage_settings = config.passages or PassageConfig()
    split_docs = split_passages(docs, tokenizer, passage_settings)
    transformer: Any = st[0]
    position_limit = getattr(transformer.auto_model.config, "max_position_embeddings", None)
    max_tokens = int(st.max_seq_length or tokenizer.model_max_length) - 2  # [CLS] and [SEP]
    report: dict[str, Any] = {
        "data": dataset.manifest.to_dict(),
        "model": {
            "name": ref.name,
            "sha256": ref.sha256,
            "uncased": uncased,
            "max_seq_length": st.max_seq_length,
            "position_limit": position_limit,
        },
        # the list's own word count, not the (fractional) frequency mass its weights sum to
        "reference": {**ref_frag.to_dict(), **about},
        "corpus": {**corpus_frag.to_dict(), "distinct_words": len(counts)},
        "gap": {
            "tokens_per_word": round(corpus_frag.tokens_per_word - ref_frag.tokens_per_word, 4),
            "share_3plus": round(corpus_frag.share_3plus - ref_frag.share_3plus, 4),
        },
        "top_terms": _top_terms(tokenizer, counts, ids, config),
        "lengths": _lengths(tokenizer, texts, max_tokens),
        "passages": {
            **passage_settings.model_dump(),
            "count": len(split_docs),
            "per_document": round(len(split_docs) / max(1, len(docs)), 2),
        },
        "settings": config.options(),
        "versions": library_versions(),
    }
    report["recommendations"] = _recommendations(report)
    with replacing(out, config.overwrite):
        write_json(out / "analysis.json", report)
        write_text(out / "analysis.html", render_html(report))
    for line in report["recommendations"]:
        logger.info("analysis: %s", line)
    return AnalyzeResult.from_report(out, report)
