"""Choose the default training recipe on train/dev data only (never a test split).

Trains the base model with each recipe of a small grid on finance10k/train (dev: 15% of its
queries held out, grouped by relevant document) and mediqa2019-qa (train → its dev split), and
prints each recipe's dev nDCG@10 (max-passage), with the untuned base model and BM25 on the same
dev queries. The recipe with the best mean dev nDCG@10 becomes `default` in
src/embedtune/train/defaults.yaml.

    .venv/bin/python bench/sweep_recipe.py [--data ../shared/data] [--grid small]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from embedtune.run import fine_tune
from embedtune.run.config import merge_settings, preset

TUNING = [("finance10k/train", "train", None), ("mediqa2019-qa", "train", "dev")]
GRIDS: dict[str, dict[str, list[Any]]] = {
    "small": {"epochs": [1, 2, 4], "learning_rate": [2e-5, 5e-5, 1e-4]},
    "negatives": {
        "pairs.negatives.sources": [["bm25"], ["base"], ["bm25", "base"]],
        "pairs.negatives.per_query": [1, 3],
    },
}


def _nested(key: str, value: Any) -> dict[str, Any]:
    head, _, rest = key.partition(".")
    return {head: _nested(rest, value) if rest else value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--grid", default="small", choices=sorted(GRIDS))
    parser.add_argument("--base", default="{}", help="JSON overrides applied to every recipe")
    parser.add_argument("--base-model", default="base")
    parser.add_argument("--out", default="bench/out/sweep_recipe.jsonl")
    parser.add_argument("--limit", type=int, default=0, help="stop after this many recipes")
    args = parser.parse_args()
    grid = GRIDS[args.grid]
    keys = list(grid)
    rows = []
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    for values in combos[: args.limit or None]:
        recipe: dict[str, Any] = json.loads(args.base)
        for key, value in zip(keys, values, strict=True):
            recipe = merge_settings(recipe, _nested(key, value))
        options = merge_settings(
            merge_settings(preset("default"), recipe), {"base_model": args.base_model}
        )
        row: dict[str, Any] = {"recipe": recipe}
        for folder, split, dev_split in TUNING:
            tmp = Path(tempfile.mkdtemp(prefix="sweep-"))
            start = time.perf_counter()
            result = fine_tune(
                tmp / "model",
                options,
                data=f"{args.data}/{folder}",
                split=split,
                dev_split=dev_split,
            )
            dev = result.settings.dev
            row[folder] = {
                "tuned": round(dev.tuned["ndcg@10"], 4),
                "base": round(dev.base["ndcg@10"], 4),
                "bm25": round(dev.bm25["ndcg@10"], 4),
                "seconds": round(time.perf_counter() - start, 1),
            }
            shutil.rmtree(tmp, ignore_errors=True)
        row["mean_tuned"] = round(sum(row[f]["tuned"] for f, _, _ in TUNING) / len(TUNING), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(row) + "\n")
    best = max(rows, key=lambda r: r["mean_tuned"])
    print("best:", json.dumps(best))


if __name__ == "__main__":
    main()
