"""``embedtune analyze``: the vocabulary gap between a corpus and the base tokenizer.

Writes ``analysis.json`` and a self-contained ``analysis.html`` (inline SVG, no scripts).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.analyze.config import AnalyzeConfig
from embedtune.analyze.html import render_html
from embedtune.corpus.config import PassageConfig
from embedtune.corpus.load import load_beir
from embedtune.corpus.vocab import (
    count_words,
    fragmentation,
    fragmented_terms,
    is_uncased,
    reference_weights,
    tokenize_words,
)
from embedtune.errors import ConfigError, require
from embedtune.io import write_json, write_text
from embedtune.provenance import library_versions

logger = logging.getLogger(__name__)


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


def analyze_corpus(
    data: str | Path,
    split: str | None,
    model: str,
    output: str | Path,
    *,
    passages: PassageConfig | None = None,
    config: AnalyzeConfig | None = None,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Measure the vocabulary gap of ``data``'s corpus under ``model``'s tokenizer and write
    ``analysis.json`` and ``analysis.html`` to ``output``; returns the report."""
    require("wordfreq", "eval")
    from embedtune.corpus.passages import split_passages
    from embedtune.models import load_model, resolve_model

    settings = config or AnalyzeConfig()
    out = Path(output)
    if (out / "analysis.json").exists():
        raise ConfigError(f"{out / 'analysis.json'} already exists; choose a new --output")
    dataset = load_beir(data, split, skip_bad=skip_bad)
    ref = resolve_model(model)
    st = load_model(ref)
    tokenizer = st.tokenizer
    docs = list(dataset.corpus.values())
    texts = [d.full_text for d in docs]
    uncased = is_uncased(tokenizer)
    counts = count_words(t.lower() if uncased else t for t in texts)
    reference, about = reference_weights(settings.reference_words)
    ids = tokenize_words(tokenizer, sorted(set(counts) | set(reference)))
    unk = tokenizer.unk_token_id
    corpus_frag = fragmentation(dict(counts), ids, unk)
    ref_frag = fragmentation(reference, ids, unk)
    passage_settings = passages or PassageConfig()
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
        "top_terms": _top_terms(tokenizer, counts, ids, settings),
        "lengths": _lengths(tokenizer, texts, max_tokens),
        "passages": {
            **passage_settings.model_dump(),
            "count": len(split_docs),
            "per_document": round(len(split_docs) / max(1, len(docs)), 2),
        },
        "settings": settings.model_dump(),
        "versions": library_versions(),
    }
    report["recommendations"] = _recommendations(report)
    write_json(out / "analysis.json", report)
    write_text(out / "analysis.html", render_html(report))
    for line in report["recommendations"]:
        logger.info("analysis: %s", line)
    return report
