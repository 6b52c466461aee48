"""Load a dataset from any supported input: BEIR folder, JSONL/CSV file, or folder of files."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from embedtune.corpus.config import CorpusConfig, Fields
from embedtune.corpus.folder import SUFFIXES, read_folder
from embedtune.corpus.tables import read_documents, read_qrels, read_queries
from embedtune.corpus.types import Dataset, Document, Manifest
from embedtune.errors import DataError
from embedtune.io import sha256_file

logger = logging.getLogger(__name__)

BEIR_FIELDS = Fields()


def is_beir(path: Path) -> bool:
    """A BEIR folder holds corpus.jsonl (and usually queries.jsonl and qrels/)."""
    return path.is_dir() and (path / "corpus.jsonl").is_file()


def beir_splits(path: Path) -> list[str]:
    """Split names available under a BEIR folder or its split subfolders."""
    names: set[str] = set()
    for folder in [path, *[p for p in path.iterdir() if p.is_dir()]] if path.is_dir() else []:
        qrels = folder / "qrels"
        if qrels.is_dir():
            names.update(p.stem for p in qrels.glob("*.tsv"))
    return sorted(names)


def resolve_beir(path: Path, split: str | None) -> Path:
    """The folder that holds ``split``: the path itself or a subfolder named after the split.

    finance10k keeps each split in its own BEIR folder (``train/``, ``test/``) with its own
    corpus, so ``finance10k --split test`` means ``finance10k/test``.
    """
    if is_beir(path):
        return path
    if split is not None and is_beir(path / split):
        return path / split
    raise DataError(
        "not a BEIR folder (no corpus.jsonl)"
        + (f" and no '{split}/' subfolder holding one" if split else ""),
        path=path,
        hint="pass a folder with corpus.jsonl, queries.jsonl and qrels/<split>.tsv",
    )


def _duplicates(corpus: dict[str, Document]) -> dict[str, Any]:
    """Exact duplicate documents (same title and text), reported, never dropped silently."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doc in corpus.values():
        groups[(doc.title.strip(), doc.text.strip())].append(doc.id)
    dupes = [ids for ids in groups.values() if len(ids) > 1]
    return {
        "groups": len(dupes),
        "documents": sum(len(ids) - 1 for ids in dupes),
        "examples": [ids[:5] for ids in dupes[:5]],
    }


def load_beir(path: str | Path, split: str | None = None, *, skip_bad: bool = False) -> Dataset:
    """Load a BEIR folder; with ``split``, also its queries and ``qrels/<split>.tsv``.

    ``path`` may also be a parent holding one folder per split (``finance10k/test/``).

    Example:
        >>> test = load_beir("../shared/data/finance10k", "test")
        >>> len(test.corpus), len(test.judged_queries())
        (395, 790)
    """
    root = resolve_beir(Path(path), split)
    manifest = Manifest()
    corpus_file = root / "corpus.jsonl"
    corpus = read_documents(corpus_file, BEIR_FIELDS, skip_bad=skip_bad, skipped=manifest.skipped)
    files = [corpus_file]
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    if split is not None:
        qrels_file = root / "qrels" / f"{split}.tsv"
        if not qrels_file.is_file():
            available = beir_splits(Path(path)) or ["none"]
            raise DataError(
                f"split '{split}' not found (no qrels/{split}.tsv)",
                path=root,
                hint=f"available splits: {', '.join(available)}",
            )
        queries_file = root / "queries.jsonl"
        if not queries_file.is_file():
            raise DataError("queries.jsonl is missing", path=root)
        queries = read_queries(
            queries_file, BEIR_FIELDS, skip_bad=skip_bad, skipped=manifest.skipped
        )
        qrels = read_qrels(qrels_file, queries, corpus, skip_bad=skip_bad, skipped=manifest.skipped)
        files += [queries_file, qrels_file]
    redaction = root / "redaction.json"
    if redaction.is_file():  # written by governance: every later manifest says what was removed
        manifest.extra["redaction"] = json.loads(redaction.read_text(encoding="utf-8"))
        files.append(redaction)
    return _finish(Dataset(corpus, queries, qrels, split, manifest), files)


def _finish(dataset: Dataset, files: list[Path]) -> Dataset:
    if not dataset.corpus:
        where = files[0] if files else None
        raise DataError("the corpus is empty: no documents were read", path=where)
    manifest = dataset.manifest
    manifest.files.update({str(f): sha256_file(f) for f in files})
    judged = dataset.judged_queries()
    manifest.counts.update(
        {
            "documents": len(dataset.corpus),
            "queries": len(dataset.queries),
            "judged_queries": len(judged),
            "unjudged_queries": len(dataset.queries) - len(judged) if dataset.qrels else 0,
            "qrels": sum(len(v) for v in dataset.qrels.values()),
        }
    )
    manifest.duplicates = _duplicates(dataset.corpus)
    if manifest.duplicates["documents"]:
        logger.warning(
            "%d exact duplicate documents in %d groups (kept; see the manifest)",
            manifest.duplicates["documents"],
            manifest.duplicates["groups"],
        )
    if manifest.skipped:
        logger.warning("skipped bad records: %s", dict(manifest.skipped))
    return dataset


def load_dataset(config: CorpusConfig) -> Dataset:
    """Load any supported input described by ``config`` (BEIR, JSONL/CSV, a folder of files).

    Example:
        >>> ds = load_dataset(CorpusConfig(path="docs.jsonl", fields={"id": "doc_id"}))
        >>> len(ds.corpus)
        1200
    """
    path = Path(config.path)
    if not path.exists():
        raise DataError("no such file or folder", path=path)
    fmt = config.format
    if fmt == "auto":
        if path.is_dir():
            fmt = (
                "beir"
                if is_beir(path) or (config.split and is_beir(path / config.split))
                else "folder"
            )
        else:
            fmt = "csv" if path.suffix.lower() in {".csv", ".tsv"} else "jsonl"
    if fmt == "beir":
        return load_beir(path, config.split, skip_bad=config.skip_bad)
    manifest = Manifest()
    if fmt == "folder":
        if not path.is_dir():
            raise DataError("expected a folder of .txt/.md/.html files", path=path)
        corpus = read_folder(path, skip_bad=config.skip_bad, skipped=manifest.skipped)
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise DataError("the corpus is empty: no .txt, .md or .html files", path=path)
    else:
        corpus = read_documents(
            path, config.fields, skip_bad=config.skip_bad, skipped=manifest.skipped
        )
        files = [path]
    return _finish(Dataset(corpus, manifest=manifest), files)
