"""Micro-batching: one worker thread per loaded model gathers concurrent requests into
token-budgeted, length-sorted batches.

Requests that arrive while a batch runs wait in the queue and go together into the next one,
so under load batches fill up by themselves and a lone request waits for nothing. A batch
holds requests of one key only (one adapter and one prompt): requests for two adapters of a
shared base never share a forward pass, and a request is never split across models.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from embedtune.serve.metrics import Metrics

logger = logging.getLogger(__name__)

__all__ = ["MicroBatcher", "QueueFull", "WorkerClosed"]

# adapter (None: the model itself), texts, prompt → one normalised float32 row per text
EncodeFn = Callable[[str | None, list[str], str], np.ndarray]


class QueueFull(Exception):
    """The worker's queue holds too many inputs: answer 429 and ask to retry later."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("queue full")
        self.retry_after = retry_after


class WorkerClosed(Exception):
    """The worker was stopped (its version was unloaded): look the name up again."""


@dataclass
class _Job:
    adapter: str | None
    prompt: str
    texts: list[str]
    tokens: list[int]  # per input, already capped at the model's length limit
    future: Future[np.ndarray] = field(default_factory=Future)

    @property
    def key(self) -> tuple[str | None, str]:
        return self.adapter, self.prompt


class MicroBatcher:
    """One model's queue and the thread that runs it.

    Args:
        name: For logs, metrics and the thread's name.
        encode: The model's encode function (called from the worker thread only).
        batch_tokens: Padded tokens per forward pass (inputs x longest), and the token budget
            a gathered batch of requests aims for.
        max_queue: Inputs allowed to wait; more raise :class:`QueueFull`.
        wait_s: The longest a batch waits for as many requests as the previous batch had
            (0: never). Under steady concurrency the next requests are still being parsed
            when a batch ends; without the wait the first of them would run alone. A lone
            client (previous batch: one request) never waits.
        metrics: Where queue depth and batch sizes go.
    """

    def __init__(
        self,
        name: str,
        encode: EncodeFn,
        *,
        batch_tokens: int,
        max_queue: int,
        wait_s: float,
        metrics: Metrics,
    ) -> None:
        self.name = name
        self._encode = encode
        self._batch_tokens = batch_tokens
        self._max_queue = max_queue
        self._wait_s = wait_s
        self._last_requests = 1  # requests in the previous batch: the concurrency seen
        self._metrics = metrics
        self._pending: deque[_Job] = deque()
        self._queued = 0  # inputs waiting
        self._cond = threading.Condition()
        self._closed = False
        self._seconds_per_input = 0.001  # smoothed, for Retry-After
        self._thread = threading.Thread(target=self._loop, name=f"embedtune-{name}", daemon=True)
        self._thread.start()

    def submit(
        self, adapter: str | None, prompt: str, texts: list[str], tokens: list[int]
    ) -> Future[np.ndarray]:
        """Queue one request; its future gets one row per text (or the batch's error).

        Raises:
            QueueFull: Too many inputs wait already (an empty queue takes any request).
            WorkerClosed: The worker was stopped.
        """
        job = _Job(adapter, prompt, texts, tokens)
        with self._cond:
            if self._closed:
                raise WorkerClosed(self.name)
            if self._queued and self._queued + len(texts) > self._max_queue:
                raise QueueFull(max(1.0, self._queued * self._seconds_per_input))
            self._pending.append(job)
            self._queued += len(texts)
            self._metrics.queue_depth.labels(self.name).set(self._queued)
            self._cond.notify()
        return job.future

    def close(self) -> None:
        """Stop after the queued requests are answered."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    # --- the worker thread -------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    self._metrics.queue_depth.remove(self.name)
                    return
                self._gather()
                jobs = self._take()
                self._last_requests = len(jobs)
                self._queued -= sum(len(j.texts) for j in jobs)
                self._metrics.queue_depth.labels(self.name).set(self._queued)
            # a request whose client went away was cancelled: skip it (and once running, a
            # future cannot be cancelled, so setting its result below cannot fail)
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if jobs:
                self._run(jobs)

    def _gather(self) -> None:
        """Wait (up to ``wait_s``) until as many requests wait as the last batch held."""
        deadline = time.monotonic() + self._wait_s
        while (
            len(self._pending) < self._last_requests
            and not self._closed
            and self._queued_tokens() < self._batch_tokens
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    def _queued_tokens(self) -> int:
        return sum(sum(j.tokens) for j in self._pending)

    def _take(self) -> list[_Job]:
        """The oldest request and the next ones of the same key, up to the token budget."""
        key = self._pending[0].key
        taken: list[_Job] = []
        kept: deque[_Job] = deque()
        budget = self._batch_tokens
        while self._pending:
            job = self._pending.popleft()
            cost = sum(job.tokens)
            if job.key == key and (not taken or cost <= budget):
                taken.append(job)
                budget -= cost
            else:
                kept.append(job)
            if budget <= 0:
                break
        kept.extend(self._pending)
        self._pending = kept
        return taken

    def _run(self, jobs: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            results = self._encode_jobs(jobs)
        except Exception:
            if len(jobs) == 1:
                logger.exception("batch failed on %s (1 request)", self.name)
                jobs[0].future.set_exception(RuntimeError("the model failed on this request"))
                return
            # find the request that broke it: each one alone, so only that one fails
            for job in jobs:
                self._run([job])
            return
        inputs = sum(len(j.texts) for j in jobs)
        elapsed = time.perf_counter() - started
        self._seconds_per_input = 0.8 * self._seconds_per_input + 0.2 * elapsed / inputs
        self._metrics.batch_inputs.labels(self.name).observe(inputs)
        self._metrics.batch_requests.labels(self.name).observe(len(jobs))
        self._metrics.batch_seconds.labels(self.name).observe(elapsed)
        for job, rows in zip(jobs, results, strict=True):
            job.future.set_result(rows)

    def _encode_jobs(self, jobs: list[_Job]) -> list[np.ndarray]:
        """Every input of ``jobs``, longest first, in forward passes of at most
        ``batch_tokens`` padded tokens; rows go back to their requests in order."""
        adapter, prompt = jobs[0].key
        items = [(j, i, n) for j, job in enumerate(jobs) for i, n in enumerate(job.tokens)]
        items.sort(key=lambda item: -item[2])  # similar lengths together: less padding
        out = [np.empty((len(job.texts), 0), dtype=np.float32) for job in jobs]
        start = 0
        while start < len(items):
            longest = max(items[start][2], 1)
            size = max(1, min(len(items) - start, self._batch_tokens // longest))
            chunk = items[start : start + size]
            vectors = self._encode(adapter, [jobs[j].texts[i] for j, i, _ in chunk], prompt)
            for (j, i, _), row in zip(chunk, vectors, strict=True):
                if out[j].shape[1] == 0:
                    out[j] = np.empty((len(jobs[j].texts), row.shape[0]), dtype=np.float32)
                out[j][i] = row
            start += size
        return out
