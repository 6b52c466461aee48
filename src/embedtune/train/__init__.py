"""Train stage: contrastive fine-tuning with pluggable strategies."""

from embedtune.train.config import TrainConfig, preset
from embedtune.train.strategies import STRATEGIES, get_strategy

__all__ = ["STRATEGIES", "TrainConfig", "get_strategy", "preset"]
