"""The ``bottleneck`` strategy: Houlsby bottleneck adapters (:mod:`embedtune.bottleneck`)
after the attention and feed-forward outputs of every layer; base frozen; the adapters stay in
the saved model (a nonlinearity: they cannot be merged into the weights)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from embedtune.bottleneck import KEY, adapt_transformer, check_sites
from embedtune.errors import ConfigError
from embedtune.train.strategies.base import Domain, Strategy, register, transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.train.config import TrainConfig

logger = logging.getLogger(__name__)

__all__: list[str] = []


def _check(model: SentenceTransformer, config: TrainConfig) -> None:
    from sentence_transformers.base.modules import Transformer

    if config.save_adapter:
        raise ConfigError(
            "save_adapter is for strategies lora and ia3 (PEFT): bottleneck adapters are "
            "always saved inside the model folder; set save_adapter false"
        )
    if config.interpolate:
        # the base snapshot is taken before the adapters exist, so every α would give the
        # tuned model back while the record claimed a mix
        raise ConfigError(
            "interpolate mixes base and tuned weights, and bottleneck adapters have no base "
            "weights to mix with (the base is frozen): set interpolate false"
        )
    if type(model[0]) is not Transformer:
        raise ConfigError(
            f"strategy 'bottleneck' needs a plain sentence-transformers Transformer as the "
            f"first module; this model's is {type(model[0]).__name__}"
        )
    check_sites(transformer(model))


def _insert(model: SentenceTransformer, config: TrainConfig, domain: Domain) -> SentenceTransformer:
    module = adapt_transformer(model[0], config.bottleneck_reduction)
    for name, parameter in model.named_parameters():  # any module after the encoder too
        parameter.requires_grad_(KEY in name)
    record = module.bottleneck_config()
    domain.notes["bottleneck"] = {
        "reduction": record["reduction"],
        "bottleneck_size": record["bottleneck_size"],
        "adapters": len(record["sites"]),
    }
    return model


register(
    Strategy(
        "bottleneck",
        "bottleneck adapters (Houlsby) after the attention and feed-forward outputs of every "
        "layer; base frozen, the adapters kept in the saved model",
        check=_check,
        prepare=_insert,
    )
)
