"""The model card (README.md) saved with every trained model."""

from __future__ import annotations

import json
from typing import Any

from embedtune.model_folder import SETTINGS_FILE


def _row(name: str, metrics: dict[str, float]) -> str:
    return (
        f"| {name} | {metrics['ndcg@10']:.4f} | {metrics['mrr@10']:.4f} | "
        f"{metrics['recall@100']:.4f} |"
    )


def _fusion_line(settings: dict[str, Any]) -> str:
    fusion = settings.get("fusion")
    if not fusion:
        return ""
    if fusion.get("method") == "rrf":
        return f"Hybrid with BM25: reciprocal-rank fusion ({fusion['why']}).\n"
    return (
        f"Hybrid with BM25: weighted sum of min-max-normalised scores, dense weight "
        f"{fusion['tuned']['weight']:.2f} for this model and {fusion['base']['weight']:.2f} for "
        f"the base model, chosen on {fusion['tuned_on']}.\n"
    )


def _loading(settings: dict[str, Any]) -> str:
    if settings["config"].get("save_adapter"):
        return (
            'An adapter, not full weights: `SentenceTransformer("<this folder>")` loads it with '
            f"`peft` installed and the base model `{settings['base_model']['name']}` reachable "
            "(or, in embedtune, `EMBEDTUNE_ADAPTER_BASE=<base folder>`)."
        )
    if settings["config"].get("strategy") == "bottleneck":
        return (
            "Bottleneck adapters inside the model: "
            '`SentenceTransformer("<this folder>", trust_remote_code=True)` loads it with '
            "embedtune installed (the adapter module is embedtune's; a plain transformers load "
            "drops the adapters). embedtune's own commands load it as it is."
        )
    return 'Loads anywhere with `SentenceTransformer("<this folder>")`; no embedtune needed.'


def _adaptation(settings: dict[str, Any]) -> str:
    """New tokens, domain pretraining, and what the tuning cost on general data."""
    lines = []
    vocabulary = settings.get("adaptation", {}).get("vocabulary")
    if vocabulary:
        terms = ", ".join(t["term"] for t in vocabulary["terms"][:20])
        lines.append(f"- {vocabulary['added']} domain terms added as tokens: {terms}")
    mlm = settings.get("adaptation", {}).get("strategy", {}).get("mlm")
    if mlm and "steps" in mlm:
        lines.append(
            f"- masked-LM pretraining: {mlm['steps']} steps over {mlm['blocks']} blocks of "
            f"{mlm['block_tokens']} tokens, final loss {mlm['train_loss']}"
        )
    forgetting = settings.get("forgetting", {})
    if "general_pairs" in forgetting:
        g = forgetting["general_pairs"]
        lines.append(f"- {g['pairs']} general pairs mixed in ({g['fraction']:.0%} asked)")
    if "ewc" in forgetting:
        e = forgetting["ewc"]
        lines.append(
            f"- elastic weight consolidation: weight {e['weight']:g}, Fisher from "
            f"{e['fisher_pairs']} general pairs"
        )
    if "interpolation" in forgetting:
        i = forgetting["interpolation"]
        lines.append(
            f"- weights interpolated with the base: α = {i['alpha']} (base + α·(tuned − base)), "
            f"chosen on dev from {i['dev_ndcg@10']}"
        )
    for probe in forgetting.get("probes", []):
        lines.append(
            f"- probe `{probe['data']}` ({probe['queries']} queries): nDCG@10 base "
            f"{probe['base_ndcg@10']:.4f} → tuned {probe['tuned_ndcg@10']:.4f} "
            f"({probe['change']:+.4f})"
        )
    return "## Adaptation and Forgetting\n\n" + "\n".join(lines) + "\n" if lines else ""


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

Made by embedtune with the `{settings["strategy"]}` strategy. {_loading(settings)}

## Outcome on dev ({dev_rule})

{verdict}

| system | nDCG@10 | MRR@10 | Recall@100 |
|---|---:|---:|---:|
{_row("bm25", dev["bm25"])}
{_row("base (max-passage)", dev["base"])}
{_row("tuned (max-passage)", dev["tuned"])}

{_fusion_line(settings)}
Documents are scored by their best passage: windows of {settings["passages"]["window"]} tokens,
stride {settings["passages"]["stride"]} (stored in `{SETTINGS_FILE}`). Held-out test numbers come
from `embedtune eval DATA --split test --model <this folder>`.

{_adaptation(settings)}
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
