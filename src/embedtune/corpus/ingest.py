"""Ingest any input into a normalised corpus folder with a manifest."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedtune.corpus.config import IngestConfig, PassageConfig
from embedtune.corpus.load import load_dataset
from embedtune.corpus.types import Dataset, Document, Qrels
from embedtune.io import write_json, write_jsonl, write_text
from embedtune.outputs import check_output, replacing

__all__ = ["IngestResult", "ingest", "write_beir"]

logger = logging.getLogger(__name__)


def write_beir(
    out: Path,
    documents: Iterable[Document],
    queries: dict[str, str],
    qrels: dict[str, Qrels],
) -> None:
    """A BEIR folder: corpus.jsonl, queries.jsonl (when there are queries or splits) and one
    ``qrels/<split>.tsv`` per split; each file written atomically."""
    write_jsonl(
        out / "corpus.jsonl",
        ({"_id": d.id, "title": d.title, "text": d.text} for d in documents),
    )
    if queries or qrels:
        write_jsonl(out / "queries.jsonl", ({"_id": q, "text": t} for q, t in queries.items()))
    for split, judged in qrels.items():
        write_text(
            out / "qrels" / f"{split}.tsv",
            "query-id\tcorpus-id\tscore\n"
            + "".join(f"{q}\t{d}\t{s}\n" for q, docs in judged.items() for d, s in docs.items()),
        )


@dataclass(frozen=True)
class IngestResult:
    """What ``ingest`` wrote and read.

    Attributes:
        output: The folder written: ``corpus.jsonl``, ``manifest.json``, and ``queries.jsonl``
            and ``qrels/<split>.tsv`` when a split was read, ``passages.jsonl`` with a model.
        documents: Documents written.
        queries: Queries written (0 without a split).
        qrels: Relevance judgments written (0 without a split).
        skipped: Bad records skipped (``skip_bad``), by reason.
        duplicate_documents: Exact duplicate documents (kept), beyond the first of each group.
        duplicate_groups: Groups of exact duplicates.
        passages: Passages in ``passages.jsonl``; ``None`` when no model was given.
        manifest: The content of ``manifest.json``.
    """

    output: Path
    documents: int
    queries: int
    qrels: int
    skipped: dict[str, int]
    duplicate_documents: int
    duplicate_groups: int
    passages: int | None
    manifest: dict[str, Any] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as written to ``manifest.json`` (a copy)."""
        return copy.deepcopy(self.manifest)


def ingest(config: IngestConfig) -> IngestResult:
    """Read domain text, check it, and write it as a normalised BEIR folder with a manifest.

    Writes ``corpus.jsonl`` (and ``queries.jsonl`` and ``qrels/<split>.tsv`` when
    ``config.split`` was read), ``manifest.json`` (input settings, file hashes, counts,
    skipped records, duplicates) and, with ``config.model``, ``passages.jsonl`` split by that
    model's tokenizer. Each file is written atomically.

    Args:
        config: The input (path, format, fields, split, skip_bad), the ``output`` folder and,
            optionally, the ``model`` and ``passages`` settings for ``passages.jsonl``.

    Returns:
        The counts read and written, and the manifest.

    Raises:
        DataError: The input is missing, empty or malformed (and ``skip_bad`` is off).
        ConfigError: The model cannot be found, or ``output`` exists (without ``overwrite``)
            or is, or lies inside, the input.

    Example:
        >>> from embedtune.corpus import IngestConfig, ingest
        >>> result = ingest(IngestConfig(path="notes/", output="runs/notes-corpus"))
        >>> result.documents, result.skipped
        (1204, {})
        >>> ingest(IngestConfig(path="docs.jsonl", output="runs/docs", model="base")).passages
        5731
    """
    check_output(config.output, [config.path], overwrite=config.overwrite)
    dataset = load_dataset(config)
    with replacing(config.output, config.overwrite):
        return _write(config, dataset, Path(config.output))


def _write(config: IngestConfig, dataset: Dataset, out: Path) -> IngestResult:
    qrels = {dataset.split: dataset.qrels} if dataset.split is not None else {}
    write_beir(out, dataset.corpus.values(), dataset.queries, qrels)
    manifest = {
        "input": config.corpus_config().model_dump(mode="json"),
        **dataset.manifest.to_dict(),
    }
    passages: int | None = None
    if config.model is not None:
        from embedtune.corpus.passages import split_passages
        from embedtune.models import load_model, resolve_model

        ref = resolve_model(config.model)
        st = load_model(ref)
        settings = config.passages or PassageConfig()
        split = split_passages(list(dataset.corpus.values()), st.tokenizer, settings)
        write_jsonl(out / "passages.jsonl", split.rows())
        passages = len(split)
        manifest["passages"] = {
            "model": ref.name,
            "model_sha256": ref.sha256,
            **settings.model_dump(),
            "count": passages,
        }
    write_json(out / "manifest.json", manifest)
    counts = manifest["counts"]
    return IngestResult(
        output=out,
        documents=counts["documents"],
        queries=counts["queries"],
        qrels=counts["qrels"],
        skipped=dict(manifest["skipped"]),
        duplicate_documents=manifest["duplicates"]["documents"],
        duplicate_groups=manifest["duplicates"]["groups"],
        passages=passages,
        manifest=manifest,
    )
