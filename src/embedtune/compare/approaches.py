"""The approaches a comparison can run, by name: each is a short description and the recipe
overrides that make it, applied on top of the shared recipe (the budget)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from embedtune.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["APPROACHES", "EWC_WEIGHT", "Approach", "get_approach"]

# One EWC weight for every comparison: the Fisher is normalised to mean 1 (train/ewc.py), so
# 1.0 is a pull towards the base as strong as the contrastive loss's own scale. It should be
# chosen on dev per domain; set `overrides: {full+ewc: {ewc_weight: ...}}` to try others.
EWC_WEIGHT = 1.0


@dataclass(frozen=True)
class Approach:
    """One cell kind of the matrix.

    Attributes:
        name: What the config and the matrix call it.
        description: One line for the matrix.
        overrides: Recipe keys set on top of the shared recipe.
        needs_general: Whether it reads ``general_pairs`` (given once in the config).
        labeled: Whether it learns from the judgments (a learning curve samples those).
    """

    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    needs_general: bool = False
    labeled: bool = True


APPROACHES: dict[str, Approach] = {
    a.name: a
    for a in (
        Approach("full", "every weight trained", {"strategy": "full"}),
        Approach("lora", "LoRA adapters (PEFT), merged", {"strategy": "lora"}),
        Approach("layers", "bottom layers frozen", {"strategy": "layers"}),
        Approach("ia3", "IA3 rescaling vectors (PEFT)", {"strategy": "ia3"}),
        Approach("bottleneck", "Houlsby bottleneck adapters", {"strategy": "bottleneck"}),
        Approach("mlm", "masked-LM pretraining on the corpus, then full", {"strategy": "mlm"}),
        # the shipped label-free recipe: its interpolation with the base is on by default
        # (chosen on pseudo-dev, BENCHMARKS.md)
        Approach(
            "weak",
            "label-free: pairs and pseudo-dev from the corpus alone",
            {"strategy": "full", "supervision": "weak"},
            labeled=False,
        ),
        Approach(
            "full+general",
            "full, general pairs mixed in (general_fraction)",
            {"strategy": "full"},
            needs_general=True,
        ),
        # general_fraction 0: the Fisher is taken on the general pairs, none are trained on,
        # so the cell measures EWC alone (full+general measures the mixing)
        Approach(
            "full+ewc",
            f"full with elastic weight consolidation (weight {EWC_WEIGHT:g})",
            {"strategy": "full", "ewc_weight": EWC_WEIGHT, "general_fraction": 0.0},
            needs_general=True,
        ),
        Approach(
            "full+interpolate",
            "full, weights mixed with the base at a ratio chosen on dev",
            {"strategy": "full", "interpolate": True},
        ),
    )
}


def get_approach(name: str) -> Approach:
    """The approach called ``name``; an unknown name lists the known ones."""
    if name not in APPROACHES:
        raise ConfigError(f"unknown approach '{name}': choose from {', '.join(APPROACHES)}")
    return APPROACHES[name]
