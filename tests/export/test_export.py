"""Export: ONNX fp32/int8 and torch.export with parity stored, a torch-free encoder, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.errors import ConfigError
from embedtune.export import ExportConfig, ExportResult, ParityError, export_model

runner = CliRunner()
TEXTS = ["topic3 number 3", "alpha beta " * 30, "x", "gamma delta topic7 number 7 alpha"]


@pytest.fixture(scope="module")
def exported(
    tmp_path_factory: pytest.TempPathFactory, train_model_dir: Path, train_set: Path
) -> Path:
    out = tmp_path_factory.mktemp("export") / "model"
    config = ExportConfig(
        model=str(train_model_dir),
        output=out,
        eval_data=train_set,
        eval_split="train",
        parity_texts=24,
    )
    result = export_model(config)
    assert isinstance(result, ExportResult) and result.path == str(out)
    return out


def test_export_writes_every_format_with_its_parity(exported: Path) -> None:
    meta = json.loads((exported / "export.json").read_text())
    assert list(meta) == [
        "format",
        "source",
        "encoder",
        "tokenizer",
        "files",
        "parity",
        "versions",
        "onnx",
        "sizes",
        "sha256",
    ]
    assert meta["files"] == {
        "fp32": "model.onnx",
        "int8": "model.int8.onnx",
        "torch-export": "model.pt2",
    }
    for name, file in meta["files"].items():
        assert (exported / file).stat().st_size == meta["sizes"][name]
    assert meta["parity"]["fp32"]["min_cosine"] >= 0.9999
    assert meta["parity"]["torch-export"]["min_cosine"] >= 0.9999
    assert 0.5 < meta["parity"]["int8"]["min_cosine"] <= 1.0
    scores = meta["parity"]["eval"]["ndcg@10"]
    assert set(scores) == {"pytorch", "fp32", "int8"}
    assert abs(scores["fp32"] - scores["pytorch"]) < 1e-3
    assert meta["parity"]["int8"]["ok"] == (meta["parity"]["int8"]["ndcg_drop"] <= 0.005)
    assert meta["encoder"]["pooling"] == "mean" and meta["encoder"]["normalize"] is True
    assert meta["source"]["sha256"] and len(meta["sha256"]["int8"]) == 64
    assert not list(exported.parent.glob(".model.*"))  # no temporary folder left behind
    # the typed result says what export.json says
    result = ExportResult.from_meta(exported, meta)
    assert result.files == meta["files"] and result.sizes == meta["sizes"]
    assert result.sha256 == meta["sha256"] and result.source_sha256 == meta["source"]["sha256"]
    assert result.parity["fp32"].min_cosine == meta["parity"]["fp32"]["min_cosine"]
    assert result.parity["int8"].ndcg_drop == meta["parity"]["int8"]["ndcg_drop"]
    assert result.retrieval is not None and result.retrieval.ndcg_at_10 == scores
    assert result.retrieval.model_dump(by_alias=True) == meta["parity"]["eval"]
    assert result.ok == meta["parity"]["int8"]["ok"]


def test_torch_free_encoder_matches_pytorch(exported: Path, train_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    expected = SentenceTransformer(str(train_model_dir), device="cpu").encode(TEXTS)
    script = f"""
import json, sys
sys.modules["torch"] = None          # importing torch or transformers now fails
sys.modules["transformers"] = None
sys.modules["sentence_transformers"] = None
from embedtune.retrieval.onnx import OnnxEncoder
vectors = OnnxEncoder({str(exported)!r}, "fp32").encode({TEXTS!r}, batch_size=3)
print(json.dumps(vectors.tolist()))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    vectors = np.array(json.loads(done.stdout))
    cosine = (vectors * expected).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine


def test_parity_failure_writes_nothing(train_model_dir: Path, tmp_path: Path) -> None:
    config = ExportConfig(
        model=str(train_model_dir),
        output=tmp_path / "bad",
        formats=["onnx"],
        min_cosine=1.5,
        parity_texts=8,
    )
    with pytest.raises(ParityError, match="drifts from PyTorch"):
        export_model(config)
    assert list(tmp_path.iterdir()) == []


def test_export_cli_errors(exported: Path, train_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        export_model(ExportConfig(model=str(train_model_dir), output=exported))
    no_eval = runner.invoke(app, ["export", str(train_model_dir), "-o", str(tmp_path / "x")])
    assert no_eval.exit_code == 2 and "--no-eval" in no_eval.output
    bad = runner.invoke(
        app, ["export", str(train_model_dir), "-o", str(tmp_path / "y"), "--formats", "tflite"]
    )
    assert bad.exit_code == 2 and "formats" in bad.output


def test_export_cli_prints_each_format(train_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli"
    args = ["export", str(train_model_dir), "-o", str(out), "--formats", "onnx,onnx-int8"]
    done = runner.invoke(app, [*args, "--no-eval"])
    assert done.exit_code == 0, done.output
    meta = json.loads((out / "export.json").read_text())
    assert f"{meta['parity']['fp32']['min_cosine']:.6f}" in done.output
    assert "model.int8.onnx" in done.output and "skipped (--no-eval)" in done.output
    assert meta["parity"]["int8"]["ok"] is None and "eval" not in meta["parity"]
