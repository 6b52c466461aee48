"""Defences against catastrophic forgetting, and the measure of it.

- General pairs mixed into the domain pairs (a fraction of the training set).
- Weight interpolation with the base model (WiSE-FT): ``base + α·(tuned − base)``, α chosen on
  dev, so a model that gained little on the domain keeps more of the base.
- Probe sets: general (out-of-domain) collections on which the base and tuned models are
  compared after training; the change is what fine-tuning cost there.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedtune.corpus.pairs import Pair, read_pairs_file
from embedtune.errors import ConfigError
from embedtune.train.strategies import transformer

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer

    from embedtune.corpus.types import Dataset
    from embedtune.models import ModelRef
    from embedtune.train.config import ProbeSet, TrainConfig
    from embedtune.train.data import DevSet

logger = logging.getLogger(__name__)


def mix_general(
    pairs: list[Pair], path: str, fraction: float, seed: int
) -> tuple[list[Pair], dict[str, Any]]:
    """Add general pairs so they make up ``fraction`` of the result (fewer if the file is
    short: each general pair is used at most once)."""
    general = read_pairs_file(path)
    wanted = round(fraction / (1 - fraction) * len(pairs))
    chosen = random.Random(seed).sample(general, min(wanted, len(general)))
    if len(chosen) < wanted:
        logger.warning(
            "general pairs: %s holds %d pairs, %d wanted for %.0f%%; using all of them",
            path,
            len(general),
            wanted,
            fraction * 100,
        )
    for pair in chosen:
        pair.provenance = {**pair.provenance, "source": f"general:{pair.provenance.get('source')}"}
    info = {"file": path, "fraction": fraction, "pairs": len(chosen), "domain_pairs": len(pairs)}
    return pairs + chosen, info


def snapshot(model: SentenceTransformer) -> dict[str, torch.Tensor]:
    """A copy of the transformer's weights (the base, before any change)."""
    return {k: v.detach().clone() for k, v in transformer(model).state_dict().items()}


def interpolate(
    model: SentenceTransformer,
    tuned: dict[str, torch.Tensor],
    base: dict[str, torch.Tensor],
    alpha: float,
) -> None:
    """Set the weights to ``base + α·(tuned − base)``. Rows that only the tuned model has
    (tokens added by extend_vocab) keep their tuned values."""
    import torch

    state = {}
    for key, value in tuned.items():
        old = base.get(key)
        if old is None or not value.is_floating_point():
            state[key] = value
            continue
        rows = min(old.shape[0], value.shape[0]) if value.dim() else 0
        mixed = value.clone()
        if value.dim() and rows != value.shape[0]:
            mixed[:rows] = torch.lerp(old[:rows], value[:rows], alpha)
        else:
            mixed = torch.lerp(old, value, alpha)
        state[key] = mixed
    transformer(model).load_state_dict(state)


def choose_interpolation(
    model: SentenceTransformer,
    base: dict[str, torch.Tensor],
    dev: DevSet,
    config: TrainConfig,
    tuned_score: float,
) -> dict[str, Any]:
    """Try each α of ``interpolate_grid`` on dev, keep the best (ties: the smaller α, which
    keeps more of the base), and leave the model at it."""
    tuned = {k: v.detach().clone() for k, v in transformer(model).state_dict().items()}
    scores = {1.0: tuned_score}
    runs: dict[float, Any] = {}
    for alpha in sorted(set(config.interpolate_grid) - {1.0}):
        interpolate(model, tuned, base, alpha)
        runs[alpha] = dev.search(
            model, query_prompt=config.query_prompt, doc_prompt=config.doc_prompt
        )
        scores[alpha] = dev.score(runs[alpha])["ndcg@10"]
        logger.info("interpolation α=%.2f: dev nDCG@10 %.4f", alpha, scores[alpha])
    best = max(sorted(scores), key=lambda a: scores[a])  # sorted: ties go to the smaller α
    interpolate(model, tuned, base, best)
    return {
        "alpha": best,
        "dev_ndcg@10": {str(a): round(s, 4) for a, s in sorted(scores.items())},
        "runs": runs,
    }


def load_probes(probes: list[ProbeSet]) -> list[Dataset]:
    """Each probe collection, loaded before training so a bad probe fails at once."""
    from embedtune.corpus.load import beir_splits, load_beir

    loaded = []
    for probe in probes:
        split = probe.split
        if split is None:  # the test split, or the only one there is
            splits = beir_splits(Path(probe.data))
            split = "test" if "test" in splits or len(splits) != 1 else splits[0]
        data = load_beir(probe.data, split, skip_bad=probe.skip_bad)
        if not data.judged_queries():
            raise ConfigError(f"probe set {probe.data}: no judged queries in split {data.split}")
        loaded.append(data)
    return loaded


def measure_probes(
    base_model: SentenceTransformer,
    ref: ModelRef,
    model: SentenceTransformer,
    probes: list[ProbeSet],
    datasets: list[Dataset],
    config: TrainConfig,
) -> list[dict[str, Any]]:
    """nDCG@10 of the base and the tuned model on each probe set (max-passage, whole probe
    corpus); the difference is the forgetting, tested per query (``p``)."""
    from embedtune.train.data import DevSet

    out = []
    for probe, data in zip(probes, datasets, strict=True):
        ids = list(data.judged_queries())
        dev = DevSet.from_dataset(data, ids, base_model.tokenizer, config.passages)
        q, d = config.query_prompt, config.doc_prompt
        base_run = dev.search(base_model, query_prompt=q, doc_prompt=d, cached_as=ref)
        tuned_run = dev.search(model, query_prompt=q, doc_prompt=d)
        before, after = dev.score(base_run), dev.score(tuned_run)
        out.append(
            {
                "data": probe.data,
                "split": data.split,
                "queries": len(ids),
                "base_ndcg@10": round(before["ndcg@10"], 4),
                "tuned_ndcg@10": round(after["ndcg@10"], 4),
                "change": round(after["ndcg@10"] - before["ndcg@10"], 4),
                # paired randomization test over the probe's queries: is the change real?
                "p": round(dev.p_value(tuned_run, base_run), 4),
                # kept so that two tuned models' forgetting can be tested against each other
                # (the base model's scores are the same for both, so they cancel)
                "tuned_per_query": {q: round(v, 4) for q, v in dev.per_query(tuned_run).items()},
            }
        )
        shown = {k: v for k, v in out[-1].items() if k != "tuned_per_query"}
        logger.info("probe %s: nDCG@10 %s", probe.data, shown)
    return out
