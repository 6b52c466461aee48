"""Evaluate BM25 and the untuned base model on the shared domain collections.

For each collection: bm25, base (truncated at 256 tokens), base-maxp and base-hybrid (RRF),
on its test split, with the default passage window (chosen on train/dev, bench/tune_passages.py).
Writes each report under bench/out/<collection>/ and a markdown table to
bench/out/eval_shared.md for BENCHMARKS.md.

    .venv/bin/python bench/eval_shared.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

from embedtune.evaluate.config import EvalConfig
from embedtune.evaluate.evaluate import evaluate_models
from embedtune.evaluate.report import significance_marks

COLLECTIONS = [
    ("finance10k/test", "test"),
    ("mediqa2019-qa", "test"),
    ("cranfield", "test"),
    ("cacm", "test"),
]
SYSTEMS = ["bm25", "base", "base-maxp", "base-hybrid"]


def _cell(report: dict, system: str, metric: str) -> str:
    value = report["systems"][system][metric]
    return f"{value:.3f}{significance_marks(report, system, metric)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args()
    lines = [
        f"Measured {date.today()} on {platform.machine()} ({platform.processor() or 'CPU'}), "
        "command `.venv/bin/python bench/eval_shared.py`.",
        "",
        "| collection | queries | docs | system | nDCG@10 (95% CI) | MRR@10 | Recall@100 | "
        "MAP@100 | hit@5 | seconds |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for folder, split in COLLECTIONS:
        # cranfield holds an empty document (line 471); it is skipped and counted in the report
        config = EvalConfig(
            data=f"{args.data}/{folder}",
            split=split,
            systems=SYSTEMS,
            show_progress=False,
            skip_bad=True,
        )
        start = time.perf_counter()
        report = evaluate_models(config, Path(args.out) / folder.replace("/", "-")).report
        elapsed = time.perf_counter() - start
        data = report["data"]
        for system in SYSTEMS:
            lo, hi = report["intervals"][system]["ndcg@10"]
            cells = [_cell(report, system, m) for m in ("mrr@10", "recall@100", "map@100", "hit@5")]
            seconds = report["timings"].get(system, {}).get("seconds", 0.0)
            lines.append(
                f"| {folder} | {data['evaluated_queries']} | {data['counts']['documents']} | "
                f"{system} | {_cell(report, system, 'ndcg@10')} ({lo:.3f}–{hi:.3f}) | "
                + " | ".join(cells)
                + f" | {seconds:.0f} |"
            )
        if data["skipped"]:
            lines.append(f"| {folder} | | | skipped as bad input: {data['skipped']} | | | | | | |")
        print(
            json.dumps(
                {
                    "collection": folder,
                    "seconds": round(elapsed),
                    "ndcg@10": {s: round(report["systems"][s]["ndcg@10"], 4) for s in SYSTEMS},
                }
            ),
            flush=True,
        )
    lines += [
        "",
        "† significantly different from bm25, ‡ from base (paired randomization test, "
        "10,000 permutations, p < 0.05). Hybrid seconds are the fusion step only.",
    ]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "eval_shared.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
