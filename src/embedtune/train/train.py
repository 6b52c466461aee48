"""Contrastive fine-tuning on SentenceTransformerTrainer: dev-selected, resumable, multi-process.

Layout: the model goes to ``--output DIR`` (renamed into place only when complete); pairs,
checkpoints and logs live beside it in ``DIR.work/`` so a killed run can resume.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedtune.corpus.pairs import PAIRS_FILE, Pair, PairSet, load_pairs, read_pair_set
from embedtune.errors import ConfigError, DataError
from embedtune.io import is_main_process, write_json, write_text
from embedtune.model_folder import ModelSettings, write_settings
from embedtune.models import (
    ModelRef,
    encode_batch_size,
    load_model,
    mixed_precision,
    resolve_model,
)
from embedtune.outputs import check_output, replacing
from embedtune.provenance import library_versions
from embedtune.retrieval.fusion import dev_fusion
from embedtune.retrieval.metrics import Run
from embedtune.retrieval.stats import SIGNIFICANCE_LEVEL
from embedtune.train.card import render_card
from embedtune.train.checkpoints import (
    COMPLETE,
    TrainingClock,
    checkpoint_callbacks,
    last_complete_checkpoint,
    recorded_seconds,
)
from embedtune.train.config import JOB_FIELDS, TrainConfig, work_dir
from embedtune.train.data import DevSet
from embedtune.train.forgetting import (
    choose_interpolation,
    load_probes,
    measure_probes,
    mix_general,
    snapshot,
)
from embedtune.train.progress import use_embedtune_progress
from embedtune.train.strategies import Domain, count_trainable, get_strategy
from embedtune.train.vocab import extend_vocabulary

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the model went and how it did on dev against the base model and BM25."""

    output: Path
    settings: ModelSettings


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


def _dev_baselines(
    dev: DevSet, model: Any, ref: Any, config: TrainConfig, info: dict[str, Any]
) -> tuple[Run, Run, DevSet]:
    """The base model's and BM25's dev runs, and the dev set checkpoints are scored on (the
    pool, when ``dev_pool`` is set)."""

    def base_search(over: DevSet) -> Run:
        return over.search(
            model, query_prompt=config.query_prompt, doc_prompt=config.doc_prompt, cached_as=ref
        )

    bm25_run = dev.bm25_search()
    if config.dev_pool is None:
        return base_search(dev), bm25_run, dev
    full_size = len(dev.doc_ids)
    if config.dev_pool_from == "bm25":
        # only BM25's candidates (and the judged documents) are ever encoded
        dev = dev.pooled([bm25_run], config.dev_pool)
        base_run = base_search(dev)
    else:
        base_run = base_search(dev)
        dev = dev.pooled([base_run, bm25_run], config.dev_pool)
        # Every document of the base model's run is in the pool, so its run over the pool is
        # the same run (a document's score does not depend on the others): no re-encoding.
    info["dev"]["corpus"] = (
        f"{len(dev.doc_ids)} of {full_size} documents "
        f"(pool {config.dev_pool} from {config.dev_pool_from})"
    )
    # BM25's statistics do change with the corpus, so it searches the pool again.
    return base_run, dev.bm25_search(), dev


def _cardless_trainer() -> Any:
    """sentence-transformers' trainer without its model-card callback.

    The callback copies training samples (widget and dataset examples) into the automatic
    model card of every checkpoint: whatever a PII scan missed would be republished with the
    model. sentence-transformers documents overriding ``add_model_card_callback`` to drop it;
    embedtune writes its own card (no training text) into the final folder.
    """
    from sentence_transformers import SentenceTransformerTrainer

    class CardlessTrainer(SentenceTransformerTrainer):
        def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
            return None

    return CardlessTrainer


def _pair_set(pairs_dir: Path, config: TrainConfig) -> PairSet:
    """The pairs folder's record; training reads nothing else of the pairs stage."""
    record = read_pair_set(pairs_dir)
    if record is None:
        raise ConfigError(
            f"{pairs_dir} holds no pairs (no pair set record): build them first with "
            "`embedtune pairs DATA --output DIR` (or `embedtune train DATA`, which does both)"
        )
    if record.supervision != config.supervision:
        raise ConfigError(
            f"the pairs in {pairs_dir} were made with supervision '{record.supervision}', "
            f"but training is set to '{config.supervision}': set the same in both"
        )
    return record


def _domain_texts(record: PairSet, pairs: list[Pair]) -> list[str]:
    """The domain's text for new tokens and MLM: the training corpus, or the pairs' texts."""
    if record.corpus is not None:
        return [d.full_text for d in record.corpus.load().corpus.values()]
    return list(dict.fromkeys(t for p in pairs for t in [p.positive, *p.negatives]))


def _resume_point(checkpoints: Path, resume: bool) -> Path | None:
    """The checkpoint a ``resume`` continues from, said in one line (None: from the start)."""
    if not resume:
        return None
    checkpoint = last_complete_checkpoint(checkpoints)
    if checkpoint is None:
        logger.info("no complete checkpoint in %s; starting from the beginning", checkpoints)
    else:
        step = checkpoint.name.split("-")[1]
        logger.info("resuming from step %s (%s)", step, checkpoint.name)
    return checkpoint


def preflight(config: TrainConfig) -> None:
    """What can be checked before the pairs are built: the strategy's name and the probe
    sets (a bad setting must fail at once, not after minutes of mining)."""
    get_strategy(config.strategy)
    load_probes(config.probes)
    check_trackers(config.report_to)


def _run_name(config: TrainConfig) -> str:
    """What a tracker calls the run: the model folder and its parent; in a comparison, the
    cell and, for a grid cell, the value tried (``full+ewc/ewc_weight=0.1``)."""
    parts = Path(config.output or "model").parts
    cells = [i for i, part in enumerate(parts[:-1]) if part == "cells"]
    if cells:
        kept = [part for part in parts[cells[-1] + 1 :] if part not in ("grid", "model")]
        if kept:
            return "/".join(kept)
    return "/".join(parts[-2:])


def check_trackers(names: list[str]) -> None:
    """Every tracker in ``report_to`` is one the trainer knows and is installed."""
    if not names:
        return
    from transformers.integrations import get_available_reporting_integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            known = ", ".join(sorted(INTEGRATION_TO_CALLBACK))
            raise ConfigError(f"report_to: unknown tracker '{name}'; the trainer knows {known}")
        if name not in get_available_reporting_integrations():
            hint = (
                "pip install 'embedtune[tracking]'"
                if name == "tensorboard"
                else f"pip install {name}"
            )
            raise ConfigError(f"report_to: {name} is not installed ({hint})")


def train_model(config: TrainConfig) -> TrainResult:
    """Fine-tune the base model on a pairs folder; the best dev checkpoint becomes the model.

    The pairs folder (``config.pairs_dir``, by default ``OUTPUT.work/``) is what the pairs
    stage (:func:`embedtune.build_pairs`) wrote: the pairs, and the dev split that selects
    the checkpoint. The model is written to ``config.output`` only when complete (renamed into
    place), with its settings record (dev outcome against the base model and BM25, the fusion
    weights chosen on dev, lineage) and a model card.

    Args:
        config: The training recipe, ``output`` and (optionally) ``pairs_dir`` and ``resume``.

    Returns:
        TrainResult: the model folder and its settings record.

    Raises:
        ConfigError: The output exists (without ``overwrite``) or lies inside an input, an
            unfinished run without ``resume``, no pairs.
        DataError: Unreadable pairs, probes or dev data.

    Example:
        >>> result = train_model(TrainConfig(output="runs/model", pairs_dir="runs/pairs"))
        >>> result.settings.outcome.better
        True
    """
    if config.output is None:
        raise ConfigError("give the model folder to create (output)")
    out = Path(config.output)
    work = work_dir(out)
    pairs_dir = Path(config.pairs_dir) if config.pairs_dir else work
    check_output(out, [pairs_dir, config.base_model], overwrite=config.overwrite)
    # overwrite starts over: the old model and its checkpoints wait aside until the new one is
    # complete (the pairs stay when they live in the work folder: they were just built there)
    fresh_work = config.overwrite and work.resolve() != pairs_dir.resolve()
    with replacing(out, config.overwrite), replacing(work, fresh_work):
        return _train(config.model_copy(update={"overwrite": False}), out, work, pairs_dir)


def _train(config: TrainConfig, out: Path, work: Path, pairs_dir: Path) -> TrainResult:
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    resume = config.resume
    if (work / "checkpoints").is_dir() and any((work / "checkpoints").iterdir()) and not resume:
        raise ConfigError(
            f"{work} holds an unfinished run: pass --resume to continue it, or --overwrite "
            "to start over"
        )
    record = _pair_set(pairs_dir, config)
    strategy = get_strategy(config.strategy)
    clock = TrainingClock()
    ref = resolve_model(config.base_model)
    model = load_model(ref, device=config.device)
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    strategy.check(model, config)  # before any work: a bad setting fails at once
    probes = load_probes(config.probes)
    pairs = load_pairs(pairs_dir / PAIRS_FILE)
    device = model.device.type
    precision = mixed_precision(device, config.precision)
    dev = DevSet.from_dataset(
        record.dev.dataset(), list(record.dev.queries), model.tokenizer, config.passages
    )
    dev.precision, dev.batch_size = precision, encode_batch_size(device)
    info = copy.deepcopy(record.info)
    if precision:
        info["precision"] = precision  # mixed precision training (a GPU)
    texts = _domain_texts(record, pairs)

    base_run, bm25_run, dev = _dev_baselines(dev, model, ref, config, info)
    baseline = {"base": dev.score(base_run), "bm25": dev.score(bm25_run)}
    logger.info(
        "dev before training: base %.4f, bm25 %.4f nDCG@10",
        baseline["base"]["ndcg@10"],
        baseline["bm25"]["ndcg@10"],
    )
    base_state = snapshot(model) if config.interpolate else None
    model = _adapt(model, config, strategy, Domain(texts, work, resume, clock=clock), info)
    if config.general_pairs:
        pairs, info["general_pairs"] = mix_general(
            pairs, config.general_pairs, config.general_fraction, config.seed
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    negatives = record.negatives_per_pair
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
        # tensorboard writes under OUTPUT.work/checkpoints/runs/ unless TENSORBOARD_LOGGING_DIR
        report_to=config.report_to or "none",
        run_name=_run_name(config),
        disable_tqdm=not is_main_process(),
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
        use_cpu=config.device == "cpu",
        fp16=precision == "fp16",
        bf16=precision == "bf16",
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
    loss = _loss(model, config, world > 1)
    if config.ewc_weight:
        from embedtune.train.ewc import with_ewc

        loss, info["ewc"] = with_ewc(loss, model, config)
    model.model_card_data.generate_widget_examples = False  # no training text in any card
    trainer = _cardless_trainer()(
        model=model,
        args=args,
        train_dataset=train_set,
        loss=loss,
        evaluator=evaluator,
        callbacks=checkpoint_callbacks(clock),
    )
    use_embedtune_progress(trainer)  # one bar; the loss as a DEBUG line, not a raw dict
    checkpoint = _resume_point(work / "checkpoints", resume)
    if checkpoint is not None:
        clock.resumed(checkpoint, recorded_seconds(checkpoint / COMPLETE))
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
        record,
        ref,
        info,
        baseline,
        tuned,
        trainer,
        trainable,
        len(pairs),
        clock.seconds(),
        p_vs_base=dev.p_value(tuned_run, base_run),
    )
    if is_main_process():
        _save(model, out, settings)
        for line in settings.outcome.notes:
            logger.warning(line) if not settings.outcome.better else logger.info(line)
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
        if strategy.name in {"lora", "adapter", "ia3", "bottleneck", "layers"}:
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
    record: PairSet,
    ref: ModelRef,
    info: dict[str, Any],
    baseline: dict[str, dict[str, float]],
    tuned: dict[str, float],
    trainer: Any,
    parameters: tuple[int, int],
    n_pairs: int,
    seconds: float,
    p_vs_base: float,
) -> ModelSettings:
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
    # the recipe as one: the pairs stage's settings (from its record) and training's
    recipe = {**record.recipe, **config.model_dump(mode="json", exclude=set(JOB_FIELDS))}
    return ModelSettings.model_validate(
        {
            "passages": config.passages.model_dump(),
            "prompts": {"query": config.query_prompt, "document": config.doc_prompt},
            "base_model": {"name": ref.name, "sha256": ref.sha256},
            "strategy": config.strategy,
            "config": recipe,
            "seed": config.seed,
            "data": {k: v for k, v in info.items() if k not in _NOT_DATA},
            "fusion": info.get("fusion"),
            "adaptation": {
                k: info[k] for k in ("strategy", "vocabulary", "precision") if k in info
            },
            "forgetting": {
                k: info[k] for k in ("general_pairs", "ewc", "interpolation", "probes") if k in info
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
                "history": _history(trainer.state.log_history),
            },
            "versions": library_versions(),
        }
    )


_NOT_DATA = {
    "fusion",
    "strategy",
    "vocabulary",
    "precision",
    "general_pairs",
    "ewc",
    "interpolation",
    "probes",
}


_LOGGED = ("loss", "learning_rate", "grad_norm")


def _history(log: list[dict[str, Any]]) -> list[dict[str, float]]:
    """The trainer's log, kept to the training loss and the dev metrics (``dev_*``)."""
    out = []
    for entry in log:
        kept = {k: float(v) for k, v in entry.items() if k in _LOGGED}
        kept |= {k[5:]: float(v) for k, v in entry.items() if k.startswith("eval_dev_")}
        if kept and "step" in entry:
            out.append({"step": float(entry["step"]), **kept})
    return out


def _best_step(trainer: Any) -> int | None:
    best = trainer.state.best_model_checkpoint
    return int(Path(best).name.split("-")[1]) if best else None


def _save(model: SentenceTransformer, out: Path, settings: ModelSettings) -> None:
    """Write the model folder beside its final name, then rename it into place."""
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.prompts = {k: v for k, v in settings.prompts.model_dump().items() if v}
    model.model_card_data.base_model = settings.base_model.name
    model.save(str(tmp), create_model_card=False)  # our card below: no training samples
    _scrub_local_paths(tmp)
    adapter = tmp / "adapter_config.json"
    if adapter.is_file():  # the base by the name it goes by elsewhere (a Hub id by default)
        content = json.loads(adapter.read_text(encoding="utf-8"))
        content["base_model_name_or_path"] = settings.base_model.name
        write_json(adapter, content)
    write_settings(tmp, settings)
    write_text(tmp / "README.md", render_card(settings.model_dump(mode="json")))
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
