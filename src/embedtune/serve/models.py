"""Loading served versions from the registry, and the table of served names that hot-reloads.

A version is loaded once per backend and shared by every name that points at it. Where it
runs depends on what it is:

- a LoRA/IA3 version saved as an adapter (``save_adapter: true``) is added, by its version id,
  to one shared copy of its base model; every adapter of that base runs on the base's single
  worker, which selects the adapter per batch, so two adapters never share a forward pass;
- a full fine-tune (or any other model folder) gets its own model and worker;
- with an ONNX backend, the version's registered export runs on onnxruntime (no torch).

Request text never reaches a file path: names are looked up in :class:`ModelTable`'s dict of
what the registry said at load time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.errors import ConfigError, EmbedtuneError
from embedtune.model_folder import read_settings
from embedtune.registry import Registry, VersionRecord
from embedtune.serve.batching import MicroBatcher
from embedtune.serve.config import ServeConfig
from embedtune.serve.metrics import Metrics

logger = logging.getLogger(__name__)

__all__ = ["ModelTable", "ServedVersion", "TokenCounter"]

RETIRE_AFTER_S = 30.0  # a version no name points at is unloaded this long after the move
RETRY_AFTER_S = 30.0  # a reload that failed is tried again this often (or when tags move again)


class TokenCounter:
    """Counts tokens (special tokens included) with a private copy of the model's fast
    tokenizer, without truncation: the encoding tokenizer is reconfigured per call by its
    library, and sharing it across threads fails with "Already borrowed"."""

    def __init__(self, tokenizer_json: str) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, texts: list[str]) -> list[int]:
        """Tokens of each text as the model would read it before truncation."""
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts)]


def _l2(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class TorchEngine:
    """A sentence-transformers model and the adapters loaded onto it, run by one worker.

    ``lock`` is held by every forward pass and every adapter load: PEFT changes modules in
    place, which must never happen under a running batch.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = threading.Lock()
        self._active: str | None = None
        self.adapters: set[str] = set()

    def add_adapter(self, folder: Path, name: str) -> None:
        """Load an adapter folder under ``name`` (a version id) next to the others."""
        with self.lock, warnings.catch_warnings():
            # PEFT warns that a second adapter makes a multi-adapter model: that is the point
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            self.model.load_adapter(str(folder), adapter_name=name)
            self.adapters.add(name)
            self._active = None  # loading may change which adapter is active

    def drop_adapter(self, name: str) -> None:
        """Unload an adapter no served name uses any more."""
        with self.lock:
            if name in self.adapters:
                self.model.delete_adapter(name)
                self.adapters.discard(name)
                self._active = None

    def encode(self, adapter: str | None, texts: list[str], prompt: str) -> np.ndarray:
        """Normalised float32 vectors, exactly as ``SentenceTransformer.encode`` gives them."""
        with self.lock:
            if adapter is not None and adapter != self._active:
                self.model.set_adapter(adapter)
                self._active = adapter
            vectors = self.model.encode(
                texts,
                prompt=prompt or None,
                batch_size=len(texts),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEngine:
    """An ONNX export on onnxruntime (no torch)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder

    def encode(self, adapter: str | None, texts: list[str], prompt: str) -> np.ndarray:
        vectors = self.encoder.encode(texts, batch_size=len(texts), prompt=prompt or None)
        return _l2(np.asarray(vectors, dtype=np.float32))


@dataclass
class ServedVersion:
    """One loaded version, as requests see it.

    Attributes:
        id: Version id.
        name: The version's readable name.
        base: Name of the base model it was trained from (None: not recorded).
        backend: ``torch``, ``onnx-int8`` or ``onnx-fp32``.
        dimension: Vector size.
        max_seq_length: Tokens per input the model reads.
        prompts: ``query``/``document`` prompts ('' for none) and ``default`` (what an
            input without ``input_type`` gets: the model's default prompt, usually '').
        passages: The passage window documents were split into in training and evaluation.
        dimensions_trained: Sizes the model was trained for (Matryoshka), else [].
        adapter: The adapter's name on a shared base (None: a model of its own).
        shared_base: Whether it runs on a base shared with other adapters.
        parity: The export's recorded parity, for an ONNX backend.
        model_sha256: The version's model hash (what a drift profile records: a logged window
            of another hash is a model change, not drift).
    """

    id: str
    name: str
    base: str | None
    backend: str
    dimension: int
    max_seq_length: int
    prompts: dict[str, str]
    passages: dict[str, Any] | None
    dimensions_trained: list[int]
    worker: MicroBatcher
    counter: TokenCounter
    adapter: str | None = None
    shared_base: bool = False
    parity: dict[str, Any] | None = None
    strategy: str | None = None
    created: int = 0  # when the version was added (Unix time), as OpenAI's ``created``
    model_sha256: str | None = None

    def describe(self, served_name: str) -> dict[str, Any]:
        """This version as ``GET /v1/models`` lists it."""
        return {
            "id": served_name,
            "object": "model",
            "created": self.created,
            "owned_by": "embedtune",
            "version": self.id,
            "version_name": self.name,
            "base": self.base,
            "strategy": self.strategy,
            "backend": self.backend,
            "shared_base": self.shared_base,
            "dimensions": self.dimension,
            "trained_for_dimensions": bool(self.dimensions_trained),
            "matryoshka_dimensions": self.dimensions_trained,
            "max_input_tokens": self.max_seq_length,
            "prompts": {k: v for k, v in self.prompts.items() if k != "default"},
            "passages": self.passages,
            "parity": self.parity,
        }


def _torch_available() -> bool:
    return importlib.util.find_spec("sentence_transformers") is not None


def _config_signature(folder: Path) -> str:
    """What must agree for an adapter to run on a shared base: the module list, the length
    limit and each module's config (pooling, normalisation), not the weights."""
    digest = hashlib.sha256()
    modules_file = folder / "modules.json"
    modules = json.loads(modules_file.read_text("utf-8")) if modules_file.is_file() else []
    digest.update(json.dumps([m.get("type") for m in modules]).encode())
    for module in modules:
        path = module.get("path") or ""
        for name in ("config.json",) if path else ("sentence_bert_config.json",):
            file = folder / path / name
            if file.is_file():
                digest.update(file.read_bytes())
    return digest.hexdigest()


def _prompts(folder: Path, fallback: dict[str, str] | None = None) -> dict[str, str]:
    """The query/document prompts a model folder uses, and its default prompt."""
    config_file = folder / "config_sentence_transformers.json"
    saved = json.loads(config_file.read_text("utf-8")) if config_file.is_file() else {}
    prompts = dict(fallback or saved.get("prompts") or {})
    settings = read_settings(folder)
    if settings is not None:
        prompts.update({k: v or "" for k, v in settings.prompts.model_dump().items()})
    default_name = saved.get("default_prompt_name")
    return {
        "query": prompts.get("query") or "",
        "document": prompts.get("document") or prompts.get("passage") or "",
        "default": prompts.get(default_name, "") if default_name else "",
    }


def _unix_time(iso: str) -> int:
    import calendar

    try:
        return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return 0


def _trained_dimensions(record: VersionRecord) -> list[int]:
    dims = (record.lineage.config or {}).get("matryoshka_dims")
    return sorted({int(d) for d in dims}, reverse=True) if isinstance(dims, list) else []


def _passages(folder: Path) -> dict[str, Any] | None:
    settings = read_settings(folder)
    return None if settings is None else settings.passages.model_dump(mode="json")


@dataclass
class _Shared:
    engine: TorchEngine
    worker: MicroBatcher
    counter: TokenCounter
    users: set[str] = field(default_factory=set)


class ModelPool:
    """Loaded versions by id; adapters share one base (and its worker) per base model."""

    def __init__(self, config: ServeConfig, registry: Registry, metrics: Metrics) -> None:
        self.config = config
        self.registry = registry
        self.metrics = metrics
        self.loaded: dict[str, ServedVersion] = {}
        self._bases: dict[str, _Shared] = {}
        self._lock = threading.Lock()  # one load at a time (loads are rare and slow)

    def backend_for(self, record: VersionRecord) -> str:
        """The backend a version runs on: the configured one, or for ``auto`` torch when
        installed, else its int8 (then fp32) export."""
        if self.config.backend != "auto":
            return self.config.backend
        if _torch_available():
            return "torch"
        for variant in ("int8", "fp32"):
            if any(variant in e.files for e in record.exports):
                return f"onnx-{variant}"
        raise ConfigError(
            f"version {record.id} has no ONNX export and torch is not installed: "
            "pip install 'embedtune[eval]', or export it (`embedtune export`) and add the "
            "export to the registry (`embedtune registry add EXPORT`)"
        )

    def get(self, vid: str) -> ServedVersion:
        """The loaded version ``vid`` (a full id), loading it on first use."""
        with self._lock:
            if vid not in self.loaded:
                started = time.perf_counter()
                record = self.registry.show(vid)
                backend = self.backend_for(record)
                if backend == "torch":
                    served = self._load_torch(record)
                else:
                    served = self._load_onnx(record, backend.removeprefix("onnx-"))
                self.loaded[vid] = served
                logger.info(
                    "loaded version %s (%s, %s%s) in %.1f s",
                    vid,
                    record.name,
                    backend,
                    ", adapter on a shared base" if served.shared_base else "",
                    time.perf_counter() - started,
                )
            return self.loaded[vid]

    def retire(self, vid: str) -> None:
        """Unload a version that no name serves any more (its worker finishes what it has)."""
        with self._lock:
            served = self.loaded.pop(vid, None)
            if served is None:
                return
            if not served.shared_base:
                served.worker.close()
                return
            for key, shared in list(self._bases.items()):
                if served.worker is shared.worker:
                    shared.users.discard(vid)
                    if served.adapter is not None:
                        shared.engine.drop_adapter(served.adapter)
                    if not shared.users:
                        shared.worker.close()
                        del self._bases[key]
            logger.info("unloaded version %s", vid)

    def close(self) -> None:
        """Stop every worker."""
        with self._lock:
            for served in self.loaded.values():
                served.worker.close()
            for shared in self._bases.values():
                shared.worker.close()

    # --- loaders -----------------------------------------------------------------------

    def _worker(self, name: str, engine: Any) -> MicroBatcher:
        return MicroBatcher(
            name,
            engine.encode,
            batch_tokens=self.config.batch_tokens,
            max_queue=self.config.max_queue,
            wait_s=self.config.batch_wait_ms / 1000,
            metrics=self.metrics,
        )

    def _sentence_transformer(self, path: str) -> Any:
        from embedtune.models import open_folder

        if self.config.threads:
            import torch

            torch.set_num_threads(self.config.threads)
        model = open_folder(path, device=self.config.device)
        model.eval()
        return model

    def _load_torch(self, record: VersionRecord) -> ServedVersion:
        from embedtune.models import adapter_base, load_model, resolve_model

        folder = self.registry.verified_path(record.id)  # re-hashes: tampered files refused
        common: dict[str, Any] = {
            "created": _unix_time(record.created),
            "model_sha256": record.model_sha256 or record.content_sha256,
            "id": record.id,
            "name": record.name,
            "base": (record.lineage.base_model or {}).get("name"),
            "backend": "torch",
            "passages": _passages(folder),
            "dimensions_trained": _trained_dimensions(record),
            "strategy": record.lineage.strategy,
        }
        if (folder / "adapter_config.json").is_file() and read_settings(folder) is not None:
            base = adapter_base(folder)
            key = f"{base.sha256}:{_config_signature(folder)}"
            if _config_signature(Path(base.path)) == _config_signature(folder):
                shared = self._bases.get(key)
                if shared is None:
                    model = self._sentence_transformer(base.path)
                    model.default_prompt_name = None  # prompts are passed per batch
                    engine = TorchEngine(model)
                    shared = _Shared(
                        engine,
                        self._worker(f"base-{base.sha256[:12]}", engine),
                        TokenCounter(model.tokenizer.backend_tokenizer.to_str()),
                    )
                    self._bases[key] = shared
                shared.engine.add_adapter(folder, record.id)
                shared.users.add(record.id)
                model = shared.engine.model
                return ServedVersion(
                    **common,
                    dimension=int(model.get_embedding_dimension() or 0),
                    max_seq_length=int(model.max_seq_length or 512),
                    prompts=_prompts(folder),
                    worker=shared.worker,
                    counter=shared.counter,
                    adapter=record.id,
                    shared_base=True,
                )
            logger.info("version %s: its modules differ from its base's; loaded alone", record.id)
        if self.config.threads:
            import torch

            torch.set_num_threads(self.config.threads)
        model = load_model(resolve_model(str(folder)), device=self.config.device)
        model.eval()
        engine = TorchEngine(model)
        return ServedVersion(
            **common,
            dimension=int(model.get_embedding_dimension() or 0),
            max_seq_length=int(model.max_seq_length or 512),
            prompts=_prompts(folder, {k: v or "" for k, v in (model.prompts or {}).items()}),
            worker=self._worker(record.id, engine),
            counter=TokenCounter(model.tokenizer.backend_tokenizer.to_str()),
        )

    def _load_onnx(self, record: VersionRecord, variant: str) -> ServedVersion:
        from embedtune.retrieval.onnx import OnnxEncoder

        exports = [e for e in record.exports if variant in e.files]
        if variant == "int8":
            exports = [e for e in exports if (e.parity.get("int8") or {}).get("ok") is not False]
        if not exports:
            raise ConfigError(
                f"version {record.id} ({record.name}) has no {variant} ONNX export: export it "
                "(`embedtune export`) and add the export folder (`embedtune registry add "
                "EXPORT`), or serve with --backend torch"
            )
        export = max(exports, key=lambda e: (e.created, e.id))  # the newest
        folder = Path(export.path)
        encoder = OnnxEncoder(folder, variant, threads=self.config.threads)
        engine = OnnxEngine(encoder)
        spec = encoder.meta["encoder"]
        return ServedVersion(
            id=record.id,
            name=record.name,
            base=(record.lineage.base_model or {}).get("name"),
            backend=f"onnx-{variant}",
            dimension=encoder.get_embedding_dimension(),
            max_seq_length=encoder.max_seq_length,
            prompts={
                "query": encoder.prompts.get("query", ""),
                "document": encoder.prompts.get("document", encoder.prompts.get("passage", "")),
                "default": "",
            },
            passages=spec.get("passages") or _passages(Path(record.path)),
            dimensions_trained=_trained_dimensions(record),
            worker=self._worker(f"{record.id}-{variant}", engine),
            counter=TokenCounter((folder / "tokenizer.json").read_text("utf-8")),
            parity=export.parity.get(variant),
            model_sha256=record.model_sha256 or record.content_sha256,
            strategy=record.lineage.strategy,
            created=_unix_time(record.created),
        )


class ModelTable:
    """Served name → loaded version; follows the registry's tags while the server runs.

    Served names are the configured names (tags or version ids; default every tag) and the
    full id of every version they point at. A moved tag is loaded in the background and then
    swapped in with one dict assignment: requests already queued finish on the old version,
    new ones go to the new one, none fails.
    """

    def __init__(self, config: ServeConfig, metrics: Metrics) -> None:
        self.config = config
        self.registry = Registry(config.registry)
        self.pool = ModelPool(config, self.registry, metrics)
        self.names: dict[str, ServedVersion] = {}
        self.ready = False
        self.error: str | None = None
        self._tags_signature: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: tuple[tuple[int, int, int] | None, float] | None = None

    def lookup(self, name: str) -> tuple[str, ServedVersion] | None:
        """The version serving ``name`` and how responses name it (``tag@id``, or the id)."""
        served = self.names.get(name)  # a dict lookup: request text never becomes a path
        if served is None:
            return None
        return (name if name == served.id else f"{name}@{served.id}"), served

    def listing(self) -> list[dict[str, Any]]:
        """Every served name, as ``GET /v1/models`` lists it."""
        return [served.describe(name) for name, served in sorted(self.names.items())]

    def load(self) -> None:
        """Resolve and load every served name (raises on the first problem)."""
        self.registry.tags()  # refuses a missing registry before anything loads
        self._tags_signature = self._signature()
        self.names = self._resolve_all(self.registry.tags())
        self.ready = True

    def start(self) -> None:
        """Load in a background thread (``/readyz`` says when) and then poll for moved tags."""
        self._thread = threading.Thread(
            target=self._run, name="embedtune-serve-reload", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop polling and stop every worker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.pool.close()

    def poll(self) -> bool:
        """Reload when ``tags.json`` changed since the last look; True when names moved."""
        signature = self._signature()
        if signature == self._tags_signature:
            return False
        failed = self._failed
        if failed and failed[0] == signature and time.monotonic() - failed[1] < RETRY_AFTER_S:
            return False  # the same tags failed to load a moment ago
        before = {name: served.id for name, served in self.names.items()}
        try:
            names = self._resolve_all(self.registry.tags())
        except Exception:
            self._failed = (signature, time.monotonic())
            raise
        self._failed = None
        self.names = names  # one assignment: a request sees the old table or the new one
        self._tags_signature = signature
        after = {name: served.id for name, served in names.items()}
        gone = set(before.values()) - set(after.values())
        for vid in gone:
            timer = threading.Timer(RETIRE_AFTER_S, self._retire_if_unused, args=(vid,))
            timer.daemon = True
            timer.start()
        if before != after:
            moved = {n: v for n, v in after.items() if before.get(n) != v and n != v}
            logger.info("registry tags moved: now serving %s", moved)
            return True
        return False

    # --- helpers -----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            if not self.ready:
                self.load()
        except (EmbedtuneError, OSError) as exc:
            self.error = str(exc)
            logger.error("cannot load the served models: %s", exc)
            return
        interval = self.config.reload_interval_s
        while interval and not self._stop.wait(interval):
            try:
                self.poll()
            except (EmbedtuneError, OSError, ValueError) as exc:
                # a half-written or bad registry keeps the current table; try again next tick
                logger.warning("registry reload failed (still serving the old versions): %s", exc)

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.registry.root / "tags.json")
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)  # replaced atomically: a new inode

    def _resolve_all(self, tags: dict[str, str]) -> dict[str, ServedVersion]:
        wanted = list(self.config.models) or sorted(tags)
        if not wanted:
            raise ConfigError(
                f"nothing to serve: the registry {self.registry.root} has no tags; tag a "
                "version (`embedtune registry promote ID production`) or name versions with "
                "--model"
            )
        names: dict[str, ServedVersion] = {}
        for name in wanted:
            try:
                vid = self.registry.resolve(name)
            except ConfigError:
                if name in self.names:  # a tag removed while serving: keep what it served
                    names[name] = self.names[name]
                    continue
                raise
            served = self.pool.get(vid)
            names[name] = served
            names[vid] = served
        return names

    def _retire_if_unused(self, vid: str) -> None:
        if all(served.id != vid for served in self.names.values()):
            self.pool.retire(vid)


def check_served(config: ServeConfig) -> None:
    """Fail early (before binding a port) when a served name matches no version."""
    registry = Registry(config.registry)
    tags = registry.tags()  # refuses a missing registry
    for name in config.models:
        registry.resolve(name)
    if not config.models and not tags:
        raise ConfigError(
            f"nothing to serve: the registry {config.registry} has no tags; tag a version "
            "(`embedtune registry promote ID production`) or name versions with --model"
        )
