"""Vocabulary-gap analysis: fragmentation against general English, lengths, the HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtune.analyze import AnalyzeConfig, AnalyzeResult, analyze_corpus
from embedtune.cli.main import app
from embedtune.corpus.vocab import count_words, fragmentation
from embedtune.errors import ConfigError
from embedtune.testing import build_tiny_model
from tests.conftest import write_beir

runner = CliRunner()
GENERAL = "the company said that it would pay the people who work for it " * 3
DOMAIN = "hepatocellular carcinoma and cholangiocarcinoma "


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # the vocabulary knows common English words whole; domain words only as characters
    from wordfreq import top_n_list

    common = " ".join(top_n_list("en", 5000))
    return build_tiny_model(tmp_path_factory.mktemp("m"), [GENERAL, common], max_length=32)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    docs = [
        {"_id": f"d{i}", "title": "", "text": f"{GENERAL} {DOMAIN * 4} " * (1 + 3 * (i % 2))}
        for i in range(6)
    ]
    return write_beir(tmp_path / "data", docs=docs, queries=[], qrels=[])


def test_fragmentation_counts_pieces_per_running_word() -> None:
    ids = {"the": [1], "hepato": [2, 3, 4], "x": [0]}
    frag = fragmentation({"the": 3, "hepato": 1}, ids, unk_id=0)
    assert frag.tokens_per_word == pytest.approx((3 * 1 + 3) / 4)
    assert frag.share_3plus == pytest.approx(0.25)
    assert frag.pieces == {"1": 0.75, "2": 0.0, "3": 0.25, "4": 0.0, "5+": 0.0}
    assert fragmentation({"x": 1}, ids, unk_id=0).unk_share == 1.0
    assert count_words(["Non-GAAP company's 2023 revenue"]) == {
        "Non": 1,
        "GAAP": 1,
        "company": 1,
        "s": 1,
        "revenue": 1,
    }


def test_analysis_finds_the_gap_the_terms_and_the_truncation(
    corpus: Path, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = AnalyzeConfig(data=str(corpus), split="test", model=str(model), output=str(out))
    result = analyze_corpus(config)
    assert isinstance(result, AnalyzeResult) and result.output == out
    assert result.corpus.tokens_per_word > result.reference.tokens_per_word
    report = result.to_dict()
    assert report["gap"]["share_3plus"] > 0.1
    terms = [t.term for t in result.top_terms]
    # same count, so the longer split ranks first
    assert terms[:2] == ["cholangiocarcinoma", "hepatocellular"]
    assert set(terms) <= set(DOMAIN.split())
    top = result.top_terms[0]
    assert top.tokens[0] == "c" and all(t.startswith("##") for t in top.tokens[1:])
    assert top.pieces == len(top.tokens)
    assert "company" not in terms  # known words are not fragmented
    lengths = result.lengths
    assert lengths.max_tokens == 30 and lengths.truncated_share == 1.0
    assert 0 < lengths.text_lost_share < 1
    assert sum(report["lengths"]["histogram"]["counts"]) == 6
    assert report["reference"]["name"].startswith("wordfreq") and report["reference"]["version"]
    assert report["reference"]["words"] > 40_000  # the list's size, not its frequency mass
    assert result.passages == report["passages"]["count"] > 6
    advice = " ".join(result.recommendations)
    assert "fragments this vocabulary" in advice and "best passage" in advice
    saved = json.loads((out / "analysis.json").read_text())
    # the typed result is a view of the artefact: same numbers, nothing lost
    assert saved == json.loads(json.dumps(report))
    assert saved["settings"] == {
        "top_terms": 30,
        "min_count": 3,
        "general_zipf": 3.5,
        "reference_words": 50_000,
    }
    assert [t["term"] for t in saved["top_terms"]] == terms
    assert saved["corpus"]["tokens_per_word"] == result.corpus.tokens_per_word
    page = result.html.read_text()
    assert page.count("<svg") == 3 and "<script" not in page and "hepatocellular" in page
    with pytest.raises(ConfigError, match="already exists"):
        analyze_corpus(config)


def test_analyze_config_takes_paths_and_refuses_unknown_options(tmp_path: Path) -> None:
    config = AnalyzeConfig(data=tmp_path / "data", output=tmp_path / "out")  # type: ignore[arg-type]
    assert config.data == str(tmp_path / "data") and config.model == "base"
    assert config.options() == {
        "top_terms": 30,
        "min_count": 3,
        "general_zipf": 3.5,
        "reference_words": 50_000,
    }
    with pytest.raises(ValueError, match="Extra inputs"):
        AnalyzeConfig(data="d", output="o", top_term=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="output"):
        AnalyzeConfig(data="d")  # type: ignore[call-arg]


def test_analyze_cli(corpus: Path, model: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = runner.invoke(app, ["analyze", str(corpus), "--model", str(model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "tokens per word" in result.output and "hepatocellular" in result.output
    assert (out / "analysis.html").is_file()
    missing = runner.invoke(app, ["analyze", str(tmp_path / "nope"), "-o", str(out / "x")])
    assert missing.exit_code == 2 and "nope" in missing.output
