"""Split documents into overlapping passages by the model tokenizer's tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.types import Document


@dataclass
class Passages:
    """Passages in document order; document ``i`` owns ``texts[bounds[i]:bounds[i+1]]``."""

    doc_ids: list[str]
    texts: list[str]
    bounds: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def passage_ids(self) -> Iterator[str]:
        """Stable ids ``<doc id>#p<n>``."""
        for index, doc_id in enumerate(self.doc_ids):
            for n in range(int(self.bounds[index + 1] - self.bounds[index])):
                yield f"{doc_id}#p{n}"

    def rows(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready row per passage (the document → passage map)."""
        ids = self.passage_ids()
        for index, doc_id in enumerate(self.doc_ids):
            for position in range(int(self.bounds[index]), int(self.bounds[index + 1])):
                yield {"_id": next(ids), "doc_id": doc_id, "text": self.texts[position]}


def _windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges covering ``n_tokens``; the last window ends at the last token."""
    if n_tokens <= window:
        return [(0, n_tokens)]
    starts = list(range(0, n_tokens - window, stride))
    starts.append(n_tokens - window)  # cover the tail without a tiny last passage
    return [(start, start + window) for start in dict.fromkeys(starts)]


def split_passages(
    docs: list[Document], tokenizer: Any, config: PassageConfig, batch_size: int = 512
) -> Passages:
    """Split each document's text into windows of ``config.window`` tokens.

    Passages are cut at token boundaries but keep the original characters (via the fast
    tokenizer's offsets), so nothing is lost to detokenisation. A title, when asked for, is
    prepended to every passage so each one carries the document's subject.
    """
    if config.stride > config.window:
        from embedtune.errors import ConfigError

        raise ConfigError(
            f"passage stride {config.stride} exceeds window {config.window}: "
            "text between windows would be skipped"
        )
    texts: list[str] = []
    bounds = [0]
    for start in range(0, len(docs), batch_size):
        batch = docs[start : start + batch_size]
        encoded = tokenizer(
            [doc.text for doc in batch],
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            verbose=False,
        )
        for doc, offsets in zip(batch, encoded["offset_mapping"], strict=True):
            prefix = f"{doc.title.strip()} " if config.title and doc.title.strip() else ""
            if not offsets:
                texts.append(doc.full_text)
            else:
                for lo, hi in _windows(len(offsets), config.window, config.stride):
                    chunk = doc.text[offsets[lo][0] : offsets[hi - 1][1]]
                    texts.append((prefix + chunk).strip())
            bounds.append(len(texts))
    return Passages([doc.id for doc in docs], texts, np.asarray(bounds, dtype=np.int64))
