"""Evaluate BM25, the base model and a tuned model side by side on held-out queries."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.load import load_beir
from embedtune.corpus.passages import split_passages
from embedtune.corpus.types import Dataset
from embedtune.errors import ConfigError
from embedtune.evaluate.config import PER_QUERY_FILE, EvalConfig
from embedtune.evaluate.report import render_markdown
from embedtune.io import write_json, write_text
from embedtune.model_folder import ModelSettings, passages_of, read_settings
from embedtune.models import load_model, resolve_model
from embedtune.outputs import check_output, replacing
from embedtune.provenance import library_versions
from embedtune.retrieval.bm25 import BM25Index
from embedtune.retrieval.dense import DenseEncoder, dense_search
from embedtune.retrieval.fusion import choose_weight, rrf, weighted
from embedtune.retrieval.metrics import Run, judged_query_ids, mean, per_query
from embedtune.retrieval.ranking import write_run
from embedtune.retrieval.stats import SIGNIFICANCE_LEVEL, bootstrap_interval, randomization_test

logger = logging.getLogger(__name__)

SMALL_EVAL = 200


@dataclass
class EvalResult:
    """Runs, per-query values and the JSON report of one evaluation."""

    runs: dict[str, Run]
    per_query: dict[str, dict[str, dict[str, float]]]
    report: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def search_depth(config: EvalConfig) -> int:
    """Documents to fetch per query: one more when the query's own id will be dropped."""
    return config.depth + int(config.ignore_identical_ids)


def systems_for(config: EvalConfig) -> list[str]:
    """The systems to run: as asked, or every applicable one."""
    tuned = ["tuned", "tuned-maxp", "tuned-hybrid"]
    if config.systems is None:
        return ["bm25", "base", "base-maxp", "base-hybrid"] + (tuned if config.model else [])
    if config.model is None and any(s.startswith("tuned") for s in config.systems):
        raise ConfigError("tuned-* systems need --model PATH (a tuned model folder)")
    return config.systems


class _Model:
    """One model's encoder, prompts and passage settings, loaded once."""

    def __init__(self, name: str, config: EvalConfig) -> None:
        self.ref = resolve_model(name)
        self.model = load_model(self.ref, device=config.device)
        prompts = dict(getattr(self.model, "prompts", {}) or {})
        self.passages = config.passages or passages_of(self.ref.path) or PassageConfig()
        query_prompt = config.query_prompt
        doc_prompt = config.doc_prompt
        self.encoder = DenseEncoder(
            self.model,
            self.ref,
            query_prompt=prompts.get("query", "") if query_prompt is None else query_prompt,
            doc_prompt=prompts.get("document", "") if doc_prompt is None else doc_prompt,
            batch_size=config.batch_size,
            cache_dir=Path(config.cache_dir) / "embeddings" if config.cache_dir else None,
            show_progress=config.show_progress,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.ref.name,
            "sha256": self.ref.sha256,
            "max_seq_length": self.model.max_seq_length,
            "query_prompt": self.encoder.query_prompt,
            "doc_prompt": self.encoder.doc_prompt,
            "passages": self.passages.model_dump(),
        }


def _dense_runs(
    model: _Model,
    dataset: Dataset,
    queries: dict[str, str],
    wanted: set[str],
    config: EvalConfig,
    timings: dict[str, Any],
) -> dict[str, Run]:
    """The truncated and max-passage runs of one model ('x' and 'x-maxp')."""
    runs: dict[str, Run] = {}
    docs = list(dataset.corpus.values())
    doc_ids = [d.id for d in docs]
    if "plain" in wanted:
        start, before = time.perf_counter(), model.encoder.stats.encoded
        runs["plain"] = dense_search(
            model.encoder,
            queries,
            doc_ids,
            [d.full_text for d in docs],
            np.arange(len(docs) + 1),
            k=search_depth(config),
            chunk_passages=config.chunk_passages,
        )
        timings["plain"] = {
            "seconds": time.perf_counter() - start,
            "encoded": model.encoder.stats.encoded - before,
        }
    if "maxp" in wanted:
        start, before = time.perf_counter(), model.encoder.stats.encoded
        passages = split_passages(docs, model.model.tokenizer, model.passages)
        runs["maxp"] = dense_search(
            model.encoder,
            queries,
            doc_ids,
            passages.texts,
            passages.bounds,
            k=search_depth(config),
            chunk_passages=config.chunk_passages,
        )
        timings["maxp"] = {
            "seconds": time.perf_counter() - start,
            "passages": len(passages),
            "encoded": model.encoder.stats.encoded - before,
        }
    return runs


def _stored_settings(config: EvalConfig) -> ModelSettings | None:
    """The tuned model's settings record (None: no --model, or a model without one)."""
    return read_settings(resolve_model(config.model).path) if config.model else None


def _dev_weight(family: str, settings: ModelSettings | None) -> tuple[float, dict[str, Any]]:
    """The weight the tuned model's training chose on its dev queries for this family."""
    weight = settings.fusion_weight(family) if settings else None
    if settings is None or settings.fusion is None or weight is None:
        raise ConfigError(
            "--fusion dev reads the fusion weights chosen on dev during training from the "
            "tuned model's settings record; give --model with a model trained by this version "
            "of embedtune, or use --fusion rrf"
        )
    return weight, {"tuned_on": settings.fusion.get("tuned_on", "dev")}


def _fusion_method(config: EvalConfig, settings: ModelSettings | None) -> str:
    """``auto``: the weights the tuned model's training chose on dev (``dev``) where it
    stored them, else reciprocal-rank fusion. ``dev`` becomes ``rrf`` for a model whose
    training stored no weights because its dev labels came from BM25 itself (label-free
    training): weights tuned on them would favour BM25."""
    if config.fusion not in ("dev", "auto"):
        return config.fusion
    if settings is not None and (settings.fusion or {}).get("method") == "rrf":
        return "rrf"
    if config.fusion == "auto" and (settings is None or settings.fusion_weight("tuned") is None):
        return "rrf"
    return "dev"  # (without stored weights, _dev_weight says what to do)


def _tuned_weight(model: _Model, config: EvalConfig) -> tuple[float, dict[str, Any]]:
    """Fusion weight chosen on train/dev queries (never the evaluated split)."""
    if not config.tune_data or not config.tune_split:
        raise ConfigError(
            "weighted fusion chooses its weight on train/dev queries: pass "
            "--tune-data DATA --tune-split train|dev (never the test split)"
        )
    if (
        Path(config.tune_data).resolve() == Path(config.data).resolve()
        and config.tune_split == config.split
    ):
        raise ConfigError("the fusion weight must not be tuned on the evaluated split")
    tune = load_beir(config.tune_data, config.tune_split, skip_bad=config.skip_bad)
    queries = {q: tune.queries[q] for q in judged_query_ids(tune.qrels)}
    dense = _dense_runs(model, tune, queries, {"maxp"}, config, {})["maxp"]
    sparse = BM25Index(list(tune.corpus), [d.full_text for d in tune.corpus.values()]).search(
        queries, k=search_depth(config)
    )
    weight, curve = choose_weight(dense, sparse, tune.qrels)
    return weight, {"tuned_on": f"{config.tune_data}:{config.tune_split}", "curve": curve}


def evaluate_models(config: EvalConfig, output: str | Path | None = None) -> EvalResult:
    """Evaluate BM25, the base model and a tuned model side by side on held-out queries.

    Every requested system runs on the same judged queries; the report holds the metrics,
    95% bootstrap intervals and paired randomization tests against BM25 and each base-model
    system. With an output folder (``config.output``, or ``output``), it writes report.json,
    report.md and one TREC run file per system.

    Args:
        config: Data, split, systems, metrics, models and fusion.
        output: Where to write the report (overrides ``config.output``).

    Returns:
        EvalResult: runs, per-query values and the report.

    Raises:
        ConfigError: No judged queries, tuned systems without a model, a fusion weight that
            would be tuned on the evaluated split, or an output that exists (without
            ``overwrite``) or lies inside the data or the model.

    Example:
        >>> result = evaluate_models(EvalConfig(data="data/fin", split="test", model="runs/m"))
        >>> result.report["systems"]["tuned-maxp"]["ndcg@10"]
        0.847
    """
    output = output if output is not None else config.output
    if output is not None:  # refused before the work, not after it
        check_output(output, [config.data, config.model], overwrite=config.overwrite)
    systems = systems_for(config)
    dataset = load_beir(config.data, config.split, skip_bad=config.skip_bad)
    judged = judged_query_ids(dataset.qrels)
    if not judged:
        raise ConfigError(f"split '{config.split}' of {config.data} has no relevant judgments")
    queries = {qid: dataset.queries[qid] for qid in judged}
    logger.info(
        "evaluate: %d judged queries of %s (%s) over %d documents: %s",
        len(judged),
        config.data,
        config.split,
        len(dataset.corpus),
        ", ".join(systems),
    )
    warnings: list[str] = []
    runs: dict[str, Run] = {}
    timings: dict[str, Any] = {}
    # read once: the fusion rule and each family's dev weight come from it
    stored = _stored_settings(config) if config.fusion in ("dev", "auto") else None
    fusion_method = _fusion_method(config, stored)
    fusion_info: dict[str, Any] = {"method": fusion_method}
    models: dict[str, Any] = {}
    needs_bm25 = any(s == "bm25" or s.endswith("-hybrid") for s in systems)
    if needs_bm25:
        start = time.perf_counter()
        index = BM25Index(
            list(dataset.corpus),
            [d.full_text for d in dataset.corpus.values()],
            show_progress=config.show_progress,
        )
        runs["bm25"] = index.search(
            queries, k=search_depth(config), show_progress=config.show_progress
        )
        timings["bm25"] = {"seconds": time.perf_counter() - start}
    for family, name in (("base", config.base_model), ("tuned", config.model)):
        wanted = {
            s.removeprefix(family).lstrip("-") or "plain" for s in systems if s.startswith(family)
        }
        if not wanted or name is None:
            continue
        model = _Model(name, config)
        models[family] = model.describe()
        dense_wanted = {"maxp" if w == "hybrid" else w for w in wanted}
        family_timings: dict[str, Any] = {}
        family_runs = _dense_runs(model, dataset, queries, dense_wanted, config, family_timings)
        if "plain" in wanted:
            runs[family], timings[family] = family_runs["plain"], family_timings["plain"]
        if "maxp" in family_runs:
            runs[f"{family}-maxp"] = family_runs["maxp"]
            timings[f"{family}-maxp"] = family_timings["maxp"]
        if "hybrid" in wanted:
            if fusion_method == "rrf":
                runs[f"{family}-hybrid"] = rrf(
                    [family_runs["maxp"], runs["bm25"]], depth=config.depth
                )
            else:
                weight, info = (
                    _dev_weight(family, stored)
                    if fusion_method == "dev"
                    else _tuned_weight(model, config)
                )
                fusion_info[family] = {"weight": weight, **info}
                runs[f"{family}-hybrid"] = weighted(
                    family_runs["maxp"], runs["bm25"], weight, depth=config.depth
                )
        stats = model.encoder.stats
        models[family]["encoding"] = {
            "encoded": stats.encoded,
            "cached": stats.cached,
            "seconds": stats.seconds,
            "docs_per_second": stats.per_second,
        }
    runs = {s: runs[s] for s in systems}
    if config.ignore_identical_ids:  # BEIR's convention, applied to the run files too
        runs = {
            s: {q: {d: v for d, v in r.items() if d != q} for q, r in run.items()}
            for s, run in runs.items()
        }
    values = {
        s: per_query(
            runs[s], dataset.qrels, config.metrics, ignore_identical_ids=config.ignore_identical_ids
        )
        for s in systems
    }
    report = _report(config, dataset, systems, values, timings, models, fusion_info, warnings)
    if len(judged) < SMALL_EVAL:
        metric = "ndcg@10" if "ndcg@10" in config.metrics else config.metrics[0]
        spans = ", ".join(
            f"{s} {lo:.3f}–{hi:.3f}"
            for s, (lo, hi) in ((s, report["intervals"][s][metric]) for s in systems)
        )
        warnings.append(
            f"only {len(judged)} judged queries (< {SMALL_EVAL}): the results are uncertain; "
            f"95% bootstrap intervals of {metric}: {spans}"
        )
    for message in warnings:
        logger.warning(message)
    result = EvalResult(runs, values, report)
    if output is not None:
        with replacing(output, config.overwrite):
            write_outputs(result, Path(output), config.depth)
    return result


def _report(
    config: EvalConfig,
    dataset: Dataset,
    systems: list[str],
    values: dict[str, dict[str, dict[str, float]]],
    timings: dict[str, Any],
    models: dict[str, Any],
    fusion: dict[str, Any],
    warnings: list[str],
) -> dict[str, Any]:
    judged = judged_query_ids(dataset.qrels)
    table = {s: {m: mean(values[s][m]) for m in config.metrics} for s in systems}
    intervals = {
        s: {
            m: list(
                bootstrap_interval(
                    np.array([values[s][m][q] for q in judged]),
                    resamples=config.bootstrap,
                    seed=config.seed,
                )
            )
            for m in config.metrics
        }
        for s in systems
    }
    baselines = [b for b in ("bm25", "base", "base-maxp", "base-hybrid") if b in systems]
    significance: dict[str, Any] = {}
    for system in systems:
        for baseline in baselines:
            if baseline == system:
                continue
            entry = significance.setdefault(system, {}).setdefault(baseline, {})
            for metric in config.metrics:
                a = np.array([values[system][metric][q] for q in judged])
                b = np.array([values[baseline][metric][q] for q in judged])
                p = randomization_test(a, b, permutations=config.permutations, seed=config.seed)
                entry[metric] = {
                    "diff": float(a.mean() - b.mean()),
                    "p": p,
                    "significant": p < SIGNIFICANCE_LEVEL,
                }
    return {
        "systems": table,
        "significance": significance,
        "intervals": intervals,
        "timings": timings,
        "data": {
            **dataset.manifest.to_dict(),
            "split": config.split,
            "evaluated_queries": len(judged),
            "skipped_unjudged_queries": len(dataset.queries) - len(judged),
        },
        "models": models,
        "fusion": fusion,
        "warnings": warnings,
        "config": config.model_dump(mode="json", exclude={"overwrite"}),
        "versions": library_versions(),
        "seed": config.seed,
        "tests": {
            "significance": f"paired two-sided randomization, {config.permutations} "
            f"permutations, p < {SIGNIFICANCE_LEVEL}",
            "intervals": f"percentile bootstrap over queries, {config.bootstrap} resamples, 95%",
        },
    }


def write_outputs(result: EvalResult, output: Path, depth: int) -> None:
    """report.json, report.md, report.html, per_query.json (system → metric → query → value,
    what ``trec_eval -q`` prints) and one TREC run file per system, each written atomically."""
    from embedtune.evaluate.html import render_html

    output.mkdir(parents=True, exist_ok=True)
    for system, run in result.runs.items():
        write_run(output / f"{system}.run", run, tag=system, depth=depth)
    write_json(output / "report.json", result.report)
    write_json(output / PER_QUERY_FILE, result.per_query)
    write_text(output / "report.md", render_markdown(result.report))
    try:  # a figure that cannot be drawn must not cost the evaluation
        page = render_html(result.report, result.per_query)
    except Exception as exc:
        logger.warning("report.html not written: %s: %s", type(exc).__name__, exc)
    else:
        write_text(output / "report.html", page)
