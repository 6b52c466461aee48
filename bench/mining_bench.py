"""Mining cost: whole-corpus mining against candidate mining (issue 18), on one collection.

For each mode, the labeled pairs of the training split are mined with the default recipe and
the base model, with no embedding cache (every passage a mode needs is encoded): wall time,
passages encoded, pairs, and how many pairs get the same negatives in both modes. Quality on
test (training on each mode's pairs, 3 seeds) is a separate, longer measurement.

    .venv/bin/python bench/mining_bench.py [--data ../shared/data/finance10k --split train]
        [--int8 EXPORT]

With ``--int8 EXPORT`` (an ``embedtune export`` folder of the base model), whole-corpus mining
is also run with the int8 ONNX encoder (``pairs.mining_encoder``): its time, and how many
pairs get the same negatives as PyTorch's.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from datetime import date
from pathlib import Path

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.load import load_beir
from embedtune.corpus.splits import hold_out_dev
from embedtune.models import load_model, resolve_model
from embedtune.pairs.config import PairsConfig
from embedtune.pairs.mine import mine_labeled_pairs
from embedtune.retrieval.dense import DenseEncoder

OUT = Path(__file__).resolve().parent / "out" / "mining"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/finance10k")
    parser.add_argument("--split", default="train")
    parser.add_argument("--depth", type=int, default=100, help="candidate_depth")
    parser.add_argument("--int8", help="export folder of the base model: add the int8 arm")
    args = parser.parse_args()
    dataset = load_beir(args.data, args.split)
    train_ids, _ = hold_out_dev(dataset.qrels, 0.15, 0)  # the queries the pairs stage mines
    ref = resolve_model("base")
    model = load_model(ref, device="cpu")
    results: dict[str, dict[str, float | int]] = {}
    pairs_of = {}
    modes = ["corpus", "candidates"] + (["corpus-int8"] if args.int8 else [])
    for mode in modes:
        encoder = DenseEncoder(model, ref, cache_dir=None)
        if mode == "corpus-int8":
            # what the pairs stage does with pairs.mining_encoder (passages cut by the base
            # model's tokenizer, vectors from the int8 ONNX model)
            from embedtune.pairs.build import _PassagesCutByBase
            from embedtune.retrieval.onnx import OnnxEncoder

            onnx = _PassagesCutByBase(OnnxEncoder(args.int8, "int8"), model.tokenizer)
            encoder = DenseEncoder(onnx, ref, cache_dir=None)
        config = PairsConfig.model_validate(
            {"mining": mode.removesuffix("-int8"), "candidate_depth": args.depth}
        )
        start = time.perf_counter()
        pairs, summary = mine_labeled_pairs(
            dataset, encoder, PassageConfig(), config, query_ids=train_ids
        )
        seconds = time.perf_counter() - start
        pairs_of[mode] = pairs
        results[mode] = {
            "seconds": round(seconds, 1),
            "passages": summary["passages"]["count"],
            "encoded": encoder.stats.encoded,
            "pairs": len(pairs),
            "with_negatives": sum(1 for p in pairs if p.negatives),
        }
        print(mode, results[mode], flush=True)
    same = {
        other: sum(
            a.negatives == b.negatives
            for a, b in zip(pairs_of["corpus"], pairs_of[other], strict=True)
        )
        for other in modes[1:]
    }
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, CPU",
        "data": f"{args.data} ({args.split}), {len(train_ids)} training queries",
        "candidate_depth": args.depth,
        "modes": results,
        "same_negatives": same,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    name = Path(args.data).name
    (OUT / f"{name}.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
