"""Logged windows of query embeddings: the on-disk format `embedtune serve --log-embeddings`
writes and `embedtune monitor check` reads (one owner, below both stages).

One folder per model version, one pair of files per window::

    DIR/<version>/<start>.npy    float16 array, queries × dim, in arrival order
    DIR/<version>/<start>.json   {"format": 1, "version": ..., "model_sha256": ...,
                                  "start": ISO time, "end": ISO time, "queries": n,
                                  "dim": d, "dtype": "float16",
                                  "top1": [...] (optional: the index's top-1 scores),
                                  "texts": [...] (optional: only when asked)}

``<version>`` is the served version's registry id (tags move; a window belongs to the exact
weights that embedded it) and ``model_sha256`` its ``model_sha256``: a check refuses a window
whose hash is not its profile's (a model change is not drift). ``<start>`` is the window's
UTC start as ``YYYYMMDDTHHMMSSffffffZ`` (sorts by time, safe in a file name). The ``.npy``
is written first and the ``.json`` last, both atomically: a window without its ``.json`` is
incomplete and every reader skips it. No query text is written unless the caller passes
``texts``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embedtune.errors import DataError
from embedtune.io import atomic_open, write_json

logger = logging.getLogger(__name__)

__all__ = [
    "QueryWatch",
    "WatchFactory",
    "Window",
    "WindowWriter",
    "append_window",
    "list_windows",
    "read_window",
    "read_windows",
]

FORMAT = 1
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass
class Window:
    """One logged window: its record and its vectors (float32)."""

    meta: dict[str, Any]
    embeddings: np.ndarray
    path: Path

    @property
    def top1(self) -> np.ndarray | None:
        scores = self.meta.get("top1")
        return None if scores is None else np.asarray(scores, dtype=np.float32)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def append_window(
    root: str | Path,
    version: str,
    embeddings: np.ndarray,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    model_sha256: str | None = None,
    top1: np.ndarray | list[float] | None = None,
    texts: list[str] | None = None,
) -> Path:
    """Write one complete window of query embeddings (float16) under ``root/version``.

    Args:
        root: The log folder (``--log-embeddings DIR``).
        version: The model version that embedded them (registry id or tag as served).
        embeddings: queries × dim.
        start: When the window began (default: now, UTC).
        end: When it closed (default: now).
        model_sha256: The served model's content hash (checks compare it with the profile's).
        top1: Each query's top-1 similarity, when an index answered them.
        texts: The query texts: only when the operator asked for them.

    Returns:
        The window's ``.json`` path.

    Raises:
        DataError: ``version`` is not a safe folder name, or the sizes do not agree.
    """
    if not _VERSION.fullmatch(version):
        raise DataError(f"{version!r} cannot name a window folder (a version id or tag)")
    x = np.asarray(embeddings)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"a window is a non-empty queries × dim array (got shape {x.shape})")
    for name, extra in (("top1", top1), ("texts", texts)):
        if extra is not None and len(extra) != len(x):
            raise DataError(f"{len(extra)} {name} for {len(x)} window vectors")
    now = datetime.now(UTC)
    begin = start or now
    folder = Path(root) / version
    stem = _stamp(begin)
    with atomic_open(folder / f"{stem}.npy", "wb") as handle:
        np.save(handle, x.astype(np.float16))
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "model_sha256": model_sha256,
        "start": _iso(begin),
        "end": _iso(end or now),
        "queries": len(x),
        "dim": int(x.shape[1]),
        "dtype": "float16",
    }
    if top1 is not None:
        meta["top1"] = [round(float(s), 5) for s in top1]
    if texts is not None:
        meta["texts"] = list(texts)
    path = folder / f"{stem}.json"
    write_json(path, meta)  # last: its presence marks the window complete
    return path


def read_window(path: str | Path) -> Window:
    """Read one window from its ``.json`` (or ``.npy``) path.

    Raises:
        DataError: The record or the array is missing, malformed, or they disagree.
    """
    given = Path(path)
    meta_path = given.with_suffix(".json")
    array_path = given.with_suffix(".npy")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            "window record is missing (an incomplete window?)", path=meta_path
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        meta = None
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), int):
        raise DataError("not a window record (a JSON object with 'format')", path=meta_path)
    try:
        x = np.load(array_path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError("window vectors are missing", path=array_path) from None
    except ValueError as exc:
        raise DataError(f"not a .npy array ({exc})", path=array_path) from None
    if x.ndim != 2 or len(x) != meta.get("queries"):
        raise DataError(
            f"window vectors {x.shape} do not match the record's {meta.get('queries')} queries",
            path=array_path,
        )
    return Window(meta, x.astype(np.float32), meta_path)


def list_windows(folder: str | Path) -> list[Path]:
    """Complete windows (``.json`` beside a ``.npy``) in a version's folder, oldest first."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError("no such window folder", path=root)
    return sorted(p for p in root.glob("*.json") if p.with_suffix(".npy").is_file())


def read_windows(folder: str | Path, last: int = 1) -> Window:
    """The ``last`` complete windows of a version's folder, merged into one window.

    Raises:
        DataError: The folder holds no complete window, or windows of different models.
    """
    paths = list_windows(folder)[-last:]
    if not paths:
        raise DataError("no complete window in this folder", path=folder)
    windows = [read_window(p) for p in paths]
    shas = {w.meta.get("model_sha256") for w in windows}
    if len(shas) > 1:
        raise DataError(
            "these windows were embedded by different models; check them one at a time",
            path=folder,
        )
    scores = [w.top1 for w in windows]
    meta = dict(windows[-1].meta)
    meta["start"] = windows[0].meta.get("start")
    meta["windows"] = [p.name for p in paths]
    meta["queries"] = sum(len(w.embeddings) for w in windows)
    meta.pop("texts", None)
    if all(s is not None for s in scores):
        meta["top1"] = np.concatenate([s for s in scores if s is not None]).tolist()
    else:
        meta.pop("top1", None)
    return Window(meta, np.concatenate([w.embeddings for w in windows]), paths[-1])


@dataclass
class WindowWriter:
    """Buffers query vectors and writes a window when it holds ``size`` queries or is
    ``seconds`` old (checked on each ``add``), for a server's ``--log-embeddings``.

    Thread-safe: request handlers may call :meth:`add` concurrently.
    """

    root: Path
    version: str
    size: int = 500
    seconds: float = 3600.0
    model_sha256: str | None = None
    _rows: list[np.ndarray] = field(default_factory=list)
    _scores: list[np.ndarray] = field(default_factory=list)
    _count: int = 0
    _start: datetime | None = None
    _opened: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, embeddings: np.ndarray, top1: np.ndarray | None = None) -> Path | None:
        """Buffer one request's vectors; returns the window written, if this closed one."""
        with self._lock:
            if self._start is None:
                self._start, self._opened = datetime.now(UTC), time.monotonic()
            self._rows.append(np.asarray(embeddings, dtype=np.float16))
            if top1 is not None:
                self._scores.append(np.asarray(top1, dtype=np.float32))
            self._count += len(embeddings)
            if self._count >= self.size or time.monotonic() - self._opened >= self.seconds:
                return self._flush()
        return None

    def flush(self) -> Path | None:
        """Write what is buffered as a (possibly short) window; None when empty."""
        with self._lock:
            return self._flush()

    def _flush(self) -> Path | None:
        if not self._rows:
            return None
        x = np.concatenate(self._rows)
        scores = np.concatenate(self._scores) if len(self._scores) == len(self._rows) else None
        path = append_window(
            self.root,
            self.version,
            x,
            start=self._start,
            model_sha256=self.model_sha256,
            top1=scores,
        )
        self._rows, self._scores, self._count, self._start = [], [], 0, None
        return path


class QueryWatch(Protocol):
    """Rolling statistics of one version's most recent queries, which a server exports as
    gauges on ``/metrics`` (the monitor stage implements it against a reference profile; the
    server only feeds it vectors and reads numbers, so neither imports the other)."""

    def add(self, embeddings: np.ndarray) -> None:
        """Take one request's query vectors (cheap: called on the request path)."""

    def gauges(self) -> dict[str, float]:
        """The current window's statistics by name (computed when asked: at scrape time)."""


class WatchFactory(Protocol):
    """Opens the watch of a served version id; None when the version has nothing to compare
    with (no reference profile)."""

    def __call__(self, version: str) -> QueryWatch | None: ...
