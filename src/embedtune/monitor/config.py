"""Settings of the monitor stage: how a profile is built and how a window is tested."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

__all__ = ["TESTS", "DriftSettings", "ProbeSettings", "TestName", "WatchConfig", "WatchProbe"]

TestName = Literal["tail", "mmd", "centroid"]
TESTS: tuple[TestName, ...] = ("tail", "mmd", "centroid")


class DriftSettings(BaseModel):
    """How a reference profile is built and a window tested against it.

    The defaults were fixed before the benchmark ran and were not tuned on its test windows;
    ``alpha`` is only ever lowered, by the calibration on the profile's held-out queries.

    Attributes:
        alpha: Family-wise false-alarm rate per window (Holm over the tests that apply).
        tests: The tests run (and corrected for). ``tail`` decides ``drift`` (queries the
            corpus cannot answer); ``mmd`` and ``centroid`` alone report a ``shift``.
        tail_percentile: The reference's low percentile of top-1 corpus similarity; a window
            query below it counts as a tail exceedance.
        pca_components: Principal components the MMD test works on.
        rff_features: Random Fourier features approximating the Gaussian kernel of the MMD.
        permutations: Permutations of the MMD and centroid tests (p ≥ 1/(permutations+1), so
            keep ``permutations`` > 3/alpha for Holm over three tests to be able to fire).
        max_reference: Reference queries kept for the permutation tests (a random subset
            beyond this: it bounds the cost of a check).
        calibration_fraction: Share of the reference queries held out to calibrate on.
        basis_fraction: Share held out to fit the PCA basis and kernel bandwidth on: fitted
            on the reference sample itself, the PCA would fit its noise, so the reference
            would look more spread than any new window and the MMD would fire on no drift.
        calibration_windows: Null windows drawn from the held-out queries to calibrate.
        calibration_window: Queries per calibration window (capped at half the held-out part).
        canary_texts: Reference queries kept, with their vectors, as canary texts.
        seed: Seed of the split, the projections and the permutations.
    """

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(default=0.01, gt=0, lt=0.5)
    tests: list[TestName] = Field(default_factory=lambda: list(TESTS), min_length=1)
    tail_percentile: float = Field(default=5.0, gt=0, lt=50)
    pca_components: int = Field(default=32, ge=1)
    rff_features: int = Field(default=256, ge=8)
    permutations: int = Field(default=500, ge=20)
    max_reference: int = Field(default=1000, ge=10)
    calibration_fraction: float = Field(default=0.3, gt=0, lt=1)
    basis_fraction: float = Field(default=0.2, gt=0, lt=1)
    calibration_windows: int = Field(default=200, ge=0)
    calibration_window: int = Field(default=200, ge=5)
    canary_texts: int = Field(default=32, ge=0)
    seed: int = 0


class ProbeSettings(BaseModel):
    """How a probe set is re-run and compared.

    Attributes:
        metrics: Metrics computed per query.
        margin: The drop (in metric points) that alerts, when its interval also excludes 0.
        alert_metric: The metric the alert is decided on.
        bootstrap: Paired bootstrap resamples over queries.
        level: Confidence level of the interval.
        depth: Documents retrieved per query.
        seed: Bootstrap seed.
    """

    model_config = ConfigDict(extra="forbid")

    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "mrr@10", "recall@100"])
    margin: float = Field(default=0.02, ge=0)
    alert_metric: str = "ndcg@10"
    bootstrap: int = Field(default=10_000, ge=100)
    level: float = Field(default=0.95, gt=0.5, lt=1)
    depth: int = Field(default=100, ge=1)
    seed: int = 0


class WatchProbe(BaseModel):
    """The probe set a watcher re-runs on a schedule.

    Attributes:
        data: A BEIR folder with judgments.
        split: Its judgments scored.
        every: Cycles between two probe runs (the first cycle runs one).
        margin: The nDCG@10 drop that alerts, when its interval also excludes 0.
    """

    model_config = ConfigDict(extra="forbid")

    data: str
    split: str = "test"
    every: int = Field(default=12, ge=1)
    margin: float = Field(default=0.02, ge=0)


class WatchConfig(BaseModel):
    """The ``monitor`` section of a run config (or of a file of its own) that
    ``embedtune monitor watch`` follows.

    Attributes:
        registry: Registry folder (default in a run config: its ``registry.path``).
        models: Tags or version ids watched (default in a run config: its ``registry.tags``;
            else every tag of the registry).
        windows: The server's ``--log-embeddings`` folder (None: no drift checks).
        window: Queries per drift check: the newest unchecked logged windows are merged until
            they hold this many (fewer: the check waits for the next cycle).
        interval_s: Seconds between two cycles.
        alpha: Family-wise level of a check (default: each profile's calibrated one).
        tests: Drift tests run (default: each profile's).
        fail_on_shift: Alert on a shift too (queries moved but the corpus still answers).
        canary: When a watched tag moves to another version, re-embed the old version's
            canary texts with the new one (reported as a model change, not as drift).
        variant: The runtime served (torch, fp32 or int8), for the canary's bound.
        probe: A probe set re-run on a schedule (None: no probe).
        webhook: URL that receives each alert as JSON (``$EMBEDTUNE_MONITOR_WEBHOOK`` also).
        webhook_always: POST every result, not only alerts.
        output: Folder for ``events.jsonl`` (every result), ``state.json`` (what was checked:
            a restarted watcher continues), and each model's latest drift and probe pages.
    """

    model_config = ConfigDict(extra="forbid")

    registry: str | None = None
    models: list[str] = Field(default_factory=list)
    windows: str | None = None
    window: int = Field(default=200, ge=1)
    interval_s: float = Field(default=300.0, ge=0)
    alpha: float | None = Field(default=None, gt=0, lt=0.5)
    tests: list[TestName] | None = None
    fail_on_shift: bool = False
    canary: bool = True
    variant: Literal["torch", "fp32", "int8"] = "torch"
    probe: WatchProbe | None = None
    webhook: str | None = None
    webhook_always: bool = False
    output: str = "monitor"
