"""The pairs stage's one entry point: labeled or label-free pairs, with the dev split, written
as a pairs folder that training reads.

    from embedtune.pairs import BuildPairsConfig, build_pairs
    result = build_pairs(BuildPairsConfig(data="data/finance10k", output="runs/pairs"))
    result.pairs, result.dev_queries   # 1,234 pairs; 205 dev queries held out
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedtune.corpus.load import load_beir, resolve_beir
from embedtune.corpus.pairs import (
    PAIRS_FILE,
    CorpusSource,
    DevSplit,
    Pair,
    PairSet,
    load_pairs,
    read_pair_set,
    read_pairs_file,
    write_pair_set,
)
from embedtune.corpus.splits import dev_split_for, hold_out_dev
from embedtune.corpus.types import Dataset
from embedtune.errors import ConfigError, DataError, PairsMismatchError
from embedtune.io import is_main_process, sha256_file, sha256_text
from embedtune.models import (
    ModelRef,
    encode_batch_size,
    load_model,
    mixed_precision,
    resolve_model,
)
from embedtune.outputs import check_output, replacing
from embedtune.pairs.config import RECIPE_KEYS, BuildPairsConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from embedtune.retrieval.dense import DenseEncoder

logger = logging.getLogger(__name__)


@dataclass
class PairsResult:
    """What :func:`build_pairs` wrote (or found already built) in ``output``.

    Attributes:
        output: The pairs folder (pairs.jsonl, pairs.summary.json, pairset.json).
        pairs: Training pairs written.
        dev_queries: Queries in the dev split that selects the model.
        record: The pair set's record (dev split, data manifest, how the pairs were made).
        summary: pairs.summary.json: counts per source, negatives, filters.
        reused: True when an earlier run had built the same pairs (nothing was redone).
    """

    output: Path
    pairs: int
    dev_queries: int
    record: PairSet
    summary: dict[str, Any] = field(default_factory=dict)
    reused: bool = False


def build_pairs(config: BuildPairsConfig) -> PairsResult:
    """Build training pairs and the dev split, and write them as a pairs folder.

    Labeled (``data`` + ``split``): for each judged training query, the best passage of each
    relevant document as the positive and hard negatives from the configured rank ranges.
    Label-free (``supervision: weak``): pairs and a pseudo-dev split from the corpus alone.
    From a file (``pairs_file``): your pairs, with a share held out (grouped by positive) as
    dev. A folder that already holds the same pairs (same data, settings and base model) is
    reused, so a resumed run does not mine again; one made from anything else is refused.

    Args:
        config: Data, output folder and the pairs recipe.

    Returns:
        PairsResult: counts, the record and the summary.

    Raises:
        ConfigError: Sources that do not fit together, or an output built from other data.
        DataError: No judgments, no pairs left after filtering, unreadable input.

    Example:
        >>> build_pairs(BuildPairsConfig(data="data/fin", output="runs/pairs")).pairs
        1234
    """
    if config.supervision == "weak":
        if config.data is None or config.pairs_file is not None or config.dev_split is not None:
            raise ConfigError(
                "supervision 'weak' learns from DATA's corpus alone: give DATA, without "
                "--pairs or --dev-split (its dev split is drawn from the weak labels)"
            )
    elif config.data is None and config.pairs_file is None:
        raise ConfigError("give DATA (a BEIR folder with a train split) or --pairs FILE")
    if config.dev_split is not None and config.data is None:
        raise ConfigError("--dev-split needs DATA")
    if config.pairs.query_fraction < 1 and (config.supervision == "weak" or config.pairs_file):
        raise ConfigError(
            "pairs.query_fraction samples labeled training queries: it needs DATA with "
            "judgments (not supervision 'weak' or a pairs file)"
        )
    output = Path(config.output)
    # an existing folder with the same pairs is reused; _reusable refuses any other
    check_output(
        output, [config.data, config.pairs_file], overwrite=config.overwrite, exists_ok=True
    )
    ref = resolve_model(config.base_model)
    if config.pairs_file is not None:
        return _from_file(config, ref, output)
    model = load_model(ref, device=config.device)
    if config.max_seq_length:
        model.max_seq_length = config.max_seq_length
    if config.supervision == "weak":
        return _weak(config, model, ref, output)
    return _labeled(config, model, ref, output)


def _recipe(config: BuildPairsConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", include=set(RECIPE_KEYS))


def _fingerprint(dataset: Dataset, config: BuildPairsConfig, ref: ModelRef, **extra: Any) -> str:
    """What the pairs were made from: they are reused only when all of it matches."""
    return sha256_text(
        json.dumps(
            {
                "data": sorted(dataset.manifest.files.values()),
                "pairs": config.pairs.identity(),
                "passages": config.passages.model_dump(),
                "model": ref.sha256,
                "prompts": [config.query_prompt, config.doc_prompt],
                **_mining_export(config),
                **extra,
            },
            sort_keys=True,
        )
    )


def _mining_export(config: BuildPairsConfig) -> dict[str, str]:
    """The ONNX model mining encodes with, by its hash (none: the base model itself)."""
    from embedtune.retrieval.onnx import EXPORT_FILE

    if config.pairs.mining_encoder is None:
        return {}
    meta_file = Path(config.pairs.mining_encoder) / EXPORT_FILE
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        return {"mining_export": meta["sha256"][config.pairs.mining_variant]}
    except (OSError, ValueError, KeyError):
        raise ConfigError(
            f"pairs.mining_encoder: {meta_file} is not an export with a "
            f"'{config.pairs.mining_variant}' model (make one with `embedtune export`)"
        ) from None


def _reusable(output: Path, fingerprint: str, overwrite: bool) -> PairSet | None:
    """The record of pairs already built from the same inputs; an error for other pairs
    (``overwrite``: none, they are rebuilt)."""
    record = None if overwrite else read_pair_set(output)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise PairsMismatchError(
            f"{output / PAIRS_FILE} was made from other data or settings; choose a new "
            "--output, or pass --overwrite to rebuild them"
        )
    return record


def _reused(output: Path, record: PairSet) -> PairsResult:
    logger.info("pairs: already built in %s, reused", output)
    summary = json.loads((output / "pairs.summary.json").read_text(encoding="utf-8"))
    pairs = len(load_pairs(output / PAIRS_FILE))
    return PairsResult(output, pairs, len(record.dev.queries), record, summary, reused=True)


def _write(
    output: Path, pairs: list[Pair], summary: dict[str, Any], record: PairSet, overwrite: bool
) -> None:
    if is_main_process():  # under torchrun every process builds, rank 0 writes
        with replacing(output, overwrite):
            write_pair_set(output, pairs, summary, record)
    logger.info(
        "pairs: %d pairs, %d dev queries (%s) → %s",
        len(pairs),
        len(record.dev.queries),
        record.dev.rule,
        output,
    )


class _PassagesCutByBase:
    """An ONNX encoder whose ``tokenizer`` is the base model's (Hugging Face's): passages are
    then cut exactly as PyTorch mining and the evaluation cut them; encoding is the ONNX
    model's."""

    def __init__(self, onnx: Any, tokenizer: Any) -> None:
        self.onnx = onnx
        self.tokenizer = tokenizer

    def __getattr__(self, name: str) -> Any:  # encode, max_seq_length, dimension: ONNX's
        return getattr(self.onnx, name)


def _onnx_miner(ref: ModelRef, config: BuildPairsConfig) -> tuple[Any, ModelRef, dict[str, Any]]:
    """The ONNX encoder of ``pairs.mining_encoder``, checked to be an export of the base
    model; the ref its embeddings are cached under; what the pairs' summary records."""
    from embedtune.retrieval.onnx import OnnxEncoder

    folder = str(config.pairs.mining_encoder)
    variant = config.pairs.mining_variant
    encoder = OnnxEncoder(folder, variant)
    source = encoder.meta.get("source", {})
    if config.max_seq_length and config.max_seq_length != encoder.max_seq_length:
        raise ConfigError(
            f"max_seq_length {config.max_seq_length} differs from the mining export's "
            f"{encoder.max_seq_length}: export the base model with that length, or leave "
            "mining_encoder out"
        )
    if source.get("sha256") != ref.sha256:
        raise ConfigError(
            f"pairs.mining_encoder {folder} is an export of {source.get('name')!r}, not of the "
            f"base model {ref.name!r}: export the base model (embedtune export "
            f"{ref.name} -o DIR) or leave mining_encoder out"
        )
    onnx_ref = ModelRef(
        name=f"{ref.name} ({variant} ONNX)", path=folder, sha256=encoder.meta["sha256"][variant]
    )
    record = {
        "export": folder,
        "variant": variant,
        "parity": encoder.meta.get("parity", {}).get(variant, {}),
    }
    logger.info("pairs: mining with the %s ONNX export in %s", variant, folder)
    return encoder, onnx_ref, record


def _base_encoder(
    model: SentenceTransformer, ref: ModelRef, config: BuildPairsConfig
) -> tuple[Any, dict[str, Any]]:
    """The base model as the pairs stage encodes with it (embeddings cached on disk), or
    its ONNX export when ``pairs.mining_encoder`` names one; and what the summary records
    about the encoder."""
    from embedtune.retrieval.cache import default_cache_dir
    from embedtune.retrieval.dense import DenseEncoder

    if config.pairs.mining_encoder is not None:
        onnx, onnx_ref, record = _onnx_miner(ref, config)
        miner = DenseEncoder(
            _PassagesCutByBase(onnx, model.tokenizer),
            onnx_ref,
            query_prompt=config.query_prompt,
            doc_prompt=config.doc_prompt,
            batch_size=config.pairs.batch_size or 64,
            cache_dir=Path(default_cache_dir()) / "embeddings",
        )
        return miner, {"mining_encoder": record}
    device = model.device.type
    encoder: DenseEncoder = DenseEncoder(
        model,
        ref,
        query_prompt=config.query_prompt,
        doc_prompt=config.doc_prompt,
        batch_size=encode_batch_size(device, config.pairs.batch_size),
        cache_dir=Path(default_cache_dir()) / "embeddings",
        precision=mixed_precision(device, config.pairs.precision),
    )
    return encoder, {}


def _labeled(
    config: BuildPairsConfig, model: SentenceTransformer, ref: ModelRef, output: Path
) -> PairsResult:
    """Pairs mined from the judgments of the training split; dev by the dev rule."""
    from embedtune.pairs.mine import mine_labeled_pairs

    assert config.data is not None
    dataset = load_beir(config.data, config.split, skip_bad=config.skip_bad)
    info: dict[str, Any] = {"data": dataset.manifest.to_dict()}
    dev_split = dev_split_for(config.data, config.split, config.dev_split)
    train_ids: list[str] | None
    if dev_split is not None:
        dev_data = load_beir(config.data, dev_split, skip_bad=config.skip_bad)
        dev_ids = list(dev_data.judged_queries())
        if not dev_ids:
            raise DataError(f"dev split '{dev_split}' has no relevant judgments", path=config.data)
        train_ids = None
        dev_source, rule = dev_data, f"split '{dev_split}'"
        dev_corpus = CorpusSource(data=config.data, split=dev_split, skip_bad=config.skip_bad)
        info["dev"] = {"rule": rule, "queries": len(dev_ids)}
    else:
        train_ids, dev_ids = hold_out_dev(dataset.qrels, config.dev_fraction, config.dev_seed)
        dev_source = dataset
        rule = (
            f"held out {config.dev_fraction:.0%} of '{config.split}' queries, "
            f"grouped by relevant document (dev seed {config.dev_seed})"
        )
        dev_corpus = CorpusSource(data=config.data, split=config.split, skip_bad=config.skip_bad)
        info["dev"] = {"rule": rule, "queries": len(dev_ids), "train_queries": len(train_ids)}
    if config.pairs.query_fraction < 1:
        train_ids = _sample_queries(
            train_ids if train_ids is not None else list(dataset.judged_queries()),
            config.pairs.query_fraction,
            config.dev_seed,
        )
        info["query_fraction"] = {
            "fraction": config.pairs.query_fraction,
            "train_queries": len(train_ids),
            "seed": config.dev_seed,
        }
    fingerprint = _fingerprint(dataset, config, ref, split=config.split, train_queries=train_ids)
    if (record := _reusable(output, fingerprint, config.overwrite)) is not None:
        return _reused(output, record)
    encoder, encoded_with = _base_encoder(model, ref, config)
    pairs, summary = mine_labeled_pairs(
        dataset, encoder, config.passages, config.pairs, query_ids=train_ids
    )
    summary |= encoded_with
    summary["fingerprint"] = fingerprint
    if "query_fraction" in info:
        summary["query_fraction"] = info["query_fraction"]
    info["pairs_summary"] = summary
    if not pairs:
        raise DataError(
            "no training pairs left after filtering; loosen pairs.negatives or check the qrels"
        )
    wanted = config.pairs.negatives.per_query
    if wanted > 0 and not any(p.negatives for p in pairs):
        raise DataError(
            f"the false-negative filter removed every hard negative (margin "
            f"{config.pairs.negatives.margin}, ranks {list(config.pairs.negatives.ranks)}): "
            "lower pairs.negatives.margin or widen pairs.negatives.ranks"
        )
    record = PairSet(
        fingerprint=fingerprint,
        supervision="labels",
        negatives_per_pair=wanted,
        corpus=CorpusSource(data=config.data, split=config.split, skip_bad=config.skip_bad),
        dev=DevSplit(
            rule=rule,
            name=dev_split or config.split,
            corpus=dev_corpus,
            queries={q: dev_source.queries[q] for q in dev_ids},
            qrels={q: dev_source.qrels[q] for q in dev_ids},
        ),
        recipe=_recipe(config),
        info=info,
    )
    _write(output, pairs, summary, record, config.overwrite)
    return PairsResult(output, len(pairs), len(dev_ids), record, summary)


def _sample_queries(query_ids: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded share of the training queries (at least one), in their original order: a
    smaller fraction's queries are a subset of a larger one's (one shuffle, cut shorter)."""
    order = sorted(query_ids)
    random.Random(seed).shuffle(order)
    kept = set(order[: max(1, round(fraction * len(order)))])
    return [q for q in query_ids if q in kept]


def _weak(
    config: BuildPairsConfig, model: SentenceTransformer, ref: ModelRef, output: Path
) -> PairsResult:
    """Label-free: pairs and a pseudo-dev split made from the corpus (its own queries and
    judgments, if any, are not read)."""
    from embedtune.pairs.weak import build_weak_supervision

    assert config.data is not None
    root = str(resolve_beir(Path(config.data), config.split))
    dataset = load_beir(root, None, skip_bad=config.skip_bad)
    fingerprint = _fingerprint(dataset, config, ref, weak=config.weak.model_dump(mode="json"))
    if (record := _reusable(output, fingerprint, config.overwrite)) is not None:
        return _reused(output, record)
    encoder, encoded_with = _base_encoder(model, ref, config)
    weak = build_weak_supervision(dataset, encoder, config.passages, config.pairs, config.weak)
    if not weak.dev_ids:
        raise ConfigError(
            "training with supervision 'weak' needs its pseudo-dev split: set "
            "weak.dev_fraction above 0"
        )
    summary = {**weak.summary, **encoded_with, "fingerprint": fingerprint}
    rule = (
        f"pseudo-dev: weak labels of {config.weak.dev_fraction:.0%} of the documents "
        f"held out (seed {config.weak.dev_seed}); no real judgments"
    )
    corpus = CorpusSource(data=root, split=None, skip_bad=config.skip_bad)
    record = PairSet(
        fingerprint=fingerprint,
        supervision="weak",
        negatives_per_pair=config.pairs.negatives.per_query,
        corpus=corpus,
        dev=DevSplit(
            rule=rule,
            name="pseudo-dev",
            corpus=corpus,
            queries={q: weak.dev.queries[q] for q in weak.dev_ids},
            qrels={q: weak.dev.qrels[q] for q in weak.dev_ids},
        ),
        recipe=_recipe(config),
        info={
            "data": dataset.manifest.to_dict(),
            "supervision": "weak",
            "pairs_summary": {k: v for k, v in summary.items() if k not in {"data", "versions"}},
            "dev": {"rule": rule, "queries": len(weak.dev_ids)},
        },
    )
    _write(output, weak.pairs, summary, record, config.overwrite)
    return PairsResult(output, len(weak.pairs), len(weak.dev_ids), record, summary)


def _from_file(config: BuildPairsConfig, ref: ModelRef, output: Path) -> PairsResult:
    """Your pairs: checked, and a share of them held out (grouped by positive) as dev."""
    from collections import Counter

    assert config.pairs_file is not None
    skipped: Counter[str] = Counter()
    pairs = read_pairs_file(config.pairs_file, skip_bad=config.skip_bad, skipped=skipped)
    # DATA beside a pairs file: its corpus (the domain's text) and its dev split; read once
    corpus = (
        None
        if config.data is None
        else CorpusSource(data=config.data, split=config.split, skip_bad=config.skip_bad)
    )
    manifest = None if corpus is None else corpus.load().manifest
    fingerprint = sha256_text(
        json.dumps(
            {
                "pairs_file": sha256_file(config.pairs_file),
                "data": manifest and sorted(manifest.files.values()),
                "dev": [config.dev_split, config.dev_fraction, config.dev_seed],
                "model": ref.sha256,
            },
            sort_keys=True,
        )
    )
    if (record := _reusable(output, fingerprint, config.overwrite)) is not None:
        return _reused(output, record)
    info: dict[str, Any] = {"pairs_file": str(config.pairs_file)}
    dev_corpus = None
    dev_split = None
    if config.data is not None and manifest is not None:
        info["data"] = manifest.to_dict()
        dev_split = dev_split_for(config.data, config.split, config.dev_split)
    if dev_split is not None:
        assert config.data is not None
        dev = load_beir(config.data, dev_split, skip_bad=config.skip_bad)
        judged = list(dev.judged_queries())
        if not judged:
            raise DataError(f"dev split '{dev_split}' has no relevant judgments", path=config.data)
        dev = Dataset(dev.corpus, {q: dev.queries[q] for q in judged}, dev.qrels, dev_split)
        dev_corpus = CorpusSource(data=config.data, split=dev_split, skip_bad=config.skip_bad)
        train, rule = pairs, f"split '{dev_split}'"
    else:
        train, dev = _dev_from_pairs(pairs, config.dev_fraction, config.dev_seed)
        rule = f"held out {config.dev_fraction:.0%} of the pairs, grouped by positive"
    info["dev"] = {"rule": rule, "queries": len(dev.queries)}
    summary: dict[str, Any] = {
        "pairs": len(train),
        "sources": {f"file:{Path(config.pairs_file).name}": len(pairs)},
        "skipped": dict(skipped),
        "fingerprint": fingerprint,
    }
    record = PairSet(
        fingerprint=fingerprint,
        supervision=config.supervision,
        negatives_per_pair=config.pairs.negatives.per_query,
        corpus=corpus,
        dev=DevSplit(
            rule=rule,
            name=dev.split or "dev",
            corpus=dev_corpus,
            documents=None if dev_corpus else {d.id: d.text for d in dev.corpus.values()},
            queries=dev.queries,
            qrels={q: dev.qrels[q] for q in dev.queries},
        ),
        recipe=_recipe(config),
        info=info,
    )
    _write(output, train, summary, record, config.overwrite)
    return PairsResult(output, len(train), len(dev.queries), record, summary)


def _dev_from_pairs(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], Dataset]:
    """Dev for a pairs file: hold out pairs grouped by positive text; corpus = all texts."""
    from embedtune.corpus.types import Document

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
    return [p for p in pairs if p.positive not in dev_pos], Dataset(corpus, queries, qrels, "dev")
