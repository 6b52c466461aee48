"""Labeled pairs: best passage as positive, hard negatives from rank ranges, filters, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedtune.corpus import load_beir
from embedtune.corpus.config import PassageConfig
from embedtune.errors import DataError
from embedtune.models import load_model, resolve_model
from embedtune.pairs import PairsConfig, read_pairs_file, write_pairs
from embedtune.pairs.mine import mine_labeled_pairs
from embedtune.retrieval.dense import DenseEncoder


@pytest.fixture
def encoder(train_model_dir: Path) -> DenseEncoder:
    ref = resolve_model(str(train_model_dir))
    return DenseEncoder(load_model(ref, device="cpu"), ref, cache_dir=None)


def test_mined_pairs_follow_the_rules(
    train_set: Path, encoder: DenseEncoder, tmp_path: Path
) -> None:
    data = load_beir(train_set, "train")
    config = PairsConfig.model_validate(
        {
            "negatives": {
                "sources": ["bm25", "base"],
                "ranks": [2, 10],
                "per_query": 2,
                "margin": 0.0,
            }
        }
    )
    pairs, summary = mine_labeled_pairs(data, encoder, PassageConfig(window=12, stride=6), config)
    assert len(pairs) == 60 and summary["pairs"] == 60
    for pair in pairs:
        prov = pair.provenance
        doc = data.corpus[prov["doc_id"]]
        assert pair.positive.startswith(doc.title)  # a passage of the relevant document
        assert pair.positive.removeprefix(doc.title).strip() in doc.text
        assert len(pair.negatives) <= 2 and len(set(pair.negatives)) == len(pair.negatives)
        assert pair.positive not in pair.negatives
        for neg in prov["negatives"]:
            assert neg["doc_id"] != prov["doc_id"]  # never from a judged document
            assert 2 <= neg["rank"] <= 10
            assert neg["method"] in {"bm25", "base"}
            assert neg["score"] <= prov["positive"]["score"]  # margin 0 filter
    # long documents are split; the positive is the passage that best matches the query
    long_pair = next(p for p in pairs if p.provenance["doc_id"] == "d0")
    assert long_pair.provenance["positive"]["method"] == "base"
    assert summary["passages"]["count"] > 60
    write_pairs(tmp_path / "pairs.jsonl", pairs, summary)
    again = read_pairs_file(tmp_path / "pairs.jsonl")
    assert [p.negatives for p in again] == [p.negatives for p in pairs]
    assert json.loads((tmp_path / "pairs.summary.json").read_text())["pairs"] == 60


def test_a_large_margin_filters_every_candidate(train_set: Path, encoder: DenseEncoder) -> None:
    data = load_beir(train_set, "train")
    config = PairsConfig.model_validate({"negatives": {"margin": 10.0, "per_query": 1}})
    pairs, summary = mine_labeled_pairs(data, encoder, PassageConfig(window=12, stride=6), config)
    assert all(not p.negatives for p in pairs)
    assert summary["filtered"]["filtered_false_negative"] > 0
    assert summary["negatives_per_pair"] == {"0": 60}


def test_pairs_files_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(
        '{"query": "q", "positive": "p", "negatives": ["n1", "n2"]}\n'
        '{"query": "q2", "positive": "p2"}\n'
    )
    assert [p.negatives for p in read_pairs_file(jsonl)] == [["n1", "n2"], []]
    csv = tmp_path / "p.csv"
    csv.write_text("query,positive,negative_1\nq,p,n\n")
    assert read_pairs_file(csv)[0].negatives == ["n"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "positive": "p"}\n{"query": "", "positive": "p"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing or empty \(field 'query'\)"):
        read_pairs_file(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no pairs"):
        read_pairs_file(empty)


def test_bad_rank_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"negatives\.ranks"):
        PairsConfig.model_validate({"negatives": {"ranks": [10, 3]}})


def test_cross_encoder_rescores_the_filter(
    train_set: Path, encoder: DenseEncoder, tmp_path: Path
) -> None:
    from embedtune.testing import build_tiny_cross_encoder

    texts = (train_set / "corpus.jsonl").read_text().splitlines()
    cross = build_tiny_cross_encoder(tmp_path / "ce", texts)
    data = load_beir(train_set, "train")
    config = PairsConfig.model_validate(
        {"negatives": {"cross_encoder": str(cross), "margin": 0.0, "per_query": 1}}
    )
    pairs, _ = mine_labeled_pairs(data, encoder, PassageConfig(window=12, stride=6), config)
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(cross), local_files_only=True)
    for pair in pairs[:10]:
        for neg, meta in zip(pair.negatives, pair.provenance["negatives"], strict=True):
            # the stored score is the cross-encoder's, and it passed the filter
            expected = float(model.predict([(pair.query, neg)], show_progress_bar=False)[0])
            assert meta["score"] == pytest.approx(expected, abs=1e-4)
            positive = float(
                model.predict([(pair.query, pair.positive)], show_progress_bar=False)[0]
            )
            assert meta["score"] <= positive


def test_pairs_cli(train_set: Path, train_model_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from embedtune.cli.main import app

    out = tmp_path / "pairs"
    args = ["pairs", str(train_set), "--output", str(out), "--model", str(train_model_dir)]
    args += ["--ranks", "2-40", "--per-query", "2", "--margin", "-1", "--window", "12"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # the dev rule holds out 15% of the 60 judged queries (grouped by relevant document)
    assert "51 pairs, 9 dev queries" in result.output
    rows = [json.loads(x) for x in (out / "pairs.jsonl").read_text().splitlines()]
    assert all(len(r["negatives"]) == 2 for r in rows), result.output
    record = json.loads((out / "pairset.json").read_text())
    assert record["supervision"] == "labels" and len(record["dev"]["queries"]) == 9
    assert not {r["query"] for r in rows} & set(record["dev"]["queries"].values())
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "reused" in again.output  # same inputs: not mined again
    other = CliRunner().invoke(
        app,
        [
            "pairs",
            str(train_set),
            "-o",
            str(out),
            "--model",
            str(train_model_dir),
            "--window",
            "12",
        ],
    )
    assert other.exit_code == 2 and "made from other data or settings" in other.output
    model = tmp_path / "model"
    trained = CliRunner().invoke(
        app,
        [
            "train",
            "--pairs",
            str(out),
            "-o",
            str(model),
            "--base-model",
            str(train_model_dir),
            "--max-steps",
            "1",
            "--device",
            "cpu",
            "--config",
            str(_window_yaml(tmp_path)),
        ],
    )
    assert trained.exit_code == 0, trained.output
    stored = json.loads((model / "embedtune.json").read_text())
    assert stored["data"]["dev"]["queries"] == 9 and stored["pairs"] == 51
    bad = CliRunner().invoke(app, ["pairs", str(train_set), "--ranks", "8"])
    assert bad.exit_code == 2 and "--ranks '8'" in bad.output


def _window_yaml(folder: Path) -> Path:
    path = folder / "window.yaml"
    path.write_text("passages: {window: 12, stride: 6}\nbatch_size: 8\n")
    return path


def test_candidate_mining_encodes_only_candidates_and_matches_corpus_mining_when_deep(
    train_set: Path, encoder: DenseEncoder
) -> None:
    data = load_beir(train_set, "train")
    passages = PassageConfig(window=12, stride=6)
    negatives = {"sources": ["bm25", "base"], "ranks": [2, 10], "per_query": 2, "margin": 0.0}
    corpus_pairs, summary = mine_labeled_pairs(
        data, encoder, passages, PairsConfig.model_validate({"negatives": negatives})
    )
    total = summary["passages"]["count"]
    assert encoder.stats.encoded == total
    # every passage shares a word with every query here, so a pool as deep as the corpus is
    # the whole corpus: the same pairs, negatives and scores as mining the corpus
    encoder.stats.encoded = 0
    deep = {"negatives": negatives, "mining": "candidates", "candidate_depth": total}
    deep_pairs, _ = mine_labeled_pairs(data, encoder, passages, PairsConfig.model_validate(deep))
    assert deep_pairs == corpus_pairs
    # a few queries with a shallow pool: only their candidates are encoded, and the rank
    # range is still filled from them
    encoder.stats.encoded = 0
    shallow = {"negatives": negatives, "mining": "candidates", "candidate_depth": 10}
    few = ["q1", "q2", "q3", "q4"]
    config = PairsConfig.model_validate(shallow)
    pairs, _ = mine_labeled_pairs(data, encoder, passages, config, query_ids=few)
    assert 0 < encoder.stats.encoded <= 4 * 10 + 4 * 8 < total
    assert len(pairs) == 4 and all(len(p.negatives) == 2 for p in pairs)
    with pytest.raises(ValueError, match="candidate_depth 5 is shallower"):
        PairsConfig.model_validate({"mining": "candidates", "candidate_depth": 5})


def test_mining_with_the_int8_export_of_the_base_model(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    import shutil

    from embedtune.errors import ConfigError
    from embedtune.export import ExportConfig, export_model
    from embedtune.pairs.build import build_pairs
    from embedtune.run.config import stage_configs

    def export(model: Path, name: str) -> Path:
        out = tmp_path / name
        export_model(ExportConfig(model=str(model), output=out, formats=["onnx", "onnx-int8"]))
        return out

    def built(name: str, **pairs: object) -> tuple[list[object], dict[str, object]]:
        recipe = {
            "base_model": str(train_model_dir),
            "passages": {"window": 12, "stride": 6},
            "pairs": {"negatives": {"per_query": 2, "margin": 0.0}, **pairs},
        }
        result = build_pairs(stage_configs(recipe, output=tmp_path / name, data=str(train_set))[0])
        return read_pairs_file(tmp_path / f"{name}.work" / "pairs.jsonl"), result.summary

    torch_pairs, _ = built("torch")
    int8_pairs, summary = built("int8", mining_encoder=str(export(train_model_dir, "export")))
    record = summary["mining_encoder"]
    assert record["variant"] == "int8" and record["parity"]["min_cosine"] > 0.99
    # int8 only ranks the candidates: the same positives, and (almost) the same negatives
    assert [p.positive for p in int8_pairs] == [p.positive for p in torch_pairs]
    same = sum(
        set(a.negatives) == set(b.negatives) for a, b in zip(int8_pairs, torch_pairs, strict=True)
    )
    assert same >= 0.9 * len(torch_pairs)
    # an export of another model is refused before anything is mined
    other = tmp_path / "other-export"
    shutil.copytree(tmp_path / "export", other)
    meta = json.loads((other / "export.json").read_text())
    meta["source"] = {"name": "another-model", "sha256": "0" * 64}
    (other / "export.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=r"export of 'another-model', not of the base model"):
        built("other", mining_encoder=str(other))
    assert not (tmp_path / "other.work" / "pairs.jsonl").exists()
