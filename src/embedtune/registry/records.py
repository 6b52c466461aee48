"""The registry's typed records: what ``version.json`` and ``export-record.json`` hold, and what
:class:`~embedtune.registry.Registry` returns.

Each record dumps (``.model_dump()``) to exactly the JSON the registry keeps on disk, with the
keys in the same order; keys this release does not know are kept, so a registry written by a
newer embedtune still reads and prints whole.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

__all__ = ["EvalSummary", "ExportRecord", "Lineage", "VersionDiff", "VersionRecord"]

# Fields of a version that are looked up when it is read, never stored in its version.json.
DERIVED = frozenset({"tags", "exports", "path"})


class _Record(BaseModel):
    # extra="allow": unknown keys survive a read and a dump; field names like model_sha256
    # are the registry's own, not pydantic's ``model_`` namespace.
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class Lineage(_Record):
    """Where a version came from, copied from its model folder's settings record at add time.

    Attributes:
        base_model: The model training started from (``name``, ``sha256``); None for a model
            folder embedtune did not train.
        strategy: Training strategy (``full``, ``lora``, ...).
        data: The training data's manifest, dev rule and pairs summary.
        config: The resolved training config.
        seed: The training seed.
        parent: The version this one was derived from, when given at add time.

    Example:
        >>> lineage = Registry("registry").show("production").lineage
        >>> lineage.base_model["name"], lineage.strategy, lineage.seed
        ('sentence-transformers/all-MiniLM-L6-v2', 'full', 42)
    """

    base_model: dict[str, Any] | None = None
    strategy: str | None = None
    data: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    seed: int | None = None
    parent: str | None = None


class EvalSummary(_Record):
    """The eval report kept with a version, summarised.

    Attributes:
        split: The split it was measured on.
        queries: Evaluated queries.
        metrics: nDCG@10 (or the report's first metric) of each system, e.g. ``tuned-maxp``.

    Example:
        >>> Registry("registry").show("production").eval
        EvalSummary(split='test', queries=400, metrics={'bm25': 0.7012, 'tuned-maxp': 0.8471})
    """

    split: str | None = None
    queries: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)


class ExportRecord(_Record):
    """An export of a version (``export-record.json``), immutable once added.

    Attributes:
        id: Start of the sha256 of the export's ``export.json``.
        version: Id of the version it was exported from.
        created: UTC time it was added (ISO 8601).
        files: Variant (``fp32``, ``int8``, ``torch-export``, ...) → file name.
        parity: The export's parity numbers, as in its ``export.json``.
        path: Folder holding the export's files inside the registry.

    Example:
        >>> record = Registry("registry").add_export("runs/export")
        >>> record.files["int8"], record.path
        ('model.int8.onnx', 'registry/versions/3f9c.../exports/a1b2.../files')
    """

    id: str
    version: str
    created: str
    files: dict[str, str] = Field(default_factory=dict)
    parity: dict[str, Any] = Field(default_factory=dict)
    path: str


class VersionRecord(_Record):
    """One immutable model version: its ``version.json`` plus what is looked up on reading
    (tags, exports, model folder).

    Attributes:
        id: Start of the content hash; what every command takes (or a prefix, or a tag).
        content_sha256: Hash of the weights, tokenizer and module configs (not the model
            card or settings record).
        model_sha256: Hash of every file but the card: what an export records as its source.
        name: A readable name (the folder's name unless given).
        created: UTC time it was added (ISO 8601).
        lineage: Base model, strategy, data, config, seed and parent.
        dev: Dev scores of the base model, BM25 and the tuned model, from training.
        eval: Summary of the eval report added with it (None: none was given).
        tags: Tags pointing at it, sorted.
        exports: Its exports, in id order.
        path: Its model folder inside the registry (load it from there).

    Example:
        >>> version = Registry("registry").show("production")
        >>> version.id, version.lineage.strategy, version.eval.metrics["tuned-maxp"]
        ('3f9c0e1a2b4d', 'full', 0.8471)
    """

    id: str
    content_sha256: str
    model_sha256: str | None = None
    name: str
    created: str
    lineage: Lineage = Field(default_factory=Lineage)
    dev: dict[str, Any] | None = None
    eval: EvalSummary | None = None
    tags: list[str] = Field(default_factory=list)
    exports: list[ExportRecord] = Field(default_factory=list)
    path: str = ""

    def stored(self) -> dict[str, Any]:
        """The content of this version's ``version.json`` (without tags, exports, path)."""
        return self.model_dump(exclude=set(DERIVED))


class VersionDiff(BaseModel):
    """What differs between two versions; each difference is ``[value in a, value in b]``.

    Attributes:
        a: Id of the first version.
        b: Id of the second version.
        lineage: Differing lineage fields (``base_model``, ``strategy``, ``seed``, ``parent``,
            ``data files``).
        config: Differing training-config leaves, as dotted keys (``loss.scale``).
        eval: Every system's eval metric in both versions (None where one has none).

    Example:
        >>> Registry("registry").diff("staging", "production").config
        {'learning_rate': [0.0001, 5e-05]}
    """

    model_config = ConfigDict(extra="forbid")

    a: str
    b: str
    lineage: dict[str, list[Any]] = Field(default_factory=dict)
    config: dict[str, list[Any]] = Field(default_factory=dict)
    eval: dict[str, list[float | None]] = Field(default_factory=dict)
