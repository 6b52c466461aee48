"""Why LoRA peaks above full fine-tuning in the strategy table: one forward + backward pass of
the default model on a training-sized batch (32 triplets = 96 sequences of 256 tokens, one
CPU thread), full fine-tuning against LoRA (r 16, embedtune's default targets) with and
without LoRA dropout, each in a fresh process; prints each process's peak resident memory.

    .venv/bin/python bench/lora_memory.py
"""

from __future__ import annotations

import resource
import subprocess
import sys

import torch


def one_step(mode: str) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    from embedtune.models import resolve_model
    from embedtune.train.config import TrainConfig

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = AutoModel.from_pretrained(resolve_model("default").path)
    if mode != "full":
        targets = TrainConfig().lora_targets
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=float(mode), target_modules=targets)
        model = get_peft_model(model, lora)
    model.train()
    ids = torch.randint(1000, 20000, (96, 256))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
    out.mean(1).pow(2).sum().backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    label = "full fine-tuning" if mode == "full" else f"lora, dropout {mode}"
    print(f"{label}: peak RSS {peak:,.0f} MB", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        one_step(sys.argv[1])
    else:
        for mode in ("full", "0.1", "0.0"):
            subprocess.run([sys.executable, __file__, mode], check=True)
