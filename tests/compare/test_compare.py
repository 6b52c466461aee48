"""``embedtune compare``: cells in their own processes, resumable, and the matrix."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from embedtune.cli.main import app
from embedtune.compare import CellResult, CompareConfig, compare, plan_cells
from embedtune.compare.config import BEFORE_SETTINGS, CellSpec, same_settings
from embedtune.compare.matrix import build_matrix, render_markdown
from embedtune.errors import ConfigError
from embedtune.pairs.build import build_pairs
from embedtune.run.config import stage_configs
from tests.conftest import write_train_set
from tests.html_pages import assert_self_contained, screenshot

runner = CliRunner()

RECIPE = {
    "batch_size": 8,
    "learning_rate": 1e-3,
    "device": "cpu",
    "max_steps": 2,
    "passages": {"window": 12, "stride": 6},
}


def _config(tmp_path: Path, train_set: Path, model: Path, **extra: Any) -> dict[str, Any]:
    test_set = tmp_path / "held"
    if not test_set.is_dir():
        write_train_set(test_set, n=30, split="test")
    return {
        "output": str(tmp_path / "cmp"),
        "data": {"train": str(train_set), "test": str(test_set)},
        "preset": "fast",
        "train": {**RECIPE, "base_model": str(model)},
        "approaches": ["full", "lora"],
        **extra,
    }


def _write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in folder.glob("cells/*/cell.json")}


def _kill_runner_in_cell(config: Path, cell: Path) -> None:
    """Start ``embedtune compare`` in its own process and kill -9 it (it alone) once the
    process of ``cell`` has written a complete training checkpoint; that cell's process must
    end with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    process = subprocess.Popen(
        [sys.executable, "-m", "embedtune", "compare", str(config)],
        # slowed down so that the kill lands between the first checkpoint and the last step
        env={**os.environ, "HF_HUB_OFFLINE": "1", "EMBEDTUNE_TEST_STEP_DELAY": "0.2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    checkpoints = cell / "model.work" / "checkpoints"
    while not list(checkpoints.glob("checkpoint-*/embedtune-complete")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    children = psutil.Process(process.pid).children()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert psutil.wait_procs(children, timeout=10)[1] == []  # none left alive


def test_cells_run_once_each_and_make_the_matrix(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    config = _config(
        tmp_path,
        train_set,
        train_model_dir,
        probes=[{"data": str(tmp_path / "held"), "split": "test"}],
        learning_curve={"fractions": [0.5, 1.0], "approaches": ["lora"]},
        # checkpoints at steps 3, 6 and 8: a kill can land between two of them
        overrides={"lora": {"max_steps": 8, "batch_size": 4, "evals_per_epoch": 4}},
    )
    path = _write(tmp_path, config)
    out = tmp_path / "cmp"
    # --only runs one cell; the matrix lists the others as not finished
    first = runner.invoke(app, ["compare", str(path), "--only", "full"])
    assert first.exit_code == 0, first.output
    assert set(_mtimes(out)) == {"full"}
    matrix = json.loads((out / "matrix.json").read_text())
    assert matrix["not_finished"] == ["lora", "lora@0.5"]
    # kill -9 of the runner while a cell trains: the cell dies with it (no orphan writing
    # into the folder), and the rerun resumes that cell from its last complete checkpoint
    # and skips the finished one
    _kill_runner_in_cell(path, out / "cells" / "lora")
    assert not (out / "cells" / "lora" / "cell.json").exists()
    (out / "cells" / "lora" / "model").mkdir(parents=True, exist_ok=True)
    (out / "cells" / "lora" / "model" / "partial.bin").write_text("half")
    before = _mtimes(out)
    second = subprocess.run(
        [sys.executable, "-m", "embedtune", "compare", str(path)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stderr
    assert "cell lora: resuming an unfinished attempt" in second.stderr
    assert re.search(r"resuming from step [36] ", second.stderr), second.stderr
    after = _mtimes(out)
    assert set(after) == {"full", "lora", "lora@0.5"}
    assert after["full"] == before["full"]  # finished: skipped
    assert not (out / "cells" / "lora" / "model" / "partial.bin").exists()
    matrix = json.loads((out / "matrix.json").read_text())
    assert [c["name"] for c in matrix["cells"]] == ["full", "lora", "lora@0.5"]
    assert matrix["not_finished"] == []
    full, lora, half = matrix["cells"]
    for cell in matrix["cells"]:
        for system in ("tuned-maxp", "tuned-hybrid"):
            for metric in ("ndcg@10", "mrr@10", "recall@100", "map@100"):
                score = cell["scores"][system][metric]
                assert score["low"] <= score["value"] <= score["high"]
                assert (
                    set(score["vs_base"])
                    == set(score["vs_bm25"])
                    == {
                        "diff",
                        "p",
                        "significant",
                    }
                )
        assert set(cell["baselines"]) == {"bm25", "base-maxp", "base-hybrid"}
        assert cell["wall_seconds"] > 0 and cell["peak_rss_mb"] > 0 and cell["size_mb"] > 0
        assert len(cell["forgetting"]) == 1
        assert cell["steps"] == (8 if cell["approach"] == "lora" else 2)
        assert 0 <= cell["forgetting"][0]["p"] <= 1  # the change is tested
        assert [h["step"] for h in cell["history"] if "loss" in h]  # the training log
    assert [c["attempts"] for c in matrix["cells"]] == [1, 2, 1]
    killed, resumed = json.loads((out / "cells" / "lora" / "attempts.json").read_text())
    assert killed["started"] <= killed["ended"] <= resumed["started"]
    assert lora["wall_seconds"] > killed["ended"] - killed["started"]
    assert full["trainable_parameters"] == full["parameters"]
    assert 0 < lora["trainable_parameters"] < lora["parameters"]
    assert half["pairs"] < lora["pairs"] and half["fraction"] == 0.5
    # full and lora train on the same pairs, built once; lora@0.5 on its own
    assert len(list((out / "pairs").iterdir())) == 2
    pairs = {c: (out / "cells" / c / "model.work" / "pairs.jsonl").read_bytes() for c in after}
    assert pairs["full"] == pairs["lora"] != pairs["lora@0.5"]
    assert set(matrix["verdicts"]) == {"full", "lora"}
    assert matrix["verdicts"]["lora"].startswith("lora: ")
    assert list(matrix["learning_curve"]) == ["lora"]
    assert list(matrix["learning_curve"]["lora"]) == ["0.5", "1"]
    text = (out / "matrix.md").read_text()
    assert "| lora@0.5 |" in text and "## Verdicts" in text and "Learning curve" in text
    assert "resumed after a kill (attempts): lora (2)" in text
    # the report: every section, self-contained, rendered as a reader sees it
    page = assert_self_contained(out / "report.html")
    for title in (
        "Verdicts",
        "Quality with 95% intervals",
        "Quality against cost",
        "How many labels (learning curves)",
        "Per-query wins and losses",
        "Forgetting (general collections)",
        "Training and dev curves",
        "The matrix",
        "The corpus and the tokenizer",
    ):
        assert f"<h2>{title}</h2>" in page, title
    # everything done: a rerun runs nothing
    third = runner.invoke(app, ["compare", str(path)])
    assert third.exit_code == 0, third.output
    assert _mtimes(out) == after
    # a finished cell belongs to its settings
    path.write_text(yaml.safe_dump({**config, "train": {**config["train"], "seed": 7}}))
    refused = runner.invoke(app, ["compare", str(path)])
    assert refused.exit_code == 2 and "was made with other settings" in refused.stderr
    # --overwrite runs such a cell again, and only what --only names: the others are kept
    # (their results left out of the matrix, which holds one set of settings)
    redo = runner.invoke(app, ["compare", str(path), "--overwrite", "--only", "lora@0.5"])
    assert redo.exit_code == 0, redo.output
    now = _mtimes(out)
    assert now["lora@0.5"] != after["lora@0.5"]
    assert {k: v for k, v in now.items() if k != "lora@0.5"} == {
        k: v for k, v in after.items() if k != "lora@0.5"
    }
    matrix = json.loads((out / "matrix.json").read_text())
    assert [c["name"] for c in matrix["cells"]] == ["lora@0.5"]
    assert matrix["not_finished"] == ["full", "lora"]
    # last: it skips (saying so) where Chromium is not installed
    screenshot(out / "report.html", tmp_path / "report.png")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"approaches": ["full", "lorra"]}, "unknown approach 'lorra': choose from full, lora"),
        ({"approaches": ["full+general"]}, "approach 'full+general' needs general_pairs"),
        ({"approaches": ["full+ewc"]}, "approach 'full+ewc' needs general_pairs"),
        (
            {"approaches": ["full+ewc"], "general_pairs": "/nope/general.jsonl"},
            "general_pairs: /nope/general.jsonl is not a file (read by cell full+ewc)",
        ),
        (
            {"learning_curve": {"fractions": [0.5], "approaches": ["weak"]}},
            "'weak' uses no labeled queries",
        ),
        ({"learning_curve": {"fractions": [0], "approaches": ["full"]}}, "fractions"),
        ({"train": {"epocs": 1}}, "epocs"),
        ({"overrides": {"lora": {"lora_r": 0}}}, "cell lora: lora_r"),
        (
            {"approaches": ["weak"], "overrides": {"weak": {"strategy": "x"}}},
            "unknown strategy 'x'",
        ),
    ],
)
def test_config_mistakes_fail_before_training(
    tmp_path: Path, train_set: Path, train_model_dir: Path, extra: dict[str, Any], message: str
) -> None:
    config = _config(tmp_path, train_set, train_model_dir)
    for key, value in extra.items():
        config[key] = {**config[key], **value} if key == "train" else value
    result = runner.invoke(app, ["compare", str(_write(tmp_path, config))])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "cmp").exists()


def test_a_second_compare_on_a_folder_in_use_is_refused(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    import fcntl

    out = tmp_path / "cmp"
    out.mkdir()
    with (out / ".lock").open("w") as held:  # as a running compare holds it
        fcntl.flock(held, fcntl.LOCK_EX)
        config = _write(tmp_path, _config(tmp_path, train_set, train_model_dir))
        result = runner.invoke(app, ["compare", str(config)])
    assert result.exit_code == 2, result.output
    assert "in use by another embedtune compare" in result.stderr
    assert not (out / "cells").exists()  # nothing of the running one was touched


def test_only_names_a_planned_cell(tmp_path: Path, train_set: Path, train_model_dir: Path) -> None:
    config = CompareConfig.model_validate(_config(tmp_path, train_set, train_model_dir))
    assert [c.name for c in plan_cells(config)] == ["full", "lora"]
    with pytest.raises(ConfigError, match=r"--only lora@0\.5: no such cell; cells: full, lora"):
        compare(config, only=["lora@0.5"])
    assert not (tmp_path / "cmp").exists()


def _planned(train: dict[str, Any]) -> CellSpec:
    config = {
        "output": "cmp",
        "data": {"train": "train", "test": "test"},
        "train": train,
        "approaches": ["full"],
    }
    return plan_cells(CompareConfig.model_validate(config))[0]


def test_a_finished_cell_is_compared_by_its_settings_with_every_default_filled_in() -> None:
    cell = _planned({"seed": 1})
    settings = cell.settings
    assert settings is not None
    # a default said out loud is the same cell; another value is not
    assert same_settings(cell, _planned({"seed": 1, "epochs": settings["train"]["epochs"]}))
    assert not same_settings(cell, _planned({"seed": 2}))
    # a default changed after the cell was made does not pass for the same settings
    before = {**settings, "train": {**settings["train"], "dev_pool": 77}}
    assert not same_settings(cell.model_copy(update={"settings": before}), cell)
    # a setting added to embedtune since counts at its default, and only there
    older = {
        **settings,
        "train": {k: v for k, v in settings["train"].items() if k != "weight_decay"},
    }
    made_before = cell.model_copy(update={"settings": older})
    assert same_settings(made_before, cell)
    assert not same_settings(made_before, _planned({"seed": 1, "weight_decay": 0.1}))
    # one removed since is not compared
    removed = {**settings, "train": {**settings["train"], "gone": 3}}
    assert same_settings(cell.model_copy(update={"settings": removed}), cell)


def test_a_cell_recorded_before_its_settings_were_has_the_defaults_of_then() -> None:
    legacy = _planned({"seed": 1}).model_copy(update={"settings": None})
    assert same_settings(legacy, _planned({"seed": 1, **BEFORE_SETTINGS}))
    assert not same_settings(legacy, _planned({"seed": 1, **BEFORE_SETTINGS, "dev_pool": 50}))
    mined = {"pairs": {"mining": "candidates"}}  # a value unlike the one then
    assert not same_settings(legacy, _planned({"seed": 1, **BEFORE_SETTINGS, **mined}))


def test_query_fraction_keeps_the_dev_queries(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    def built(name: str, fraction: float) -> Any:
        recipe = {**RECIPE, "base_model": str(train_model_dir)}
        recipe["pairs"] = {"query_fraction": fraction}
        pairs_config = stage_configs(recipe, output=tmp_path / name, data=str(train_set))[0]
        return build_pairs(pairs_config)

    whole, half, eighth = built("whole", 1.0), built("half", 0.5), built("eighth", 0.01)
    assert half.record.dev.queries == whole.record.dev.queries
    assert eighth.record.dev.queries == whole.record.dev.queries
    train_queries = whole.record.info["dev"]["train_queries"]
    assert half.record.info["query_fraction"]["train_queries"] == round(train_queries / 2)
    assert eighth.record.info["query_fraction"]["train_queries"] == 1  # at least one
    assert eighth.pairs < half.pairs < whole.pairs
    assert "query_fraction" not in whole.record.info
    assert half.summary["query_fraction"]["fraction"] == 0.5
    # seeded: the same queries again
    again = built("again", 0.5)
    assert (tmp_path / "again.work/pairs.jsonl").read_text() == (
        tmp_path / "half.work/pairs.jsonl"
    ).read_text()
    assert again.pairs == half.pairs


def _cell(name: str, ndcg: float, trainable: int, significant: bool) -> CellResult:
    test = {"diff": 0.1, "p": 0.01 if significant else 0.5, "significant": significant}
    score = {"value": ndcg, "low": ndcg - 0.05, "high": ndcg + 0.05}
    scores = {"tuned-maxp": {"ndcg@10": {**score, "vs_base": test, "vs_bm25": test}}}
    return CellResult.model_validate(
        {
            "name": name,
            "approach": name,
            "fraction": 1.0,
            "description": name,
            "strategy": name,
            "scores": scores,
            "baselines": {"base-maxp": {"ndcg@10": 0.6}, "bm25": {"ndcg@10": 0.65}},
            "evaluated_queries": 100,
            "pairs": 10,
            "steps": 2,
            "trainable_parameters": trainable,
            "parameters": 1000,
            "train_seconds": 1.0,
            "wall_seconds": 2.0,
            "peak_rss_mb": 100.0,
            "size_mb": 1.0,
        }
    )


def test_verdicts_come_from_the_numbers() -> None:
    matrix = build_matrix(
        [_cell("full", 0.8, 1000, True), _cell("lora", 0.7, 30, False)], ["mlm"], {}
    )
    assert matrix.verdicts["lora"] == (
        "lora: 50% of full's gain over base at 3.0% of the weights; beats base (not "
        "significant); beats BM25 (not significant)"
    )
    assert matrix.verdicts["full"].startswith("full: +0.200 nDCG@10 over base")
    assert "Not finished: mlm" in render_markdown(matrix)


def test_a_grid_keeps_the_strongest_value_dev_cannot_tell_from_the_best() -> None:
    from embedtune.compare.cell import _choose
    from embedtune.compare.matrix import GridPoint

    tried = [GridPoint(value=v, dev_ndcg=d) for v, d in ((0.1, 0.80), (1.0, 0.795), (10, 0.70))]
    assert _choose(tried, tolerance=0.01).value == 1.0
    assert _choose(tried, tolerance=0.0).value == 0.1
    assert _choose(tried, tolerance=0.2).value == 10


def test_ewc_grid_unless_the_config_sets_the_weight(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    general = tmp_path / "general.jsonl"
    general.write_text('{"query": "q", "positive": "p"}\n')
    config = _config(tmp_path, train_set, train_model_dir, general_pairs=str(general))
    config["approaches"] = ["full+ewc"]
    grid = plan_cells(CompareConfig.model_validate(config))[0].grid
    assert grid is not None and grid.key == "ewc_weight" and grid.values == [0.1, 1.0, 10.0]
    config["overrides"] = {"full+ewc": {"ewc_weight": 3.0}}
    (cell,) = plan_cells(CompareConfig.model_validate(config))
    assert cell.grid is None and cell.recipe["ewc_weight"] == 3.0


def test_ewc_cell_trains_once_per_weight_and_keeps_the_one_dev_chooses(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    from embedtune.compare.cell import run_cell
    from embedtune.compare.config import SPEC_FILE
    from embedtune.compare.report import render_compare_html

    recipe = {**RECIPE, "base_model": str(train_model_dir)}
    build_pairs(stage_configs(recipe, output=tmp_path / "general", data=str(train_set))[0])
    config = _config(
        tmp_path,
        train_set,
        train_model_dir,
        general_pairs=str(tmp_path / "general.work/pairs.jsonl"),
    )
    config["approaches"] = ["full+ewc"]
    # only the systems the matrix reads (what examples/compare-mediqa.yaml asks for)
    config["eval"] = {"systems": ["bm25", "base-maxp", "base-hybrid", "tuned-maxp", "tuned-hybrid"]}
    (spec,) = plan_cells(CompareConfig.model_validate(config))
    folder = tmp_path / "cmp" / "cells" / spec.name
    folder.mkdir(parents=True)
    (folder / SPEC_FILE).write_text(spec.model_dump_json())
    ewc = run_cell(folder)  # in this process: the runner's child process is tested above
    assert [p.value for p in ewc.grid] == [0.1, 1.0, 10.0]
    assert ewc.grid_key == "ewc_weight" and ewc.grid_choice in (0.1, 1.0, 10.0)
    best = max(p.dev_ndcg for p in ewc.grid)
    kept = next(p for p in ewc.grid if p.value == ewc.grid_choice)
    assert kept.dev_ndcg >= best - 0.01
    assert set(ewc.scores) == {"tuned-maxp", "tuned-hybrid"}
    assert set(ewc.baselines) == {"bm25", "base-maxp", "base-hybrid"}
    assert not (folder / "eval" / "tuned.run").exists()  # the whole-document systems not run
    assert all(p.dev_ndcg < best - 0.01 for p in ewc.grid if p.value > kept.value)
    settings = json.loads((folder / "model" / "embedtune.json").read_text())
    assert settings["forgetting"]["ewc"]["weight"] == ewc.grid_choice
    # the other weights' models are kept aside, the chosen one moved to model/
    assert not (folder / "grid" / f"ewc_weight={ewc.grid_choice:g}" / "model").exists()
    matrix = build_matrix([ewc], [], CompareConfig.model_validate(config).data.model_dump())
    assert "<h2>Chosen on dev</h2>" in render_compare_html(matrix, tmp_path / "cmp")
    # finished, it renders its matrix again without the general pairs it was made with
    (tmp_path / "general.work" / "pairs.jsonl").unlink()
    # (and from YAML, whose writer sorted the keys the cell's spec has in another order)
    before = _mtimes(tmp_path / "cmp")
    again = runner.invoke(app, ["compare", str(_write(tmp_path, config))])
    assert again.exit_code == 0, again.output
    assert _mtimes(tmp_path / "cmp") == before  # the cell was not run again
    assert (tmp_path / "cmp" / "report.html").is_file()
    # killed after training, before cell.json: resumed, it keeps the model dev chose (and
    # trains nothing: the general pairs EWC would need are gone) and evaluates again
    model = (folder / "model" / "embedtune.json").stat().st_mtime_ns
    (folder / "cell.json").unlink()
    again_cell = run_cell(folder)
    assert (folder / "model" / "embedtune.json").stat().st_mtime_ns == model
    assert again_cell.grid == ewc.grid and again_cell.grid_choice == ewc.grid_choice
    assert again_cell.scores == ewc.scores
