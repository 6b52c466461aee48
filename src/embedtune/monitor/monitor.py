"""The monitor stage's verbs: build a profile, check a window, run a probe, check canaries.

Each takes plain arguments and returns a typed result; the CLI calls the same functions.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from embedtune.errors import ConfigError, DataError
from embedtune.monitor.canary import SAME_RUNTIME_MIN_COSINE, CanaryResult, compare_canary
from embedtune.monitor.config import DriftSettings
from embedtune.monitor.drift import DriftResult, check_window
from embedtune.monitor.profile import (
    Profile,
    build_profile_from_embeddings,
    load_profile,
    save_profile,
)
from embedtune.outputs import check_output, replacing

if TYPE_CHECKING:
    from embedtune.monitor.source import ModelSource
    from embedtune.registry import Registry

logger = logging.getLogger(__name__)

__all__ = ["build_profile", "check_drift", "open_profile", "run_canary", "write_check"]


def build_profile(
    queries: str | Path,
    source: ModelSource,
    *,
    corpus: str | Path | None = None,
    settings: DriftSettings | None = None,
    output: str | Path | None = None,
    registry: Registry | None = None,
    overwrite: bool = False,
) -> tuple[Profile, Path]:
    """Embed reference queries (and a corpus's passages) with a model and save a profile.

    Args:
        queries: Reference queries: a BEIR folder, a queries .jsonl/.csv/.tsv or a .txt file.
        source: The model (a registry version or a folder).
        corpus: A BEIR folder whose corpus the model searches (for the OOD top-1 score).
        settings: Profile and test settings.
        output: A profile folder to write; default: beside the version in ``registry``.
        registry: The registry of ``source``'s version.
        overwrite: Replace an existing ``output``.

    Returns:
        The profile and where it was written.

    Raises:
        ConfigError: No output and no registry version; an output that exists or lies in an
            input.

    Example:
        >>> registry = Registry("registry")
        >>> source = open_source(registry=registry, version="production")
        >>> profile, where = build_profile("data/fin/queries.jsonl", source, corpus="data/fin",
        ...                                registry=registry)
        >>> where.parent.name
        'profiles'
    """
    from embedtune.monitor.source import read_query_texts

    if output is None and (registry is None or source.version is None):
        raise ConfigError("give --output FOLDER, or a registry --version to keep it beside")
    if output is not None:
        check_output(output, [queries, corpus, source.path], overwrite=overwrite)
    texts = read_query_texts(queries)
    settings = settings or DriftSettings()
    vectors = source.embed_queries(texts)
    passages, corpus_info = None, None
    if corpus is not None:
        passages, n_docs = source.embed_passages(corpus)
        corpus_info = {
            "data": str(corpus),
            "mode": "max-passage",
            "documents": n_docs,
            "passages": len(passages),
            "window": source.passages.model_dump(),
        }
    profile = build_profile_from_embeddings(
        vectors,
        passages,
        settings=settings,
        model=source.describe(),
        canary_texts=texts,
        corpus_info=corpus_info,
    )
    if output is not None:
        with replacing(output, overwrite):
            save_profile(profile, output)
        return profile, Path(output)
    assert registry is not None and source.version is not None
    staging = Path(tempfile.mkdtemp(prefix="embedtune-profile-"))
    try:
        save_profile(profile, staging / "p")
        stored = registry.add_profile(staging / "p", source.version)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_profile(stored), stored


def open_profile(
    profile: str | Path | None = None,
    *,
    registry: Registry | None = None,
    version: str | None = None,
) -> Profile:
    """A profile folder, or the newest profile kept beside a registry version.

    Raises:
        ConfigError: Neither given, or the version has no profile.
        DataError: Not a profile, or its arrays do not match its record.
    """
    if profile is not None:
        return load_profile(profile)
    if registry is None or version is None:
        raise ConfigError("give --profile FOLDER, or --registry and --version")
    found = registry.profiles(version)
    if not found:
        raise ConfigError(
            f"version {version} has no monitor profile: build one with `embedtune monitor "
            "profile --version ...`"
        )
    return load_profile(found[-1])


def _model_matches(profile: Profile, sha: str | None) -> None:
    """A window embedded by another model is a model change, not drift: refuse to test it."""
    expected = profile.model.get("sha256")
    if sha and expected and sha != expected:
        raise DataError(
            f"the window was embedded by model {sha[:12]}, the profile by {expected[:12]}: a "
            "model change, not data drift; build a profile for the model now served (and see "
            "`embedtune monitor canary`)"
        )


def check_drift(
    profile: Profile,
    window: str | Path,
    *,
    source: ModelSource | None = None,
    last: int = 1,
    alpha: float | None = None,
    tests: list[str] | None = None,
) -> tuple[DriftResult, dict[str, np.ndarray]]:
    """Test a window against a profile.

    Args:
        profile: The reference profile.
        window: A folder of logged windows (``DIR/<version>``: the newest ``last`` are
            merged), one window's ``.json``/``.npy``, a plain ``.npy`` of vectors, or a
            queries file (``.jsonl``/``.csv``/``.tsv``/``.txt`` or a BEIR folder) embedded now
            by ``source``.
        source: The model that embeds a queries file (the profile's model).
        last: Logged windows merged from a folder.
        alpha: Family-wise level (default: the profile's calibrated one).
        tests: Tests to run (default: the profile's).

    Returns:
        The result, and the arrays the HTML page plots (``window_top1``, ``window_pcs``).

    Raises:
        DataError: An unreadable window, or one embedded by another model.
        ConfigError: A queries file without a model to embed it.

    Example:
        >>> result, _ = check_drift(load_profile("profiles/fin"), "logs/3f9c0e1a2b4d", last=2)
        >>> result.status, [t.name for t in result.tests if t.rejected]
        ('drift', ['tail'])
    """
    from embedtune.embedding_windows import read_window, read_windows
    from embedtune.monitor.source import read_query_texts

    path = Path(window)
    scores: np.ndarray | None = None
    if path.is_dir() and not (path / "queries.jsonl").is_file():
        logged = read_windows(path, last=last)
        _model_matches(profile, logged.meta.get("model_sha256"))
        vectors, scores = logged.embeddings, logged.top1
    elif path.suffix == ".json" or (path.suffix == ".npy" and path.with_suffix(".json").is_file()):
        logged = read_window(path)
        _model_matches(profile, logged.meta.get("model_sha256"))
        vectors, scores = logged.embeddings, logged.top1
    elif path.suffix == ".npy":
        if not path.is_file():
            raise DataError("no such window file", path=path)
        try:
            vectors = np.load(path, allow_pickle=False).astype(np.float32)
        except ValueError as exc:
            raise DataError(f"not a .npy array ({exc})", path=path) from None
    else:
        texts = read_query_texts(path)
        if source is None:
            raise ConfigError("a queries file is embedded on the spot: give the model")
        if source.sha256 != profile.model.get("sha256"):
            raise ConfigError(
                f"the model given ({source.sha256[:12]}) is not the profile's "
                f"({str(profile.model.get('sha256'))[:12]}): embed with the profiled model"
            )
        vectors = source.embed_queries(texts)
    if scores is None:
        scores = profile.arrays.top1(vectors)
    result = check_window(profile, vectors, top1_scores=scores, alpha=alpha, tests=tests)
    extras: dict[str, np.ndarray] = {"window_pcs": profile.arrays.project(_unit(vectors))}
    if scores is not None:
        extras["window_top1"] = scores
    return result, extras


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def write_check(
    profile: Profile,
    result: DriftResult,
    extras: dict[str, np.ndarray],
    output: str | Path,
    *,
    inputs: list[Any],
    overwrite: bool = False,
) -> Path:
    """``drift.json`` and ``drift.html`` in ``output`` (refused onto an input or an existing
    output unless ``overwrite``)."""
    from embedtune.io import write_json, write_text
    from embedtune.monitor.report import drift_html

    check_output(output, inputs, overwrite=overwrite)
    a = profile.arrays
    page = drift_html(
        result.model_dump(mode="json"),
        reference_top1=a.reference_top1,
        window_top1=extras.get("window_top1"),
        threshold=profile.reference.tail_threshold,
        reference_pcs=a.project(a.reference),
        window_pcs=extras.get("window_pcs"),
    )
    with replacing(output, overwrite):
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "drift.json", result.model_dump(mode="json"))
        write_text(out / "drift.html", page)
    return Path(output)


def run_canary(profile: Profile, source: ModelSource) -> CanaryResult:
    """Re-embed the profile's canary texts with ``source`` and compare with the recorded
    vectors; the bound is the variant's recorded export parity (min cosine) when the
    registry has one, else the same-runtime bound.

    Raises:
        DataError: The profile holds no canary texts.
    """
    if not profile.canary:
        raise DataError("the profile holds no canary texts (built with canary_texts=0)")
    current = source.embed_queries(profile.canary)
    bound, where = SAME_RUNTIME_MIN_COSINE, "same-runtime default"
    recorded = source.parity.get(source.variant, {})
    if source.variant != "torch" and isinstance(recorded.get("min_cosine"), int | float):
        # the export's own parity check: its min cosine, less a little for texts it never saw
        bound = float(recorded["min_cosine"]) - 0.002
        where = f"recorded {source.variant} export parity (min cosine {recorded['min_cosine']})"
    if len(current) and current.shape[1] != profile.dim:
        return CanaryResult(
            texts=len(current),
            min_cosine=-1.0,
            mean_cosine=-1.0,
            allowed_min_cosine=bound,
            changed=True,
            status="model-change",
            parity_source=f"dimension {current.shape[1]} ≠ recorded {profile.dim}",
        )
    return compare_canary(profile.arrays.canary, current, min_cosine=bound, parity_source=where)
