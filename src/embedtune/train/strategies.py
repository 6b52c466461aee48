"""Adaptation strategies, by name: each prepares the model before training and packages it after.

New strategies (LoRA, layer-selective, adapters, MLM) register here, as PEFT keeps its tuners.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from embedtune.errors import ConfigError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.train.config import TrainConfig


@dataclass(frozen=True)
class Strategy:
    """How a model is adapted: ``prepare`` before training, ``finalize`` before saving."""

    name: str
    description: str
    prepare: Callable[[SentenceTransformer, TrainConfig], SentenceTransformer]
    finalize: Callable[[SentenceTransformer], SentenceTransformer]


def _identity_prepare(model: SentenceTransformer, config: TrainConfig) -> SentenceTransformer:
    return model


def _identity_finalize(model: SentenceTransformer) -> SentenceTransformer:
    return model


def _freeze_bottom(model: SentenceTransformer, config: TrainConfig) -> SentenceTransformer:
    """Layer-selective: freeze the embeddings and the bottom ``freeze_layers`` layers (default
    half), which hold the most general features; train the rest."""
    hf = model[0].auto_model
    encoder = getattr(hf, "encoder", None)
    layers = list(getattr(encoder, "layer", []) or [])
    embeddings = getattr(hf, "embeddings", None)
    if not layers or embeddings is None:
        raise ConfigError(
            f"strategy 'layers' needs a BERT-style encoder (embeddings + encoder.layer); "
            f"{type(hf).__name__} has none: use strategy 'full'"
        )
    n = len(layers) // 2 if config.freeze_layers is None else config.freeze_layers
    if not 0 <= n < len(layers):
        raise ConfigError(
            f"freeze_layers {n} must leave at least one of the model's {len(layers)} layers "
            "to train"
        )
    for module in [embeddings, *layers[:n]]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    return model


STRATEGIES: dict[str, Strategy] = {
    "full": Strategy("full", "every weight is trained", _identity_prepare, _identity_finalize),
    "layers": Strategy(
        "layers",
        "embeddings and the bottom layers frozen, the top layers trained",
        _freeze_bottom,
        _identity_finalize,
    ),
}


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``; unknown names list what exists."""
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{name}': available: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def count_trainable(model: SentenceTransformer) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
