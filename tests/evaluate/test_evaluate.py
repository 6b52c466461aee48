"""The whole evaluation: systems side by side, report, run files, cache, fusion rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytrec_eval

from embedtune.corpus import load_beir
from embedtune.errors import ConfigError
from embedtune.evaluate.config import EvalConfig
from embedtune.evaluate.evaluate import evaluate_models
from embedtune.retrieval.ranking import read_run
from tests.conftest import write_beir
from tests.html_pages import assert_self_contained, screenshot


def _config(data: Path, base: Path, **kwargs: object) -> EvalConfig:
    return EvalConfig(
        data=str(data),
        split="test",
        base_model=str(base),
        permutations=200,
        bootstrap=200,
        show_progress=False,
        **kwargs,
    )  # type: ignore[arg-type]


def test_every_system_reported_with_runs_intervals_and_significance(
    beir_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = evaluate_models(_config(beir_dir, tiny_model, model=str(tiny_model)), out)
    report = json.loads((out / "report.json").read_text())
    systems = ["bm25", "base", "base-maxp", "base-hybrid", "tuned", "tuned-maxp", "tuned-hybrid"]
    assert list(report["systems"]) == systems
    assert set(report["systems"]["bm25"]) == {"ndcg@10", "mrr@10", "recall@100", "map@100", "hit@5"}
    for system in systems:
        assert (out / f"{system}.run").is_file()
        for metric, (lo, hi) in report["intervals"][system].items():
            assert lo <= report["systems"][system][metric] <= hi
    assert report["significance"]["tuned"]["bm25"]["ndcg@10"]["p"] <= 1.0
    # the same model as base and tuned: identical, so never significant
    assert report["significance"]["tuned"]["base"]["ndcg@10"]["p"] == 1.0
    assert report["data"]["evaluated_queries"] == 4
    assert report["data"]["skipped_unjudged_queries"] == 1
    assert report["fusion"] == {"method": "rrf"}  # auto: a model without dev-chosen weights
    assert report["data"]["duplicates"]["documents"] == 1
    assert report["models"]["base"]["passages"] == {"window": 96, "stride": 48, "title": True}
    assert report["versions"]["sentence-transformers"]
    assert report["warnings"] and "only 4 judged queries" in report["warnings"][0]
    assert "95% bootstrap intervals of ndcg@10: bm25 0." in report["warnings"][0]
    assert "| bm25 |" in (out / "report.md").read_text()
    page = assert_self_contained(out / "report.html")
    assert "Per query (ndcg@10)" in page and "tuned-maxp vs base-maxp" in page
    # BM25 finds each query's document on this toy set
    assert report["systems"]["bm25"]["hit@5"] == 1.0
    # the run files re-score with trec_eval to the reported numbers
    qrels = load_beir(beir_dir, "test").qrels
    assert set(result.runs) == set(systems)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    for system in systems:
        scores = evaluator.evaluate(read_run(out / f"{system}.run"))
        judged = ["q1", "q2", "q3", "q4"]
        ndcg = sum(scores.get(q, {}).get("ndcg_cut_10", 0.0) for q in judged) / 4
        assert ndcg == pytest.approx(report["systems"][system]["ndcg@10"], abs=1e-6)
        # per_query.json holds each judged query's score, as trec_eval -q prints it
        by_query = json.loads((out / "per_query.json").read_text())[system]["ndcg@10"]
        assert sorted(by_query) == judged
        for query in judged:
            want = scores.get(query, {}).get("ndcg_cut_10", 0.0)
            assert by_query[query] == pytest.approx(want, abs=1e-6)
    # last: it skips (saying so) where Chromium is not installed
    screenshot(out / "report.html", tmp_path / "report.png")


def test_second_run_reads_document_embeddings_from_cache(beir_dir: Path, tiny_model: Path) -> None:
    config = _config(beir_dir, tiny_model, systems=["base", "base-maxp"])
    first = evaluate_models(config).report["models"]["base"]["encoding"]
    second = evaluate_models(config).report["models"]["base"]["encoding"]
    assert first["encoded"] > 0
    assert second["encoded"] == 0
    assert second["cached"] == first["encoded"] + first["cached"]


def test_subset_of_systems_and_metrics(beir_dir: Path, tiny_model: Path) -> None:
    config = _config(beir_dir, tiny_model, systems=["bm25"], metrics=["precision@2", "MAP@10"])
    report = evaluate_models(config).report
    assert report["systems"] == {"bm25": pytest.approx({"precision@2": 0.625, "map@10": 1.0})}


def test_tuned_systems_need_a_model(beir_dir: Path, tiny_model: Path) -> None:
    with pytest.raises(ConfigError, match="need --model"):
        evaluate_models(_config(beir_dir, tiny_model, systems=["tuned-maxp"]))


def test_weighted_fusion_weight_is_tuned_off_the_test_split(
    tmp_path: Path, tiny_model: Path
) -> None:
    data = write_beir(tmp_path / "d", "test")
    write_beir(data, "dev")
    with pytest.raises(ConfigError, match="train/dev"):
        evaluate_models(_config(data, tiny_model, systems=["base-hybrid"], fusion="weighted"))
    with pytest.raises(ConfigError, match="must not be tuned on the evaluated split"):
        evaluate_models(
            _config(
                data,
                tiny_model,
                systems=["base-hybrid"],
                fusion="weighted",
                tune_data=str(data),
                tune_split="test",
            )
        )
    report = evaluate_models(
        _config(
            data,
            tiny_model,
            systems=["base-hybrid"],
            fusion="weighted",
            tune_data=str(data),
            tune_split="dev",
        )
    ).report
    assert 0.0 <= report["fusion"]["base"]["weight"] <= 1.0
    assert report["fusion"]["base"]["tuned_on"].endswith(":dev")
    # dev: the weights chosen when the tuned model was trained; a model without them is refused
    with pytest.raises(ConfigError, match="--fusion dev"):
        evaluate_models(
            _config(data, tiny_model, model=str(tiny_model), systems=["tuned-hybrid"], fusion="dev")
        )


def test_ignore_identical_ids_only_when_asked(tmp_path: Path, tiny_model: Path) -> None:
    docs = [{"_id": "1", "text": "wing lift"}, {"_id": "2", "text": "wing lift slipstream"}]
    data = write_beir(
        tmp_path / "d",
        docs=docs,
        queries=[{"_id": "1", "text": "wing lift"}],
        qrels=[("1", "2", 1)],
    )
    plain = evaluate_models(_config(data, tiny_model, systems=["bm25"], metrics=["mrr@10"]))
    ignored = evaluate_models(
        _config(data, tiny_model, systems=["bm25"], metrics=["mrr@10"], ignore_identical_ids=True)
    )
    assert plain.report["systems"]["bm25"]["mrr@10"] == 0.5
    assert ignored.report["systems"]["bm25"]["mrr@10"] == 1.0
