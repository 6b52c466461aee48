"""Where embedtune caches what it computes: document embeddings, LLM questions."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from embedtune.io import atomic_open

logger = logging.getLogger(__name__)

KEY = np.dtype("S16")  # a text's key: its 16-byte BLAKE2b digest


def default_cache_dir() -> str:
    """``$EMBEDTUNE_CACHE`` or ``~/.cache/embedtune``."""
    return os.environ.get("EMBEDTUNE_CACHE", str(Path.home() / ".cache" / "embedtune"))


def text_keys(texts: Iterable[str]) -> np.ndarray:
    """One fixed-width key per text (its digest), for looking texts up in a store."""
    return np.array(
        [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype=KEY
    )


class EmbeddingStore:
    """Embeddings of single texts in one folder (one model and encoding setting per folder).

    Each call that encodes something adds a *segment*: ``<name>.vectors.npy`` and
    ``<name>.keys.npy`` (the texts' keys, row for row), each written atomically, keys last,
    so a segment whose keys file exists is complete. Lookups go through a sorted index of
    every segment's keys, so any text encoded before is found whatever call encoded it: a
    dev pool that overlaps the passages mining encoded is not encoded again. Segments that
    other processes write appear at the next lookup; unreadable ones are skipped (a miss).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._segments: list[np.ndarray] = []  # each segment's vectors, memory-mapped
        self._names: set[str] = set()  # segments read or found unreadable
        self._keys = np.empty(0, dtype=KEY)  # every known key, sorted
        self._where = np.empty((0, 2), dtype=np.int64)  # (segment, row) of each sorted key

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(found, vectors)``: which keys are stored, and their vectors in order."""
        self._refresh()
        if not len(self._keys) or not len(keys):
            return np.zeros(len(keys), dtype=bool), np.empty((0, 0), dtype=np.float32)
        pos = np.minimum(np.searchsorted(self._keys, keys), len(self._keys) - 1)
        found = self._keys[pos] == keys
        where = self._where[pos[found]]
        dim = self._segments[0].shape[1]
        vectors = np.empty((len(where), dim), dtype=np.float32)
        for segment in np.unique(where[:, 0]):
            mine = np.flatnonzero(where[:, 0] == segment)
            vectors[mine] = self._segments[segment][where[mine, 1]]
        return found, vectors

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors`` (row for row with distinct ``keys``) as a new segment."""
        if not len(keys):
            return
        name = hashlib.sha256(keys.tobytes()).hexdigest()[:24]
        with atomic_open(self.folder / f"{name}.vectors.npy", "wb") as handle:
            np.save(handle, np.ascontiguousarray(vectors, dtype=np.float32))
        with atomic_open(self.folder / f"{name}.keys.npy", "wb") as handle:
            np.save(handle, keys)

    def _refresh(self) -> None:
        if not self.folder.is_dir():
            return
        new_keys, new_where = [], []
        for keys_file in sorted(self.folder.glob("*.keys.npy")):
            name = keys_file.name.removesuffix(".keys.npy")
            if name in self._names:
                continue
            self._names.add(name)
            try:
                keys = np.load(keys_file)
                vectors = np.load(self.folder / f"{name}.vectors.npy", mmap_mode="r")
            except (OSError, ValueError) as exc:
                logger.warning("embedding cache: skipping unreadable segment %s (%s)", name, exc)
                continue
            if keys.dtype != KEY or vectors.ndim != 2 or len(vectors) != len(keys):
                logger.warning("embedding cache: skipping inconsistent segment %s", name)
                continue
            if self._segments and vectors.shape[1] != self._segments[0].shape[1]:
                logger.warning("embedding cache: skipping segment %s of another width", name)
                continue
            rows = np.arange(len(keys), dtype=np.int64)
            new_where.append(np.column_stack([np.full_like(rows, len(self._segments)), rows]))
            new_keys.append(keys)
            self._segments.append(vectors)
        if new_keys:
            keys = np.concatenate([self._keys, *new_keys])
            where = np.concatenate([self._where, *new_where])
            # the known keys are one sorted run already: a stable sort merges in linear time
            order = np.argsort(keys, kind="stable")
            self._keys, self._where = keys[order], where[order]
