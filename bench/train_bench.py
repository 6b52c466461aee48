"""Fine-tuning benchmark: `embedtune run` (default recipe) on a collection, over several seeds.

Trains on the collection's train split (dev: its dev split, or 15% of train held out), then
evaluates once on the test split: bm25, base(-maxp/-hybrid), tuned(-maxp/-hybrid). Reports mean
± sd over seeds of nDCG@10, the p-values of tuned-maxp vs base-maxp and tuned-hybrid vs
base-hybrid, wall time of pairs + training, and the peak resident memory of the whole process.

    .venv/bin/python bench/train_bench.py finance10k --seeds 1,2,3

Label-free (``--supervision weak``): the model learns from the training corpus alone (its
queries and judgments are never read; dev is the pseudo-dev split of the weak labels), then
is evaluated once on the real test queries. cranfield and cacm have only a test split: their
corpus is what weak supervision reads, and their test queries are used only for evaluation.

    .venv/bin/python bench/train_bench.py cranfield --supervision weak --seeds 1

A label-free recipe (``--recipe``, see WEAK_RECIPES) is chosen on the pseudo-dev scores of
finance10k and mediqa2019-qa only; cranfield and cacm are then run once with the chosen one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from embedtune.io import write_json

# label-free runs train on at most this many weak pairs (a seeded sample): a CPU budget, the
# size of finance10k's labeled training set ×2, so a run fits in minutes
WEAK_MAX_PAIRS = 2000

# label-free recipes: train settings on top of the preset (the chosen one is named in
# BENCHMARKS.md with the pseudo-dev scores that chose it)
WEAK_RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    # tuned weights interpolated with the base, the ratio chosen on the pseudo-dev split
    "interp": {"interpolate": True},
    # no key-phrase training queries (they are bags of rare words, unlike real queries);
    # still judged on key-phrase and title dev queries
    "nokp-interp": {
        "interpolate": True,
        "weak": {"sources": ["title", "adjacent", "lead", "sentence"]},
    },
}

COLLECTIONS = {
    "finance10k": {
        "train": "finance10k",
        "train_split": "train",
        "test": "finance10k",
        "test_split": "test",
    },
    "mediqa2019-qa": {
        "train": "mediqa2019-qa",
        "train_split": "train",
        "dev_split": "dev",
        "test": "mediqa2019-qa",
        "test_split": "test",
    },
    # label-free only (no training labels): the corpus comes from the test split's folder;
    # cranfield has a few empty documents (skipped and counted in the manifest)
    "cranfield": {
        "train": "cranfield",
        "train_split": "test",
        "test": "cranfield",
        "test_split": "test",
        "skip_bad": True,
    },
    "cacm": {"train": "cacm", "train_split": "test", "test": "cacm", "test_split": "test"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("collection", choices=sorted(COLLECTIONS))
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", default="bench/out/train")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--supervision", choices=["labels", "weak"], default="labels")
    parser.add_argument("--recipe", choices=sorted(WEAK_RECIPES), default="default")
    args = parser.parse_args()
    if args.supervision == "labels" and args.collection in {"cranfield", "cacm"}:
        raise SystemExit(f"{args.collection} has no training labels: use --supervision weak")
    if args.recipe != "default" and args.supervision != "weak":
        raise SystemExit("--recipe is a label-free recipe: add --supervision weak")
    tag = args.preset if args.supervision == "labels" else f"{args.preset}-weak"
    if args.recipe != "default":
        tag += f"-{args.recipe}"
    recipe = WEAK_RECIPES[args.recipe]
    rows = []
    for seed in map(int, args.seeds.split(",")):
        folder = Path(args.out) / f"{args.collection}-{tag}-seed{seed}"
        data = {
            k: (f"{args.data}/{v}" if k in {"train", "test"} else v)
            for k, v in COLLECTIONS[args.collection].items()
            if not (args.supervision == "weak" and k == "dev_split")
        }
        config = {
            "output": str(folder),
            "data": data,
            "preset": args.preset,
            "train": {"seed": seed, "supervision": args.supervision}
            | recipe
            | (
                {"weak": {"max_pairs": WEAK_MAX_PAIRS, **recipe.get("weak", {})}}
                if args.supervision == "weak"
                else {}
            ),
        }
        path = Path(args.out) / f"{folder.name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "embedtune", "run", str(path)])
        # this run's own peak resident memory (wait4), not the maximum over earlier seeds
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"embedtune run {path} failed with exit code {child.returncode}")
        wall = time.perf_counter() - start
        peak_mb = usage.ru_maxrss / 1024
        report = json.loads((folder / "eval" / "report.json").read_text())
        stages = {
            s: json.loads((folder / "stages" / f"{s}.json").read_text()).get("stage_seconds")
            for s in ("pairs", "train")
        }
        sig = report["significance"]
        settings = json.loads((folder / "model" / "embedtune.json").read_text())
        row = {
            "seed": seed,
            "dev_ndcg@10": {
                k: round(v["ndcg@10"], 4) for k, v in settings["dev"].items() if isinstance(v, dict)
            },
            "dev_rule": settings["data"]["dev"]["rule"],
            "pairs": settings["pairs"],
            "ndcg@10": {s: round(v["ndcg@10"], 4) for s, v in report["systems"].items()},
            "p_tuned_maxp_vs_base_maxp": sig["tuned-maxp"]["base-maxp"]["ndcg@10"]["p"],
            "p_tuned_hybrid_vs_base_hybrid": sig["tuned-hybrid"]["base-hybrid"]["ndcg@10"]["p"],
            "p_tuned_maxp_vs_bm25": sig["tuned-maxp"]["bm25"]["ndcg@10"]["p"],
            "p_tuned_vs_base": sig["tuned"]["base"]["ndcg@10"]["p"],
            "p_tuned_maxp_vs_base": sig["tuned-maxp"]["base"]["ndcg@10"]["p"],
            "pairs_train_seconds": (stages["pairs"] or 0) + (stages["train"] or 0),
            "wall_seconds": round(wall),
            "peak_rss_mb": round(peak_mb),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    # seeds run earlier (another invocation, e.g. --seeds 2,3 after --seeds 1) stay in the summary
    summary_path = Path(args.out, f"{args.collection}-{tag}.json")
    ran = {r["seed"] for r in rows}
    if summary_path.exists():
        earlier = json.loads(summary_path.read_text())["rows"]
        rows = sorted([r for r in earlier if r["seed"] not in ran] + rows, key=lambda r: r["seed"])
    summary = {}
    for system in rows[0]["ndcg@10"]:
        values = [r["ndcg@10"][system] for r in rows]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        summary[system] = f"{statistics.mean(values):.3f} ± {sd:.3f}"
    seeds = [r["seed"] for r in rows]
    print(json.dumps({"collection": args.collection, "seeds": seeds, "ndcg@10": summary}))
    # atomic: the file now holds earlier invocations' seeds, which a torn write would lose
    write_json(summary_path, {"rows": rows, "summary": summary})


if __name__ == "__main__":
    main()
