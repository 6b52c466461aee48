"""Adaptation strategies, by name, as PEFT keeps its tuners: each module registers one or more.

A strategy ``check``s its settings against the model before any work (a bad setting fails at
once), ``prepare``s the model after the baseline is measured (freezing, adapters, domain
pretraining) and ``finalize``s it before saving (merging adapters). ``full`` lives in
:mod:`.base`; importing this package registers the others.
"""

from __future__ import annotations

from embedtune.train.strategies import bottleneck, layers, mlm, peft_methods
from embedtune.train.strategies.base import (
    STRATEGIES,
    Domain,
    Strategy,
    count_trainable,
    get_strategy,
    register,
    transformer,
)

__all__ = [
    "STRATEGIES",
    "Domain",
    "Strategy",
    "bottleneck",
    "count_trainable",
    "get_strategy",
    "layers",
    "mlm",
    "peft_methods",
    "register",
    "transformer",
]
