"""Elastic weight consolidation (Kirkpatrick et al., 2017) as a defence against forgetting.

Before training, the diagonal of the Fisher information of the trainable weights is estimated
on general (out-of-domain) pairs: the mean squared gradient of the same contrastive loss the
training uses, over batches of those pairs (the empirical Fisher). Training then minimises
``loss + weight/2 · Σ F_i (θ_i − θ*_i)²``, with θ* the weights before training: the weights
the general task depends on most are held nearest to where they were.

The Fisher is divided by its mean over all trainable weights, so ``ewc_weight`` does not
depend on the loss's scale or the model's size (a unit Fisher everywhere would make the
penalty plain L2 towards the base with that weight).
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from embedtune.console import progress
from embedtune.corpus.pairs import Pair, read_pairs_file

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

    from embedtune.train.config import TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["EWCLoss", "fisher_diagonal", "with_ewc"]


def _features(model: SentenceTransformer, texts: list[str]) -> dict[str, torch.Tensor]:
    features = model.tokenize(texts)
    return {k: v.to(model.device) for k, v in features.items() if hasattr(v, "to")}


def fisher_diagonal(
    model: SentenceTransformer,
    loss: Any,
    pairs: list[Pair],
    *,
    batch_size: int = 32,
    query_prompt: str = "",
    doc_prompt: str = "",
) -> dict[str, torch.Tensor]:
    """The empirical Fisher's diagonal of every trainable weight, normalised to mean 1.

    Args:
        model: The model as it will be trained (adapters inserted, frozen weights frozen).
        loss: The training loss (a sentence-transformers loss over (query, positive) pairs).
        pairs: General pairs: query and positive are used (in-batch negatives, as in training).
        batch_size: Pairs per batch (at least 2: the loss needs in-batch negatives).

    Returns:
        Weight name → its Fisher diagonal (same shape; float32, on the model's device).
    """
    import torch

    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    batches = [pairs[i : i + batch_size] for i in range(0, len(pairs), batch_size)]
    batches = [b for b in batches if len(b) >= 2]
    was_training = model.training
    model.train()  # the loss as training computes it (dropout included)
    for batch in progress(batches, desc="ewc: fisher", unit="batch"):
        model.zero_grad(set_to_none=True)
        anchors = _features(model, [query_prompt + p.query for p in batch])
        positives = _features(model, [doc_prompt + p.positive for p in batch])
        value = loss([anchors, positives], None)
        value.backward()
        for name, p in params.items():
            if p.grad is not None:
                fisher[name] += p.grad.detach().float() ** 2
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    total = sum(float(f.sum()) for f in fisher.values())
    count = sum(f.numel() for f in fisher.values())
    scale = total / max(count, 1)
    if scale <= 0:
        logger.warning("ewc: every gradient on the general pairs is zero; the penalty is off")
        return {n: f for n, f in fisher.items()}
    return {n: f / scale for n, f in fisher.items()}


def _module_base() -> Any:
    import torch

    return torch.nn.Module


class EWCLoss(_module_base()):  # type: ignore[misc]
    """The training loss plus the EWC penalty (``weight/2 · Σ F (θ − θ*)²``)."""

    def __init__(
        self,
        loss: Any,
        model: SentenceTransformer,
        fisher: dict[str, torch.Tensor],
        weight: float,
    ) -> None:
        super().__init__()
        self.loss = loss
        self.model = model  # what sentence-transformers' trainer reads off a loss
        self.weight = weight
        self.fisher = fisher
        params = dict(model.named_parameters())
        self.anchor = {n: params[n].detach().clone() for n in fisher}
        self.last_penalty = 0.0

    def penalty(self) -> torch.Tensor:
        params = dict(self.model.named_parameters())
        terms = [(f * (params[n] - self.anchor[n]) ** 2).sum() for n, f in self.fisher.items()]
        return sum(terms[1:], terms[0]) if terms else params[next(iter(params))].sum() * 0

    def forward(self, sentence_features: Any, labels: Any) -> torch.Tensor:
        penalty = self.penalty()
        self.last_penalty = float(penalty.detach())
        return self.loss(sentence_features, labels) + self.weight / 2 * penalty


def with_ewc(
    loss: Any, model: SentenceTransformer, config: TrainConfig
) -> tuple[Any, dict[str, Any]]:
    """``loss`` with the EWC penalty, its Fisher estimated on ``config.general_pairs``; and
    what the settings record keeps about it."""
    assert config.general_pairs is not None and config.ewc_weight
    general = read_pairs_file(config.general_pairs)
    chosen = random.Random(config.seed).sample(general, min(config.ewc_pairs, len(general)))
    fisher = fisher_diagonal(
        model,
        loss,
        chosen,
        batch_size=config.batch_size,
        query_prompt=config.query_prompt,
        doc_prompt=config.doc_prompt,
    )
    info = {"weight": config.ewc_weight, "fisher_pairs": len(chosen), "file": config.general_pairs}
    logger.info("ewc: Fisher from %d general pairs, weight %g", len(chosen), config.ewc_weight)
    return EWCLoss(loss, model, fisher, config.ewc_weight), info
