"""Settings of the training stage; the shipped defaults live in ``defaults.yaml``."""

from __future__ import annotations

from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from embedtune.corpus.config import PassageConfig
from embedtune.errors import ConfigError
from embedtune.pairs.config import PairsConfig


class TrainConfig(BaseModel):
    """One training run: strategy, loss, schedule, dev selection."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = "base"
    strategy: str = "full"
    freeze_layers: int | None = Field(
        default=None, ge=0, description="strategy 'layers': bottom layers frozen (default half)"
    )
    loss: Literal["mnrl", "cached_mnrl"] = "mnrl"
    mini_batch_size: int = Field(default=16, ge=1, description="cached_mnrl forward chunk")
    matryoshka_dims: list[int] | None = None
    epochs: float = Field(default=2.0, gt=0)
    batch_size: int = Field(default=32, ge=2)
    learning_rate: float = Field(default=2e-5, gt=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = 0.01
    max_seq_length: int | None = None
    query_prompt: str = ""
    doc_prompt: str = ""
    passages: PassageConfig = Field(default_factory=PassageConfig)
    pairs: PairsConfig = Field(default_factory=PairsConfig)
    dev_fraction: float = Field(default=0.15, ge=0.05, le=0.5)
    # The held-out dev queries do not move with the training seed: runs over several seeds
    # are then compared on the same dev set, and the pairs mined for training stay the same.
    dev_seed: int = 0
    # Dev evaluation runs at every checkpoint; over a large corpus it can cost more than the
    # training. The dev corpus is then the judged documents plus the top `dev_pool` of BM25
    # and of the base model per dev query (null: the whole corpus).
    dev_pool: int | None = Field(default=100, ge=10)
    evals_per_epoch: int = Field(default=1, ge=1, description="dev evaluations (= checkpoints)")
    max_steps: int = Field(default=-1, description="stop after this many steps (-1: epochs)")
    seed: int = 42
    device: str | None = None


def preset(name: str) -> dict[str, Any]:
    """A named preset from the shipped ``defaults.yaml`` (``default`` or ``fast``)."""
    text = resources.files("embedtune.train").joinpath("defaults.yaml").read_text("utf-8")
    presets = yaml.safe_load(text)
    if name not in presets:
        raise ConfigError(f"unknown preset '{name}': choose from {', '.join(presets)}")
    return dict(presets[name] or {})
