"""The strategy registry: name → how a model is adapted (each method module registers its own).

A strategy ``check``s its settings against the model before any work (a bad setting fails at
once), ``prepare``s the model after the baseline is measured (freezing, adapters, domain
pretraining) and ``finalize``s it before saving (merging adapters).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedtune.errors import ConfigError
from embedtune.train.checkpoints import TrainingClock

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.train.config import TrainConfig


@dataclass
class Domain:
    """What a strategy may learn from besides the pairs: the domain's own text."""

    texts: list[str]
    work: Path  # the run's work folder: a strategy keeps its resumable state under it
    resume: bool = False
    notes: dict[str, object] = field(default_factory=dict)  # recorded in the model's settings
    # the training's clock: a strategy's own resumable phase (mlm) records it in its
    # checkpoints and takes it back on resume
    clock: TrainingClock = field(default_factory=TrainingClock)


Check = Callable[["SentenceTransformer", "TrainConfig"], None]
Prepare = Callable[["SentenceTransformer", "TrainConfig", Domain], "SentenceTransformer"]
Finalize = Callable[["SentenceTransformer", "TrainConfig"], "SentenceTransformer"]


def _no_check(model: SentenceTransformer, config: TrainConfig) -> None:
    return None


def _unchanged(
    model: SentenceTransformer, config: TrainConfig, domain: Domain
) -> SentenceTransformer:
    return model


def _as_is(model: SentenceTransformer, config: TrainConfig) -> SentenceTransformer:
    return model


@dataclass(frozen=True)
class Strategy:
    """How a model is adapted."""

    name: str
    description: str
    check: Check = _no_check
    prepare: Prepare = _unchanged
    finalize: Finalize = _as_is


STRATEGIES: dict[str, Strategy] = {}


_NAME = re.compile(r"[a-z][a-z0-9_]*")


def register(strategy: Strategy) -> Strategy:
    """Add ``strategy`` to the registry under its name.

    Raises:
        ValueError: The name is taken (two strategies would answer to it) or not a
            lower-case identifier (it must work as a config value and a CLI option).
    """
    if not _NAME.fullmatch(strategy.name):
        raise ValueError(f"strategy name {strategy.name!r}: use lower-case letters, digits, _")
    if strategy.name in STRATEGIES:
        raise ValueError(f"a strategy named '{strategy.name}' is already registered")
    STRATEGIES[strategy.name] = strategy
    return strategy


register(Strategy("full", "every weight is trained"))


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``; unknown names list what exists."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{name}': available: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def transformer(model: SentenceTransformer) -> Any:
    """The Hugging Face model inside a sentence-transformers model (its first module)."""
    first: Any = model[0]
    return first.auto_model


def count_trainable(model: SentenceTransformer) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
