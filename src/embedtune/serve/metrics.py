"""Prometheus metrics of one server, in a registry of its own (several apps in one process,
as in tests, never collide in the global one)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

logger = logging.getLogger(__name__)

__all__ = ["Metrics"]

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
