"""Retrieval metrics with trec_eval semantics.

Runs are ranked by score (descending), ties broken by document id (descending), exactly as
trec_eval sorts them. A document is relevant when its judgment is >= 1; nDCG uses the graded
judgment as a linear gain. Only queries with at least one relevant judgment are scored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from embedtune.corpus.types import Qrels
from embedtune.errors import ConfigError

Run = dict[str, dict[str, float]]
"""query id → document id → score."""

DEFAULT_METRICS = ("ndcg@10", "mrr@10", "recall@100", "map@100", "hit@5")
KINDS = ("ndcg", "mrr", "recall", "map", "precision", "hit")
_PATTERN = re.compile(r"^(ndcg|mrr|recall|map|precision|hit)@([1-9][0-9]*)$")


@dataclass(frozen=True)
class Metric:
    """A metric name such as ``ndcg@10`` parsed into its kind and cut-off."""

    kind: str
    k: int

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.k}"

    @property
    def trec_name(self) -> str:
        """The trec_eval measure that computes the same number."""
        return {
            "ndcg": f"ndcg_cut_{self.k}",
            "mrr": "recip_rank",  # on the run cut at k
            "recall": f"recall_{self.k}",
            "map": f"map_cut_{self.k}",
            "precision": f"P_{self.k}",
            "hit": f"success_{self.k}",
        }[self.kind]


def parse_metric(name: str) -> Metric:
    """``"ndcg@10"`` → Metric; unknown names are a clear error."""
    match = _PATTERN.match(name.strip().lower())
    if not match:
        raise ConfigError(
            f"unknown metric '{name}': use one of {', '.join(KINDS)} followed by @k, e.g. ndcg@10"
        )
    return Metric(match.group(1), int(match.group(2)))


def ranked(scores: dict[str, float]) -> list[str]:
    """Document ids in trec_eval order: score descending, then document id descending."""
    return sorted(scores, key=lambda doc: (scores[doc], doc), reverse=True)


def _ndcg(ranking: list[str], judged: dict[str, int], k: int) -> float:
    dcg = sum(max(judged.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def _score(metric: Metric, ranking: list[str], judged: dict[str, int], n_rel: int) -> float:
    top = ranking[: metric.k]
    hits = [judged.get(doc, 0) >= 1 for doc in top]
    if metric.kind == "ndcg":
        return _ndcg(ranking, judged, metric.k)
    if metric.kind == "mrr":
        return next((1.0 / (i + 1) for i, hit in enumerate(hits) if hit), 0.0)
    if metric.kind == "recall":
        return sum(hits) / n_rel
    if metric.kind == "precision":
        return sum(hits) / metric.k
    if metric.kind == "hit":
        return 1.0 if any(hits) else 0.0
    found, total = 0, 0.0  # map: precision at each relevant rank, over all relevant docs
    for i, hit in enumerate(hits):
        if hit:
            found += 1
            total += found / (i + 1)
    return total / n_rel


def per_query(
    run: Run, qrels: Qrels, metrics: Iterable[str], *, ignore_identical_ids: bool = False
) -> dict[str, dict[str, float]]:
    """metric name → query id → value, over the judged queries (missing runs score 0).

    Queries without a relevant judgment are left out; :func:`judged_query_ids` counts them.
    """
    parsed = [parse_metric(m) for m in metrics]
    out: dict[str, dict[str, float]] = {m.name: {} for m in parsed}
    for qid in judged_query_ids(qrels):
        judged = qrels[qid]
        scores = run.get(qid, {})
        if ignore_identical_ids:
            scores = {doc: s for doc, s in scores.items() if doc != qid}
        ranking = ranked(scores)
        n_rel = sum(1 for g in judged.values() if g >= 1)
        for metric in parsed:
            out[metric.name][qid] = _score(metric, ranking, judged, n_rel)
    return out


def judged_query_ids(qrels: Qrels) -> list[str]:
    """Queries with at least one relevant judgment, sorted."""
    return sorted(qid for qid, docs in qrels.items() if any(g >= 1 for g in docs.values()))


def mean(values: dict[str, float]) -> float:
    """Mean over queries (0.0 for none)."""
    return sum(values.values()) / len(values) if values else 0.0
