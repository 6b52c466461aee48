"""Layer-selective tuning: the embeddings and bottom layers, which hold the most general
features, stay frozen; the top layers train."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embedtune.errors import ConfigError
from embedtune.train.strategies.base import Domain, Strategy, register, transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.train.config import TrainConfig


def encoder_parts(model: SentenceTransformer, strategy: str) -> tuple[Any, list[Any]]:
    """(embeddings, layers) of a BERT-style encoder; other architectures are refused."""
    hf = transformer(model)
    encoder = getattr(hf, "encoder", None)
    layers = list(getattr(encoder, "layer", []) or [])
    embeddings = getattr(hf, "embeddings", None)
    if not layers or embeddings is None:
        raise ConfigError(
            f"strategy '{strategy}' needs a BERT-style encoder (embeddings + encoder.layer); "
            f"{type(hf).__name__} has none: use strategy 'full'"
        )
    return embeddings, layers


def _frozen_count(model: SentenceTransformer, config: TrainConfig) -> int:
    _, layers = encoder_parts(model, "layers")
    n = len(layers) // 2 if config.freeze_layers is None else config.freeze_layers
    if not 0 <= n < len(layers):
        raise ConfigError(
            f"freeze_layers {n} must leave at least one of the model's {len(layers)} layers "
            "to train"
        )
    return n


def _check(model: SentenceTransformer, config: TrainConfig) -> None:
    _frozen_count(model, config)


def _freeze_bottom(
    model: SentenceTransformer, config: TrainConfig, domain: Domain
) -> SentenceTransformer:
    n = _frozen_count(model, config)
    embeddings, layers = encoder_parts(model, "layers")
    for module in [embeddings, *layers[:n]]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    domain.notes["frozen_layers"] = n
    return model


register(
    Strategy(
        "layers",
        "embeddings and the bottom layers frozen, the top layers trained",
        check=_check,
        prepare=_freeze_bottom,
    )
)
