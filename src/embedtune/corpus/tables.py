"""Documents, queries and judgments from JSONL, CSV and TSV files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embedtune.corpus.config import Fields
from embedtune.corpus.readers import Skipper, get_str, iter_csv, iter_jsonl
from embedtune.corpus.types import Document, Qrels
from embedtune.errors import DataError


def _records(path: Path, skipper: Skipper) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json", ".ndjson"}:
        yield from iter_jsonl(path, skipper)
    elif suffix in {".csv", ".tsv"}:
        yield from iter_csv(path, delimiter="\t" if suffix == ".tsv" else ",", skipper=skipper)
    else:
        raise DataError("unsupported file type; use .jsonl, .csv or .tsv", path=path)


def read_documents(
    path: Path, fields: Fields, *, skip_bad: bool = False, skipped: Counter[str] | None = None
) -> dict[str, Document]:
    """Read a corpus file; ids must be present and unique, and title + text non-empty."""
    skipped = Counter() if skipped is None else skipped
    skipper = Skipper(skip_bad, skipped)
    corpus: dict[str, Document] = {}
    first_line: dict[str, int] = {}
    for line, record in _records(path, skipper):
        try:
            doc_id = get_str(record, fields.id, path=path, line=line, required=True).strip()
            title = get_str(record, fields.title, path=path, line=line, required=False)
            text = get_str(record, fields.text, path=path, line=line, required=False)
            if fields.text not in record and fields.title not in record:
                raise DataError("missing field", path=path, line=line, field=fields.text)
        except DataError as exc:
            skipper.bad("missing_field", exc)
            continue
        if not doc_id or any(c.isspace() for c in doc_id):
            skipper.bad(
                "bad_id",
                DataError(
                    "empty id or id with whitespace (TREC run files are whitespace-separated)",
                    path=path,
                    line=line,
                    field=fields.id,
                ),
            )
            continue
        if doc_id in corpus:
            skipper.bad(
                "duplicate_id",
                DataError(
                    f"duplicate document id '{doc_id}' (first at line {first_line[doc_id]})",
                    path=path,
                    line=line,
                ),
            )
            continue
        if not title.strip() and not text.strip():
            skipper.bad(
                "empty_text",
                DataError(f"document '{doc_id}' has empty title and text", path=path, line=line),
            )
            continue
        corpus[doc_id] = Document(doc_id, title, text)
        first_line[doc_id] = line
    return corpus


def read_queries(
    path: Path, fields: Fields, *, skip_bad: bool = False, skipped: Counter[str] | None = None
) -> dict[str, str]:
    """Read a queries file (id and text fields); ids unique, text non-empty."""
    skipped = Counter() if skipped is None else skipped
    skipper = Skipper(skip_bad, skipped)
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, record in _records(path, skipper):
        try:
            qid = get_str(record, fields.id, path=path, line=line, required=True).strip()
            text = get_str(record, fields.text, path=path, line=line, required=True)
        except DataError as exc:
            skipper.bad("query_missing_field", exc)
            continue
        if not qid or any(c.isspace() for c in qid):
            skipper.bad(
                "query_bad_id",
                DataError(
                    "empty id or id with whitespace (TREC run files are whitespace-separated)",
                    path=path,
                    line=line,
                    field=fields.id,
                ),
            )
            continue
        if qid in queries:
            skipper.bad(
                "query_duplicate_id",
                DataError(
                    f"duplicate query id '{qid}' (first at line {first_line[qid]})",
                    path=path,
                    line=line,
                ),
            )
            continue
        if not text.strip():
            skipper.bad(
                "query_empty_text", DataError(f"query '{qid}' has empty text", path=path, line=line)
            )
            continue
        queries[qid] = text
        first_line[qid] = line
    return queries


def read_qrels(
    path: Path,
    queries: dict[str, str],
    corpus: dict[str, Document],
    *,
    skip_bad: bool = False,
    skipped: Counter[str] | None = None,
) -> Qrels:
    """Read a qrels TSV (query-id, corpus-id, score); every id must exist."""
    skipped = Counter() if skipped is None else skipped
    skipper = Skipper(skip_bad, skipped)
    qrels: Qrels = {}
    delimiter = "\t" if path.suffix.lower() != ".csv" else ","
    for line, row in iter_csv(path, delimiter=delimiter, skipper=skipper):
        values = list(row.values())
        qid, doc_id, raw_score = (value.strip() for value in values[:3])
        try:
            score = int(float(raw_score))
        except ValueError:
            skipper.bad(
                "qrels_bad_score",
                DataError(f"score '{raw_score}' is not a number", path=path, line=line),
            )
            continue
        if qid not in queries:
            skipper.bad(
                "qrels_unknown_query",
                DataError(
                    f"qrels name unknown query '{qid}'",
                    path=path,
                    line=line,
                    hint="add it to queries.jsonl or remove the line",
                ),
            )
            continue
        if doc_id not in corpus:
            skipper.bad(
                "qrels_unknown_document",
                DataError(
                    f"qrels name unknown document '{doc_id}'",
                    path=path,
                    line=line,
                    hint="add it to corpus.jsonl or remove the line",
                ),
            )
            continue
        qrels.setdefault(qid, {})[doc_id] = score
    return qrels
