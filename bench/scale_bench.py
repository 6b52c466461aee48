"""Time to the first training step against corpus size (issue 18): whole-corpus against
candidate mining and dev pooling, at a fixed number of training queries.

The corpora are built from ../shared/data: finance10k's 729 documents (train and test
filings) with its judged questions, plus synthetic passages of realistic length (about 150
words: sentences drawn at random from all four collections' documents) up to N documents.
Each cell runs the real pairs and train stages (`build_pairs`, then `train_model` with
`max_steps=1`) in a fresh process with an empty embedding cache, and records: pairs-stage
seconds, seconds to the end of the first training step, passages the base model encoded,
and peak memory (max RSS).

    .venv/bin/python bench/scale_bench.py --sizes 10000,100000,1000000 --queries 1176
    .venv/bin/python bench/scale_bench.py --sizes 10000 --modes corpus,candidates

Modes: ``corpus`` (today's default: every passage encoded to mine; the base model searches
the whole dev corpus), ``candidates`` (``mining: candidates``, ``dev_pool_from: bm25``) and
``candidates+bm25-dev30`` (the same with a dev pool of BM25's top 30, ``dev_pool: 30``).
Adds each cell to bench/results/scale.json (committed; a cell measured again replaces its
earlier row) and prints a Markdown table of this invocation's cells. The corpora and the
cells' scratch folders are in bench/out/scale/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OUT = Path(__file__).resolve().parent / "out" / "scale"
KEPT = Path(__file__).resolve().parent / "results" / "scale.json"  # committed: every cell run
MODES = {  # every setting written out: the cells stay what they were if a default changes
    "corpus": {"pairs": {"mining": "corpus"}, "dev_pool_from": "bm25+base", "dev_pool": 100},
    "candidates": {"pairs": {"mining": "candidates"}, "dev_pool_from": "bm25", "dev_pool": 100},
    # bench/mining_quality.py's cheapest arm: BM25's top 30 documents per dev query
    "candidates+bm25-dev30": {
        "pairs": {"mining": "candidates"},
        "dev_pool_from": "bm25",
        "dev_pool": 30,
    },
}


def _docs(folder: Path) -> list[dict[str, str]]:
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def synthetic_documents(count: int, rng: random.Random) -> list[str]:
    """``count`` texts of about 150 words: sentences drawn at random from all four shared
    collections' documents (realistic length and vocabulary, no topic)."""
    sentences: list[str] = []
    for name in ("finance10k/train", "finance10k/test", "mediqa2019-qa", "cranfield", "cacm"):
        for doc in _docs(SHARED / name):
            sentences += [s for s in re.split(r"(?<=[.!?])\s+", doc.get("text", "")) if s]
    texts = []
    for _ in range(max(0, count)):
        words: list[str] = []
        while len(words) < 150:
            words += rng.choice(sentences).split()
        texts.append(" ".join(words))
    return texts


def build_corpus(size: int, queries: int, out: Path, seed: int = 0) -> Path:
    """A BEIR folder: finance10k's documents and ``queries`` of its judged questions (split
    ``train``), padded with synthetic passages to ``size`` documents."""
    if (out / "qrels" / "train.tsv").is_file():
        return out
    rng = random.Random(seed)
    fin_docs = _docs(SHARED / "finance10k" / "train") + _docs(SHARED / "finance10k" / "test")
    qrels: list[tuple[str, str]] = []
    texts: dict[str, str] = {}
    for split in ("train", "test"):
        folder = SHARED / "finance10k" / split
        with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                q = json.loads(line)
                texts[q["_id"]] = q["text"]
        with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
            next(handle)
            qrels += [tuple(line.split("\t")[:2]) for line in handle]  # type: ignore[misc]
    rng.shuffle(qrels)
    chosen = qrels[:queries]
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc in fin_docs:
            handle.write(json.dumps({"_id": doc["_id"], "title": "", "text": doc["text"]}) + "\n")
        for i, text in enumerate(synthetic_documents(size - len(fin_docs), rng)):
            handle.write(json.dumps({"_id": f"s{i}", "title": "", "text": text}) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for qid, _ in chosen:
            handle.write(json.dumps({"_id": qid, "text": texts[qid]}) + "\n")
    with (out / "qrels" / "train.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{q}\t{d}\t1\n" for q, d in chosen)
    return out


def _timed(function: Any, spent: dict[str, float], key: str) -> Any:
    """``function``, adding its wall time to ``spent[key]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - began

    return wrapper


def one_cell(data: Path, mode: str, depth: int, out: Path) -> None:
    """Runs in a fresh process: pairs, then training to the end of its first step; prints
    the measurements and exits there."""
    from embedtune.pairs.build import build_pairs
    from embedtune.retrieval.bm25 import BM25Index
    from embedtune.retrieval.dense import DenseEncoder
    from embedtune.run.config import preset, stage_configs
    from embedtune.train import progress as train_progress
    from embedtune.train.train import train_model

    encoded = {"n": 0}
    spent = {"encode": 0.0, "bm25_index": 0.0, "bm25_search": 0.0}
    original_encode = DenseEncoder._encode

    def counting(self: Any, texts: list[str], prompt: str) -> Any:
        # texts the model really encodes (passages and queries; cache reads are not counted)
        encoded["n"] += len(texts)
        began = time.perf_counter()
        try:
            return original_encode(self, texts, prompt)
        finally:
            spent["encode"] += time.perf_counter() - began

    DenseEncoder._encode = counting  # type: ignore[method-assign]
    # the work that grows with the corpus: BM25 indexing (passages for mining, documents for
    # the dev pool) and BM25 search; the rest (loading, splitting, the step) is "other"
    for name, key in (("__init__", "bm25_index"), ("search", "bm25_search")):
        setattr(BM25Index, name, _timed(getattr(BM25Index, name), spent, key))
    passages = {"n": 0}  # the corpus in passages: the largest BM25 index (mining's)
    timed_init = BM25Index.__init__

    def sizing(self: Any, ids: list[str], *args: Any, **kwargs: Any) -> None:
        passages["n"] = max(passages["n"], len(ids))
        timed_init(self, ids, *args, **kwargs)

    BM25Index.__init__ = sizing  # type: ignore[method-assign]
    recipe = preset("default") | MODES[mode] | {"max_steps": 1, "device": "cpu"}
    recipe["pairs"] = {**(preset("default").get("pairs") or {}), **recipe["pairs"]}
    recipe["pairs"]["candidate_depth"] = depth
    pairs_config, train_config = stage_configs(recipe, output=out, data=str(data))
    start = time.perf_counter()
    times: dict[str, float] = {}
    original_step = train_progress.TrainingProgress.on_step_end

    def on_step_end(self: Any, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # the first step is what is measured: report, then stop the process (what follows,
        # a dev evaluation and the save, is the same in both modes and not part of the claim)
        original_step(self, args, state, control, **kwargs)
        row = {
            "pairs_s": round(times["pairs"], 1),
            "first_step_s": round(time.perf_counter() - start, 1),
            "passages": passages["n"],
            "encoded_pairs": times["encoded_pairs"],
            "encoded_to_first_step": encoded["n"],
            **{f"{key}_s": round(value, 1) for key, value in spent.items()},
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print("RESULT " + json.dumps(row), flush=True)
        os._exit(0)

    train_progress.TrainingProgress.on_step_end = on_step_end  # type: ignore[method-assign]
    build_pairs(pairs_config)
    times["pairs"] = time.perf_counter() - start
    times["encoded_pairs"] = encoded["n"]
    train_model(train_config)
    raise RuntimeError("training ended without a step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=["all", "cell"])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=1176, help="judged queries (15%% dev)")
    parser.add_argument("--modes", default="corpus,candidates")
    parser.add_argument("--depth", type=int, default=30, help="candidate_depth")
    parser.add_argument(
        "--corpus-max", type=int, default=10000, help="largest size run in corpus mode"
    )
    parser.add_argument("--data")
    parser.add_argument("--mode")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.what == "cell":
        one_cell(Path(args.data), args.mode, args.depth, Path(args.out))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": str(date.today()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "command": " ".join(["python", "bench/scale_bench.py", *sys.argv[1:]]),
        "queries": args.queries,
        "depth": args.depth,
        "cells": [],
    }
    for size in [int(s) for s in args.sizes.split(",")]:
        started = time.perf_counter()
        data = build_corpus(size, args.queries, OUT / f"corpus-{size}-q{args.queries}")
        print(f"corpus {size}: built in {time.perf_counter() - started:.0f} s", flush=True)
        for mode in args.modes.split(","):
            if mode == "corpus" and size > args.corpus_max:
                results["cells"].append({"size": size, "mode": mode, "skipped": "too slow"})
                continue
            with tempfile.TemporaryDirectory(dir=OUT) as tmp:
                env = {**os.environ, "EMBEDTUNE_CACHE": str(Path(tmp) / "cache"),
                       "HF_HUB_OFFLINE": "1"}  # fmt: skip
                done = subprocess.run(
                    [sys.executable, __file__, "cell", "--data", str(data), "--mode", mode,
                     "--depth", str(args.depth), "--out", str(Path(tmp) / "model"), "--queries",
                     str(args.queries)],
                    env=env, capture_output=True, text=True,
                )  # fmt: skip
            lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
            if done.returncode != 0 or not lines:
                row = {"error": done.stderr.strip().splitlines()[-1:]}
            else:
                row = json.loads(lines[-1][len("RESULT ") :])
            cell = {"size": size, "mode": mode, **row}
            results["cells"].append(cell)
            print(cell, flush=True)
            keep(results, cell)
    print(markdown(results))


def keep(results: dict[str, Any], cell: dict[str, Any]) -> None:
    """Add ``cell`` (with its invocation's settings) to bench/results/scale.json."""
    settings = {k: results[k] for k in ("date", "machine", "command", "queries", "depth")}
    row = {**settings, **cell}
    same = ("size", "mode", "queries", "depth")
    kept = json.loads(KEPT.read_text()) if KEPT.is_file() else []
    kept = [c for c in kept if any(c.get(k) != row[k] for k in same)] + [row]
    partial = KEPT.with_suffix(".partial")
    partial.write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    partial.replace(KEPT)


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Command: `{results['command']}`; {results['date']}; {results['machine']}; "
        f"{results['queries']} judged queries (15% held out as dev), candidate depth "
        f"{results['depth']}.",
        "",
        "| documents (passages) | mode | pairs s | to first step s | of which: encoding s "
        "| BM25 index s | BM25 search s | passages encoded (pairs / to first step) | peak RSS MB |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in results["cells"]:
        if "skipped" in c or "error" in c:
            lines.append(
                f"| {c['size']:,} | {c['mode']} | {c.get('skipped') or c['error']} | | | | | | |"
            )
            continue
        lines.append(
            f"| {c['size']:,} ({c.get('passages', 0):,}) | {c['mode']} | {c['pairs_s']} | "
            f"{c['first_step_s']} | {c.get('encode_s', '')} | {c.get('bm25_index_s', '')} | "
            f"{c.get('bm25_search_s', '')} | "
            f"{c['encoded_pairs']:,} / {c['encoded_to_first_step']:,} | {c['max_rss_mb']:,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
