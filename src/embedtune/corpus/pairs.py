"""The pairs artefact: pairs.jsonl, its summary, and the pair set's record.

The pairs stage writes a folder that training reads (stages talk through artefacts):

- ``pairs.jsonl``: one training pair per line (query, positive, negatives, provenance);
- ``pairs.summary.json``: counts, filters and the fingerprint of what the pairs were made from;
- ``pairset.json`` (:class:`PairSet`): how the pairs were made (labels or weak), the dev split
  that selects the model (its queries and judgments, and where its corpus is), where the
  domain's text is, and what goes into the model's record.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from embedtune.corpus.readers import Skipper, iter_csv, iter_jsonl
from embedtune.corpus.types import Dataset, Document
from embedtune.errors import DataError
from embedtune.io import write_json, write_jsonl

PAIRS_FILE = "pairs.jsonl"
PAIRSET_FILE = "pairset.json"
PAIRSET_FORMAT = 1


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


class CorpusSource(BaseModel):
    """A BEIR folder (and split) to read a corpus from again."""

    model_config = ConfigDict(extra="forbid")

    data: str
    split: str | None = None
    skip_bad: bool = False

    def load(self) -> Dataset:
        """The dataset, read as the pairs stage read it."""
        from embedtune.corpus.load import load_beir

        return load_beir(self.data, self.split, skip_bad=self.skip_bad)


class DevSplit(BaseModel):
    """The queries that select the model: real dev judgments, held-out training queries,
    held-out pairs, or (label-free) pseudo-queries of held-out documents."""

    model_config = ConfigDict(extra="forbid")

    rule: str
    name: str
    corpus: CorpusSource | None = None
    documents: dict[str, str] | None = None  # id → text, when the dev corpus is the pairs' texts
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def dataset(self) -> Dataset:
        """The dev corpus with the dev queries and judgments (query order kept)."""
        if self.corpus is not None:
            corpus = self.corpus.load().corpus
        else:
            corpus = {i: Document(i, "", text) for i, text in (self.documents or {}).items()}
        return Dataset(corpus, dict(self.queries), dict(self.qrels), self.name)


class PairSet(BaseModel):
    """What the pairs stage made, for training to read (``pairset.json``)."""

    model_config = ConfigDict(extra="forbid")

    format: int = PAIRSET_FORMAT
    fingerprint: str
    supervision: Literal["labels", "weak"]
    negatives_per_pair: int
    corpus: CorpusSource | None = None  # the domain's text; None: the pairs' own texts
    dev: DevSplit
    recipe: dict[str, Any]  # the pairs-stage settings, stored with the model
    info: dict[str, Any]  # data manifest, dev rule, pairs summary: stored with the model


def write_pair_set(
    folder: str | Path, pairs: list[Pair], summary: dict[str, Any], record: PairSet
) -> None:
    """The pairs, their summary and the pair set's record; the record last, so a folder with
    a record is complete."""
    root = Path(folder)
    write_pairs(root / PAIRS_FILE, pairs, summary)
    write_json(root / PAIRSET_FILE, record.model_dump(mode="json"))


def read_pair_set(folder: str | Path) -> PairSet | None:
    """The record of a pairs folder, or None when the folder holds none (yet)."""
    path = Path(folder) / PAIRSET_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and raw.get("format", 0) > PAIRSET_FORMAT:
            raise DataError(
                f"written by a newer embedtune (format {raw['format']}); upgrade embedtune",
                path=path,
            )
        return PairSet.model_validate(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise DataError(
            f"not a pair set record ({str(exc).splitlines()[0]})",
            path=path,
            hint="build the pairs again with `embedtune pairs`",
        ) from None
