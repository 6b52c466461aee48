"""Test quality and cost of candidate mining and of the BM25 dev pool against today's
defaults (issue 18).

Four arms, each a (mining, dev pool) pair; the real CLI builds each mining mode's pairs once
(a fresh embedding cache per mode, so its seconds are its own), trains on them once per seed
and evaluates on the test split:

- ``corpus``: today's default: every training passage encoded to mine, and the base model
  searches the whole dev corpus for the dev pool (``dev_pool_from: bm25+base``);
- ``candidates``: ``--mining candidates`` (only each training query's BM25 top 100 and its
  judged documents are encoded), today's dev pool;
- ``candidates+bm25-dev``: candidate mining and ``--dev-pool-from bm25`` (the base model
  encodes only BM25's top 100 of each dev query and the judged documents);
- ``candidates+bm25-dev30``: the same with a shallower pool, BM25's top 30 (``dev_pool: 30``):
  the dev pool, not mining, is what the first training step waits for on a large corpus
  (BENCHMARKS.md, "Time to the first training step").

    .venv/bin/python bench/mining_quality.py --data ../shared/data/finance10k --split train \\
        --test ../shared/data/finance10k --test-split test --seeds 1,2,3 [--pad 10000]

``--pad N`` first copies the training folder and pads its corpus with synthetic documents
(bench/scale_bench.py's: ~150 words of sentences drawn from the shared collections) up to N
documents: a large training corpus for mining and the dev pool to search, with the same
labeled queries and the same test split. Two arms with the same pairs and the same dev pool
train the same computation (CPU training is deterministic for a seed), so the later one reuses
the earlier one's models (said in the output). Rerunning resumes: finished steps are kept in
bench/out/mining-quality/<name>/.

``--arms`` runs some of the arms (``corpus`` always): the default is chosen as the cheapest
arm that qualifies (BENCHMARKS.md), so the cheapest can be measured first.

Writes bench/results/mining-quality/<name>.json (committed: the record with every arm's
per-query test scores, dense max-passage and hybrid, from which the table and the tests can be
computed again) and prints a Markdown table: pairs-stage seconds, training seconds, per seed
the test nDCG@10 (dense max-passage) and the mean, the hybrid mean, and for each arm a paired
randomization test against ``corpus`` over the test queries (seed-averaged), dense and hybrid.
Every kept model's hybrid is also scored with reciprocal-rank fusion (``eval --fusion rrf``,
``per_query_hybrid_rrf``): the hybrid a BM25-only dev pool falls back to, compared with
today's dev-weighted hybrid of ``corpus``. Results measured before hybrid was scored (with the
weights training chose on dev, as ``embedtune eval --fusion dev``) get their test run again
(the models are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.retrieval.stats import randomization_test

OUT = Path(__file__).resolve().parent / "out" / "mining-quality"
KEPT = Path(__file__).resolve().parent / "results" / "mining-quality"
EMBEDTUNE = [str(Path(sys.executable).parent / "embedtune")]  # the installed CLI
ARMS = {  # name → (mining, dev_pool_from, dev_pool: documents per dev query and source)
    "corpus": ("corpus", "bm25+base", 100),
    "candidates": ("candidates", "bm25+base", 100),
    "candidates+bm25-dev": ("candidates", "bm25", 100),
    "candidates+bm25-dev30": ("candidates", "bm25", 30),
}


def pad(data: Path, split: str, size: int, out: Path) -> Path:
    """``data`` with its corpus padded by synthetic documents to ``size`` documents."""
    from scale_bench import synthetic_documents

    if (out / "corpus.jsonl").is_file():
        return out
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "qrels").mkdir(parents=True)
    shutil.copy2(data / "queries.jsonl", partial / "queries.jsonl")
    shutil.copy2(data / "qrels" / f"{split}.tsv", partial / "qrels" / f"{split}.tsv")
    with (data / "corpus.jsonl").open(encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    texts = synthetic_documents(size - len(lines), random.Random(0))
    with (partial / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        handle.writelines(lines)
        for i, text in enumerate(texts):
            handle.write(json.dumps({"_id": f"pad{i}", "title": "", "text": text}) + "\n")
    partial.rename(out)
    return out


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    """Run one embedtune command (output to ``log``); its wall seconds."""
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        done = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}; see {log}")
    return time.perf_counter() - started


def negatives(pairs: Path) -> dict[str, list[str]]:
    with (pairs / "pairs.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return {f"{r['query']}\t{r['positive']}": r.get("negatives", []) for r in rows}


def build_pairs(
    mode: str, args: argparse.Namespace, data: Path, out: Path, env: dict[str, str]
) -> dict[str, Any]:
    """One mining mode's pairs (``out/pairs-<mode>/pairs``), timed with an empty cache."""
    where = out / f"pairs-{mode}"
    where.mkdir(parents=True, exist_ok=True)
    done = where / "pairs.json"
    if done.is_file():  # built by an earlier, interrupted invocation
        return {**json.loads(done.read_text()), "pairs": where / "pairs"}
    fresh = {**env, "EMBEDTUNE_CACHE": str(where / "cache")}
    shutil.rmtree(where / "cache", ignore_errors=True)
    pairs = where / "pairs"
    shutil.rmtree(pairs, ignore_errors=True)
    command = [*EMBEDTUNE, "pairs", str(data), "--split", args.split, "-o", str(pairs)]
    command += ["--mining", mode]
    seconds = timed(command, fresh, where / "pairs.log")
    print(f"{mode}: pairs in {seconds:.0f} s", flush=True)
    done.write_text(json.dumps({"pairs_s": round(seconds, 1)}))
    return {"pairs_s": round(seconds, 1), "pairs": pairs}


def train_and_test(
    arm: str, seed: int, args: argparse.Namespace, out: Path, env: dict[str, str]
) -> dict[str, Any]:
    mining, dev_pool, depth = ARMS[arm]
    where = out / arm / f"seed-{seed}"
    done = where / "result.json"
    if done.is_file():  # measured by an earlier, interrupted invocation
        result = json.loads(done.read_text())
        if result.get("hybrid_fusion") != "dev":  # measured before hybrid was scored with
            result.update(test(where, args, env))  # dev's weights: its test runs again
            done.write_text(json.dumps(result))
        if "dense_weight" not in result:  # recorded since; the model folder has it
            result["dense_weight"] = _dense_weight(where)
            done.write_text(json.dumps(result))
        if "per_query_hybrid_rrf" not in result:  # scored since (the models are kept)
            result["per_query_hybrid_rrf"] = test_rrf(where, args, env)
            done.write_text(json.dumps(result))
        return result
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    # the pairs folder holds its data and dev split
    command = [*EMBEDTUNE, "train", "--pairs", str(out / f"pairs-{mining}" / "pairs")]
    command += ["--seed", str(seed), "-o", str(where / "model"), "--dev-pool-from", dev_pool]
    recipe = where / "recipe.yaml"  # the default preset, but for the pool's depth
    recipe.write_text(f"dev_pool: {depth}\n", encoding="utf-8")
    command += ["--config", str(recipe)]
    train_s = timed(command, env, where / "train.log")
    print(f"{arm} seed {seed}: trained in {train_s:.0f} s", flush=True)
    result = {"train_s": round(train_s, 1), **test(where, args, env)}
    result["per_query_hybrid_rrf"] = test_rrf(where, args, env)
    done.write_text(json.dumps(result))
    return result


def test(where: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Per-query test nDCG@10 of ``where``'s model: max-passage dense and hybrid."""
    if not (where / "model").is_dir():
        raise SystemExit(f"{where / 'model'} is gone: delete {where} to train it again")
    shutil.rmtree(where / "eval", ignore_errors=True)
    command = [*EMBEDTUNE, "eval", str(args.test), "--split", args.test_split, "--model"]
    # hybrid as embedtune ships it: fused with the weights training chose on its dev pool
    command += [str(where / "model"), "--systems", "tuned-maxp,tuned-hybrid", "--fusion", "dev"]
    timed([*command, "-o", str(where / "eval")], env, where / "eval.log")
    scores = json.loads((where / "eval" / "per_query.json").read_text())
    return {
        "per_query": scores["tuned-maxp"]["ndcg@10"],
        "per_query_hybrid": scores["tuned-hybrid"]["ndcg@10"],
        "hybrid_fusion": "dev",
        "dense_weight": _dense_weight(where),
    }


def test_rrf(where: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, float]:
    """Per-query test nDCG@10 of ``where``'s model fused with BM25 by reciprocal rank (no
    weight: what a BM25-only dev pool, which cannot tune one, falls back to)."""
    shutil.rmtree(where / "eval-rrf", ignore_errors=True)
    command = [*EMBEDTUNE, "eval", str(args.test), "--split", args.test_split, "--model"]
    command += [str(where / "model"), "--systems", "tuned-hybrid", "--fusion", "rrf"]
    timed([*command, "-o", str(where / "eval-rrf")], env, where / "eval-rrf.log")
    scores = json.loads((where / "eval-rrf" / "per_query.json").read_text())
    return dict(scores["tuned-hybrid"]["ndcg@10"])


def _dense_weight(where: Path) -> float | None:
    """The dense side's weight in the hybrid, as training chose it on its dev pool (1.0:
    the hybrid is the dense ranking alone)."""
    from embedtune.model_folder import read_settings

    settings = read_settings(where / "model")
    return None if settings is None else settings.fusion_weight("tuned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--test-split", default="test")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--pad", type=int, help="pad the training corpus to this many documents")
    parser.add_argument("--name", help="results folder name (default: the data folder's)")
    parser.add_argument(
        "--arms",
        default=",".join(ARMS),
        help="comma-separated arms to run (corpus always); the record keeps the arms of "
        "earlier invocations too",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = {"corpus", *args.arms.split(",")}
    if unknown := wanted - set(ARMS):
        parser.error(f"unknown arms {sorted(unknown)}; choose from {', '.join(ARMS)}")
    name = args.name or args.data.name + (f"-pad{args.pad}" if args.pad else "")
    out = OUT / name
    out.mkdir(parents=True, exist_ok=True)
    data = pad(args.data, args.split, args.pad, out / "data") if args.pad else args.data
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDTUNE_CACHE": str(out / "cache")}
    pairs = {m: build_pairs(m, args, data, out, env) for m in ("corpus", "candidates")}
    if not (out / "cache").exists():  # as `embedtune train DATA` would, training reads the
        # base model's encodings its pairs stage wrote (the timed pairs runs had their own)
        shutil.copytree(out / "pairs-corpus" / "cache", out / "cache")
    mined = {m: negatives(p["pairs"]) for m, p in pairs.items()}
    agree = sum(1 for k, v in mined["corpus"].items() if mined["candidates"].get(k) == v)
    same_pairs = mined["corpus"] == mined["candidates"]
    seeds_of: dict[str, dict[int, Any]] = {}
    reused: dict[str, str] = {}
    for arm, (mining, dev_pool, depth) in ARMS.items():
        finished = all((out / arm / f"seed-{s}" / "result.json").is_file() for s in seeds)
        if arm not in wanted and not finished:  # (an earlier invocation's are reported)
            continue
        twin = next(
            (
                a
                for a in seeds_of
                if ARMS[a][1:] == (dev_pool, depth) and (ARMS[a][0] == mining or same_pairs)
            ),
            None,
        )
        if twin is not None:  # the same pairs and dev pool: the same training (said below)
            seeds_of[arm], reused[arm] = seeds_of[twin], twin
            continue
        seeds_of[arm] = {s: train_and_test(arm, s, args, out, env) for s in seeds}
    record = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "data": str(args.data),
        "pad": args.pad,
        "test": f"{args.test} ({args.test_split})",
        "pairs": len(mined["corpus"]),
        "same_negatives": agree,
        "reused": reused,
        "arms": {
            arm: {
                "mining": ARMS[arm][0],
                "dev_pool_from": ARMS[arm][1],
                "dev_pool": ARMS[arm][2],
                "pairs_s": pairs[ARMS[arm][0]]["pairs_s"],
                "train_s": [runs[s]["train_s"] for s in seeds],
                "ndcg@10": [_mean(runs[s]["per_query"]) for s in seeds],
                "hybrid ndcg@10": [_mean(runs[s]["per_query_hybrid"]) for s in seeds],
                "hybrid dense weight": [runs[s].get("dense_weight") for s in seeds],
                "rrf hybrid ndcg@10": [_mean(runs[s]["per_query_hybrid_rrf"]) for s in seeds],
            }
            for arm, runs in seeds_of.items()
        },
    }
    KEPT.mkdir(parents=True, exist_ok=True)
    kept = dict(record)
    # every arm's and seed's test scores
    for key in ("per_query", "per_query_hybrid", "per_query_hybrid_rrf"):
        kept[f"{key}_ndcg@10"] = {a: {s: r[s][key] for s in seeds} for a, r in seeds_of.items()}
    (KEPT / f"{name}.json").write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
    print(summarise(record, seeds_of, seeds))


def _mean(scores: dict[str, float]) -> float:
    return round(float(np.mean(list(scores.values()))), 4)


def _averaged(runs: dict[int, Any], seeds: list[int], key: str = "per_query") -> np.ndarray:
    """Each test query's nDCG@10 averaged over the seeds (queries in a fixed order)."""
    queries = sorted(runs[seeds[0]][key])
    return np.array([np.mean([runs[s][key][q] for s in seeds]) for q in queries])


def _versus(
    runs: dict[int, Any], base: dict[int, Any], seeds: list[int], key: str, base_key: str = ""
) -> str:
    """The seed-averaged difference from ``base`` (its ``base_key`` scores, default ``key``)
    and its paired randomization test."""
    ours, theirs = _averaged(runs, seeds, key), _averaged(base, seeds, base_key or key)
    p = randomization_test(ours, theirs)
    return f"{(ours - theirs).mean():+.4f} (p = {p:.3f})"


def summarise(record: dict[str, Any], seeds_of: dict[str, Any], seeds: list[int]) -> str:
    head = " | ".join(f"seed {s}" for s in seeds)
    rows = [
        f"| arm | pairs s | train s (mean) | {head} | mean nDCG@10 | vs corpus "
        "| hybrid mean | hybrid vs corpus | hybrid's dense weight (dev) | RRF hybrid mean "
        "| RRF hybrid vs corpus's hybrid |"
    ]
    rows.append("|---|---:|---:|" + "---:|" * (len(seeds) + 4) + "---|---:|---:|")
    base = seeds_of["corpus"]
    for arm, r in record["arms"].items():
        values = " | ".join(f"{v:.4f}" for v in r["ndcg@10"])
        dense = hybrid = "—"
        if arm != "corpus":
            dense = _versus(seeds_of[arm], base, seeds, "per_query")
            hybrid = _versus(seeds_of[arm], base, seeds, "per_query_hybrid")
        # the RRF hybrid of every arm (corpus too) against today's dev-weighted hybrid
        rrf = _versus(seeds_of[arm], base, seeds, "per_query_hybrid_rrf", "per_query_hybrid")
        rows.append(
            f"| {arm} | {r['pairs_s']:.0f} | {np.mean(r['train_s']):.0f} | {values} | "
            f"{np.mean(r['ndcg@10']):.4f} | {dense} | {np.mean(r['hybrid ndcg@10']):.4f} "
            f"| {hybrid} | {', '.join(str(w) for w in r['hybrid dense weight'])} "
            f"| {np.mean(r['rrf hybrid ndcg@10']):.4f} | {rrf} |"
        )
    notes = [
        f"{record['same_negatives']} of {record['pairs']} pairs have the same negatives "
        "in both mining modes."
    ]
    notes += [
        f"{arm} reuses {twin}'s models (same pairs and dev pool: the same training)."
        for arm, twin in record["reused"].items()
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(notes)


if __name__ == "__main__":
    main()
