"""Choose the default passage window/stride for max-passage scoring on train/dev data only.

Runs base-maxp with the base model on finance10k/train and mediqa2019-qa train + dev for each
candidate window (stride = window / 2) and prints nDCG@10; the defaults in
``embedtune.corpus.config.PassageConfig`` come from this table. No test split is touched.

    .venv/bin/python bench/tune_passages.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from embedtune.corpus.config import PassageConfig
from embedtune.evaluate.config import EvalConfig
from embedtune.evaluate.evaluate import evaluate_models

TUNING_SETS = [("finance10k/train", "train"), ("mediqa2019-qa", "train"), ("mediqa2019-qa", "dev")]
WINDOWS = [64, 96, 128, 192, 254]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", default="bench/out/tune_passages.json")
    parser.add_argument("--base-model", default="base")
    args = parser.parse_args()
    rows = []
    for window in WINDOWS:
        row: dict[str, object] = {"window": window, "stride": window // 2}
        start = time.perf_counter()
        for folder, split in TUNING_SETS:
            config = EvalConfig(
                data=f"{args.data}/{folder}",
                split=split,
                systems=["base-maxp"],
                base_model=args.base_model,
                passages=PassageConfig(window=window, stride=window // 2),
                show_progress=False,
                permutations=100,
                bootstrap=100,
            )
            report = evaluate_models(config).report
            row[f"{folder}:{split}"] = round(report["systems"]["base-maxp"]["ndcg@10"], 4)
        row["seconds"] = round(time.perf_counter() - start, 1)
        scores = [row[f"{f}:{s}"] for f, s in TUNING_SETS]
        row["mean"] = round(sum(scores) / len(scores), 4)  # type: ignore[arg-type]
        rows.append(row)
        print(json.dumps(row), flush=True)
    best = max(rows, key=lambda r: r["mean"])  # type: ignore[arg-type,return-value]
    print(f"best window {best['window']} stride {best['stride']} (mean nDCG@10 {best['mean']})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": rows, "best": best}, indent=2))


if __name__ == "__main__":
    main()
