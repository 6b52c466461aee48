"""The command line: good paths print the table, bad input is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from embedtune.cli.main import app

runner = CliRunner()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "embedtune", *args], capture_output=True, text=True, timeout=300
    )


def test_eval_prints_table_and_writes_report(
    beir_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "eval",
            str(beir_dir),
            "--base-model",
            str(tiny_model),
            "--systems",
            "bm25,base-maxp",
            "--output",
            str(out),
            "--window",
            "16",
            "--stride",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "bm25" in result.output and "base-maxp" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["models"]["base"]["passages"]["window"] == 16
    assert sorted(p.name for p in out.glob("*.run")) == ["base-maxp.run", "bm25.run"]


def test_bad_data_is_one_clear_line_without_traceback(beir_dir: Path) -> None:
    with open(beir_dir / "corpus.jsonl", "a") as handle:
        handle.write("{broken\n")
    result = _cli("eval", str(beir_dir), "--systems", "bm25")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "corpus.jsonl:7: malformed JSON" in result.stderr


def test_unknown_system_metric_and_split_are_clear_errors(beir_dir: Path) -> None:
    bad_system = runner.invoke(app, ["eval", str(beir_dir), "--systems", "bm25,bm99"])
    assert bad_system.exit_code == 2 and "unknown system(s) ['bm99']" in bad_system.output
    bad_metric = runner.invoke(app, ["eval", str(beir_dir), "--metrics", "f1@3"])
    assert bad_metric.exit_code == 2 and "unknown metric 'f1@3'" in bad_metric.output
    bad_split = runner.invoke(app, ["eval", str(beir_dir), "--split", "dev"])
    assert bad_split.exit_code == 2 and "split 'dev' not found" in bad_split.output
    no_model = runner.invoke(app, ["eval", str(beir_dir), "--model", str(beir_dir / "nope")])
    assert no_model.exit_code == 2 and "is not a local folder" in no_model.output


def test_ingest_writes_corpus_manifest_and_passages(
    beir_dir: Path, tiny_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ingested"
    result = runner.invoke(
        app,
        [
            "ingest",
            str(beir_dir),
            "--split",
            "test",
            "--output",
            str(out),
            "--model",
            str(tiny_model),
            "--window",
            "8",
            "--stride",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6 documents, 5 queries, 6 judgments" in result.output
    assert "exact duplicates: 1 documents" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["passages"]["window"] == 8
    rows = [json.loads(x) for x in (out / "passages.jsonl").read_text().splitlines()]
    assert {r["doc_id"] for r in rows} == {f"d{i}" for i in range(1, 7)}
    assert (out / "qrels" / "test.tsv").is_file()


def test_ingest_skip_bad_reports_counts(tmp_path: Path) -> None:
    src = tmp_path / "docs.jsonl"
    src.write_text('{"id": "1", "body": "fine"}\n{"id": "2", "body": ""}\nnot json\n')
    result = runner.invoke(
        app,
        [
            "ingest",
            str(src),
            "--output",
            str(tmp_path / "o"),
            "--id-field",
            "id",
            "--text-field",
            "body",
            "--skip-bad",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "skipped: {'empty_text': 1, 'malformed_json': 1}" in result.output


def test_import_embedtune_does_not_import_torch() -> None:
    code = (
        "import sys, embedtune, embedtune.evaluate, embedtune.cli.main; "
        "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
