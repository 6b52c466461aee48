"""Seconds per MLM pretraining step: the model's own forward (every position projected onto
the vocabulary) against embedtune's (only the masked positions), on the packaged base model.

Both arms train the same model copy from the same weights on the same blocks of a real corpus
(the mlm strategy's 256-token blocks, its batch of 16, 15% masked), one step of each arm in
turn, so a busy machine slows both alike; the first step of each arm is a warm-up, not timed.

.venv/bin/python bench/mlm_step.py --steps 6 --out bench/out/mlm_step.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

DATA = "../shared/data/mediqa2019-qa"  # run from the repository root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per arm")
    parser.add_argument("--out", type=Path, default=Path("bench/out/mlm_step.json"))
    args = parser.parse_args()

    import torch
    from transformers import DataCollatorForLanguageModeling

    from embedtune.corpus.load import load_beir
    from embedtune.models import load_model, resolve_model
    from embedtune.train.strategies.base import transformer
    from embedtune.train.strategies.mlm import _blocks, _masked_positions_only, _mlm_model

    torch.manual_seed(0)
    model = load_model(resolve_model(None), device="cpu")
    texts = [d.full_text for d in load_beir(DATA, "test", skip_bad=True).corpus.values()]
    blocks = _blocks(model.tokenizer, texts[:2000], 256)
    collate = DataCollatorForLanguageModeling(model.tokenizer, mlm_probability=0.15, seed=1)
    own = _mlm_model(transformer(model))
    arms = {
        "model forward": own,
        "masked positions only": _masked_positions_only(copy.deepcopy(own)),
    }
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=5e-5) for k, m in arms.items()}
    seconds: dict[str, list[float]] = {k: [] for k in arms}
    for step in range(args.steps + 1):
        batch = collate([{"input_ids": b} for b in blocks[step * 16 : (step + 1) * 16]])
        for name, mlm in arms.items():
            mlm.train()
            started = time.perf_counter()
            mlm(**batch).loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad()
            if step:  # the first step of each arm warms up
                seconds[name].append(time.perf_counter() - started)
            print(f"step {step} {name}: {time.perf_counter() - started:.2f} s", flush=True)
    result = {
        "threads": torch.get_num_threads(),
        "batch": 16,
        "block_tokens": 256,
        "steps": args.steps,
        "seconds_per_step": {k: round(statistics.median(v), 2) for k, v in seconds.items()},
        "all_seconds": {k: [round(s, 2) for s in v] for k, v in seconds.items()},
    }
    median = result["seconds_per_step"]
    result["speedup"] = round(median["model forward"] / median["masked positions only"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
