"""Passage splitting by tokenizer tokens with overlap."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.passages import _windows, split_passages
from embedtune.corpus.types import Document
from embedtune.errors import ConfigError


def test_windows_cover_every_token_with_overlap() -> None:
    assert _windows(5, 8, 4) == [(0, 5)]
    assert _windows(20, 8, 4) == [(0, 8), (4, 12), (8, 16), (12, 20)]
    spans = _windows(23, 8, 6)
    assert spans[0][0] == 0 and spans[-1][1] == 23
    assert all(b[0] <= a[1] for a, b in itertools.pairwise(spans))


def test_split_keeps_original_text_and_document_map(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    text = " ".join(f"word{i}" for i in range(40))
    docs = [
        Document("a", "Title", text),
        Document("b", "", "short text"),
        Document("c", "only a title", ""),
    ]
    out = split_passages(docs, tokenizer, PassageConfig(window=16, stride=8))
    assert out.bounds[0] == 0 and out.bounds[-1] == len(out.texts)
    first_doc = out.texts[out.bounds[0] : out.bounds[1]]
    assert len(first_doc) > 2
    assert all(p.startswith("Title ") for p in first_doc)
    assert out.texts[out.bounds[1]] == "short text"
    assert out.texts[out.bounds[2]] == "only a title"
    rows = list(out.rows())
    assert rows[0]["_id"] == "a#p0" and rows[-1]["doc_id"] == "c"
    # every word of the document appears in some passage, in original form
    joined = " ".join(first_doc)
    assert all(f"word{i}" in joined for i in range(40))


def test_stride_larger_than_window_is_refused(tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model))
    with pytest.raises(ConfigError, match="stride 20 exceeds window 10"):
        split_passages([Document("a", "", "x")], tokenizer, PassageConfig(window=10, stride=20))
