"""In-memory data: documents, queries, relevance judgments and where they came from."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

Qrels = dict[str, dict[str, int]]
"""query id → document id → graded relevance (> 0 is relevant)."""


@dataclass(frozen=True)
class Document:
    """One corpus document; ``title`` may be empty."""

    id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and text joined as BEIR does for dense models."""
        return f"{self.title} {self.text}".strip()


@dataclass
class Manifest:
    """What a dataset was made from: file hashes, counts, skipped records, duplicates."""

    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: Counter[str] = field(default_factory=Counter)
    duplicates: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (sha256 per input file, counts, skipped by reason)."""
        out: dict[str, Any] = {
            "files": dict(self.files),
            "counts": dict(self.counts),
            "skipped": dict(self.skipped),
            "duplicates": dict(self.duplicates),
        }
        out.update(self.extra)
        return out


@dataclass
class Dataset:
    """A corpus with optional queries and the judgments of one split."""

    corpus: dict[str, Document]
    queries: dict[str, str] = field(default_factory=dict)
    qrels: Qrels = field(default_factory=dict)
    split: str | None = None
    manifest: Manifest = field(default_factory=Manifest)

    def judged_queries(self) -> dict[str, str]:
        """Queries with at least one relevant (score > 0) judgment, in query-file order."""
        return {
            qid: text
            for qid, text in self.queries.items()
            if any(score > 0 for score in self.qrels.get(qid, {}).values())
        }
