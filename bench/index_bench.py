"""Vector index scale benchmark: build time (index included), disk, query latency p50/p99.

Synthetic rows (random unit vectors, 384-d) measure speed and size only: their neighbours are
meaningless, so no recall is given for them. Real rows (all-MiniLM-L6-v2 passage embeddings of
the shared collections, from the evaluation's embedding cache or encoded here) give recall@10
of the ANN index against exact search over the same vectors.

    .venv/bin/python bench/index_bench.py --sizes 10000,100000,1000000 --real
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from embedtune.index.store import LanceStore, QdrantStore, VectorStore

DIM = 384


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _build(store: VectorStore, vectors: np.ndarray, chunk: int = 100_000) -> dict[str, float]:
    start = time.perf_counter()
    store.create("t", vectors.shape[1], {"bench": True})
    for i in range(0, len(vectors), chunk):
        rows = vectors[i : i + chunk]
        payloads = [
            {"doc_id": f"d{j}", "passage": 0, "text_sha256": ""} for j in range(i, i + len(rows))
        ]
        store.add("t", rows, payloads)
    built = store.finish("t")
    return {
        "build_s": time.perf_counter() - start,
        **{k: v for k, v in built.items() if k != "rows"},
    }


def _latency(store: VectorStore, queries: np.ndarray, k: int = 10) -> dict[str, float]:
    store.search("t", queries[0], k)  # warm-up
    times = []
    for q in queries:
        start = time.perf_counter()
        store.search("t", q, k)
        times.append(time.perf_counter() - start)
    return {
        "p50_ms": 1000 * float(np.percentile(times, 50)),
        "p99_ms": 1000 * float(np.percentile(times, 99)),
    }


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def synthetic(sizes: list[int], qdrant_max: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        vectors, queries = _unit(rng, n), _unit(rng, 200)
        backends = ["lancedb"] + (["qdrant-local"] if n <= qdrant_max else [])
        for backend in backends:
            folder = Path(tempfile.mkdtemp())
            store: VectorStore = (
                LanceStore(folder, ann_min_rows=2048, nprobes=32, refine=10)
                if backend == "lancedb"
                else QdrantStore(folder)
            )
            row = {"rows": n, "kind": "synthetic", "backend": backend, **_build(store, vectors)}
            row.update(_latency(store, queries))
            row["disk_mb"] = _disk(folder) / 1e6
            print(json.dumps(row), flush=True)
            rows.append(row)
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def real(data: Path) -> list[dict[str, object]]:
    """Base-model passage embeddings of every shared collection, one index over all of them."""
    from embedtune.corpus.config import PassageConfig
    from embedtune.corpus.load import load_beir
    from embedtune.corpus.passages import split_passages
    from embedtune.models import load_model, resolve_model
    from embedtune.retrieval.cache import default_cache_dir
    from embedtune.retrieval.dense import DenseEncoder, doc_chunks

    ref = resolve_model("base")
    model = load_model(ref)
    encoder = DenseEncoder(model, ref, cache_dir=Path(default_cache_dir()) / "embeddings")
    blocks, query_texts = [], []
    for folder, split in [
        ("finance10k", "train"),
        ("finance10k", "test"),
        ("mediqa2019-qa", "test"),
        ("cranfield", "test"),
        ("cacm", "test"),
    ]:
        ds = load_beir(data / folder, split, skip_bad=True)
        passages = split_passages(list(ds.corpus.values()), model.tokenizer, PassageConfig())
        # the evaluation's chunks, so its embedding cache answers instead of re-encoding
        for d0, d1 in doc_chunks(passages.bounds, 8192):
            p0, p1 = int(passages.bounds[d0]), int(passages.bounds[d1])
            blocks.append(encoder.encode_documents(passages.texts[p0:p1]))
        query_texts += list(ds.judged_queries().values())
    vectors = np.concatenate(blocks).astype(np.float32)
    rng = np.random.default_rng(0)
    picked = rng.choice(len(query_texts), size=min(300, len(query_texts)), replace=False)
    queries = encoder.encode_queries([query_texts[i] for i in picked])
    folder = Path(tempfile.mkdtemp())
    store = LanceStore(folder, ann_min_rows=2048, nprobes=32, refine=10)
    row: dict[str, object] = {
        "rows": len(vectors),
        "kind": "real",
        "backend": "lancedb",
        **_build(store, vectors),
    }
    row.update(_latency(store, queries))
    row["disk_mb"] = _disk(folder) / 1e6
    recalls = []
    for q in queries:
        exact = set(np.argsort(-(vectors @ q), kind="stable")[:10].tolist())
        found = {int(h["doc_id"][1:]) for h in store.search("t", q, 10)}
        recalls.append(len(exact & found) / 10)
    row["recall@10"] = float(np.mean(recalls))
    print(json.dumps(row), flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--qdrant-max", type=int, default=10_000)
    parser.add_argument("--real", action="store_true")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", default="bench/out/index.json")
    args = parser.parse_args()
    rows = synthetic([int(s) for s in args.sizes.split(",") if s], args.qdrant_max)
    if args.real:
        rows += real(Path(args.data))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
