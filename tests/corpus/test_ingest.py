"""``ingest`` from Python: config in (paths inside), typed result out, manifest on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedtune.corpus import IngestConfig, IngestResult, PassageConfig, ingest
from embedtune.errors import DataError


def test_ingest_returns_counts_and_writes_the_manifest(beir_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ingested"
    result = ingest(IngestConfig(path=str(beir_dir), split="test", output=str(out)))
    assert isinstance(result, IngestResult) and result.output == out
    assert (result.documents, result.queries, result.qrels) == (6, 5, 6)
    assert result.skipped == {} and result.passages is None
    assert (result.duplicate_documents, result.duplicate_groups) == (1, 1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == result.to_dict()
    # the manifest records the input settings only, not where it was written
    assert list(manifest) == ["input", "files", "counts", "skipped", "duplicates"]
    assert manifest["input"] == {
        "path": str(beir_dir),
        "format": "auto",
        "fields": {"id": "_id", "title": "title", "text": "text"},
        "split": "test",
        "skip_bad": False,
    }
    assert (out / "corpus.jsonl").is_file() and (out / "qrels" / "test.tsv").is_file()


def test_ingest_with_a_model_writes_passages(
    beir_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    config = IngestConfig(
        path=beir_dir,  # type: ignore[arg-type]  # a Path is taken as its string
        output=tmp_path / "o",  # type: ignore[arg-type]
        model=str(tiny_model),
        passages=PassageConfig(window=8, stride=4),
    )
    assert config.path == str(beir_dir) and config.output == str(tmp_path / "o")
    result = ingest(config)
    rows = (tmp_path / "o" / "passages.jsonl").read_text().splitlines()
    assert result.passages == len(rows) >= 6
    assert result.manifest["passages"]["window"] == 8
    assert result.manifest["passages"]["count"] == result.passages
    assert not (tmp_path / "o" / "queries.jsonl").exists()  # no split read


def test_ingest_config_refuses_unknown_options_and_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Extra inputs"):
        IngestConfig(path="x", output="o", window=8)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="output"):
        IngestConfig(path="x")  # type: ignore[call-arg]
    with pytest.raises(DataError, match="no such file or folder"):
        ingest(IngestConfig(path=str(tmp_path / "nope"), output=str(tmp_path / "o")))
