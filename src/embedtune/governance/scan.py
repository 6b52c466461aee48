"""``embedtune scan``: find personal data in a BEIR collection, report counts, redact.

The report names types, counts and record ids, never values (an id that is itself personal
appears as its pseudonym). With ``redact``, a redacted copy
of the collection is written beside the report; every later stage reads that copy, so pairs,
models, reports and indexes only ever see redacted text.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedtune.console import progress as show_progress
from embedtune.corpus.ingest import write_beir
from embedtune.corpus.load import load_beir, resolve_beir
from embedtune.corpus.types import Document, Qrels
from embedtune.errors import DataError
from embedtune.governance.config import GovernanceConfig, ScanConfig
from embedtune.governance.detect import Detector, Finding
from embedtune.governance.redact import hash_key, pseudonym, redact_text
from embedtune.io import write_json, write_jsonl
from embedtune.outputs import check_output, replacing
from embedtune.provenance import library_versions

__all__ = ["Redaction", "ScanResult", "TypeFindings", "load_collection", "scan"]

logger = logging.getLogger(__name__)

LISTED = 1000  # record ids listed per type in report.json; findings.jsonl has all of them


@dataclass
class Collection:
    """One BEIR folder: its corpus, queries and the judgments of the splits asked for."""

    root: Path
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, Qrels]
    manifest: dict[str, Any]


@dataclass
class Scan:
    """Findings per record field: ("doc", id, "id"|"title"|"text") or ("query", id,
    "id"|"text"), and the stand-in for each id that is itself personal.

    Attributes:
        aliases: (kind, id) → pseudonym, for each id holding a finding: reports and the
            redacted copy show the pseudonym, never the id.
        rows: (kind, id) → the record's position in its file (0-based), for records with
            findings, so a finding can be found in the original without naming its id.
    """

    findings: dict[tuple[str, str, str], list[Finding]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], str] = field(default_factory=dict)
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    scanned_bytes: int = 0
    documents: int = 0
    queries: int = 0

    def records(self, kind: str) -> set[str]:
        return {rid for (k, rid, _), found in self.findings.items() if k == kind and found}

    def shown(self, kind: str, rid: str) -> str:
        """The id as reports and the redacted copy show it: a personal id's pseudonym."""
        return self.aliases.get((kind, rid), rid)


def load_collection(path: str | Path, splits: list[str], skip_bad: bool = False) -> Collection:
    """The folder holding ``splits`` (all in one folder) with its corpus and queries."""
    roots = {resolve_beir(Path(path), s) for s in splits} or {resolve_beir(Path(path), None)}
    if len(roots) > 1:
        raise DataError(
            f"splits {splits} live in different folders ({sorted(map(str, roots))}); "
            "scan each folder on its own",
            path=path,
        )
    datasets = [load_beir(path, s, skip_bad=skip_bad) for s in splits] or [load_beir(path)]
    queries: dict[str, str] = {}
    for d in datasets:
        queries.update(d.queries)
    manifest = datasets[0].manifest.to_dict()
    for d in datasets[1:]:
        manifest["files"].update(d.manifest.files)
    return Collection(
        roots.pop(),
        datasets[0].corpus,
        queries,
        {d.split: d.qrels for d in datasets if d.split is not None},
        manifest,
    )


def scan_collection(
    collection: Collection,
    detector: Detector,
    progress: bool = False,
    key: bytes | None = None,
) -> Scan:
    """Run the detector over every document (id, title and text) and every query (id and
    text); an id holding a finding gets a pseudonym (keyed with ``key``, if given)."""
    scanned = Scan(documents=len(collection.corpus), queries=len(collection.queries))
    records = [
        *(
            ("doc", d.id, name, text)
            for d in collection.corpus.values()
            for name, text in (("id", d.id), ("title", d.title), ("text", d.text))
        ),
        *(
            ("query", q, name, text)
            for q, t in collection.queries.items()
            for name, text in (("id", q), ("text", t))
        ),
    ]
    for kind, rid, name, text in show_progress(
        records, desc="scan", unit="field", enabled=progress
    ):
        scanned.scanned_bytes += len(text.encode("utf-8"))
        found = detector.find(text)
        if found:
            scanned.findings[(kind, rid, name)] = found
    for kind, ids in (("doc", collection.corpus), ("query", collection.queries)):
        holders = scanned.records(kind)
        scanned.rows.update({(kind, rid): i for i, rid in enumerate(ids) if rid in holders})
        personal = {rid for (k, rid, name) in scanned.findings if k == kind and name == "id"}
        scanned.aliases.update(
            {(kind, rid): alias for rid, alias in _pseudonyms(kind, ids, personal, key).items()}
        )
    return scanned


def _pseudonyms(
    kind: str, ids: Iterable[str], personal: set[str], key: bytes | None
) -> dict[str, str]:
    """A pseudonym for each personal id, unlike every other id of its kind."""
    taken = set(ids) - personal
    out: dict[str, str] = {}
    for rid in sorted(personal):
        alias = pseudonym(kind, rid, key)
        if alias in taken:  # another id already looks like this: take the whole digest
            alias = pseudonym(kind, rid, key, length=64)
        if alias in taken:
            raise DataError(f"cannot find a pseudonym for a personal {kind} id: rename the id")
        taken.add(alias)
        out[rid] = alias
    return out


def _shown_manifest(manifest: dict[str, Any], scanned: Scan) -> dict[str, Any]:
    """The data manifest as the report shows it: the ids it quotes as examples of exact
    duplicates are shown like every other id in the report (a personal id as its pseudonym),
    or a personal document id reaches report.json (and the run's govern marker) verbatim."""
    shown = copy.deepcopy(manifest)
    duplicates = shown.get("duplicates", {})
    if "examples" in duplicates:
        duplicates["examples"] = [
            [scanned.shown("doc", rid) for rid in group] for group in duplicates["examples"]
        ]
    return shown


def summarize(scanned: Scan) -> dict[str, Any]:
    """Counts by type and the records holding each type: no values, only ids."""
    values: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    by_field: dict[str, Counter[str]] = {}
    holders: dict[str, dict[str, set[str]]] = {}
    for (kind, rid, name), found in scanned.findings.items():
        for f in found:
            values[f.type] += 1
            fields[f"{kind}.{name}"] += 1
            by_field.setdefault(f.type, Counter())[f"{kind}.{name}"] += 1
            holders.setdefault(f.type, {"doc": set(), "query": set()})[kind].add(
                scanned.shown(kind, rid)
            )
    types = {
        t: {
            "values": values[t],
            "documents": len(holders[t]["doc"]),
            "queries": len(holders[t]["query"]),
            "document_ids": sorted(holders[t]["doc"])[:LISTED],
            "query_ids": sorted(holders[t]["query"])[:LISTED],
            "fields": dict(sorted(by_field[t].items())),
        }
        for t in sorted(values)
    }
    megabytes = scanned.scanned_bytes / 1e6
    return {
        "scanned": {
            "documents": scanned.documents,
            "queries": scanned.queries,
            "megabytes": round(megabytes, 3),
        },
        "found": sum(values.values()),
        "per_megabyte": round(sum(values.values()) / megabytes, 3) if megabytes else 0.0,
        "documents_with_findings": len(scanned.records("doc")),
        "queries_with_findings": len(scanned.records("query")),
        "fields": dict(sorted(fields.items())),
        "types": types,
    }


def redact_collection(
    collection: Collection, scanned: Scan, config: GovernanceConfig
) -> tuple[list[Document], dict[str, str], dict[str, Qrels], dict[str, int]]:
    """The redacted corpus, queries and qrels, and what was dropped.

    ``drop`` removes a document or query holding any finding, with its judgments; a query
    left with no judgments is kept (it is simply unjudged) and counted. Otherwise a personal
    id is replaced by its pseudonym everywhere (corpus, queries, judgments).
    """
    key = hash_key(config) if config.mode == "hash" else None
    found = scanned.findings

    def clean(kind: str, rid: str, name: str, text: str) -> str:
        hits = found.get((kind, rid, name), [])
        return redact_text(text, hits, config.mode, key) if hits else text

    drop_docs = scanned.records("doc") if config.mode == "drop" else set()
    drop_queries = scanned.records("query") if config.mode == "drop" else set()
    doc_id = lambda rid: scanned.shown("doc", rid)  # noqa: E731
    query_id = lambda rid: scanned.shown("query", rid)  # noqa: E731
    documents = [
        Document(
            doc_id(d.id),
            clean("doc", d.id, "title", d.title),
            clean("doc", d.id, "text", d.text),
        )
        for d in collection.corpus.values()
        if d.id not in drop_docs
    ]
    queries = {
        query_id(q): clean("query", q, "text", t)
        for q, t in collection.queries.items()
        if q not in drop_queries
    }
    qrels: dict[str, Qrels] = {}
    dropped_qrels = 0
    for split, judged in collection.qrels.items():
        kept: Qrels = {}
        for q, docs in judged.items():
            rows = {
                doc_id(d): s
                for d, s in docs.items()
                if d not in drop_docs and q not in drop_queries
            }
            dropped_qrels += len(docs) - len(rows)
            if rows:
                kept[query_id(q)] = rows
        qrels[split] = kept
    counts = {
        "dropped_documents": len(drop_docs),
        "dropped_queries": len(drop_queries),
        "dropped_qrels": dropped_qrels,
        "redacted_values": sum(len(v) for v in found.values()) if config.mode != "drop" else 0,
        "pseudonymised_documents": sum(
            k == "doc" and rid not in drop_docs for k, rid in scanned.aliases
        ),
        "pseudonymised_queries": sum(
            k == "query" and rid not in drop_queries for k, rid in scanned.aliases
        ),
    }
    return documents, queries, qrels, counts


@dataclass(frozen=True)
class TypeFindings:
    """What was found of one type: counts and the records holding it, never the values.

    Attributes:
        values: Values found.
        documents: Documents holding at least one.
        queries: Queries holding at least one.
        document_ids: Those documents' ids, sorted (the first 1,000).
        query_ids: Those queries' ids, sorted (the first 1,000); an id that is itself
            personal appears as its pseudonym, here and in the redacted copy.
        fields: Values found by field (``doc.id``, ``doc.title``, ``doc.text``, ``query.id``,
            ``query.text``), the fields with none left out.
    """

    values: int
    documents: int
    queries: int
    document_ids: list[str]
    query_ids: list[str]
    fields: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Redaction:
    """How the redacted copy was made and what it lost.

    Attributes:
        mode: ``mask``, ``hash`` or ``drop``.
        types: Types redacted, the user patterns' names last.
        ner_model: Whether names and places came from a local NER model.
        source: sha256 of each input file.
        dropped_documents: Documents removed (``drop`` mode).
        dropped_queries: Queries removed (``drop`` mode).
        dropped_qrels: Judgments removed with them (``drop`` mode).
        redacted_values: Values replaced (``mask`` and ``hash`` modes).
        pseudonymised_documents: Documents whose personal id was replaced by a pseudonym.
        pseudonymised_queries: Queries whose personal id was replaced by a pseudonym.
    """

    mode: str
    types: list[str]
    ner_model: bool
    source: dict[str, str]
    dropped_documents: int
    dropped_queries: int
    dropped_qrels: int
    redacted_values: int
    pseudonymised_documents: int = 0
    pseudonymised_queries: int = 0


@dataclass(frozen=True)
class ScanResult:
    """What a scan found, and where its report (and redacted copy) are.

    Attributes:
        output: Folder holding ``report.json``, ``findings.jsonl`` and, when redacted,
            ``data/`` (a BEIR folder).
        documents: Documents scanned.
        queries: Queries scanned.
        megabytes: Text scanned, in MB (UTF-8).
        found: Values found, all types together.
        per_megabyte: Values found per MB.
        documents_with_findings: Documents holding any finding.
        queries_with_findings: Queries holding any finding.
        types: Findings by type, for the types found.
        redaction: How the redacted copy was made; ``None`` when nothing was redacted.
        report: The content of ``report.json``.
    """

    output: Path
    documents: int
    queries: int
    megabytes: float
    found: int
    per_megabyte: float
    documents_with_findings: int
    queries_with_findings: int
    types: dict[str, TypeFindings]
    redaction: Redaction | None
    report: dict[str, Any] = field(repr=False)

    @property
    def redacted_data(self) -> Path | None:
        """The redacted collection (a BEIR folder laid out like the input), if written."""
        return self.output / "data" if self.redaction is not None else None

    def to_dict(self) -> dict[str, Any]:
        """The report as written to ``report.json`` (a copy)."""
        return copy.deepcopy(self.report)

    @classmethod
    def from_report(cls, output: Path, report: dict[str, Any]) -> ScanResult:
        """The typed view of a ``report.json`` written to ``output``."""
        scanned = report["scanned"]
        redaction = report["redaction"]
        return cls(
            output=output,
            documents=scanned["documents"],
            queries=scanned["queries"],
            megabytes=scanned["megabytes"],
            found=report["found"],
            per_megabyte=report["per_megabyte"],
            documents_with_findings=report["documents_with_findings"],
            queries_with_findings=report["queries_with_findings"],
            types={name: TypeFindings(**row) for name, row in report["types"].items()},
            redaction=Redaction(**redaction) if redaction is not None else None,
            report=report,
        )


def scan(config: ScanConfig) -> ScanResult:
    """Find personal and regulated data in a BEIR collection; report counts, never values.

    Scans every document (id, title and text) and every query (id and text) of
    ``config.splits``, and writes ``report.json`` (counts by type and field, and record ids) and
    ``findings.jsonl`` (type, record id and row, field and character offsets of each finding)
    to ``config.output``. An id that is itself personal is shown as a pseudonym (``doc-`` or
    ``query-`` and a hash: keyed in ``hash`` mode), which also replaces it in the redacted
    corpus, queries and judgments, so they still line up. With ``config.redact``, also
    writes the redacted collection there as a BEIR folder, ``data/``, for later stages to read.
    The folder is built beside ``output`` and renamed into place: nothing is left half-written
    and nothing is overwritten.

    Args:
        config: The ``data`` folder and ``splits``, the new ``output`` folder, and the
            governance settings (types, patterns, ``redact``, ``mode``, ...).

    Returns:
        Counts by type, the redaction summary and where everything was written;
        ``to_dict()`` gives ``report.json``.

    Raises:
        ConfigError: ``config.output`` exists, the ``hash`` mode's key is not set, or the
            NER model is missing.
        DataError: The data is missing or malformed (and ``skip_bad`` is off), or the splits
            live in different folders.

    Example:
        >>> from embedtune.governance import ScanConfig, scan
        >>> result = scan(ScanConfig(data="data/clinic", splits=["test"], output="runs/scan",
        ...                          redact=True, mode="mask"))
        >>> {name: found.values for name, found in result.types.items()}
        {'email': 3, 'ssn': 1}
        >>> result.redacted_data
        PosixPath('runs/scan/data')
    """
    out = Path(config.output)
    check_output(out, [config.data], overwrite=config.overwrite)
    # a personal id's pseudonym is keyed in hash mode (the key only exists when redacting)
    key = hash_key(config) if config.redact and config.mode == "hash" else None
    detector = Detector(config)
    collection = load_collection(config.data, config.splits, config.skip_bad)
    scanned = scan_collection(collection, detector, config.progress, key)
    report: dict[str, Any] = {
        "data": _shown_manifest(collection.manifest, scanned),
        "settings": config.settings(),
        **summarize(scanned),
        "redaction": None,
        "versions": library_versions(),
    }
    # build everything in a temporary sibling, then rename: a crash leaves no half folder
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        if config.redact:
            documents, queries, qrels, counts = redact_collection(collection, scanned, config)
            redaction = {
                "mode": config.mode,
                "types": config.types + [p.name for p in config.patterns],
                "ner_model": bool(config.ner_model),
                "source": collection.manifest["files"],
                **counts,
            }
            write_beir(tmp / "data", documents, queries, qrels)
            write_json(tmp / "data" / "redaction.json", redaction)
            report["redaction"] = redaction
        write_jsonl(
            tmp / "findings.jsonl",
            (
                {
                    "record": kind,
                    "id": scanned.shown(kind, rid),
                    "row": scanned.rows[(kind, rid)],
                    "field": name,
                    "type": f.type,
                    "start": f.start,
                    "end": f.end,
                    "score": round(f.score, 3),
                }
                for (kind, rid, name), found in sorted(scanned.findings.items())
                for f in found
            ),
        )
        write_json(tmp / "report.json", report)
        with replacing(out, config.overwrite):
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if report["found"] and not config.redact:
        logger.warning(
            "personal data found in %s: %s (see %s); set governance.redact: true to redact "
            "it before training",
            config.data,
            {t: v["values"] for t, v in report["types"].items()},
            out / "report.json",
        )
    return ScanResult.from_report(out, report)
