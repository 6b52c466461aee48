"""The approaches a comparison can run, by name: each is a short description and the recipe
overrides that make it, applied on top of the shared recipe (the budget)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from embedtune.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["APPROACHES", "EWC_WEIGHTS", "Approach", "Grid", "get_approach"]

# EWC's weight is chosen on dev per comparison from these (compare/cell.py keeps the strongest
# within a tolerance of the best dev score). The Fisher is normalised to mean 1
# (train/ewc.py), so 1 is a pull towards the base on the contrastive loss's own scale; the
# grid spans two orders of magnitude around it. `overrides: {full+ewc: {ewc_weight: W}}`
# trains W alone.
EWC_WEIGHTS = (0.1, 1.0, 10.0)


@dataclass(frozen=True)
class Grid:
    """A recipe key an approach tries several values of, keeping the one dev chooses."""

    key: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Approach:
    """One cell kind of the matrix.

    Attributes:
        name: What the config and the matrix call it.
        description: One line for the matrix.
        overrides: Recipe keys set on top of the shared recipe.
        needs_general: Whether it reads ``general_pairs`` (given once in the config).
        labeled: Whether it learns from the judgments (a learning curve samples those).
        grid: A key whose value is chosen on dev (one training per value).
    """

    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    needs_general: bool = False
    labeled: bool = True
    grid: Grid | None = None


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
            "full with elastic weight consolidation (weight chosen on dev)",
            {"strategy": "full", "ewc_weight": EWC_WEIGHTS[1], "general_fraction": 0.0},
            needs_general=True,
            grid=Grid("ewc_weight", EWC_WEIGHTS),
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
