"""Where vectors come from: a registry version or a model folder, its query prompt and
passage window; queries files and corpora read for embedding."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedtune.errors import ConfigError, DataError

if TYPE_CHECKING:
    from embedtune.corpus.config import PassageConfig
    from embedtune.registry import Registry
    from embedtune.retrieval.encoder import Encoder

logger = logging.getLogger(__name__)

__all__ = ["ModelSource", "ServerEncoder", "open_source", "read_query_texts", "served_source"]


@dataclass
class ModelSource:
    """A loaded encoder and what identifies it."""

    encoder: Encoder
    name: str
    sha256: str
    version: str | None
    variant: str
    query_prompt: str
    doc_prompt: str
    passages: PassageConfig
    path: Path
    parity: dict[str, Any]
    server: ServerEncoder | None = None  # set: vectors come from a running server

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sha256": self.sha256,
            "version": self.version,
            "variant": self.variant,
            "query_prompt": self.query_prompt,
        }

    def embed_queries(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if self.server is not None:
            return self.server.embed(texts, "query")
        from embedtune.retrieval.encoder import embed

        return embed(self.encoder, texts, self.query_prompt, batch_size)

    def embed_documents(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        if self.server is not None:
            return self.server.embed(texts, "passage")
        from embedtune.retrieval.encoder import embed

        return embed(self.encoder, texts, self.doc_prompt, batch_size)

    def embed_passages(self, data: str | Path, batch_size: int = 64) -> tuple[np.ndarray, int]:
        """Every passage of a corpus (documents split by the model's passage window), and
        the number of documents: a query's best passage is its max-passage top-1."""
        from embedtune.corpus.load import load_beir
        from embedtune.corpus.passages import split_passages

        docs = list(load_beir(data).corpus.values())
        if not docs:
            raise DataError("the corpus holds no documents", path=data)
        passages = split_passages(docs, self.encoder.tokenizer, self.passages)
        return self.embed_documents(passages.texts, batch_size), len(docs)


def open_source(
    *,
    registry: Registry | None = None,
    version: str | None = None,
    model: str | Path | None = None,
    variant: str = "torch",
    device: str | None = "cpu",
) -> ModelSource:
    """Open a registry version (verified against its hash) or a model folder.

    Args:
        registry: The registry holding ``version``.
        version: A version id, prefix or tag.
        model: A model folder, or ``base`` (instead of a registry version).
        variant: ``torch``, or ``fp32``/``int8`` for the version's registered ONNX export.
        device: Torch device.

    Raises:
        ConfigError: Neither or both of version and model; no export for an ONNX variant.

    Example:
        >>> source = open_source(registry=Registry("registry"), version="production")
        >>> source.embed_queries(["net revenue growth"]).shape
        (1, 384)
    """
    from embedtune.corpus.config import PassageConfig
    from embedtune.model_folder import read_settings
    from embedtune.retrieval.encoder import open_encoder

    if (version is None) == (model is None):
        raise ConfigError("give a registry version (--version) or a model folder (--model)")
    vid: str | None = None
    parity: dict[str, Any] = {}
    if version is not None:
        if registry is None:
            raise ConfigError("--version needs --registry")
        record = registry.show(version)
        vid = record.id
        folder = registry.verified_path(vid)
        name, sha = record.name, record.model_sha256 or record.content_sha256
        exports = [e for e in record.exports if variant in e.files]
        if exports:
            parity = dict(exports[-1].parity)
    else:
        from embedtune.models import resolve_model

        ref = resolve_model(str(model))  # a folder, or 'base' (the packaged default)
        folder, name, sha = Path(ref.path), ref.name, ref.sha256
    if variant == "torch":
        encoder = open_encoder(folder, "torch", device=device)
    else:
        if vid is None or not exports:
            raise ConfigError(
                f"variant {variant} reads the version's registered ONNX export: give --version "
                "of a version with an export (`embedtune registry add EXPORT`)"
            )
        encoder = open_encoder(exports[-1].path, variant)  # type: ignore[arg-type]
    settings = read_settings(folder)
    prompts = dict(getattr(encoder, "prompts", {}) or {})
    if settings is not None:
        prompts.setdefault("query", settings.prompts.query or "")
        prompts.setdefault("document", settings.prompts.document or "")
    return ModelSource(
        encoder=encoder,
        name=name,
        sha256=sha,
        version=vid,
        variant=variant,
        query_prompt=prompts.get("query") or "",
        doc_prompt=prompts.get("document") or "",
        passages=settings.passages if settings is not None else PassageConfig(),
        path=folder,
        parity=parity,
    )


def read_query_texts(path: str | Path) -> list[str]:
    """Query texts from a BEIR folder (its queries.jsonl), a .jsonl/.csv/.tsv queries file
    (``_id`` and ``text``), or a .txt file (one query a line).

    Raises:
        DataError: Missing, unreadable or empty.
    """
    from embedtune.corpus.load import BEIR_FIELDS
    from embedtune.corpus.tables import read_queries

    given = Path(path)
    if given.is_dir():
        given = given / "queries.jsonl"
    if not given.is_file():
        raise DataError("no such queries file", path=given)
    if given.suffix.lower() == ".txt":
        try:
            texts = [line.strip() for line in given.read_text("utf-8").splitlines()]
        except UnicodeDecodeError:
            raise DataError("not UTF-8 text", path=given) from None
        texts = [t for t in texts if t]
    else:
        texts = list(read_queries(given, BEIR_FIELDS).values())
    if not texts:
        raise DataError("holds no queries", path=given)
    return texts


@dataclass
class ServerEncoder:
    """Embeds through a running OpenAI-compatible server (``embedtune serve``) with the
    official ``openai`` client: queries with ``input_type=query``, passages with
    ``input_type=passage``, so the server puts its own prompts in front.

    Args:
        url: The server's base URL (``http://127.0.0.1:8000``; ``/v1`` is added).
        model: The served name (a tag or version id).
        api_key: A bearer key (default: ``$EMBEDTUNE_API_KEY``, else none).
        batch_size: Inputs per request.
    """

    url: str
    model: str
    api_key: str | None = None
    batch_size: int = 64

    def embed(self, texts: list[str], input_type: str) -> np.ndarray:
        import os

        from embedtune.errors import require

        require("openai", "serve")
        import openai

        base = self.url.rstrip("/")
        client = openai.OpenAI(
            base_url=base if base.endswith("/v1") else f"{base}/v1",
            api_key=self.api_key or os.environ.get("EMBEDTUNE_API_KEY") or "none",
            max_retries=2,
        )
        out: list[list[float]] = []
        try:
            for start in range(0, len(texts), self.batch_size):
                response = client.embeddings.create(
                    model=self.model,
                    input=texts[start : start + self.batch_size],
                    extra_body={"input_type": input_type},
                )
                out.extend(item.embedding for item in response.data)
        except openai.OpenAIError as exc:
            raise ConfigError(f"the server at {self.url} refused or failed: {exc}") from None
        vectors = np.asarray(out, dtype=np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def served_source(source: ModelSource, server: ServerEncoder) -> ModelSource:
    """``source`` (a registry version: its tokenizer and passage window) with its vectors
    coming from a running server instead of the local model."""
    from dataclasses import replace

    return replace(source, variant=f"server:{server.model}", server=server)
