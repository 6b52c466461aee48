"""Metrics agree with trec_eval (pytrec_eval) to 1e-6, ties included; run files re-score."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import pytrec_eval

from embedtune.errors import ConfigError
from embedtune.retrieval.metrics import mean, parse_metric, per_query, ranked
from embedtune.retrieval.ranking import read_run, write_run

METRICS = [
    "ndcg@10",
    "ndcg@3",
    "mrr@10",
    "recall@100",
    "recall@5",
    "map@100",
    "map@10",
    "hit@5",
    "hit@1",
    "precision@10",
]


def _random_case(seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    docs = [f"d{i:03d}" for i in range(150)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(40):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 12))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        qrels[qid][judged[0]] = rng.choice([1, 2, 3])  # at least one relevant
        retrieved = rng.sample(docs, rng.randint(0, 120))
        # coarse scores make many ties, which trec_eval breaks by document id
        run[qid] = {d: round(rng.random(), 1) for d in retrieved}
    return run, qrels


def _pytrec(run: dict, qrels: dict, metric: str) -> dict[str, float]:
    parsed = parse_metric(metric)
    if parsed.kind == "mrr":  # MRR@k is recip_rank on the run cut at k
        run = {q: {d: s[d] for d in ranked(s)[: parsed.k]} for q, s in run.items()}
    measure = parsed.trec_name
    # "ndcg_cut_3" is asked for as "ndcg_cut.3" (trec_eval's -m measure.cutoff)
    request = ".".join(measure.rsplit("_", 1)) if measure[-1].isdigit() else measure
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {request})
    results = evaluator.evaluate(run)
    return {q: results[q][measure] for q in results}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_pytrec_eval_with_ties(seed: int) -> None:
    run, qrels = _random_case(seed)
    ours = per_query(run, qrels, METRICS)
    for metric in METRICS:
        reference = _pytrec(run, qrels, metric)
        for qid in qrels:
            expected = reference.get(qid, 0.0)  # a query with an empty run scores 0
            assert ours[metric][qid] == pytest.approx(expected, abs=1e-6), (metric, qid)


def test_run_file_rescored_by_pytrec_eval_gives_same_numbers(tmp_path: Path) -> None:
    run, qrels = _random_case(7)
    write_run(tmp_path / "x.run", run, tag="x", depth=100)
    lines = (tmp_path / "x.run").read_text().splitlines()
    assert all(len(line.split()) == 6 for line in lines)
    reread = read_run(tmp_path / "x.run")
    ours = per_query(run, qrels, ["ndcg@10", "map@100", "recall@100"])
    for metric in ["ndcg@10", "map@100", "recall@100"]:
        reference = _pytrec(reread, qrels, metric)
        for qid, value in reference.items():
            assert ours[metric][qid] == pytest.approx(value, abs=1e-6)


def test_run_file_is_ranked_and_full_precision(tmp_path: Path) -> None:
    write_run(tmp_path / "r.run", {"q": {"a": 0.5, "b": 0.5, "c": 0.123456789012345678}}, "t")
    lines = [line.split() for line in (tmp_path / "r.run").read_text().splitlines()]
    assert [row[2] for row in lines] == ["b", "a", "c"]  # tie → id descending
    assert [row[3] for row in lines] == ["1", "2", "3"]
    assert float(lines[2][4]) == 0.123456789012345678


def test_unjudged_queries_are_skipped_and_identical_ids_only_on_request() -> None:
    qrels = {"q1": {"q1": 1, "d2": 1}, "q2": {"d1": 0}}
    run = {"q1": {"q1": 0.9, "d2": 0.5, "d3": 0.1}, "q2": {"d1": 1.0}}
    values = per_query(run, qrels, ["hit@1", "mrr@10"])
    assert set(values["hit@1"]) == {"q1"}
    assert values["hit@1"]["q1"] == 1.0
    ignored = per_query(run, qrels, ["mrr@10"], ignore_identical_ids=True)
    assert ignored["mrr@10"]["q1"] == 1.0  # d2 moves to rank 1
    assert mean(values["mrr@10"]) == 1.0


def test_graded_ndcg_by_hand() -> None:
    qrels = {"q": {"a": 2, "b": 1}}
    run = {"q": {"b": 2.0, "a": 1.0}}
    import math

    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert per_query(run, qrels, ["ndcg@10"])["ndcg@10"]["q"] == pytest.approx(dcg / idcg)


@pytest.mark.parametrize("bad", ["ndcg", "ndcg@0", "f1@10", "recall@x"])
def test_unknown_metric_names(bad: str) -> None:
    with pytest.raises(ConfigError, match="unknown metric"):
        parse_metric(bad)
