"""Parameter-efficient strategies on Hugging Face PEFT: ``lora`` and ``ia3`` (also registered
as ``adapter``, its older name).

The adapter is injected into the transformer (sentence-transformers' ``add_adapter``), so
checkpoints, best-model reloading and resume go through the trainer unchanged. The saved
model is merged into plain weights by default (loads anywhere, same speed as the base);
``save_adapter: true`` keeps only the adapter, with its base model recorded by name and hash.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from embedtune.errors import ConfigError, require
from embedtune.train.strategies.base import Domain, Strategy, register, transformer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.train.config import TrainConfig

# IA3 rescales keys, values and the feed-forward input (PEFT's own choice for BERT)
IA3_TARGETS = ["key", "value", "output.dense"]
IA3_FEEDFORWARD = ["output.dense"]


def _module_names(model: SentenceTransformer) -> list[str]:
    return [name for name, _ in transformer(model).named_modules()]


def _check_targets(model: SentenceTransformer, targets: list[str], strategy: str) -> None:
    names = _module_names(model)
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        raise ConfigError(
            f"strategy '{strategy}': no module of {type(transformer(model)).__name__} "
            f"matches {missing}; set train.{'lora' if strategy == 'lora' else 'adapter'}"
            "_targets to names of its linear layers"
        )


def _lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
    )


def _ia3_config(config: TrainConfig) -> Any:
    from peft import IA3Config, TaskType

    targets = list(config.adapter_targets or IA3_TARGETS)
    return IA3Config(
        task_type=TaskType.FEATURE_EXTRACTION,
        target_modules=targets,
        feedforward_modules=[t for t in IA3_FEEDFORWARD if t in targets],
    )


def _check_lora(model: SentenceTransformer, config: TrainConfig) -> None:
    require("peft", "train")
    _check_targets(model, list(config.lora_targets), "lora")


def _check_adapter(model: SentenceTransformer, config: TrainConfig) -> None:
    require("peft", "train")
    _check_targets(model, list(config.adapter_targets or IA3_TARGETS), config.strategy)


def _add(make: Any) -> Any:
    def prepare(
        model: SentenceTransformer, config: TrainConfig, domain: Domain
    ) -> SentenceTransformer:
        model.add_adapter(make(config))
        return model

    return prepare


def merge_adapters(model: SentenceTransformer) -> SentenceTransformer:
    """Fold every injected adapter into the weights it wraps and remove it, so the model
    saves and loads as a plain transformer (no PEFT needed to use it)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    hf = transformer(model)
    for name, module in list(hf.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(hf.get_submodule(parent_name), child, module.get_base_layer())
    hf._hf_peft_config_loaded = False
    if hasattr(hf, "peft_config"):
        del hf.peft_config
    for parameter in hf.parameters():
        parameter.requires_grad_(True)
    return model


def _finalize(model: SentenceTransformer, config: TrainConfig) -> SentenceTransformer:
    return model if config.save_adapter else merge_adapters(model)


register(
    Strategy(
        "lora",
        "low-rank adapters (PEFT LoRA) on the attention and feed-forward layers; base frozen",
        check=_check_lora,
        prepare=_add(_lora_config),
        finalize=_finalize,
    )
)
IA3 = register(
    Strategy(
        "ia3",
        "IA3 (PEFT): learned rescaling of keys, values and feed-forward inputs; base frozen",
        check=_check_adapter,
        prepare=_add(_ia3_config),
        finalize=_finalize,
    )
)
# the same strategy under its older name, so existing configs keep working
register(replace(IA3, name="adapter", description="the older name of 'ia3' (PEFT IA3)"))
