"""Testing a window of query embeddings against a reference profile.

Three tests, each answering a different question, combined with Holm's correction at the
profile's calibrated family-wise level:

- ``tail``: do more queries than usual find nothing close in the corpus? The share of
  window queries whose top-1 corpus similarity falls below the reference's low percentile,
  exact one-sided binomial test. Off-domain queries land here, even a few of them.
- ``mmd``: has the shape of the query distribution changed? Maximum mean discrepancy (a
  Gaussian kernel on the PCA coordinates, via random Fourier features), permutation p-value.
- ``centroid``: has the mean query moved? Squared distance between the window's and the
  reference's mean embedding, permutation p-value (the same permutations as ``mmd``).

The verdict tells two things apart. ``drift``: the tail test fired, so more queries than
usual are ones the corpus cannot answer (off-domain traffic: act). ``shift``: only ``mmd``
or ``centroid`` fired, so the queries moved but the corpus still answers them as well as the
reference's (new questions about another part of the domain, say another company's filing:
worth knowing, no alarm by default). Without top-1 scores there is no tail test, nothing
tells the two apart, and any test firing is ``drift``.

:func:`check_window` needs only the loaded profile and the vectors: a long-running process
loads the profile once and calls it per window (about 0.1 s for 500 queries on 2 cores).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from embedtune.errors import DataError
from embedtune.monitor.stats import holm, permutation_tests, tail_test

if TYPE_CHECKING:
    from embedtune.monitor.profile import Calibration, Profile

logger = logging.getLogger(__name__)

__all__ = ["DriftResult", "TestResult", "WindowStats", "check_window"]

TestName = Literal["tail", "mmd", "centroid"]


class TestResult(BaseModel):
    """One test of one window.

    Attributes:
        name: ``tail``, ``mmd`` or ``centroid``.
        statistic: The observed statistic (tail: share of queries below the threshold;
            mmd: MMD²; centroid: squared distance of the means).
        expected: What the statistic is under no drift (tail: the reference rate; the others:
            the mean of their permutation null is not kept, so None).
        p_value: The test's own p-value.
        adjusted_p: Holm-adjusted p-value (compare with the result's ``alpha``).
        rejected: Whether this test fires at the family-wise level.
    """

    name: TestName
    statistic: float
    expected: float | None = None
    p_value: float
    adjusted_p: float
    rejected: bool


class WindowStats(BaseModel):
    """The window's gauges (what the server exports on ``/metrics``).

    Attributes:
        queries: Vectors in the window.
        mean_cos_to_centroid: Mean cosine of a window query to the reference centroid.
        centroid_cosine_distance: 1 − cosine between the window's and the reference's mean.
        mean_top1: Mean top-1 corpus similarity (None: no corpus in the profile, no scores).
        tail_rate: Share of queries below the reference's tail threshold (None: as above).
        norms: Percentiles (p1, p50, p99) of the window vectors' norms as given.
    """

    queries: int
    mean_cos_to_centroid: float
    centroid_cosine_distance: float
    mean_top1: float | None = None
    tail_rate: float | None = None
    norms: dict[str, float] = Field(default_factory=dict)


class DriftResult(BaseModel):
    """The verdict on one window.

    Attributes:
        drift: Off-domain drift: the tail test fired (or, without a tail test, any test).
        shift: The distribution moved (``mmd`` or ``centroid`` fired) but the tail test did
            not: the corpus still answers these queries as it answers the reference's.
        status: ``drift``, ``shift`` or ``ok``.
        alpha: The family-wise level used (the profile's calibrated one).
        tests: One result per test that applied.
        window: The window's gauges.
        profile: Profile id and model.
        seconds: Wall time of the check (after embedding).
    """

    drift: bool
    shift: bool = False
    status: Literal["ok", "shift", "drift"]
    alpha: float
    tests: list[TestResult]
    window: WindowStats
    profile: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0


def window_stats(profile: Profile, x: np.ndarray, scores: np.ndarray | None) -> WindowStats:
    """Descriptive statistics of a window of query vectors ``x`` (``scores``: their top-1
    corpus similarities, if known) against the profile: no test, no p-value."""
    a = profile.arrays
    norms = np.linalg.norm(x, axis=1)
    unit = x / np.maximum(norms[:, None], 1e-12)
    direction = a.centroid / max(float(np.linalg.norm(a.centroid)), 1e-12)
    mean = unit.mean(axis=0)
    cos = float(mean @ direction / max(float(np.linalg.norm(mean)), 1e-12))
    threshold = profile.reference.tail_threshold
    return WindowStats(
        queries=len(x),
        mean_cos_to_centroid=float((unit @ direction).mean()),
        centroid_cosine_distance=1.0 - cos,
        mean_top1=None if scores is None else float(scores.mean()),
        tail_rate=None
        if scores is None or threshold is None
        else float((scores < threshold).mean()),
        norms={f"p{p}": float(np.percentile(norms, p)) for p in (1, 50, 99)},
    )


def _p_values(
    profile: Profile,
    unit: np.ndarray,
    scores: np.ndarray | None,
    seed: int,
    tests: list[str] | None = None,
) -> dict[str, tuple[float, float | None, float]]:
    """Test name → (statistic, expected, p-value), for the tests asked that apply."""
    a = profile.arrays
    settings = profile.settings
    wanted = set(tests or settings.tests)
    out: dict[str, tuple[float, float | None, float]] = {}
    ref = profile.reference
    if (
        "tail" in wanted
        and scores is not None
        and ref.tail_threshold is not None
        and ref.tail_rate is not None
    ):
        below = int(np.count_nonzero(scores < ref.tail_threshold))
        out["tail"] = (below / len(unit), ref.tail_rate, tail_test(below, len(unit), ref.tail_rate))
    blocks = {}
    if "mmd" in wanted:
        blocks["mmd"] = (a.reference_features(), a.features(unit))
    if "centroid" in wanted:
        blocks["centroid"] = (a.reference, unit)
    if not blocks:
        return out
    for name, (stat, p) in permutation_tests(
        a.reference, unit, blocks, settings.permutations, seed
    ).items():
        out[name] = (stat, None, p)
    return out


def check_window(
    profile: Profile,
    embeddings: np.ndarray,
    *,
    top1_scores: np.ndarray | None = None,
    alpha: float | None = None,
    seed: int | None = None,
    tests: list[str] | None = None,
) -> DriftResult:
    """Test one window of query embeddings against a profile.

    Args:
        profile: A loaded profile (:func:`~embedtune.monitor.load_profile`).
        embeddings: The window's query vectors (queries × dim), embedded by the profile's
            model with its query prompt; any float dtype.
        top1_scores: Each query's top-1 corpus similarity, when the caller has it (an index
            search); otherwise computed against the profile's corpus passages, if it has them.
        alpha: Family-wise level (default: the profile's calibrated level).
        seed: Permutation seed (default: the profile's).
        tests: The tests to run and correct for (default: the profile's ``settings.tests``).

    Returns:
        The verdict, each test's p-values and the window's gauges.

    Raises:
        DataError: The vectors' size differs from the profile's, the window has fewer than
            5 queries, or none of the tests asked applies (``tail`` without top-1 scores).

    Example:
        >>> profile = load_profile("registry/versions/3f9c0e1a2b4d/profiles/9a1b2c3d4e5f")
        >>> check_window(profile, vectors).status
        'ok'
    """
    start = time.perf_counter()
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != profile.dim:
        raise DataError(
            f"window vectors have shape {x.shape}; the profile's model makes {profile.dim}-d "
            "vectors (a window embedded by another model? run `embedtune monitor canary`)"
        )
    if len(x) < 5:
        raise DataError(f"a window needs at least 5 queries to test (got {len(x)})")
    if not np.isfinite(x).all():
        raise DataError("window vectors hold NaN or infinite values")
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    scores = top1_scores
    if scores is None:
        scores = profile.arrays.top1(unit)
    else:
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (len(x),):
            raise DataError(f"{scores.shape[0]} top-1 scores for {len(x)} window vectors")
    level = profile.calibration.alpha if alpha is None else alpha
    raw = _p_values(profile, unit, scores, profile.settings.seed if seed is None else seed, tests)
    if not raw:
        raise DataError(
            "no test applies: the tail test needs top-1 scores (a profile with a corpus, "
            "or scores logged with the window)"
        )
    decided = holm({k: v[2] for k, v in raw.items()}, level)
    results = [
        TestResult(
            name=name,  # type: ignore[arg-type]
            statistic=stat,
            expected=expected,
            p_value=p,
            adjusted_p=decided[name][0],
            rejected=decided[name][1],
        )
        for name, (stat, expected, p) in raw.items()
    ]
    fired = {t.name for t in results if t.rejected}
    has_tail = any(t.name == "tail" for t in results)
    drift = "tail" in fired or (not has_tail and bool(fired))
    shift = not drift and bool(fired)
    return DriftResult(
        drift=drift,
        shift=shift,
        status="drift" if drift else "shift" if shift else "ok",
        alpha=level,
        tests=results,
        window=window_stats(profile, x, scores),
        profile={"id": profile.id, "model": profile.model},
        seconds=time.perf_counter() - start,
    )


# Levels tried, largest first, when the nominal one alarms too often on null windows.
_LOWER = (1.0, 0.5, 0.2, 0.1)


def calibrate(profile: Profile, held_out: np.ndarray) -> Calibration:
    """The family-wise level that keeps false alarms at or below the nominal rate on null
    windows drawn (without replacement) from the held-out reference queries.

    Only the held-out part is used; the level is lowered, never raised above the nominal.
    """
    from embedtune.monitor.profile import Calibration

    settings = profile.settings
    nominal = settings.alpha
    size = min(settings.calibration_window, len(held_out) // 2)
    if settings.calibration_windows == 0 or size < 5:
        logger.warning("too few held-out reference queries to calibrate: nominal level kept")
        return Calibration(nominal_alpha=nominal, alpha=nominal)
    rng = np.random.default_rng(settings.seed + 1)
    cal_top1 = profile.arrays.calibration_top1
    smallest: list[float] = []  # per window: the smallest level at which it would alarm
    for _ in range(settings.calibration_windows):
        idx = rng.choice(len(held_out), size, replace=False)
        scores = None if cal_top1 is None else cal_top1[idx]
        raw = _p_values(profile, _unit(held_out[idx]), scores, settings.seed)
        adjusted = holm({k: v[2] for k, v in raw.items()}, nominal)
        smallest.append(min(p for p, _ in adjusted.values()))
    levels = np.array(smallest)
    nominal_rate = float((levels <= nominal).mean())
    chosen = nominal
    for factor in _LOWER:
        chosen = nominal * factor
        if float((levels <= chosen).mean()) <= nominal:
            break
    rate = float((levels <= chosen).mean())
    if rate > nominal:
        logger.warning(
            "calibration: %.1f%% false alarms on held-out windows even at alpha %.4g",
            100 * rate,
            chosen,
        )
    return Calibration(
        windows=settings.calibration_windows,
        window=size,
        nominal_alpha=nominal,
        alpha=chosen,
        false_alarm_rate=rate,
        nominal_false_alarm_rate=nominal_rate,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
