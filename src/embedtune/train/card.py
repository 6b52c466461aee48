"""The model card (README.md) saved with every trained model."""

from __future__ import annotations

import json
from typing import Any


def _row(name: str, metrics: dict[str, float]) -> str:
    return (
        f"| {name} | {metrics['ndcg@10']:.4f} | {metrics['mrr@10']:.4f} | "
        f"{metrics['recall@100']:.4f} |"
    )


def _fusion_line(settings: dict[str, Any]) -> str:
    fusion = settings.get("fusion")
    if not fusion:
        return ""
    return (
        f"Hybrid with BM25: weighted sum of min-max-normalised scores, dense weight "
        f"{fusion['tuned']['weight']:.2f} for this model and {fusion['base']['weight']:.2f} for "
        f"the base model, chosen on {fusion['tuned_on']}.\n"
    )


def render_card(settings: dict[str, Any]) -> str:
    """Base model, data, config, seed and dev metrics against base and BM25, with the outcome."""
    dev = settings["dev"]
    outcome = settings["outcome"]
    verdict = "\n".join(f"- {note}" for note in outcome["notes"])
    dev_info = settings["data"].get("dev", {})
    # how dev was drawn, and over which corpus (the whole one, or a candidate pool)
    dev_rule = "; ".join(str(dev_info[k]) for k in ("rule", "corpus") if k in dev_info) or "dev"
    return f"""---
library_name: sentence-transformers
base_model: {settings["base_model"]["name"]}
tags: [sentence-transformers, embedtune, {settings["strategy"]}]
---

# Domain-tuned {settings["base_model"]["name"]}

Made by embedtune with the `{settings["strategy"]}` strategy. Loads anywhere with
`SentenceTransformer("<this folder>")`; no embedtune needed.

## Outcome on dev ({dev_rule})

{verdict}

| system | nDCG@10 | MRR@10 | Recall@100 |
|---|---:|---:|---:|
{_row("bm25", dev["bm25"])}
{_row("base (max-passage)", dev["base"])}
{_row("tuned (max-passage)", dev["tuned"])}

{_fusion_line(settings)}
Documents are scored by their best passage: windows of {settings["passages"]["window"]} tokens,
stride {settings["passages"]["stride"]} (stored in `embedtune.json`). Held-out test numbers come
from `embedtune eval DATA --split test --model <this folder>`.

## Lineage

- base model: `{settings["base_model"]["name"]}` (sha256 `{settings["base_model"]["sha256"]}`)
- seed: {settings["seed"]}; pairs: {settings["pairs"]}; steps: {settings["training"]["steps"]};
  trainable parameters: {settings["training"]["trainable_parameters"]:,} of
  {settings["training"]["parameters"]:,}

## Data manifest

```json
{json.dumps(settings["data"], indent=2)[:6000]}
```

## Config

```json
{json.dumps(settings["config"], indent=2)}
```
"""
