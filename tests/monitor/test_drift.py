"""The drift statistics on synthetic vectors (no model): planted shifts are found, windows of
the reference distribution are not flagged, and the profile and window formats round-trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedtune.errors import DataError
from embedtune.monitor import (
    DriftSettings,
    WindowWriter,
    append_window,
    build_profile_from_embeddings,
    check_window,
    list_windows,
    load_profile,
    read_window,
    read_windows,
    save_profile,
)
from embedtune.monitor.canary import compare_canary
from embedtune.monitor.profile import Profile
from embedtune.monitor.stats import holm, tail_test

DIM = 48
SETTINGS = DriftSettings(calibration_windows=40, permutations=400)


def _cloud(rng: np.random.Generator, n: int, center: np.ndarray, spread: float) -> np.ndarray:
    x = center + spread * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def world() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    inside, outside = rng.normal(size=DIM), rng.normal(size=DIM)
    return {
        "reference": _cloud(rng, 600, inside, 0.6),
        "corpus": _cloud(rng, 300, inside, 0.4),
        "same": _cloud(np.random.default_rng(8), 2000, inside, 0.6),
        "off": _cloud(np.random.default_rng(9), 200, outside, 0.6),
    }


@pytest.fixture(scope="module")
def profile(world: dict[str, np.ndarray]) -> Profile:
    texts = [f"query {i}" for i in range(len(world["reference"]))]
    return build_profile_from_embeddings(
        world["reference"],
        world["corpus"],
        settings=SETTINGS,
        model={"name": "synthetic", "sha256": "a" * 64},
        canary_texts=texts,
    )


def test_profile_records_the_reference(profile: Profile) -> None:
    ref = profile.reference
    assert ref.queries + ref.basis_queries + ref.calibration_queries == 600
    assert ref.tail_threshold is not None and ref.tail_rate is not None
    assert ref.tail_rate >= SETTINGS.tail_percentile / 100
    assert 0 < ref.mean_cos_to_centroid < 1 and ref.cov_trace > 0
    assert profile.calibration.alpha <= SETTINGS.alpha
    assert profile.arrays.canary.shape == (SETTINGS.canary_texts, DIM)


def test_no_alarm_on_windows_of_the_reference_distribution(
    profile: Profile, world: dict[str, np.ndarray]
) -> None:
    same = world["same"]
    alarms = sum(check_window(profile, same[i * 200 : (i + 1) * 200]).drift for i in range(10))
    assert alarms == 0


def test_a_small_planted_shift_is_detected(profile: Profile, world: dict[str, np.ndarray]) -> None:
    # 10% of a 200-query window replaced by queries from elsewhere
    window = np.concatenate([world["same"][:180], world["off"][:20]])
    result = check_window(profile, window)
    assert result.drift and result.status == "drift"
    tests = {t.name: t for t in result.tests}
    assert tests["tail"].rejected and tests["tail"].statistic > tests["tail"].expected  # type: ignore[operator]
    assert result.window.tail_rate is not None and result.window.tail_rate > 0.1


def test_a_shift_the_corpus_still_answers_is_a_shift_not_drift(
    profile: Profile, world: dict[str, np.ndarray]
) -> None:
    # tighter around the same centre: nearer the corpus, yet not the reference distribution
    rng = np.random.default_rng(11)
    inside = world["reference"].mean(axis=0)
    window = _cloud(rng, 200, inside / np.linalg.norm(inside) * 20, 0.6)
    result = check_window(profile, window)
    tests = {t.name: t for t in result.tests}
    assert not tests["tail"].rejected and (tests["mmd"].rejected or tests["centroid"].rejected)
    assert result.status == "shift" and result.shift and not result.drift


def test_a_pure_centroid_shift_is_found_without_a_corpus(world: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(3)
    plain = build_profile_from_embeddings(world["reference"], settings=SETTINGS)
    assert plain.reference.tail_threshold is None
    moved = world["same"][:300] + 0.15 * rng.normal(size=DIM).astype(np.float32)
    result = check_window(plain, moved)
    assert {t.name for t in result.tests} == {"mmd", "centroid"}
    assert result.drift
    only = check_window(plain, moved, tests=["centroid"])
    assert [t.name for t in only.tests] == ["centroid"] and only.drift
    with pytest.raises(DataError, match="no test applies"):
        check_window(plain, moved, tests=["tail"])


def test_window_of_another_size_is_refused(profile: Profile) -> None:
    with pytest.raises(DataError, match="48-d"):
        check_window(profile, np.ones((10, 7), dtype=np.float32))
    with pytest.raises(DataError, match="at least 5"):
        check_window(profile, np.ones((3, DIM), dtype=np.float32))


def test_tail_test_is_the_exact_binomial_and_holm_steps_down() -> None:
    from scipy.stats import binomtest

    assert tail_test(29, 200, 0.05) == pytest.approx(
        binomtest(29, 200, 0.05, alternative="greater").pvalue
    )
    decided = holm({"a": 0.001, "b": 0.02, "c": 0.04}, 0.05)
    assert decided["a"] == (pytest.approx(0.003), True)
    assert decided["b"] == (pytest.approx(0.04), True)
    assert decided["c"] == (pytest.approx(0.04), True)
    assert holm({"a": 0.02, "b": 0.5}, 0.03)["a"][1] is False


def test_profile_round_trips_and_detects_tampering(profile: Profile, tmp_path: Path) -> None:
    folder = save_profile(profile, tmp_path / "p")
    loaded = load_profile(folder)
    assert loaded.id == profile.id and len(loaded.id) == 12
    window = np.random.default_rng(1).normal(size=(50, DIM)).astype(np.float32)
    a, b = check_window(profile, window), check_window(loaded, window)
    assert [t.p_value for t in a.tests] == pytest.approx([t.p_value for t in b.tests], abs=0.02)
    with open(folder / "arrays.npz", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(DataError, match="does not match"):
        load_profile(folder)
    with pytest.raises(DataError, match="not a monitor profile"):
        load_profile(tmp_path)


def test_windows_round_trip_and_incomplete_ones_are_skipped(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(12, DIM)).astype(np.float32)
    first = append_window(tmp_path, "v1", x[:6], model_sha256="s", top1=np.linspace(0, 1, 6))
    second = append_window(tmp_path, "v1", x[6:], model_sha256="s", top1=np.ones(6))
    (tmp_path / "v1" / "29990101T000000000000Z.npy").write_bytes(b"half-written")  # no .json
    assert list_windows(tmp_path / "v1") == [first, second]
    one = read_window(first)
    assert one.embeddings.dtype == np.float32 and one.embeddings.shape == (6, DIM)
    assert np.allclose(one.embeddings, x[:6], atol=1e-2)  # float16 on disk
    assert np.load(first.with_suffix(".npy")).dtype == np.float16
    meta = json.loads(first.read_text())
    assert meta["queries"] == 6 and "texts" not in meta
    merged = read_windows(tmp_path / "v1", last=2)
    assert merged.embeddings.shape == (12, DIM) and merged.top1 is not None
    assert len(merged.top1) == 12
    with pytest.raises(DataError, match="cannot name"):
        append_window(tmp_path, "../x", x)


def test_window_writer_closes_a_window_at_its_size(tmp_path: Path) -> None:
    writer = WindowWriter(tmp_path, "v2", size=10)
    x = np.ones((4, DIM), dtype=np.float32)
    assert writer.add(x) is None and writer.add(x) is None
    closed = writer.add(x)
    assert closed is not None and read_window(closed).embeddings.shape == (12, DIM)
    assert writer.flush() is None
    writer.add(x)
    assert writer.flush() is not None and len(list_windows(tmp_path / "v2")) == 2


def test_canary_tells_a_model_change_from_float_noise() -> None:
    rng = np.random.default_rng(0)
    recorded = rng.normal(size=(16, DIM)).astype(np.float32)
    noisy = recorded + 1e-4 * rng.normal(size=recorded.shape).astype(np.float32)
    assert not compare_canary(recorded, noisy).changed
    other = rng.normal(size=recorded.shape).astype(np.float32)
    changed = compare_canary(recorded, other)
    assert changed.changed and changed.status == "model-change"
    with pytest.raises(DataError, match="do not match"):
        compare_canary(recorded, other[:, :10])


def test_import_monitor_loads_no_torch_and_no_scipy() -> None:
    import subprocess
    import sys

    code = (
        "import embedtune.monitor, sys; "
        "bad = {'torch', 'scipy', 'sentence_transformers'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
