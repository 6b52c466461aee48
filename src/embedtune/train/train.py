"""Contrastive fine-tuning on SentenceTransformerTrainer: dev-selected, resumable, multi-process.

Layout: the model goes to ``--output DIR`` (renamed into place only when complete); pairs,
checkpoints and logs live beside it in ``DIR.work/`` so a killed run can resume.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedtune.corpus.load import beir_splits, load_beir
from embedtune.corpus.types import Dataset, Document
from embedtune.errors import ConfigError, DataError
from embedtune.io import sha256_text, write_json, write_text
from embedtune.models import ModelRef, load_model, resolve_model
from embedtune.pairs.io import Pair, load_pairs, read_pairs_file, write_pairs
from embedtune.provenance import library_versions
from embedtune.retrieval.fusion import dev_fusion
from embedtune.retrieval.metrics import Run
from embedtune.retrieval.stats import SIGNIFICANCE_LEVEL
from embedtune.train.card import render_card
from embedtune.train.checkpoints import (
    checkpoint_callbacks,
    is_main_process,
    last_complete_checkpoint,
)
from embedtune.train.config import TrainConfig
from embedtune.train.data import DevSet, hold_out_dev
from embedtune.train.forgetting import (
    choose_interpolation,
    load_probes,
    measure_probes,
    mix_general,
    snapshot,
)
from embedtune.train.strategies import Domain, count_trainable, get_strategy
from embedtune.train.vocab import extend_vocabulary

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.retrieval.dense import DenseEncoder

logger = logging.getLogger(__name__)

SETTINGS = "embedtune.json"


@dataclass
class TrainResult:
    """Where the model went and how it did on dev against the base model and BM25."""

    output: Path
    settings: dict[str, Any]


def work_dir(output: Path) -> Path:
    return output.parent / f"{output.name}.work"


def _dev_from_pairs(
    pairs: list[Pair], fraction: float, seed: int
) -> tuple[list[Pair], Dataset, list[str]]:
    """Dev for a pairs file: hold out pairs grouped by positive text; corpus = all texts."""
    positives = sorted({p.positive for p in pairs})
    rng = random.Random(seed)
    rng.shuffle(positives)
    dev_pos = set(positives[: max(1, round(fraction * len(positives)))])
    texts = list(dict.fromkeys(t for p in pairs for t in [p.positive, *p.negatives]))
    ids = {t: f"p{i}" for i, t in enumerate(texts)}
    dev = [p for p in pairs if p.positive in dev_pos]
    corpus = {ids[t]: Document(ids[t], "", t) for t in texts}
    queries = {f"q{i}": p.query for i, p in enumerate(dev)}
    qrels = {f"q{i}": {ids[p.positive]: 1} for i, p in enumerate(dev)}
    return (
        [p for p in pairs if p.positive not in dev_pos],
        Dataset(corpus, queries, qrels, "dev"),
        list(queries),
    )


def _training_dataset(pairs: list[Pair], negatives: int, seed: int) -> Any:
    """Columns anchor, positive, negative_1..n; a pair short of mined negatives gets another
    pair's positive (a random negative) so every row has the same columns."""
    from datasets import Dataset as HFDataset

    rng = random.Random(seed)
    positives = [p.positive for p in pairs]
    # a query's own positives (several relevant documents) are never its negatives
    own: dict[str, set[str]] = {}
    for pair in pairs:
        own.setdefault(pair.query, set()).add(pair.positive)
    distinct = set(positives)
    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    for n in range(negatives):
        rows[f"negative_{n + 1}"] = []
    for pair in pairs:
        rows["anchor"].append(pair.query)
        rows["positive"].append(pair.positive)
        extra = list(pair.negatives[:negatives])
        if len(extra) < negatives and len(distinct - own[pair.query]) < negatives:
            raise DataError(
                f"too few distinct positives ({len(distinct)}) to give every pair "
                f"{negatives} negative(s); set pairs.negatives.per_query lower or add pairs"
            )
        while len(extra) < negatives:
            candidate = rng.choice(positives)
            if candidate not in own[pair.query] and candidate not in extra:
                extra.append(candidate)
        for n in range(negatives):
            rows[f"negative_{n + 1}"].append(extra[n])
    return HFDataset.from_dict(rows)


def _loss(model: SentenceTransformer, config: TrainConfig, distributed: bool) -> Any:
    from sentence_transformers.sentence_transformer import losses

    loss: Any
    if config.loss == "cached_mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(
            model, mini_batch_size=config.mini_batch_size, gather_across_devices=distributed
        )
    else:
        loss = losses.MultipleNegativesRankingLoss(model, gather_across_devices=distributed)
    if config.matryoshka_dims:
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=config.matryoshka_dims)
    return loss


def _evaluator(dev: DevSet, config: TrainConfig) -> Any:
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class MaxPassageDevEvaluator(SentenceEvaluator):
        """Dev nDCG@10 with the same max-passage scoring the report uses."""

        def __init__(self) -> None:
            super().__init__()
            self.name = "dev"
            self.primary_metric = "ndcg@10"
            self.runs: dict[int, Run] = {}  # dev run per evaluated step (queries × top 100)

        def __call__(
            self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1
        ) -> dict[str, float]:
            run = dev.search(model, query_prompt=config.query_prompt, doc_prompt=config.doc_prompt)
            metrics = dev.score(run)
            self.runs[int(steps)] = run
            logger.info("dev at step %s: %s", steps, {k: round(v, 4) for k, v in metrics.items()})
            return self.prefix_name_to_metrics(metrics, self.name)

    return MaxPassageDevEvaluator()


def _base_encoder(base: SentenceTransformer, ref: ModelRef, config: TrainConfig) -> DenseEncoder:
    """The base model as the pairs stage encodes with it (embeddings cached on disk)."""
    from embedtune.retrieval.cache import default_cache_dir
    from embedtune.retrieval.dense import DenseEncoder

    return DenseEncoder(
        base,
        ref,
        query_prompt=config.query_prompt,
        doc_prompt=config.doc_prompt,
        batch_size=config.pairs.batch_size,
        cache_dir=Path(default_cache_dir()) / "embeddings",
    )


def _pairs_fingerprint(dataset: Dataset, config: TrainConfig, ref: ModelRef, **extra: Any) -> str:
    """What the pairs were made from: they are reused on resume only when all of it matches."""
    return sha256_text(
        json.dumps(
            {
                "data": sorted(dataset.manifest.files.values()),
                "pairs": config.pairs.model_dump(mode="json"),
                "passages": config.passages.model_dump(),
                "model": ref.sha256,
                "prompts": [config.query_prompt, config.doc_prompt],
                **extra,
            },
            sort_keys=True,
        )
    )


def _prepare_data(
    data: str | None,
    pairs_file: str | None,
    split: str,
    dev_split: str | None,
    config: TrainConfig,
    base: SentenceTransformer,
    ref: ModelRef,
    work: Path,
    skip_bad: bool,
) -> tuple[list[Pair], DevSet, dict[str, Any], list[str]]:
    """Pairs, the dev set and the domain's texts (the training corpus, or the pairs' texts),
    following the dev split rule; pairs are reused on resume."""
    from embedtune.pairs.mine import mine_labeled_pairs

    info: dict[str, Any] = {}
    dataset = None
    if config.supervision == "weak":
        if data is None or pairs_file is not None or dev_split is not None:
            raise ConfigError(
                "supervision 'weak' learns from DATA's corpus alone: give DATA, without "
                "--pairs or --dev-split (its dev split is drawn from the weak labels)"
            )
        return _prepare_weak(data, split, config, base, ref, work, skip_bad)
    if data is not None:
        dataset = load_beir(data, split, skip_bad=skip_bad)
        info["data"] = dataset.manifest.to_dict()
    saved = work / "pairs.jsonl"
    if pairs_file is not None:
        pairs = read_pairs_file(pairs_file, skip_bad=skip_bad)
        info["pairs_file"] = str(pairs_file)
    if (
        dev_split is None
        and data is not None
        and "dev" in beir_splits(Path(data))
        and split != "dev"
    ):
        dev_split = "dev"
    if dev_split is not None:
        if data is None:
            raise ConfigError("--dev-split needs DATA")
        dev_data = load_beir(data, dev_split, skip_bad=skip_bad)
        dev_ids = list(dev_data.judged_queries())
        if not dev_ids:
            raise DataError(f"dev split '{dev_split}' has no relevant judgments", path=data)
        train_ids = None
        dev_dataset = dev_data
        info["dev"] = {"rule": f"split '{dev_split}'", "queries": len(dev_ids)}
    elif dataset is not None and pairs_file is None:
        train_list, dev_ids = hold_out_dev(dataset.qrels, config.dev_fraction, config.dev_seed)
        train_ids = train_list
        dev_dataset = dataset
        info["dev"] = {
            "rule": f"held out {config.dev_fraction:.0%} of '{split}' queries, "
            f"grouped by relevant document (dev seed {config.dev_seed})",
            "queries": len(dev_ids),
            "train_queries": len(train_ids),
        }
    else:
        pairs, dev_dataset, dev_ids = _dev_from_pairs(pairs, config.dev_fraction, config.dev_seed)
        train_ids = None
        info["dev"] = {
            "rule": f"held out {config.dev_fraction:.0%} of the pairs, grouped by positive",
            "queries": len(dev_ids),
        }
    if pairs_file is None:
        assert dataset is not None
        fingerprint = _pairs_fingerprint(dataset, config, ref, split=split, train_queries=train_ids)
        summary_file = saved.with_suffix(".summary.json")
        if saved.is_file():
            previous = (
                json.loads(summary_file.read_text(encoding="utf-8")).get("fingerprint")
                if summary_file.is_file()
                else None
            )
            if previous != fingerprint:
                raise ConfigError(
                    f"{saved} was mined from other data or settings; delete {work} to start "
                    "over, or choose a new --output"
                )
            pairs = load_pairs(saved)  # a finished pairs stage is not redone on resume
        else:
            encoder = _base_encoder(base, ref, config)
            pairs, summary = mine_labeled_pairs(
                dataset, encoder, config.passages, config.pairs, query_ids=train_ids
            )
            summary["fingerprint"] = fingerprint
            if is_main_process():
                write_pairs(saved, pairs, summary)
            info["pairs_summary"] = summary
    if not pairs:
        raise DataError(
            "no training pairs left after filtering; loosen pairs.negatives or check the qrels"
        )
    wanted = config.pairs.negatives.per_query
    if pairs_file is None and wanted > 0 and not any(p.negatives for p in pairs):
        raise DataError(
            f"the false-negative filter removed every hard negative (margin "
            f"{config.pairs.negatives.margin}, ranks {list(config.pairs.negatives.ranks)}): "
            "lower pairs.negatives.margin or widen pairs.negatives.ranks"
        )
    dev = DevSet.from_dataset(dev_dataset, dev_ids, base.tokenizer, config.passages)
    texts = (
        [d.full_text for d in dataset.corpus.values()]
        if dataset is not None
        else list(dict.fromkeys(t for p in pairs for t in [p.positive, *p.negatives]))
    )
    return pairs, dev, info, texts


def _prepare_weak(
    data: str,
    split: str,
    config: TrainConfig,
    base: SentenceTransformer,
    ref: ModelRef,
    work: Path,
    skip_bad: bool,
) -> tuple[list[Pair], DevSet, dict[str, Any], list[str]]:
    """Label-free: pairs and a pseudo-dev split made from the corpus (its own queries and
    judgments, if any, are not read). Reused on resume while corpus and settings match."""
    from embedtune.corpus.load import resolve_beir
    from embedtune.pairs.weak import build_weak_supervision

    dataset = load_beir(resolve_beir(Path(data), split), None, skip_bad=skip_bad)
    fingerprint = _pairs_fingerprint(dataset, config, ref, weak=config.weak.model_dump(mode="json"))
    saved, dev_file = work / "pairs.jsonl", work / "weak-dev.json"
    summary_file = saved.with_suffix(".summary.json")
    if saved.is_file() and dev_file.is_file() and summary_file.is_file():
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        if summary.get("fingerprint") != fingerprint:
            raise ConfigError(
                f"{saved} was made from other data or settings; delete {work} to start over, "
                "or choose a new --output"
            )
        pairs = load_pairs(saved)
        held = json.loads(dev_file.read_text(encoding="utf-8"))
        dev_ids = list(held["queries"])
        dev_dataset = Dataset(dataset.corpus, held["queries"], held["qrels"], "pseudo-dev")
    else:
        encoder = _base_encoder(base, ref, config)
        weak = build_weak_supervision(dataset, encoder, config.passages, config.pairs, config.weak)
        pairs, dev_dataset, dev_ids = weak.pairs, weak.dev, weak.dev_ids
        summary = {**weak.summary, "fingerprint": fingerprint}
        if is_main_process():
            write_json(
                dev_file,
                {
                    "queries": {q: dev_dataset.queries[q] for q in dev_ids},
                    "qrels": {q: dev_dataset.qrels[q] for q in dev_ids},
                },
            )
            write_pairs(saved, pairs, summary)
    if not dev_ids:
        raise ConfigError(
            "training with supervision 'weak' needs its pseudo-dev split: set "
            "weak.dev_fraction above 0"
        )
    info: dict[str, Any] = {
        "data": dataset.manifest.to_dict(),
        "supervision": "weak",
        "pairs_summary": {k: v for k, v in summary.items() if k not in {"data", "versions"}},
        "dev": {
            "rule": f"pseudo-dev: weak labels of {config.weak.dev_fraction:.0%} of the documents "
            f"held out (seed {config.weak.dev_seed}); no real judgments",
            "queries": len(dev_ids),
        },
    }
    dev = DevSet.from_dataset(dev_dataset, dev_ids, base.tokenizer, config.passages)
    return pairs, dev, info, [d.full_text for d in dataset.corpus.values()]


def prepare_training_data(
    output: str | Path,
    config: TrainConfig,
    *,
    data: str,
    split: str = "train",
    dev_split: str | None = None,
    skip_bad: bool = False,
) -> dict[str, Any]:
    """Run only the pairs stage of :func:`train_model` (same dev rule), leaving pairs.jsonl in
    ``DIR.work/`` where training picks it up; returns the pairs summary."""
    work = work_dir(Path(output))
    ref = resolve_model(config.base_model)
    model = load_model(ref, device=config.device)
    pairs, dev, info, _ = _prepare_data(
        data, None, split, dev_split, config, model, ref, work, skip_bad
    )
    return {"pairs": len(pairs), "dev_queries": len(dev.queries), **info}


def train_model(
    output: str | Path,
    config: TrainConfig,
    *,
    data: str | None = None,
    pairs_file: str | None = None,
    split: str = "train",
    dev_split: str | None = None,
    resume: bool = False,
    skip_bad: bool = False,
) -> TrainResult:
    """Train, select the best checkpoint on dev, and save a portable model folder to ``output``."""
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    out = Path(output)
    work = work_dir(out)
    if data is None and pairs_file is None:
        raise ConfigError("give DATA (a BEIR folder with a train split) or --pairs FILE")
    if out.exists():
        raise ConfigError(
            f"{out} already exists; models are never overwritten: choose a new --output"
        )
    if (work / "checkpoints").is_dir() and any((work / "checkpoints").iterdir()) and not resume:
        raise ConfigError(
            f"{work} holds an unfinished run: pass --resume to continue it, or "
            "delete it to start over"
        )
    strategy = get_strategy(config.strategy)
    started = time.perf_counter()
    ref = resolve_model(config.base_model)
    model = load_model(ref, device=config.device)
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    strategy.check(model, config)  # before any work: a bad setting fails at once
    probes = load_probes(config.probes)
    pairs, dev, info, texts = _prepare_data(
        data, pairs_file, split, dev_split, config, model, ref, work, skip_bad
    )

    base_run = dev.search(
        model, query_prompt=config.query_prompt, doc_prompt=config.doc_prompt, cached_as=ref
    )
    bm25_run = dev.bm25_search()
    if config.dev_pool is not None:
        full_size = len(dev.doc_ids)
        dev = dev.pooled([base_run, bm25_run], config.dev_pool)
        info["dev"]["corpus"] = (
            f"{len(dev.doc_ids)} of {full_size} documents (pool {config.dev_pool})"
        )
        # Every document of the base model's run is in the pool, so its run over the pool is
        # the same run (a document's score does not depend on the others): no re-encoding.
        # BM25's statistics do change with the corpus, so it searches the pool again.
        bm25_run = dev.bm25_search()
    baseline = {"base": dev.score(base_run), "bm25": dev.score(bm25_run)}
    logger.info(
        "dev before training: base %.4f, bm25 %.4f nDCG@10",
        baseline["base"]["ndcg@10"],
        baseline["bm25"]["ndcg@10"],
    )
    base_state = snapshot(model) if config.interpolate else None
    model = _adapt(model, config, strategy, Domain(texts, work, resume), info)
    if config.general_pairs:
        pairs, info["general_pairs"] = mix_general(
            pairs, config.general_pairs, config.general_fraction, config.seed
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    negatives = config.pairs.negatives.per_query
    train_set = _training_dataset(pairs, negatives, config.seed)
    steps_per_epoch = max(1, math.ceil(len(train_set) / (config.batch_size * world)))
    eval_every = max(1, steps_per_epoch // config.evals_per_epoch)
    import torch

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        lr_scheduler_type="cosine",
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps",
        eval_steps=eval_every,
        save_strategy="steps",
        save_steps=eval_every,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_dev_ndcg@10",
        greater_is_better=True,
        logging_steps=max(1, eval_every // 4),
        report_to="none",
        disable_tqdm=not is_main_process(),
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
        use_cpu=config.device == "cpu",
        dataloader_pin_memory=torch.cuda.is_available() and config.device != "cpu",
        prompts={
            "anchor": config.query_prompt,
            "positive": config.doc_prompt,
            **{f"negative_{n + 1}": config.doc_prompt for n in range(negatives)},
        }
        if (config.query_prompt or config.doc_prompt)
        else None,
    )
    evaluator = _evaluator(dev, config)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        loss=_loss(model, config, world > 1),
        evaluator=evaluator,
        callbacks=checkpoint_callbacks(),
    )
    checkpoint = last_complete_checkpoint(work / "checkpoints") if resume else None
    if resume and checkpoint is None:
        logger.info("no complete checkpoint in %s; starting from the beginning", work)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    trainable = count_trainable(trainer.model)  # before adapters are merged away
    model = strategy.finalize(trainer.model, config)
    # The best checkpoint's dev run: its metrics go on the card, and with the base
    # and BM25 dev runs it chooses the hybrid fusion weights (stored with the model, so the
    # test evaluation never tunes anything on test queries).
    # (evaluated during training; searched again only after a resume, when that evaluation
    # happened in the killed process)
    tuned_run = evaluator.runs.get(_best_step(trainer) or -1) or dev.search(
        model, query_prompt=config.query_prompt, doc_prompt=config.doc_prompt
    )
    tuned = dev.score(tuned_run)
    if base_state is not None:
        chosen = choose_interpolation(model, base_state, dev, config, tuned["ndcg@10"])
        if chosen["alpha"] != 1.0:
            tuned_run = chosen["runs"][chosen["alpha"]]
            tuned = dev.score(tuned_run)
        info["interpolation"] = {k: v for k, v in chosen.items() if k != "runs"}
    if config.probes:
        info["probes"] = measure_probes(
            load_model(ref, device=config.device), ref, model, config.probes, probes, config
        )
    info["fusion"] = (
        {
            "method": "rrf",
            "why": "the pseudo-dev labels come from BM25, so weights tuned on them would "
            "favour BM25; hybrids use reciprocal-rank fusion",
        }
        if config.supervision == "weak"
        else {
            "method": "weighted",
            "tuned_on": f"dev ({len(dev.queries)} queries)",
            **dev_fusion({"base": base_run, "tuned": tuned_run}, bm25_run, dev.qrels),
        }
    )
    settings = _settings(
        config,
        ref,
        info,
        baseline,
        tuned,
        trainer,
        trainable,
        len(pairs),
        time.perf_counter() - started,
        p_vs_base=dev.p_value(tuned_run, base_run),
    )
    if is_main_process():
        _save(model, out, settings)
        for line in settings["outcome"]["notes"]:
            logger.warning(line) if not settings["outcome"]["better"] else logger.info(line)
    return TrainResult(out, settings)


def _adapt(
    model: SentenceTransformer,
    config: TrainConfig,
    strategy: Any,
    domain: Domain,
    info: dict[str, Any],
) -> SentenceTransformer:
    """After the baseline is measured: new domain tokens, then the strategy's preparation
    (freezing, adapters, domain pretraining)."""
    from transformers import set_seed

    set_seed(config.seed)  # adapters and fresh heads start from seeded random weights
    if config.extend_vocab:
        info["vocabulary"] = extend_vocabulary(
            model, domain.texts, config.extend_vocab, min_count=config.extend_vocab_min_count
        )
        if strategy.name in {"lora", "adapter", "layers"}:
            logger.warning(
                "extend_vocab with strategy '%s': the embeddings stay frozen, so the new "
                "tokens keep their initial (mean of pieces) embeddings",
                strategy.name,
            )
    model = strategy.prepare(model, config, domain)
    if domain.notes:
        info["strategy"] = domain.notes
    return model


def _settings(
    config: TrainConfig,
    ref: ModelRef,
    info: dict[str, Any],
    baseline: dict[str, dict[str, float]],
    tuned: dict[str, float],
    trainer: Any,
    parameters: tuple[int, int],
    n_pairs: int,
    seconds: float,
    p_vs_base: float,
) -> dict[str, Any]:
    """Everything stored with the model: how to split passages, lineage, dev outcome."""
    base_score, bm25_score = baseline["base"]["ndcg@10"], baseline["bm25"]["ndcg@10"]
    score = tuned["ndcg@10"]
    beats_base = score > base_score
    # a small dev set moves by chance: say whether the difference to the base is significant
    versus_base = f"p = {p_vs_base:.3g} against base, " + (
        "significant" if p_vs_base < SIGNIFICANCE_LEVEL else "NOT significant"
    )
    # weak supervision: BM25 made the pseudo-dev labels and scores perfectly there by
    # construction; only the base model is a fair comparison (real queries judge BM25)
    beats_bm25 = None if config.supervision == "weak" else score > bm25_score
    notes = []
    if beats_bm25 is None:
        notes.append(
            "BM25 is not compared on the pseudo-dev split (its labels come from BM25); "
            "compare on real queries with `embedtune eval`"
        )
    if not beats_base:
        notes.append(
            f"NOT BETTER than the base model on dev: nDCG@10 {score:.4f} vs base {base_score:.4f}"
            f" ({versus_base})"
        )
    if beats_bm25 is False:
        notes.append(f"NOT BETTER than BM25 on dev: nDCG@10 {score:.4f} vs bm25 {bm25_score:.4f}")
    if beats_base and beats_bm25 is not False:
        against = f"base ({base_score:.4f})" + (
            f" and BM25 ({bm25_score:.4f})" if beats_bm25 else ""
        )
        notes.append(f"better than {against} on dev: nDCG@10 {score:.4f} ({versus_base})")
    trainable, total = parameters
    return {
        "format": 1,
        "passages": config.passages.model_dump(),
        "prompts": {"query": config.query_prompt, "document": config.doc_prompt},
        "base_model": {"name": ref.name, "sha256": ref.sha256},
        "strategy": config.strategy,
        "config": config.model_dump(mode="json"),
        "seed": config.seed,
        "data": {k: v for k, v in info.items() if k not in _NOT_DATA},
        "fusion": info.get("fusion"),
        "adaptation": {k: info[k] for k in ("strategy", "vocabulary") if k in info},
        "forgetting": {
            k: info[k] for k in ("general_pairs", "interpolation", "probes") if k in info
        },
        "pairs": n_pairs,
        "dev": {
            "base": baseline["base"],
            "bm25": baseline["bm25"],
            "tuned": tuned,
            "best_checkpoint_step": _best_step(trainer),
        },
        "outcome": {
            "better": beats_base and beats_bm25 is not False,
            "better_than_base": beats_base,
            "better_than_bm25": beats_bm25,
            "p_vs_base": p_vs_base,
            "notes": notes,
        },
        "training": {
            "steps": trainer.state.global_step,
            "seconds": round(seconds, 1),
            "processes": int(os.environ.get("WORLD_SIZE", "1")),
            "trainable_parameters": trainable,
            "parameters": total,
        },
        "versions": library_versions(),
    }


_NOT_DATA = {"fusion", "strategy", "vocabulary", "general_pairs", "interpolation", "probes"}


def _best_step(trainer: Any) -> int | None:
    best = trainer.state.best_model_checkpoint
    return int(Path(best).name.split("-")[1]) if best else None


def _save(model: SentenceTransformer, out: Path, settings: dict[str, Any]) -> None:
    """Write the model folder beside its final name, then rename it into place."""
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.prompts = {k: v for k, v in settings["prompts"].items() if v}
    model.model_card_data.base_model = settings["base_model"]["name"]
    model.save(str(tmp))
    _scrub_local_paths(tmp)
    adapter = tmp / "adapter_config.json"
    if adapter.is_file():  # the base by the name it goes by elsewhere (a Hub id by default)
        content = json.loads(adapter.read_text(encoding="utf-8"))
        content["base_model_name_or_path"] = settings["base_model"]["name"]
        write_json(adapter, content)
    write_json(tmp / SETTINGS, settings)
    write_text(tmp / "README.md", render_card(settings))
    os.replace(tmp, out)


def _scrub_local_paths(folder: Path) -> None:
    """The base model is recorded by name and hash; no absolute path of this machine stays in
    the config files (they would break loading or leak paths elsewhere)."""
    for name in (
        "config.json",
        "config_sentence_transformers.json",
        "tokenizer_config.json",
        "adapter_config.json",
    ):
        path = folder / name
        if not path.is_file():
            continue
        content = json.loads(path.read_text(encoding="utf-8"))
        changed = False
        for key in ("_name_or_path", "name_or_path"):
            if isinstance(content.get(key), str) and content[key].startswith("/"):
                content.pop(key)
                changed = True
        if changed:
            write_json(path, content)
