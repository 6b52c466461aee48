"""Probe re-evaluation: a saved probe set (queries + judgments) re-run on a schedule.

Each run searches the probe set's corpus with a registry version (max-passage dense search,
the version's own passage window and prompts), scores nDCG@10, MRR@10 and Recall@100 per
query, and compares them with the baseline run of the same probe set: the first run in the
history file (per-query values are kept there, so the comparison is paired). The change's
interval is a percentile bootstrap over queries of the paired differences; the alert fires
when the drop exceeds the margin and the interval excludes zero. The version's recorded
evaluation (its registry ``report.json``) is shown beside, for reference: it may be on
another split.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from embedtune.errors import ConfigError, DataError
from embedtune.monitor.config import ProbeSettings

if TYPE_CHECKING:
    from embedtune.monitor.source import ModelSource

logger = logging.getLogger(__name__)

__all__ = ["ProbeResult", "compare_runs", "read_history", "run_probe"]


class ProbeResult(BaseModel):
    """One probe run and its comparison with the baseline.

    Attributes:
        time: UTC time of the run.
        probe: The probe set (path, split, queries, hash of its files).
        model: The model run (name, sha256, version).
        metrics: Mean of each metric over the probe queries.
        per_query: Metric → query id → value (kept in the history for paired comparisons).
        baseline: Time and model of the run compared with (None: this run is the baseline).
        comparison: Metric → baseline, current, diff, low, high (interval), recorded.
        alert: Whether the alert fired.
        status: ``baseline``, ``ok`` or ``alert``.
        reason: One line saying why.
        alert_metric: The metric the alert is decided on.
        margin: The drop that alerts.
    """

    time: str
    probe: dict[str, Any]
    model: dict[str, Any]
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = Field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    comparison: dict[str, dict[str, float | None]] = Field(default_factory=dict)
    alert: bool = False
    status: Literal["baseline", "ok", "alert"] = "baseline"
    reason: str = ""
    alert_metric: str = "ndcg@10"
    margin: float = 0.0


def read_history(path: str | Path) -> list[dict[str, Any]]:
    """Every run in a probe history file (JSON lines), oldest first; [] when absent.

    Raises:
        DataError: A line is not a JSON object with ``metrics``.
    """
    file = Path(path)
    if not file.exists():
        return []
    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("metrics"), dict):
            raise DataError(
                "not a probe history line (a JSON object with 'metrics')", path=file, line=number
            )
        rows.append(row)
    return rows


def compare_runs(
    current: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]],
    settings: ProbeSettings,
) -> dict[str, dict[str, float | None]]:
    """Paired comparison per metric over the queries both runs scored."""
    from embedtune.retrieval.stats import bootstrap_interval

    out: dict[str, dict[str, float | None]] = {}
    for metric in settings.metrics:
        now, before = current.get(metric, {}), baseline.get(metric, {})
        common = sorted(set(now) & set(before))
        if not common:
            continue
        a = np.array([now[q] for q in common])
        b = np.array([before[q] for q in common])
        low, high = bootstrap_interval(
            a - b, resamples=settings.bootstrap, seed=settings.seed, level=settings.level
        )
        out[metric] = {
            "baseline": float(b.mean()),
            "current": float(a.mean()),
            "diff": float((a - b).mean()),
            "low": low,
            "high": high,
            "queries": float(len(common)),
        }
    return out


def _recorded(source: ModelSource, registry_root: Path | None) -> dict[str, float]:
    """The version's recorded eval metrics (the tuned max-passage system, else the best
    dense system) from the report kept in the registry."""
    if source.version is None or registry_root is None:
        return {}
    report = registry_root / "versions" / source.version / "report.json"
    if not report.is_file():
        return {}
    systems = json.loads(report.read_text(encoding="utf-8")).get("systems", {})
    for name in ("tuned-maxp", "tuned", "base-maxp", "base"):
        if name in systems:
            return {k: v for k, v in systems[name].items() if isinstance(v, int | float)}
    return {}


def run_probe(
    data: str | Path,
    source: ModelSource,
    *,
    split: str = "test",
    history: str | Path | None = None,
    settings: ProbeSettings | None = None,
    registry_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> ProbeResult:
    """Re-run a probe set with a model and compare it with the history's baseline run.

    Args:
        data: A BEIR folder (corpus, queries, ``qrels/<split>.tsv``).
        source: The model (see :func:`~embedtune.monitor.source.open_source`).
        split: The judgments to score.
        history: JSON-lines file: read for the baseline, this run appended.
        settings: Metrics, margin, bootstrap.
        registry_root: The registry, for the version's recorded evaluation.
        cache_dir: Cache of document embeddings (keyed by the model's content hash, its
            runtime variant, the settings and the texts): a scheduled probe of an unchanged
            version re-encodes only its queries.

    Returns:
        The run and its comparison.

    Raises:
        ConfigError: The probe set has no judged queries, or the alert metric is not computed.

    Example:
        >>> source = open_source(registry=Registry("registry"), version="production")
        >>> result = run_probe("data/probe", source, history="monitor/probe.jsonl")
        >>> result.status
        'ok'
    """
    from embedtune.corpus.load import load_beir
    from embedtune.corpus.passages import split_passages
    from embedtune.models import ModelRef
    from embedtune.retrieval.dense import DenseEncoder, dense_search
    from embedtune.retrieval.metrics import judged_query_ids, mean, per_query

    settings = settings or ProbeSettings()
    if settings.alert_metric not in settings.metrics:
        raise ConfigError(f"alert metric {settings.alert_metric} is not among {settings.metrics}")
    dataset = load_beir(data, split)
    judged = judged_query_ids(dataset.qrels)
    if not judged:
        raise ConfigError(f"split '{split}' of {data} has no relevant judgments")
    past = read_history(history) if history is not None else []
    docs = list(dataset.corpus.values())
    passages = split_passages(docs, source.encoder.tokenizer, source.passages)
    # the variant is part of the cache key: int8 vectors are not the PyTorch ones
    cache_key = source.sha256 if source.variant == "torch" else f"{source.sha256}:{source.variant}"
    encoder = DenseEncoder(
        source.encoder,
        ModelRef(source.name, str(source.path), cache_key),
        query_prompt=source.query_prompt,
        doc_prompt=source.doc_prompt,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
    )
    if source.server is not None:  # vectors from a running server, which adds the prompts
        encoder.encode_queries = source.embed_queries  # type: ignore[method-assign]
        encoder._encode = lambda texts, prompt: source.embed_documents(texts)  # type: ignore[method-assign]
    run = dense_search(
        encoder,
        {q: dataset.queries[q] for q in judged},
        [d.id for d in docs],
        passages.texts,
        passages.bounds,
        k=settings.depth,
    )
    values = per_query(run, dataset.qrels, settings.metrics)
    probe_id = json.dumps(dataset.manifest.files, sort_keys=True)
    result = ProbeResult(
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        probe={"path": str(data), "split": split, "queries": len(judged), "files": probe_id},
        model=source.describe(),
        metrics={m: mean(v) for m, v in values.items()},
        per_query=values,
        alert_metric=settings.alert_metric,
        margin=settings.margin,
    )
    same_probe = [h for h in past if h.get("probe", {}).get("files") == probe_id]
    recorded = _recorded(source, Path(registry_root) if registry_root else None)
    if not same_probe:
        result.reason = "first run of this probe set: recorded as the baseline"
        result.comparison = {
            m: {"baseline": v, "current": v, "diff": 0.0, "low": 0.0, "high": 0.0}
            for m, v in result.metrics.items()
        }
    else:
        base = same_probe[0]
        result.baseline = {"time": base.get("time"), "model": base.get("model")}
        result.comparison = compare_runs(values, base.get("per_query", {}), settings)
        key = result.comparison.get(settings.alert_metric)
        if key is None:
            raise DataError(
                f"the baseline run holds no per-query {settings.alert_metric}", path=history
            )
        drop = -float(key["diff"] or 0.0)
        excludes_zero = float(key["high"] or 0.0) < 0
        result.alert = drop > settings.margin and excludes_zero
        result.status = "alert" if result.alert else "ok"
        result.reason = (
            f"{settings.alert_metric} {key['current']:.4f} vs baseline {key['baseline']:.4f}: "
            f"change {key['diff']:+.4f}, 95% interval [{key['low']:+.4f}, {key['high']:+.4f}]; "
            f"alert when the drop exceeds {settings.margin} and the interval excludes 0"
        )
    for metric, entry in result.comparison.items():
        entry["recorded"] = recorded.get(metric)
    if history is not None:
        path = Path(history)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:  # one write per run: a whole line
            handle.write(json.dumps(result.model_dump(mode="json")) + "\n")
    return result
