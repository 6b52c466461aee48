"""How time and peak memory grow with the corpus: BM25 and chunked dense max-passage search.

Synthetic corpora of short passages (about 32 tokens) at several sizes, 1,000 queries, a tiny
BERT built in code (the point is growth, not absolute speed). Each size runs in a fresh
process so its peak resident memory (ru_maxrss) is its own. The embedding cache is off.

    .venv/bin/python bench/scale_memory.py [--sizes 10000,30000,100000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [f"w{i}" for i in range(5000)]


def _texts(n: int, seed: int, length: int = 30) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=length)) for _ in range(n)]


def child(size: int, model_dir: str) -> None:
    import numpy as np

    from embedtune.models import load_model, resolve_model
    from embedtune.retrieval.bm25 import BM25Index
    from embedtune.retrieval.dense import DenseEncoder, dense_search

    texts = _texts(size, seed=1)
    doc_ids = [f"d{i}" for i in range(size)]
    queries = {f"q{i}": t for i, t in enumerate(_texts(1000, seed=2, length=6))}
    start = time.perf_counter()
    BM25Index(doc_ids, texts).search(queries, k=100)
    bm25_s = time.perf_counter() - start
    bm25_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ref = resolve_model(model_dir)
    encoder = DenseEncoder(load_model(ref, device="cpu"), ref, batch_size=256, cache_dir=None)
    # two passages per document, so max-passage pooling is exercised
    bounds = np.arange(0, size + 1, 2)
    start = time.perf_counter()
    dense_search(encoder, queries, doc_ids[: size // 2], texts, bounds, k=100, chunk_passages=8192)
    dense_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # hard-negative mining over the same passages (one document = one ~32-token passage)
    from embedtune.corpus.config import PassageConfig
    from embedtune.corpus.types import Dataset, Document
    from embedtune.pairs.config import PairsConfig
    from embedtune.pairs.mine import mine_labeled_pairs

    corpus = {d: Document(d, "", t) for d, t in zip(doc_ids, texts, strict=True)}
    qrels = {q: {f"d{i}": 1} for i, q in enumerate(queries)}
    start = time.perf_counter()
    pairs, _ = mine_labeled_pairs(
        Dataset(corpus, queries, qrels, "train"),
        encoder,
        PassageConfig(window=48, stride=24),
        PairsConfig.model_validate({"negatives": {"margin": -1.0}}),
    )
    mine_s = time.perf_counter() - start
    mine_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "passages": size,
                "queries": 1000,
                "bm25_seconds": round(bm25_s, 1),
                "peak_mb_after_bm25": round(bm25_rss),
                "dense_seconds": round(dense_s, 1),
                "passages_per_second": round(size / dense_s),
                "peak_mb_after_dense": round(peak),
                "mining_seconds": round(mine_s, 1),
                "pairs": len(pairs),
                "peak_mb": round(mine_peak),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--child", type=int)
    parser.add_argument("--model")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model)
        return
    from embedtune.testing import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(tmp, WORDS, max_length=48)
        for size in map(int, args.sizes.split(",")):
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(size), "--model", str(model)],
                capture_output=True,
                text=True,
                check=True,
            )
            print(out.stdout.strip().splitlines()[-1], flush=True)
    Path("bench/out").mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
