"""Live window gauges: the statistics of a served version's most recent queries against its
reference profile, for the server's ``/metrics`` (Prometheus scrapes them; alert rules in
Prometheus or Grafana act on them between the scheduled ``monitor check`` runs).

The server feeds vectors (:meth:`LiveWindow.add`, a copy into a ring buffer: cheap on the
request path) and reads numbers (:meth:`LiveWindow.gauges`, computed only when scraped and
cached until a new query arrives). The gauges are descriptive: the tests with p-values are
``embedtune monitor check`` on the logged windows.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np

from embedtune.monitor.drift import window_stats
from embedtune.monitor.profile import Profile, load_profile

if TYPE_CHECKING:
    from embedtune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["LiveWindow", "profile_watches"]


class LiveWindow:
    """The last ``size`` query vectors of one version, and their gauges (thread-safe).

    Example:
        >>> live = LiveWindow(load_profile("profiles/fin"), size=500)
        >>> live.add(vectors)  # what the server does per request
        >>> live.gauges()["tail_rate"]
        0.048
    """

    def __init__(self, profile: Profile, size: int = 500) -> None:
        if size < 1:
            raise ValueError("a live window holds at least one query")
        self.profile = profile
        self.size = size
        self._rows = np.zeros((size, profile.dim), dtype=np.float32)
        self._next = 0  # ring position of the next row
        self._count = 0  # rows filled (≤ size)
        self._seen = 0  # queries ever added: the cache key of the gauges
        self._cached: tuple[int, dict[str, float]] | None = None
        self._lock = threading.Lock()

    def add(self, embeddings: np.ndarray) -> None:
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.profile.dim:
            return  # e.g. a model whose size changed under a profile: no gauge, no failure
        x = x[-self.size :]
        with self._lock:
            for row in x:  # a request holds few queries; a loop keeps the ring simple
                self._rows[self._next] = row
                self._next = (self._next + 1) % self.size
            self._count = min(self._count + len(x), self.size)
            self._seen += len(x)

    def gauges(self) -> dict[str, float]:
        """``queries``, ``mean_cos_to_centroid``, ``centroid_cosine_distance`` and, when the
        profile holds the corpus, ``mean_top1`` and ``tail_rate``; empty before any query."""
        with self._lock:
            if self._count == 0:
                return {}
            if self._cached is not None and self._cached[0] == self._seen:
                return dict(self._cached[1])
            seen, window = self._seen, self._rows[: self._count].copy()
        stats = window_stats(self.profile, window, self.profile.arrays.top1(window))
        values = {
            "queries": float(stats.queries),
            "mean_cos_to_centroid": stats.mean_cos_to_centroid,
            "centroid_cosine_distance": stats.centroid_cosine_distance,
        }
        if stats.mean_top1 is not None:
            values["mean_top1"] = stats.mean_top1
        if stats.tail_rate is not None:
            values["tail_rate"] = stats.tail_rate
        with self._lock:
            self._cached = (seen, values)
        return dict(values)


def profile_watches(registry: Registry, size: int = 500) -> _ProfileWatches:
    """A server's watch factory: each served version id gets a :class:`LiveWindow` on its
    newest registry profile (None when it has none, so it exports no window gauges)."""
    return _ProfileWatches(registry, size)


class _ProfileWatches:
    def __init__(self, registry: Registry, size: int) -> None:
        self.registry = registry
        self.size = size

    def __call__(self, version: str) -> LiveWindow | None:
        from embedtune.errors import EmbedtuneError

        try:
            found = self.registry.profiles(version)
            if not found:
                return None
            return LiveWindow(load_profile(found[-1]), self.size)
        except (EmbedtuneError, OSError) as exc:  # a broken profile must not fail serving
            logger.warning("no window gauges for version %s: %s", version, exc)
            return None
