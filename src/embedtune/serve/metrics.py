"""Prometheus metrics of one server, in a registry of its own (several apps in one process,
as in tests, never collide in the global one)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from embedtune.embedding_windows import QueryWatch

logger = logging.getLogger(__name__)

__all__ = ["Metrics", "WindowGauges"]

_LATENCY = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


def _make(registry: CollectorRegistry) -> dict[str, Any]:
    return {
        "requests": Counter(
            "embedtune_requests",
            "Embedding requests answered, by served model name and HTTP status",
            ["model", "status"],
            registry=registry,
        ),
        "errors": Counter(
            "embedtune_errors",
            "Error responses, by served model name ('' when unknown) and error type",
            ["model", "type"],
            registry=registry,
        ),
        "latency": Histogram(
            "embedtune_request_seconds",
            "Time from a request's arrival to its answer, by served model name",
            ["model"],
            buckets=_LATENCY,
            registry=registry,
        ),
        "queue_depth": Gauge(
            "embedtune_queue_inputs",
            "Inputs waiting for a batch, by worker (one worker per loaded model or base)",
            ["worker"],
            registry=registry,
        ),
        "batch_inputs": Histogram(
            "embedtune_batch_inputs",
            "Inputs per gathered batch, by worker",
            ["worker"],
            buckets=_SIZES,
            registry=registry,
        ),
        "batch_requests": Histogram(
            "embedtune_batch_requests",
            "Requests per gathered batch, by worker",
            ["worker"],
            buckets=_SIZES,
            registry=registry,
        ),
        "batch_seconds": Histogram(
            "embedtune_batch_seconds",
            "Time the model took for one gathered batch (all its forward passes), by worker",
            ["worker"],
            buckets=_LATENCY,
            registry=registry,
        ),
        "tokens": Counter(
            "embedtune_tokens",
            "Tokens embedded (after truncation), by served model name",
            ["model"],
            registry=registry,
        ),
        "inputs": Counter(
            "embedtune_inputs",
            "Inputs embedded, by served model name",
            ["model"],
            registry=registry,
        ),
    }


# The live window's statistics (see embedtune.monitor.live), one gauge family each
_WINDOW_GAUGES = {
    "queries": "Queries in the version's live window (its last --log-window queries)",
    "mean_cos_to_centroid": "Mean cosine of a window query to the reference profile's centroid",
    "centroid_cosine_distance": "1 - cosine between the window's mean and the reference's mean",
    "mean_top1": "Mean top-1 cosine of a window query to the profiled corpus",
    "tail_rate": "Share of window queries below the reference's low percentile of top-1 "
    "similarity (the reference's own rate is about 5%)",
}


class WindowGauges(Collector):
    """Exports each watched version's live-window statistics, computed at scrape time
    (``embedtune_window_<name>{version=...}``)."""

    def __init__(self) -> None:
        self._watches: dict[str, QueryWatch] = {}
        self._lock = threading.Lock()

    def watch(self, version: str, watch: QueryWatch) -> None:
        with self._lock:
            self._watches[version] = watch

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration: the watches come later

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            watches = dict(self._watches)
        families = {
            name: GaugeMetricFamily(f"embedtune_window_{name}", doc, labels=["version"])
            for name, doc in _WINDOW_GAUGES.items()
        }
        for version, watch in sorted(watches.items()):
            try:
                values = watch.gauges()
            except Exception:  # a scrape must answer even if one watch is broken
                logger.warning("window gauges of %s failed", version, exc_info=True)
                continue
            for name, value in values.items():
                if name in families:
                    families[name].add_metric([version], value)
        yield from families.values()


@dataclass
class Metrics:
    """The server's metrics and the registry that exposes them at ``/metrics``."""

    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        made = _make(self.registry)
        self.requests: Counter = made["requests"]
        self.errors: Counter = made["errors"]
        self.latency: Histogram = made["latency"]
        self.queue_depth: Gauge = made["queue_depth"]
        self.batch_inputs: Histogram = made["batch_inputs"]
        self.batch_requests: Histogram = made["batch_requests"]
        self.batch_seconds: Histogram = made["batch_seconds"]
        self.tokens: Counter = made["tokens"]
        self.inputs: Counter = made["inputs"]
        self.windows = WindowGauges()
        self.registry.register(self.windows)
