"""Train stage: contrastive fine-tuning with pluggable strategies."""

from embedtune.train.config import TrainConfig
from embedtune.train.strategies import STRATEGIES, get_strategy

__all__ = ["STRATEGIES", "TrainConfig", "get_strategy"]
