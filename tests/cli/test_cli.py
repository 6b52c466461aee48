"""The command line: good paths print the table, bad input is one line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
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


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


def test_search_k_out_of_range_is_one_line(tmp_path: Path) -> None:
    for k in ("0", "-3", "1000000"):
        args = ["search", "cash", "-k", k, "--index", str(tmp_path / "i")]
        result = runner.invoke(app, [*args, "--registry", str(tmp_path / "r")])
        assert result.exit_code == 2, result.output
        assert "k:" in _one_error_line(result.output)
    assert not (tmp_path / "i").exists() and not (tmp_path / "r").exists()


def test_unknown_or_unavailable_train_device_is_one_line(beir_dir: Path, tmp_path: Path) -> None:
    for device, message in (
        ("tpu", "device 'tpu': use cpu, cuda, cuda:N or mps"),
        ("cuda:99", "device 'cuda:99' is not available"),
        ("cuda:x", "device 'cuda:x': use cpu"),
    ):
        out = tmp_path / "model"
        result = runner.invoke(app, ["train", str(beir_dir), "-o", str(out), "--device", device])
        assert result.exit_code == 2, result.output
        assert message in _one_error_line(result.output)
        assert not out.exists() and not (tmp_path / "model.work").exists()


def test_device_values_are_checked_in_both_stage_configs() -> None:
    from pydantic import ValidationError

    from embedtune.pairs.config import BuildPairsConfig
    from embedtune.train.config import TrainConfig

    assert TrainConfig(device="cpu").device == "cpu"
    assert BuildPairsConfig(output="o", device="cpu").device == "cpu"
    assert TrainConfig().device is None
    for bad in ("tpu", "CUDA", "cuda:", "cpu:0", ""):
        with pytest.raises(ValidationError, match="use cpu, cuda, cuda:N or mps"):
            TrainConfig(device=bad)
        with pytest.raises(ValidationError, match="use cpu, cuda, cuda:N or mps"):
            BuildPairsConfig(output="o", device=bad)


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def _main_interrupted(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int | str | None, str]:
    """``embedtune ARGV`` through the real entry point, Ctrl-C pressed inside the command."""
    from embedtune.cli.main import main

    monkeypatch.setattr(sys, "argv", ["embedtune", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


def test_ctrl_c_in_train_says_to_resume_with_resume(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import embedtune.run

    monkeypatch.setattr(embedtune.run, "fine_tune", _interrupt)
    argv = ["-q", "train", str(tmp_path / "my data"), "-o", str(tmp_path / "m"), "--no-resume"]
    code, err = _main_interrupted(argv, monkeypatch, capsys)
    assert code == 130
    assert err.strip().splitlines() == [
        "interrupted; resume with: embedtune -q train "
        f"'{tmp_path / 'my data'}' -o {tmp_path / 'm'} --resume"
    ]


def test_ctrl_c_in_run_says_to_rerun_the_same_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import embedtune.run
    import embedtune.run.config

    monkeypatch.setattr(embedtune.run, "run_pipeline", _interrupt)
    monkeypatch.setattr(embedtune.run.config, "load_run_config", lambda path: path)
    code, err = _main_interrupted(["run", "cfg.yaml"], monkeypatch, capsys)
    assert code == 130
    assert err.strip().splitlines() == [
        "interrupted; resume with: embedtune run cfg.yaml (finished stages are skipped)"
    ]


def test_ctrl_c_elsewhere_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import embedtune.cli.main as cli

    monkeypatch.setattr(cli, "app", _interrupt)
    code, err = _main_interrupted(["eval", "data"], monkeypatch, capsys)
    assert code == 130 and err.strip().splitlines() == ["interrupted"]
