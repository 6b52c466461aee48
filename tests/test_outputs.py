"""The one output rule: never onto or into an input; an existing output only with overwrite,
and then the old one is kept until the new one is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.errors import ConfigError
from embedtune.outputs import check_output, replacing
from embedtune.run import fine_tune
from tests.conftest import write_beir

runner = CliRunner()


def _said(args: list[str]) -> tuple[int, str]:
    """Exit code and output as one line (rich wraps long lines at the terminal width)."""
    result = runner.invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def test_check_output_refuses_inputs_and_existing_outputs(tmp_path: Path) -> None:
    data = write_beir(tmp_path / "data")
    with pytest.raises(ConfigError, match="is the input"):
        check_output(data, [data])
    with pytest.raises(ConfigError, match="lies inside the input"):
        check_output(data / "corpus.jsonl", [data], overwrite=True)
    with pytest.raises(ConfigError, match="lies inside the input"):
        check_output(tmp_path / "data" / ".." / "data" / "x", [data])  # resolved, not by text
    with pytest.raises(ConfigError, match="--overwrite to replace it"):
        check_output(data, [tmp_path / "other"])
    check_output(data, [tmp_path / "other"], overwrite=True)
    with pytest.raises(ConfigError, match="would delete"):
        check_output(tmp_path, [data], overwrite=True)  # the input lies inside the output
    with pytest.raises(ConfigError, match="holds the input"):
        check_output(tmp_path, [data], exists_ok=True)  # reused in place, over its input
    check_output(tmp_path, [data], exists_ok=True, holds_inputs=True)  # a run folder may
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty", [data])  # an empty folder holds nothing to lose
    check_output(tmp_path / "x", ["base", None, tmp_path / "missing"])  # not places on disk


def test_replacing_keeps_the_old_output_until_the_new_one_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), replacing(out, overwrite=True):
        assert not out.exists()  # moved aside while the new one is written
        out.mkdir()
        (out / "half.txt").write_text("half")
        raise RuntimeError("the command failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in out.iterdir()] == ["old.txt"]
    with replacing(out, overwrite=True):
        out.mkdir()
        (out / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert [p.name for p in out.iterdir()] == ["new.txt"]


def test_ingest_overwrite_replaces_only_on_success(tmp_path: Path) -> None:
    first = write_beir(tmp_path / "a")
    second = write_beir(tmp_path / "b", docs=[{"_id": "z", "title": "", "text": "only one"}])
    out = tmp_path / "out"
    assert runner.invoke(app, ["ingest", str(first), "-o", str(out)]).exit_code == 0
    corpus = (out / "corpus.jsonl").read_text()
    refused = runner.invoke(app, ["ingest", str(second), "-o", str(out)])
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr
    # fails after the old output was moved aside (no such model): the old one is put back
    failed = runner.invoke(
        app, ["ingest", str(second), "-o", str(out), "--overwrite", "--model", str(tmp_path)]
    )
    assert failed.exit_code == 2, failed.output
    assert (out / "corpus.jsonl").read_text() == corpus
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "out"]
    done = runner.invoke(app, ["ingest", str(second), "-o", str(out), "--overwrite"])
    assert done.exit_code == 0, done.output
    assert [
        json.loads(line)["_id"] for line in (out / "corpus.jsonl").read_text().splitlines()
    ] == ["z"]


def test_eval_report_is_not_replaced_silently(beir_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["eval", str(beir_dir), "--systems", "bm25", "-o", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    (out / "notes.txt").write_text("mine")
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    assert not (out / "notes.txt").exists() and (out / "report.json").is_file()


def test_pairs_are_reused_refused_or_rebuilt(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pairs"
    args = ["pairs", str(train_set), "-o", str(out), "--model", str(train_model_dir)]
    args += ["--window", "12", "--stride", "6"]
    assert runner.invoke(app, args).exit_code == 0
    first = json.loads((out / "pairset.json").read_text())["fingerprint"]
    assert "already built" in _said(args)[1]  # same inputs: nothing mined again
    other = [*args[:-4], "--window", "16", "--stride", "8"]
    refused = runner.invoke(app, other)
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr
    code, said = _said([*other, "--overwrite"])
    assert code == 0 and "already built" not in said
    assert json.loads((out / "pairset.json").read_text())["fingerprint"] != first


def test_train_overwrite_starts_over_and_drops_old_checkpoints(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    recipe = {
        "epochs": 1,
        "max_steps": 2,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "device": "cpu",
        "passages": {"window": 12, "stride": 6},
        "base_model": str(train_model_dir),
    }
    out = tmp_path / "model"
    fine_tune(out, recipe, data=str(train_set))
    stale = out.parent / "model.work" / "checkpoints" / "checkpoint-999"
    stale.mkdir(parents=True)
    with pytest.raises(ConfigError, match="--overwrite"):
        fine_tune(out, {**recipe, "seed": 7}, data=str(train_set))
    result = fine_tune(out, {**recipe, "seed": 7}, data=str(train_set), overwrite=True)
    assert result.settings.config["seed"] == 7
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.work"]
