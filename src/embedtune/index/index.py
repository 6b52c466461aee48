"""``embedtune index`` and ``embedtune search``: passages of a corpus embedded by one registry
version and encoder variant, searched by document (max-passage, over-fetching passages)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embedtune.console import progress
from embedtune.corpus.config import PassageConfig
from embedtune.errors import ConfigError
from embedtune.index.config import MAX_K, IndexConfig
from embedtune.index.store import LanceStore, QdrantStore, VectorStore
from embedtune.model_folder import passages_of
from embedtune.outputs import check_output
from embedtune.registry.registry import Registry

logger = logging.getLogger(__name__)

__all__ = [
    "Index",
    "IndexBuildResult",
    "IndexIdentity",
    "SearchHit",
    "build_index",
    "load_encoder",
    "open_store",
    "search_index",
]


class IndexIdentity(BaseModel):
    """What made an index's vectors; stored with every table, so vectors of another model,
    encoder variant or passage window are never mixed in or searched with.

    Attributes:
        version: Registry version id of the model.
        encoder: ``torch``, ``fp32`` or ``int8`` (an ONNX export of the version).
        export: Id of the export used (None for ``torch``).
        passages: Passage window the documents were split with.
        pooling: Pooling mode (``mean``, ``cls``, ``max``).
        normalize: Whether vectors are unit length.
        prompts: Prompts put before queries and documents (``query``, ``document``).
        dimension: Vector size.

    Example:
        >>> built = Index(IndexConfig(path="runs/index"), Registry("registry")).build(
        ...     "data/fin", split="test", version="production")
        >>> built.identity.version, built.identity.encoder, built.identity.dimension
        ('3f9c0e1a2b4d', 'torch', 384)
    """

    model_config = ConfigDict(extra="allow")

    version: str
    encoder: str
    export: str | None = None
    passages: PassageConfig = Field(default_factory=PassageConfig)
    pooling: str | None = None
    normalize: bool = False
    prompts: dict[str, str] = Field(default_factory=dict)
    dimension: int = 0


class IndexBuildResult(BaseModel):
    """What :meth:`Index.build` made.

    Attributes:
        name: The index name (LanceDB pointer / Qdrant alias) searches use.
        table: The new table (collection) the name now points at.
        previous: The table it pointed at before (None: a new index); kept while
            ``IndexConfig.keep`` is 0 or at least 2.
        identity: Model version, encoder variant, pooling, prompts and passages of the vectors.
        documents: Documents indexed.
        passages: Passages embedded (one row each).
        index: Kind of vector index (``IVF-PQ``, ``flat (exact)``, ``HNSW (Qdrant)``).
        rows: Rows in the table.
        partitions: IVF partitions (LanceDB IVF-PQ only).
        sub_vectors: PQ sub-vectors (LanceDB IVF-PQ only).
        dropped: Tables of this index name the build removed: those beyond
            ``IndexConfig.keep`` and those an interrupted build left behind.

    Example:
        >>> built = Index(IndexConfig(path="runs/index"), Registry("registry")).build(
        ...     "data/fin", split="test", version="production")
        >>> built.documents, built.passages, built.index
        (1302, 5237, 'IVF-PQ')
    """

    name: str
    table: str
    previous: str | None
    identity: IndexIdentity
    documents: int
    passages: int
    index: str
    rows: int
    partitions: int | None = None
    sub_vectors: int | None = None
    dropped: list[str] = Field(default_factory=list)


class SearchHit(BaseModel):
    """One document found, scored by its best passage.

    Attributes:
        doc_id: The document's id.
        passage: Index of its best passage within the document.
        score: Cosine similarity of that passage to the query.

    Example:
        >>> hit = Index(IndexConfig(path="runs/index"), Registry("registry")).search("leases")[0]
        >>> hit.doc_id, hit.passage, round(hit.score, 3)
        ('d812', 2, 0.734)
    """

    doc_id: str
    passage: int
    score: float


def open_store(config: IndexConfig) -> VectorStore:
    """The vector store ``config`` names (LanceDB in a folder, or Qdrant)."""
    if config.backend == "qdrant":
        return QdrantStore(config.path, config.url)
    return LanceStore(
        config.path,
        ann_min_rows=config.ann_min_rows,
        nprobes=config.nprobes,
        refine=config.refine_factor,
    )


def load_encoder(registry: Registry, version: str, variant: str) -> tuple[Any, IndexIdentity]:
    """The encoder of a registry version (PyTorch, or one of its ONNX exports) and the
    identity every vector it makes is tagged with.

    Args:
        registry: The registry holding the version.
        version: Version id, prefix or tag.
        variant: ``torch``, or ``fp32``/``int8`` for the version's latest ONNX export.

    Returns:
        An encoder with sentence-transformers' ``encode`` and the identity of its vectors.

    Raises:
        ConfigError: No such version, or it has no export of that variant.
    """
    record = registry.show(version)
    model_dir = Path(registry.verified_path(record.id))  # re-hashed: changed files refused
    passages = passages_of(model_dir) or PassageConfig()
    if variant == "torch":
        from embedtune.models import load_model, resolve_model

        model = load_model(resolve_model(str(model_dir)))
        modules = [type(m).__name__ for m in model]
        pooling: Any = model[1]
        identity = IndexIdentity(
            version=record.id,
            encoder=variant,
            export=None,
            passages=passages,
            pooling=pooling.get_config_dict().get("pooling_mode"),
            normalize="Normalize" in modules,
            prompts={k: v for k, v in (model.prompts or {}).items() if v},
            dimension=int(model.get_embedding_dimension() or 0),
        )
        return model, identity
    from embedtune.retrieval.onnx import OnnxEncoder

    exports = [e for e in record.exports if variant in e.files]
    if not exports:
        raise ConfigError(
            f"version {record.id} has no '{variant}' export: run `embedtune export` on it "
            "and `embedtune registry add` the export, or use --encoder torch"
        )
    export = exports[-1]
    encoder = OnnxEncoder(export.path, variant)
    spec = encoder.meta["encoder"]
    identity = IndexIdentity(
        version=record.id,
        encoder=variant,
        export=export.id,
        passages=passages,
        pooling=spec["pooling"],
        normalize=spec["normalize"],
        prompts=spec["prompts"],
        dimension=spec["dimension"],
    )
    return encoder, identity


def _tokenizer(registry: Registry, version: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(registry.model_path(version)), local_files_only=True)


class Index:
    """A vector index of passages embedded by one registry version: built in a new table,
    then switched to in one step, so search never sees a half-built index.

    Args:
        config: Where the vectors live (LanceDB folder or Qdrant), the encoder variant, batch
            sizes, Ray workers and ANN settings.
        registry: The registry whose versions embed the passages and the queries.

    Example:
        >>> from embedtune import Index, IndexConfig, Registry
        >>> index = Index(IndexConfig(path="runs/index"), Registry("registry"))
        >>> index.build("data/fin", split="test", version="production").rows
        5237
        >>> [(hit.doc_id, round(hit.score, 3)) for hit in index.search("lease terms", k=2)]
        [('d812', 0.734), ('d77', 0.702)]
    """

    def __init__(self, config: IndexConfig, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        self._store: VectorStore | None = None
        # the query encoder per (version, variant), loaded on the first search and kept: an
        # Index object answers many queries (a model load costs more than a search)
        self._encoders: dict[tuple[str, str], Any] = {}

    @property
    def store(self) -> VectorStore:
        """The vector store, opened on first use (and kept: Qdrant's local mode allows one
        client per folder)."""
        if self._store is None:
            self._store = open_store(self.config)
        return self._store

    def build(
        self, data: str | os.PathLike[str], split: str | None, version: str
    ) -> IndexBuildResult:
        """Embed the passages of ``data``'s corpus with ``version`` into a new table, then point
        the index's name at it.

        Tables of the name beyond ``IndexConfig.keep`` are then dropped (never the one the name
        points at). Tables an interrupted build left behind (never switched to) are removed
        before the new one is built, and a build that fails drops its own table.

        Args:
            data: BEIR folder (or a parent holding ``<split>/``) whose corpus to index.
            split: Split subfolder, when ``data`` holds several (None: ``data`` itself).
            version: Registry version (id, prefix or tag) whose model embeds the passages.

        Returns:
            The new table, the one it replaced, the tables dropped, the identity of its
            vectors and its size.

        Raises:
            ConfigError: No such version or export, or Ray asked for an ONNX encoder.
            DataError: The data is missing or malformed.

        Example:
            >>> built = Index(IndexConfig(path="runs/index"), Registry("registry")).build(
            ...     "data/fin", split="test", version="production")
            >>> built.table, built.previous, built.index
            ('passages-3f9c0e1a-torch-5be2d0aa', None, 'IVF-PQ')
        """
        from embedtune.corpus.load import load_beir
        from embedtune.corpus.passages import split_passages

        config = self.config
        if config.url is None:  # a local index folder never goes into the data or registry
            inputs = [data, self.registry.root]
            check_output(config.path, inputs, option="--index", exists_ok=True, holds_inputs=True)
        if config.ray_workers and config.encoder != "torch":
            raise ConfigError("Ray embedding runs the PyTorch model: use --encoder torch")
        encoder, identity = load_encoder(self.registry, version, config.encoder)
        dataset = load_beir(os.fspath(data), split)
        docs = list(dataset.corpus.values())
        passages = split_passages(
            docs, _tokenizer(self.registry, identity.version), identity.passages
        )
        store = self.store
        previous = store.target(config.name)
        stale = _drop_interrupted(store, config.name, previous)
        table = f"{config.name}-{identity.version[:8]}-{config.encoder}-{uuid.uuid4().hex[:8]}"
        store.create(table, identity.dimension, identity.model_dump(), previous=previous)
        try:
            built = self._fill(store, table, encoder, identity, docs, passages)
        except BaseException:  # Ctrl-C too: a table nobody will switch to is only clutter
            _drop_quietly(store, table)
            raise
        store.switch(config.name, table)  # only now does search see the new vectors
        old = _drop_beyond(store, config.name, table, config.keep)
        logger.info(
            "index %s → %s: %d passages of %d documents, %s%s",
            config.name,
            table,
            len(passages),
            len(docs),
            built["index"],
            f"; dropped {len(old)} old table(s) (keep {config.keep})" if old else "",
        )
        return IndexBuildResult(
            name=config.name,
            table=table,
            previous=previous,
            identity=identity,
            documents=len(docs),
            passages=len(passages),
            dropped=stale + old,
            **built,
        )

    def _fill(
        self,
        store: VectorStore,
        table: str,
        encoder: Any,
        identity: IndexIdentity,
        docs: list[Any],
        passages: Any,
    ) -> dict[str, Any]:
        """Embed and write every passage into ``table`` (one progress bar), then index it."""
        config = self.config
        prompt = identity.prompts.get("document") or None
        doc_index = np.repeat(np.arange(len(docs)), np.diff(passages.bounds))
        on_ray = None
        if config.ray_workers:
            from embedtune.index.ray_embed import embed_with_ray

            on_ray = embed_with_ray(
                passages.texts,
                str(self.registry.model_path(identity.version)),
                batch_size=config.batch_size,
                prompt=prompt,
                workers=config.ray_workers,
                address=config.ray_address,
            )
        bar = progress(total=len(passages), desc="index", unit="psg")
        try:
            for start in range(0, len(passages), config.chunk):
                texts = passages.texts[start : start + config.chunk]
                vectors = (
                    on_ray[start : start + len(texts)]
                    if on_ray is not None
                    else encoder.encode(
                        texts,
                        batch_size=config.batch_size,
                        prompt=prompt,
                        show_progress_bar=False,
                    )
                )
                payloads = [
                    {
                        "doc_id": docs[int(doc_index[i])].id,
                        "passage": int(i - passages.bounds[int(doc_index[i])]),
                        "text_sha256": hashlib.sha256(texts[i - start].encode()).hexdigest(),
                    }
                    for i in range(start, start + len(texts))
                ]
                store.add(table, np.asarray(vectors, dtype=np.float32), payloads)
                bar.update(len(texts))
        finally:
            bar.close()
        return store.finish(table)

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        version: str | None = None,
        encoder: str | None = None,
    ) -> list[SearchHit]:
        """The top ``k`` documents for ``query``, each scored by its best passage.

        The query is embedded by the model (and encoder variant) the index was built with.

        Args:
            query: What to look for.
            k: Documents to return.
            version: When given, the version (id, prefix or tag) the index must have been
                built with: vectors of another model are not comparable, so a mismatch is
                refused.
            encoder: When given, the encoder variant the index must have been built with.

        Returns:
            Up to ``k`` distinct documents, best first (ties by id).

        Raises:
            ConfigError: No index of that name, or it was built with another version or
                encoder.

        Example:
            >>> index = Index(IndexConfig(path="runs/index"), Registry("registry"))
            >>> index.search("convertible notes", k=1, version="production")
            [SearchHit(doc_id='d5', passage=0, score=0.8123)]
        """
        if not 1 <= k <= MAX_K:
            raise ConfigError(f"k {k}: give a number of documents from 1 to {MAX_K}")
        config = self.config
        if config.url is None and not Path(config.path).is_dir():  # opening would create it
            raise ConfigError(
                f"no index at {config.path}: build it with `embedtune index`, or give --index"
            )
        store = self.store
        current = store.current(config.name)
        if current is None:
            raise ConfigError(
                f"no index '{config.name}' in {config.url or config.path}: build it with "
                "`embedtune index`"
            )
        table, stored = current
        identity = IndexIdentity.model_validate(stored)
        wanted = self.registry.resolve(version) if version else identity.version
        if wanted != identity.version or (encoder or identity.encoder) != identity.encoder:
            raise ConfigError(
                f"index '{config.name}' holds vectors of version {identity.version} "
                f"({identity.encoder} encoder); searching it with version {wanted} "
                f"({encoder or identity.encoder}) is refused: rebuild with `embedtune index`"
            )
        key = (identity.version, identity.encoder)
        if key not in self._encoders:
            self._encoders[key] = load_encoder(self.registry, *key)[0]
        model = self._encoders[key]
        prompt = identity.prompts.get("query") or None
        vector = np.asarray(
            model.encode([query], prompt=prompt, show_progress_bar=False), dtype=np.float32
        )[0]
        rows = store.count(table)
        fetch = min(rows, k * 5)
        while True:  # over-fetch passages until k distinct documents are found
            best: dict[str, dict[str, Any]] = {}
            for hit in store.search(table, vector, fetch):
                if hit["doc_id"] not in best or hit["score"] > best[hit["doc_id"]]["score"]:
                    best[hit["doc_id"]] = hit
            if len(best) >= k or fetch >= rows:
                break
            fetch = min(rows, fetch * 4)
        ranked = sorted(best.values(), key=lambda h: (-h["score"], h["doc_id"]))[:k]
        return [SearchHit.model_validate(h) for h in ranked]


def _build_tables(store: VectorStore, name: str) -> list[str]:
    """The tables :meth:`Index.build` made for index ``name`` (``<name>-<version>-<encoder>-<id>``;
    a name may hold ``-``, but the fixed tail keeps two names' tables apart)."""
    pattern = re.compile(rf"{re.escape(name)}-[0-9a-f]{{8}}-(torch|fp32|int8)-[0-9a-f]{{8}}")
    return sorted(t for t in store.tables() if pattern.fullmatch(t))


def _switched_chain(store: VectorStore, head: str | None, existing: set[str]) -> list[str]:
    """``head`` and, newest first, the tables the name pointed at before it, followed through
    each table's build record until a table without one (built by an older embedtune) or one
    already dropped."""
    chain: list[str] = []
    table = head
    while table is not None and table in existing and table not in chain:
        chain.append(table)
        record = store.build_record(table)
        table = record.get("previous") if record else None
    return chain


def _drop_interrupted(store: VectorStore, name: str, current: str | None) -> list[str]:
    """Drop the tables of ``name`` that were never switched to: they carry a build record but
    are neither the current table nor one it replaced (a build that was killed, or failed
    before it could drop its own table). Tables without a record are left to retention."""
    ours = _build_tables(store, name)
    switched = set(_switched_chain(store, current, set(ours)))
    stale = [t for t in ours if t not in switched and store.build_record(t) is not None]
    for table in stale:
        store.drop(table)
    if stale:
        logger.info(
            "removed %d table(s) of index %s an interrupted build left behind: %s",
            len(stale),
            name,
            ", ".join(stale),
        )
    return stale


def _drop_beyond(store: VectorStore, name: str, current: str, keep: int) -> list[str]:
    """After a switch to ``current``, drop the tables of ``name`` beyond the ``keep`` newest it
    was switched to (0: none). Tables without a build record are older than every table with
    one, so they go only once the record chain alone holds ``keep`` tables."""
    if keep == 0:
        return []
    ours = _build_tables(store, name)
    chain = _switched_chain(store, current, set(ours))
    kept = set(chain[:keep]) | {current}
    beyond = [
        t
        for t in ours
        if t not in kept and (len(chain) >= keep or store.build_record(t) is not None)
    ]
    for table in beyond:
        store.drop(table)
    return beyond


def _drop_quietly(store: VectorStore, table: str) -> None:
    try:
        store.drop(table)
        logger.info("build interrupted: dropped its half-built table %s", table)
    except Exception:  # the build's own error is the one to report
        logger.warning("could not drop the half-built table %s", table, exc_info=True)


def build_index(
    data: str | os.PathLike[str],
    split: str | None,
    version: str,
    registry: Registry,
    config: IndexConfig,
) -> IndexBuildResult:
    """``Index(config, registry).build(data, split, version)``: see :meth:`Index.build`."""
    return Index(config, registry).build(data, split, version)


def search_index(
    query: str,
    registry: Registry,
    config: IndexConfig,
    *,
    k: int = 10,
    version: str | None = None,
    encoder: str | None = None,
) -> list[SearchHit]:
    """``Index(config, registry).search(query, k, ...)``: see :meth:`Index.search`."""
    return Index(config, registry).search(query, k, version=version, encoder=encoder)
