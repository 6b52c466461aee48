"""The label-free path under issue 18's defaults: its pseudo-dev pool and its mining, today's
against ones whose cost follows the queries.

Label-free training (``--supervision weak``) scores its checkpoints, and chooses its
interpolation weight, on a pseudo-dev split drawn from the corpus. With today's pool (the
top 100 of BM25 and of the base model per pseudo-dev query) that pool covered 2,381 of
mediqa2019-qa's 2,397 answers, and the pseudo-dev evaluations were most of the cell's time.
This runs the same cell as examples/compare-mediqa.yaml's ``weak`` (same data, recipe, seed
and pseudo-queries), made with the ``bm25+base`` pool of 100 and whole-corpus mining, with
only the pool and the mining changed, through the real ``embedtune compare``, and tests its
per-query test nDCG@10 (dense max-passage and hybrid) against the kept ``weak`` cell:

    HF_HUB_OFFLINE=1 .venv/bin/python bench/weak_pool.py --dev-pool 30 --dev-pool-from bm25 \
        --mining candidates

The forgetting probe (cranfield) is left out: it is scored after training and changes
nothing that is compared here. Writes bench/out/weak-pool/ (the comparison folder) and
bench/results/weak-pool.json (committed: the new cell's record, with its per-query scores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from embedtune.retrieval.stats import randomization_test

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "weak-pool"
KEPT = HERE / "results" / "weak-pool.json"
AGAINST = HERE / "results" / "mediqa2019-qa" / "cells" / "weak"
EMBEDTUNE = str(Path(sys.executable).parent / "embedtune")  # the installed CLI


def config(pool: int, pool_from: str, mining: str) -> dict[str, Any]:
    """examples/compare-mediqa.yaml's weak cell, but for the pool and the mining (and
    without probes)."""
    spec = json.loads((AGAINST / "spec.json").read_text(encoding="utf-8"))
    recipe = {k: v for k, v in spec["recipe"].items() if k not in {"probes", "strategy"}}
    recipe |= {"dev_pool": pool, "dev_pool_from": pool_from}
    recipe["pairs"] = {**recipe.get("pairs", {}), "mining": mining}
    return {
        "output": str(OUT / f"{mining}-pool-{pool_from}-{pool}"),
        "preset": "default",
        "data": spec["data"],
        "train": {k: v for k, v in recipe.items() if k != "supervision"},
        "eval": {"systems": spec["eval"]["systems"]},
        "approaches": ["weak"],
    }


def _scores(cell: Path, system: str) -> dict[str, float]:
    per_query = json.loads((cell / "eval" / "per_query.json").read_text(encoding="utf-8"))
    return per_query[system]["ndcg@10"]


def _against(cell: Path, system: str) -> dict[str, Any]:
    """The new cell's per-query nDCG@10 against the kept cell's: mean difference and the
    paired randomization test's p (the kept cell's scores are rounded to 6 decimals; the
    test counts smaller differences as ties). The kept cells hold per-query scores of
    tuned-maxp, base-maxp and bm25 only (bench/compare_snapshot.py)."""
    kept = json.loads((AGAINST / "eval" / "per_query.json").read_text(encoding="utf-8"))
    if system not in kept:
        return {"not tested": f"{AGAINST.name}'s kept per-query scores lack {system}"}
    ours, theirs = _scores(cell, system), kept[system]["ndcg@10"]
    queries = sorted(theirs)
    a = np.array([ours[q] for q in queries])
    b = np.array([theirs[q] for q in queries])
    return {"new - today": round(float((a - b).mean()), 4), "p": randomization_test(a, b)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev-pool", type=int, default=30)
    parser.add_argument("--dev-pool-from", default="bm25", choices=["bm25", "bm25+base"])
    parser.add_argument("--mining", default="candidates", choices=["candidates", "corpus"])
    args = parser.parse_args()
    settings = config(args.dev_pool, args.dev_pool_from, args.mining)
    OUT.mkdir(parents=True, exist_ok=True)
    path = Path(settings["output"] + ".yaml")
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    done = subprocess.run([EMBEDTUNE, "compare", str(path)])  # resumes a stopped run
    if done.returncode != 0:
        raise SystemExit(f"embedtune compare {path} failed ({done.returncode})")
    cell = Path(settings["output"]) / "cells" / "weak"
    new = json.loads((cell / "cell.json").read_text())
    old = json.loads((AGAINST / "cell.json").read_text())
    record = {
        "pool": f"{args.dev_pool} from {args.dev_pool_from}",
        "mining": args.mining,
        "against": str(AGAINST.relative_to(HERE.parent)),
        "rows": {
            name: {
                "train_s": c["train_seconds"],
                "cell_s": c["wall_seconds"],
                "pseudo-dev tuned": c["dev"]["tuned"]["ndcg@10"],
                "interpolation alpha": c.get("interpolation_alpha"),
                "tuned-maxp": c["scores"]["tuned-maxp"]["ndcg@10"]["value"],
                "tuned-hybrid": c["scores"]["tuned-hybrid"]["ndcg@10"]["value"],
            }
            for name, c in (("today", old), ("new", new))
        },
        "tests": {system: _against(cell, system) for system in ("tuned-maxp", "tuned-hybrid")},
        "per_query_ndcg@10": _scores(cell, "tuned-maxp"),
    }
    KEPT.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in record.items() if k != "per_query_ndcg@10"}, indent=1))


if __name__ == "__main__":
    main()
