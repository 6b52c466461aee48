"""Reading user pairs files and writing pairs.jsonl with its summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedtune.corpus.readers import Skipper, iter_csv, iter_jsonl
from embedtune.errors import DataError
from embedtune.io import write_json, write_jsonl


@dataclass
class Pair:
    """One training example with where it came from."""

    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


def _negatives_of(record: dict[str, Any], path: Path, line: int) -> list[str]:
    value = record.get("negatives")
    if value is None:
        found = [record[k] for k in sorted(record) if k.startswith("negative") and record[k]]
        value = found
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(
            "negatives must be a list of non-empty strings", path=path, line=line, field="negatives"
        )
    return value


def read_pairs_file(
    path: str | Path, *, skip_bad: bool = False, skipped: Counter[str] | None = None
) -> list[Pair]:
    """Pairs from JSONL (query, positive[, negatives]) or CSV (query, positive[, negative…])."""
    file = Path(path)
    if not file.is_file():
        raise DataError("pairs file not found", path=file)
    skipper = Skipper(skip_bad, Counter() if skipped is None else skipped)
    suffix = file.suffix.lower()
    rows = (
        iter_csv(file, "\t" if suffix == ".tsv" else ",", skipper)
        if suffix in {".csv", ".tsv"}
        else iter_jsonl(file, skipper)
    )
    pairs: list[Pair] = []
    for line, record in rows:
        try:
            for key in ("query", "positive"):
                value = record.get(key)
                if not isinstance(value, str) or not value.strip():
                    raise DataError("missing or empty", path=file, line=line, field=key)
            negatives = _negatives_of(record, file, line)
        except DataError as exc:
            skipper.bad("bad_pair", exc)
            continue
        provenance = record.get("provenance")
        if not isinstance(provenance, dict):
            provenance = {"source": f"file:{file.name}", "line": line}
        pairs.append(Pair(record["query"], record["positive"], negatives, provenance))
    if not pairs:
        raise DataError(
            "no pairs: the file holds no usable (query, positive) rows",
            path=file,
            hint="each line needs non-empty 'query' and 'positive'",
        )
    return pairs


def write_pairs(path: str | Path, pairs: list[Pair], summary: dict[str, Any]) -> None:
    """``pairs.jsonl`` and ``pairs.summary.json`` beside it, each written atomically."""
    from embedtune.provenance import library_versions

    write_jsonl(path, (asdict(p) for p in pairs))
    write_json(Path(path).with_suffix(".summary.json"), {**summary, "versions": library_versions()})


def load_pairs(path: str | Path) -> list[Pair]:
    """Read a pairs.jsonl written by :func:`write_pairs` (or any file of the same shape)."""
    return read_pairs_file(path)
