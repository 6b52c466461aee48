"""The reference profile: what "normal" queries look like to one model version.

A profile is a folder of two files::

    PROFILE/
      profile.json   the Profile record: model (name, sha256, version, query prompt),
                     settings, reference statistics, calibration, canary texts,
                     the sha256 of arrays.npz, library versions
      arrays.npz     centroid, PCA basis, kernel projection, the reference sample (float16),
                     reference/calibration top-1 similarities, the corpus passages (float16)
                     and the canary vectors

Its id is the start of the sha256 of ``profile.json`` (which records the hash of
``arrays.npz``), so the registry can keep it beside a version, content-addressed like an
export; a plain folder works as well for users without a registry.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embedtune.errors import DataError
from embedtune.io import atomic_open, sha256_file, write_json
from embedtune.monitor.config import DriftSettings
from embedtune.monitor.stats import median_bandwidth, pca_basis, top1

logger = logging.getLogger(__name__)

__all__ = [
    "PROFILE_FILE",
    "Calibration",
    "Profile",
    "ReferenceStats",
    "build_profile_from_embeddings",
    "load_profile",
    "save_profile",
]

FORMAT = 1
PROFILE_FILE = "profile.json"
ARRAYS_FILE = "arrays.npz"
ID_LENGTH = 12


class ReferenceStats(BaseModel):
    """Statistics of the reference queries (the profile part, not the calibration part).

    Attributes:
        queries: Reference queries the statistics and tests use.
        basis_queries: Held-out reference queries the PCA basis was fitted on.
        calibration_queries: Held-out reference queries the thresholds were calibrated on.
        mean_cos_to_centroid: Mean cosine of a reference query to the centroid direction.
        cov_trace: Total variance (trace of the covariance) of the embeddings.
        norms: Percentiles (p1, p50, p99) of the embeddings' norms as given.
        top1: Percentiles (p1, p5, p50) of the top-1 corpus similarity (None: no corpus).
        tail_threshold: The ``tail_percentile`` of the reference's top-1 similarity.
        tail_held_out: Share of the held-out queries (calibration + basis parts) below
            ``tail_threshold``.
        tail_rate: The binomial test's null rate: the upper end of the 95% Clopper-Pearson
            interval of ``tail_held_out`` (never below the nominal percentile).
        pca_explained: Variance share the PCA components explain.
        bandwidth: Gaussian-kernel bandwidth of the MMD (median heuristic, PCA space).
    """

    queries: int
    basis_queries: int = 0
    calibration_queries: int
    mean_cos_to_centroid: float
    cov_trace: float
    norms: dict[str, float]
    top1: dict[str, float] | None = None
    tail_threshold: float | None = None
    tail_held_out: float | None = None
    tail_rate: float | None = None
    pca_explained: float
    bandwidth: float


class Calibration(BaseModel):
    """The false-alarm check on null windows drawn from the held-out reference queries.

    Attributes:
        windows: Null windows drawn.
        window: Queries per window.
        nominal_alpha: The family-wise level asked for.
        alpha: The level checks use: the nominal one, lowered until the calibration's false
            alarms were at most the nominal rate.
        false_alarm_rate: False-alarm rate on the calibration windows at ``alpha``.
        nominal_false_alarm_rate: Same, at ``nominal_alpha``.
    """

    windows: int = 0
    window: int = 0
    nominal_alpha: float
    alpha: float
    false_alarm_rate: float | None = None
    nominal_false_alarm_rate: float | None = None


@dataclass
class ProfileArrays:
    """The profile's arrays (float32 in memory); features the checks reuse are cached."""

    centroid: np.ndarray
    pca_mean: np.ndarray
    pca_components: np.ndarray
    rff_weights: np.ndarray
    rff_phases: np.ndarray
    reference: np.ndarray
    reference_top1: np.ndarray | None
    calibration_top1: np.ndarray | None
    corpus: np.ndarray | None
    canary: np.ndarray
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def project(self, x: np.ndarray) -> np.ndarray:
        """PCA coordinates of ``x``."""
        return (x - self.pca_mean) @ self.pca_components.T

    def features(self, x: np.ndarray) -> np.ndarray:
        """Random Fourier features (of the Gaussian kernel on PCA coordinates) of ``x``."""
        from embedtune.monitor.stats import rff

        return rff(self.project(x), self.rff_weights, self.rff_phases)

    def top1(self, x: np.ndarray) -> np.ndarray | None:
        """Each query's top-1 cosine to the corpus passages (None: the profile has none)."""
        from embedtune.monitor.stats import top1

        if self.corpus is None:
            return None
        if "corpus" not in self._cache:  # float16 on disk; unit float32 once in memory
            self._cache["corpus"] = self.corpus.astype(np.float32)
        return top1(x, self._cache["corpus"], unit=True)

    def reference_features(self) -> np.ndarray:
        if "rff" not in self._cache:
            self._cache["rff"] = self.features(self.reference)
        return self._cache["rff"]


class Profile(BaseModel):
    """A reference profile (``profile.json``), with its arrays loaded beside it.

    Attributes:
        format: Record format.
        id: Start of the sha256 of ``profile.json`` (set when saved or loaded).
        created: UTC time it was built.
        model: ``name``, ``sha256``, ``version`` (registry id, if any), ``query_prompt``.
        dim: Embedding size.
        corpus: How the top-1 similarity was computed (``mode``, ``passages``, ``data``),
            None without a corpus.
        settings: The settings it was built with.
        reference: Reference statistics and the tail threshold.
        calibration: The calibrated family-wise level.
        canary: Canary texts whose vectors are kept (model-change checks).
        arrays_sha256: sha256 of ``arrays.npz``.
        versions: Library versions that built it.
    """

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    format: int = FORMAT
    id: str = ""
    created: str
    model: dict[str, Any] = Field(default_factory=dict)
    dim: int
    corpus: dict[str, Any] | None = None
    settings: DriftSettings
    reference: ReferenceStats
    calibration: Calibration
    canary: list[str] = Field(default_factory=list)
    arrays_sha256: str = ""
    versions: dict[str, str] = Field(default_factory=dict)

    # set by build/load; excluded from profile.json
    arrays_: Any = Field(default=None, exclude=True, repr=False)

    @property
    def arrays(self) -> ProfileArrays:
        if self.arrays_ is None:
            raise DataError("profile has no arrays loaded")
        arrays: ProfileArrays = self.arrays_
        return arrays


def _percentiles(values: np.ndarray, points: tuple[float, ...]) -> dict[str, float]:
    return {f"p{p:g}": float(np.percentile(values, p)) for p in points}


def build_profile_from_embeddings(
    reference: np.ndarray,
    corpus: np.ndarray | None = None,
    *,
    settings: DriftSettings | None = None,
    model: dict[str, Any] | None = None,
    canary_texts: list[str] | None = None,
    corpus_info: dict[str, Any] | None = None,
    reference_top1: np.ndarray | None = None,
) -> Profile:
    """Build a profile from reference query embeddings (and the corpus's passages).

    The reference is split at random three ways: ``calibration_fraction`` of it is held out
    to calibrate the family-wise level on null windows, ``basis_fraction`` to fit the PCA
    basis and kernel bandwidth; the rest is the profile's reference sample.

    Args:
        reference: Reference query embeddings (queries × dim), in ``canary_texts`` order.
        corpus: Passage embeddings of the corpus searched (the top-1 similarity of a query
            is its best passage's cosine: max-passage). None: no tail test.
        settings: Test settings (defaults: :class:`DriftSettings`).
        model: What embedded them (``name``, ``sha256``, ``version``, ``query_prompt``).
        canary_texts: The reference queries' texts; the first ``settings.canary_texts`` are
            kept with their vectors as canary texts.
        corpus_info: Recorded as the profile's ``corpus`` (where the passages came from).
        reference_top1: Top-1 similarities measured elsewhere (e.g. by the index) instead of
            ``corpus``.

    Returns:
        The profile, arrays loaded, not yet saved.

    Raises:
        DataError: Fewer than 20 reference queries, or arrays of mismatched sizes.
    """
    from embedtune.monitor.drift import calibrate

    settings = settings or DriftSettings()
    # float16 as logged windows and the saved profile hold them: a profile built here tests
    # exactly as the same profile loaded from disk
    x = np.asarray(reference, dtype=np.float16).astype(np.float32)
    if x.ndim != 2 or len(x) < 20:
        raise DataError(
            f"a profile needs at least 20 reference query vectors (got shape {x.shape})"
        )
    if corpus is not None and (corpus.ndim != 2 or corpus.shape[1] != x.shape[1]):
        raise DataError(f"corpus vectors {corpus.shape} do not match the queries' {x.shape}")
    rng = np.random.default_rng(settings.seed)
    order = rng.permutation(len(x))
    n_cal = max(5, round(settings.calibration_fraction * len(x)))
    n_basis = max(5, round(settings.basis_fraction * len(x)))
    cal_idx, basis_idx = order[:n_cal], order[n_cal : n_cal + n_basis]
    ref_idx = order[n_cal + n_basis :]
    if len(ref_idx) < 10:
        raise DataError(f"too few reference queries ({len(x)}) to split three ways")
    if len(ref_idx) > settings.max_reference:
        ref_idx = ref_idx[: settings.max_reference]
    ref, cal = x[ref_idx], x[cal_idx]
    norms = np.linalg.norm(ref, axis=1)
    unit = ref / np.maximum(norms[:, None], 1e-12)
    centroid = unit.mean(axis=0)
    direction = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    basis = x[basis_idx] / np.maximum(np.linalg.norm(x[basis_idx], axis=1, keepdims=True), 1e-12)
    pca_mean, components, explained = pca_basis(basis, settings.pca_components)
    projected = (basis - pca_mean) @ components.T
    bandwidth = median_bandwidth(projected, seed=settings.seed) or 1.0
    weights = (rng.normal(size=(components.shape[0], settings.rff_features)) / bandwidth).astype(
        np.float32
    )
    phases = rng.uniform(0, 2 * np.pi, settings.rff_features).astype(np.float32)
    # the corpus is kept as float16: score the reference against exactly what windows meet
    corpus16 = None if corpus is None else _unit_f16(corpus)
    scores = reference_top1
    if scores is None and corpus16 is not None:
        scores = top1(x, corpus16.astype(np.float32), unit=True)
    ref_top1 = None if scores is None else np.asarray(scores, dtype=np.float32)[ref_idx]
    cal_top1 = None if scores is None else np.asarray(scores, dtype=np.float32)[cal_idx]
    texts = list(canary_texts or [])[: settings.canary_texts]
    stats = ReferenceStats(
        queries=len(ref),
        basis_queries=len(basis_idx),
        calibration_queries=len(cal),
        mean_cos_to_centroid=float((unit @ direction).mean()),
        cov_trace=float(unit.var(axis=0).sum()),
        norms=_percentiles(norms, (1, 50, 99)),
        pca_explained=float(explained.sum()),
        bandwidth=bandwidth,
    )
    if ref_top1 is not None and cal_top1 is not None and scores is not None:
        threshold = float(np.percentile(ref_top1, settings.tail_percentile))
        # The rate below the threshold is measured on the queries the threshold was not
        # fitted on (calibration + basis parts). A few hundred queries measure it to ±1.5
        # points, and a null rate set too low makes the binomial test fire on that noise
        # alone (the first benchmark run: 3.6% false alarms at ε = 0). So the null rate is
        # the upper end of the 95% Clopper-Pearson interval of the held-out share (and
        # never below the nominal percentile).
        held = np.asarray(scores, dtype=np.float32)[np.concatenate([cal_idx, basis_idx])]
        below = int(np.count_nonzero(held < threshold))
        stats.top1 = _percentiles(ref_top1, (1, 5, 50))
        stats.tail_threshold = threshold
        stats.tail_held_out = below / len(held)
        stats.tail_rate = max(settings.tail_percentile / 100, _upper_bound(below, len(held)))
    from embedtune.provenance import library_versions

    profile = Profile(
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        model=dict(model or {}),
        dim=int(x.shape[1]),
        corpus=corpus_info
        if corpus_info is not None
        else (None if corpus is None else {"mode": "max-passage", "passages": len(corpus)}),
        settings=settings,
        reference=stats,
        calibration=Calibration(nominal_alpha=settings.alpha, alpha=settings.alpha),
        canary=texts,
        versions=library_versions(),
    )
    profile.arrays_ = ProfileArrays(
        centroid=centroid.astype(np.float32),
        pca_mean=pca_mean,
        pca_components=components,
        rff_weights=weights,
        rff_phases=phases,
        reference=unit.astype(np.float32),
        reference_top1=ref_top1,
        calibration_top1=cal_top1,
        corpus=corpus16,
        canary=x[: len(texts)].copy(),
    )
    profile.calibration = calibrate(profile, cal)
    return profile


def _upper_bound(k: int, n: int, level: float = 0.95) -> float:
    """Upper end of the two-sided Clopper-Pearson interval of a binomial share ``k/n``."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(1 - (1 - level) / 2, k + 1, n - k))


def _unit_f16(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x.astype(np.float16)


def save_profile(profile: Profile, folder: str | Path) -> Path:
    """Write ``profile.json`` and ``arrays.npz`` into ``folder`` (each atomically); sets
    ``profile.id`` and returns the folder."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    a = profile.arrays
    arrays: dict[str, np.ndarray] = {
        "centroid": a.centroid,
        "pca_mean": a.pca_mean,
        "pca_components": a.pca_components,
        "rff_weights": a.rff_weights,
        "rff_phases": a.rff_phases,
        "reference": a.reference.astype(np.float16),
        "canary": a.canary.astype(np.float32),
    }
    for name in ("reference_top1", "calibration_top1", "corpus"):
        value = getattr(a, name)
        if value is not None:
            arrays[name] = value
    buffer = io.BytesIO()
    # uncompressed: loads fast, and hashes the same every time
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    with atomic_open(out / ARRAYS_FILE, "wb") as handle:
        handle.write(buffer.getvalue())
    profile.arrays_sha256 = sha256_file(out / ARRAYS_FILE)
    record = profile.model_dump(mode="json", exclude={"id"})
    write_json(out / PROFILE_FILE, record)
    profile.id = sha256_file(out / PROFILE_FILE)[:ID_LENGTH]
    return out


def load_profile(folder: str | Path) -> Profile:
    """Read a profile folder, checking ``arrays.npz`` against the hash in ``profile.json``.

    Raises:
        DataError: Not a profile folder, a newer format, or arrays that do not match.

    Example:
        >>> profile = load_profile("registry/versions/3f9c0e1a2b4d/profiles/9a1b2c3d4e5f")
        >>> profile.model["version"]
        '3f9c0e1a2b4d'
    """
    import json

    root = Path(folder)
    meta = root / PROFILE_FILE
    if not meta.is_file():
        raise DataError(
            f"not a monitor profile (no {PROFILE_FILE})",
            path=root,
            hint="build one with `embedtune monitor profile`",
        )
    try:
        raw = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raw = None
    if not isinstance(raw, dict) or not isinstance(raw.get("format"), int):
        raise DataError("not a monitor profile record (a JSON object with 'format')", path=meta)
    if raw["format"] > FORMAT:
        raise DataError(
            f"profile format {raw['format']} is newer than this embedtune reads ({FORMAT})",
            path=meta,
        )
    from pydantic import ValidationError

    try:
        profile = Profile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise DataError(f"field '{where}': {first['msg']}", path=meta) from None
    arrays_file = root / ARRAYS_FILE
    if not arrays_file.is_file() or sha256_file(arrays_file) != profile.arrays_sha256:
        raise DataError(
            f"{ARRAYS_FILE} is missing or does not match the hash in {PROFILE_FILE}",
            path=root,
            hint="rebuild the profile",
        )
    with np.load(arrays_file) as data:
        loaded = {k: data[k] for k in data.files}

    def f32(name: str) -> np.ndarray | None:
        return None if name not in loaded else loaded[name].astype(np.float32)

    profile.arrays_ = ProfileArrays(
        centroid=loaded["centroid"],
        pca_mean=loaded["pca_mean"],
        pca_components=loaded["pca_components"],
        rff_weights=loaded["rff_weights"],
        rff_phases=loaded["rff_phases"],
        reference=loaded["reference"].astype(np.float32),
        reference_top1=f32("reference_top1"),
        calibration_top1=f32("calibration_top1"),
        corpus=loaded.get("corpus"),
        canary=loaded["canary"],
    )
    profile.id = sha256_file(meta)[:ID_LENGTH]
    return profile
