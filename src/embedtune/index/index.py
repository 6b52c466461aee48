"""``embedtune index`` and ``embedtune search``: passages of a corpus embedded by one registry
version and encoder variant, searched by document (max-passage, over-fetching passages)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.corpus.config import PassageConfig
from embedtune.errors import ConfigError
from embedtune.index.config import IndexConfig
from embedtune.index.store import LanceStore, QdrantStore, VectorStore
from embedtune.model_folder import passages_of
from embedtune.registry.registry import Registry

logger = logging.getLogger(__name__)


def open_store(config: IndexConfig) -> VectorStore:
    if config.backend == "qdrant":
        return QdrantStore(config.path, config.url)
    return LanceStore(
        config.path,
        ann_min_rows=config.ann_min_rows,
        nprobes=config.nprobes,
        refine=config.refine_factor,
    )


def load_encoder(registry: Registry, version: str, variant: str) -> tuple[Any, dict[str, Any]]:
    """The encoder of a registry version (PyTorch, or one of its ONNX exports) and the
    identity every vector it makes is tagged with."""
    record = registry.show(version)
    model_dir = Path(record["path"])
    identity: dict[str, Any] = {
        "version": record["id"],
        "encoder": variant,
        "export": None,
        "passages": (passages_of(model_dir) or PassageConfig()).model_dump(),
    }
    if variant == "torch":
        from embedtune.models import load_model, resolve_model

        model = load_model(resolve_model(str(model_dir)))
        modules = [type(m).__name__ for m in model]
        pooling: Any = model[1]
        identity["pooling"] = pooling.get_config_dict().get("pooling_mode")
        identity["normalize"] = "Normalize" in modules
        identity["prompts"] = {k: v for k, v in (model.prompts or {}).items() if v}
        identity["dimension"] = int(model.get_embedding_dimension() or 0)
        return model, identity
    from embedtune.retrieval.onnx import OnnxEncoder

    exports = [e for e in record["exports"] if variant in e["files"]]
    if not exports:
        raise ConfigError(
            f"version {record['id']} has no '{variant}' export: run `embedtune export` on it "
            "and `embedtune registry add` the export, or use --encoder torch"
        )
    export = exports[-1]
    encoder = OnnxEncoder(export["path"], variant)
    spec = encoder.meta["encoder"]
    identity.update(
        export=export["id"],
        pooling=spec["pooling"],
        normalize=spec["normalize"],
        prompts=spec["prompts"],
        dimension=spec["dimension"],
    )
    return encoder, identity


def _tokenizer(registry: Registry, version: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(registry.model_path(version)), local_files_only=True)


def build_index(
    data: str | Path,
    split: str | None,
    version: str,
    registry: Registry,
    config: IndexConfig,
) -> dict[str, Any]:
    """Embed ``data``'s passages with ``version`` into a new table, then point the index's
    alias at it. Returns what was built."""
    from embedtune.corpus.load import load_beir
    from embedtune.corpus.passages import split_passages

    encoder, identity = load_encoder(registry, version, config.encoder)
    dataset = load_beir(data, split)
    docs = list(dataset.corpus.values())
    passages = split_passages(
        docs, _tokenizer(registry, identity["version"]), PassageConfig(**identity["passages"])
    )
    store = open_store(config)
    table = f"{config.name}-{identity['version'][:8]}-{config.encoder}-{uuid.uuid4().hex[:8]}"
    store.create(table, int(identity["dimension"]), identity)
    prompt = identity["prompts"].get("document") or None
    doc_index = np.repeat(np.arange(len(docs)), np.diff(passages.bounds))
    on_ray = None
    if config.ray_workers:
        if config.encoder != "torch":
            raise ConfigError("Ray embedding runs the PyTorch model: use --encoder torch")
        from embedtune.index.ray_embed import embed_with_ray

        on_ray = embed_with_ray(
            passages.texts,
            str(registry.model_path(identity["version"])),
            batch_size=config.batch_size,
            prompt=prompt,
            workers=config.ray_workers,
            address=config.ray_address,
        )
    for start in range(0, len(passages), config.chunk):
        texts = passages.texts[start : start + config.chunk]
        vectors = (
            on_ray[start : start + len(texts)]
            if on_ray is not None
            else encoder.encode(
                texts, batch_size=config.batch_size, prompt=prompt, show_progress_bar=False
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
    built = store.finish(table)
    previous = store.current(config.name)
    store.switch(config.name, table)  # only now does search see the new vectors
    logger.info("index %s → %s (%s rows)", config.name, table, built["rows"])
    return {
        "name": config.name,
        "table": table,
        "previous": previous[0] if previous else None,
        "identity": identity,
        "documents": len(docs),
        "passages": len(passages),
        **built,
    }


def search_index(
    query: str,
    registry: Registry,
    config: IndexConfig,
    *,
    k: int = 10,
    version: str | None = None,
    encoder: str | None = None,
) -> list[dict[str, Any]]:
    """The top ``k`` documents for ``query``, each scored by its best passage.

    ``version``/``encoder``, when given, must be what the index was built with: vectors of
    another model or encoder variant are not comparable, so a mismatch is refused.
    """
    store = open_store(config)
    current = store.current(config.name)
    if current is None:
        raise ConfigError(
            f"no index '{config.name}' in {config.url or config.path}: build it with "
            "`embedtune index`"
        )
    table, identity = current
    wanted = registry.resolve(version) if version else identity["version"]
    if wanted != identity["version"] or (encoder or identity["encoder"]) != identity["encoder"]:
        raise ConfigError(
            f"index '{config.name}' holds vectors of version {identity['version']} "
            f"({identity['encoder']} encoder); searching it with version {wanted} "
            f"({encoder or identity['encoder']}) is refused: rebuild with `embedtune index`"
        )
    model, _ = load_encoder(registry, identity["version"], identity["encoder"])
    prompt = identity["prompts"].get("query") or None
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
    return sorted(best.values(), key=lambda h: (-h["score"], h["doc_id"]))[:k]
