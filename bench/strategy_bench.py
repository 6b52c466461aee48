"""Strategy table: every adaptation strategy on finance10k under the same training budget.

Each variant is one `embedtune run` (default recipe: same pairs, epochs, batch size, so the
same number of contrastive steps; seed 1) trained on finance10k/train and evaluated once on
finance10k/test. Reported per variant: nDCG@10 of tuned-maxp and tuned-hybrid (and p-values
against base-maxp / base-hybrid), trainable parameters, wall time of pairs + training, peak
resident memory of the whole process, model size on disk, and forgetting: nDCG@10 of base
and tuned on general probe collections (cranfield, cacm: out of the finance domain).

Learning rates for the parameter-efficient strategies follow PEFT practice (LoRA 5e-4, IA3
3e-3), not tuning on test.

    .venv/bin/python bench/strategy_bench.py --variants full,lora,layers,adapter,mlm,full+vocab
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "lora": {"strategy": "lora", "learning_rate": 5e-4},
    "layers": {"strategy": "layers"},
    "adapter": {"strategy": "adapter", "learning_rate": 3e-3},
    "mlm": {"strategy": "mlm"},
    "full+vocab": {"extend_vocab": 100},
    "full+interpolate": {"interpolate": True},
}


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def run_variant(name: str, args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(args.out) / name.replace("+", "-")
    # cranfield holds two empty documents: skipped (and counted), as in every cranfield run
    probes = [{"data": f"{args.data}/{p}", "skip_bad": True} for p in args.probes.split(",") if p]
    config = {
        "output": str(folder),
        "data": {
            "train": f"{args.data}/finance10k",
            "train_split": "train",
            "test": f"{args.data}/finance10k",
            "test_split": "test",
        },
        "preset": "default",
        "train": {"seed": args.seed, "probes": probes, **VARIANTS[name]},
    }
    path = folder.parent / f"{folder.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "embedtune", "run", str(path)])
    _, status, usage = os.wait4(child.pid, 0)  # this run's own peak resident memory
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"embedtune run {path} failed")
    report = json.loads((folder / "eval" / "report.json").read_text())
    settings = json.loads((folder / "model" / "embedtune.json").read_text())
    stages = {
        s: json.loads((folder / "stages" / f"{s}.json").read_text()).get("stage_seconds") or 0
        for s in ("pairs", "train")
    }
    sig = report["significance"]
    return {
        "variant": name,
        "settings": VARIANTS[name],
        "ndcg@10": {s: round(v["ndcg@10"], 4) for s, v in report["systems"].items()},
        "p_tuned_maxp_vs_base_maxp": sig["tuned-maxp"]["base-maxp"]["ndcg@10"]["p"],
        "p_tuned_hybrid_vs_base_hybrid": sig["tuned-hybrid"]["base-hybrid"]["ndcg@10"]["p"],
        "dev_tuned_ndcg@10": round(settings["dev"]["tuned"]["ndcg@10"], 4),
        "trainable_parameters": settings["training"]["trainable_parameters"],
        "parameters": settings["training"]["parameters"],
        "pairs_train_seconds": round(stages["pairs"] + stages["train"]),
        "wall_seconds": round(time.perf_counter() - start),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "size_mb": round(_size_mb(folder / "model"), 1),
        "adaptation": settings.get("adaptation", {}),
        "forgetting": settings.get("forgetting", {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--probes", default="cranfield,cacm")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="bench/out/strategies")
    args = parser.parse_args()
    results = Path(args.out) / "results.jsonl"
    for name in args.variants.split(","):
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name}: choose from {', '.join(VARIANTS)}")
        row = run_variant(name, args)
        row["adaptation"] = {  # the list of added terms is long; keep the count and a sample
            k: ({**v, "terms": v["terms"][:10]} if k == "vocabulary" else v)
            for k, v in row["adaptation"].items()
        }
        print(json.dumps(row), flush=True)
        with results.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
