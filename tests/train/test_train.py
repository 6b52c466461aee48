"""Training: dev rule, portable output, honest outcome, errors, resume after kill -9, torchrun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file

from embedtune.corpus.splits import hold_out_dev
from embedtune.errors import ConfigError, DataError
from embedtune.pairs.build import build_pairs
from embedtune.run import fine_tune
from embedtune.run.config import preset, stage_configs
from embedtune.train.checkpoints import last_complete_checkpoint
from embedtune.train.data import DevSet
from embedtune.train.strategies import STRATEGIES, Strategy, get_strategy, register

FAST = {
    "epochs": 2,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "device": "cpu",
    "passages": {"window": 12, "stride": 6},
}


def _config(model: Path, **extra: object) -> dict[str, object]:
    """A training recipe (pairs and training settings, as a preset or --config YAML holds)."""
    return {**FAST, "base_model": str(model), **extra}


def test_dev_split_groups_queries_by_relevant_document() -> None:
    qrels = {f"q{i}": {f"d{i // 2}": 1} for i in range(40)}  # pairs of queries share a doc
    train, dev = hold_out_dev(qrels, 0.15, seed=1)
    assert 5 <= len(dev) <= 8 and len(train) + len(dev) == 40
    for qid in dev:
        sibling = f"q{int(qid[1:]) ^ 1}"
        assert sibling in dev
    assert hold_out_dev(qrels, 0.15, seed=1) == (train, dev)
    assert hold_out_dev(qrels, 0.15, seed=2)[1] != dev


def test_dev_queries_do_not_move_with_the_training_seed(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    def dev_of(name: str, **extra: object) -> dict[str, object]:
        config = _config(train_model_dir, **extra)
        pairs_config = stage_configs(config, output=tmp_path / name, data=str(train_set))[0]
        info = build_pairs(pairs_config).record.info
        return {"dev": info["dev"], "pairs": (tmp_path / f"{name}.work/pairs.jsonl").read_text()}

    first = dev_of("a", seed=1)
    assert dev_of("b", seed=2) == first
    assert dev_of("c", seed=1, dev_seed=5)["pairs"] != first["pairs"]


def test_pooled_dev_corpus_keeps_judged_and_candidate_documents() -> None:
    docs = [f"d{i}" for i in range(6)]
    counts = [1, 2, 1, 3, 1, 2]  # passages per document
    passages = [f"{d}-p{n}" for d, c in zip(docs, counts, strict=True) for n in range(c)]
    dev = DevSet(
        {"q": "query"},
        {"q": {"d4": 1}},
        docs,
        passages,
        np.cumsum([0, *counts]),
        [f"text of {d}" for d in docs],
    )
    dense = {"q": {"d1": 0.9, "d0": 0.8, "d2": 0.1}}
    sparse = {"q": {"d3": 7.0, "d5": 1.0}}
    pooled = dev.pooled([dense, sparse], depth=1)
    assert pooled.doc_ids == ["d1", "d3", "d4"]  # corpus order: top-1 of each run + judged
    assert pooled.passages == ["d1-p0", "d1-p1", "d3-p0", "d3-p1", "d3-p2", "d4-p0"]
    assert pooled.bounds.tolist() == [0, 2, 5, 6]
    assert pooled.doc_texts == ["text of d1", "text of d3", "text of d4"]


def _dev_set(train_set: Path, train_model_dir: Path) -> tuple[Any, DevSet]:
    """The tiny model and a dev set of 10 of the training set's queries over its corpus."""
    from sentence_transformers import SentenceTransformer

    from embedtune.corpus.config import PassageConfig
    from embedtune.corpus.load import load_beir

    model = SentenceTransformer(str(train_model_dir), device="cpu")
    dataset = load_beir(train_set, "train")
    ids = [f"q{i}" for i in range(0, 60, 6)]
    dev = DevSet.from_dataset(dataset, ids, model.tokenizer, PassageConfig(window=12, stride=6))
    return model, dev


def test_a_models_run_is_unchanged_over_a_pool_built_from_it(
    train_set: Path, train_model_dir: Path
) -> None:
    model, dev = _dev_set(train_set, train_model_dir)
    full = dev.search(model)
    pooled = dev.pooled([full], depth=10)
    assert len(pooled.doc_ids) < len(dev.doc_ids)
    assert dev.score(pooled.search(model)) == dev.score(full)  # what training relies on


def test_a_bm25_dev_pool_encodes_only_bm25s_candidates_and_the_judged(
    train_set: Path, train_model_dir: Path
) -> None:
    from embedtune.train.config import TrainConfig
    from embedtune.train.train import _dev_baselines

    model, dev = _dev_set(train_set, train_model_dir)
    info: dict[str, dict[str, str]] = {"dev": {}}
    config = TrainConfig(output="m", dev_pool=10, dev_pool_from="bm25")
    base_run, _, pooled = _dev_baselines(dev, model, None, config, info)
    expected = dev.pooled([dev.bm25_search()], 10)
    assert pooled.doc_ids == expected.doc_ids and len(pooled.doc_ids) < len(dev.doc_ids)
    assert {d for docs in base_run.values() for d in docs} <= set(pooled.doc_ids)
    assert info["dev"]["corpus"].endswith(f"of {len(dev.doc_ids)} documents (pool 10 from bm25)")


def test_layers_strategy_trains_only_the_top_layers(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "layers"
    config = _config(train_model_dir, strategy="layers", freeze_layers=1, max_steps=4)
    result = fine_tune(out, config, data=str(train_set))
    before = load_file(str(train_model_dir / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    frozen = [k for k in before if "embeddings" in k or ".layer.0." in k]
    trained = [k for k in before if ".layer.1." in k]
    assert frozen and trained
    assert all(np.array_equal(before[k], after[k]) for k in frozen)
    assert any(not np.array_equal(before[k], after[k]) for k in trained)
    counts = result.settings.training.model_dump()
    assert 0 < counts["trainable_parameters"] < counts["parameters"]
    with pytest.raises(ConfigError, match="must leave at least one"):
        fine_tune(
            tmp_path / "x",
            _config(train_model_dir, strategy="layers", freeze_layers=2),
            data=str(train_set),
        )


def test_presets_and_strategy_registry() -> None:
    assert stage_configs(preset("default"), output="m")[1].epochs == 2
    assert stage_configs(preset("fast"), output="m")[1].epochs == 1
    with pytest.raises(ConfigError, match="unknown preset 'quick'"):
        preset("quick")
    with pytest.raises(
        ConfigError, match="unknown strategy 'qlora': available: full, bottleneck, layers"
    ):
        get_strategy("qlora")
    assert {"full", "lora", "layers", "ia3", "adapter", "bottleneck", "mlm"} <= set(STRATEGIES)
    with pytest.raises(ValueError, match="'lora' is already registered"):
        register(Strategy("lora", "a second lora would shadow the first"))
    with pytest.raises(ValueError, match="lower-case"):
        register(Strategy("Bad Name", "not usable as a config value"))
    assert STRATEGIES["lora"].description != "a second lora would shadow the first"


def test_label_free_takes_the_measured_defaults_and_what_it_is_told() -> None:
    # bench/weak_pool.py measured candidate mining and the BM25 pool of 30 on the label-free
    # path too (issue 18): both paths share the defaults
    for supervision in ("labels", "weak"):
        pairs, train = stage_configs({"supervision": supervision}, output="m")
        assert pairs.pairs.mining == "candidates"
        assert (train.dev_pool, train.dev_pool_from) == (30, "bm25")
    told = {"supervision": "weak", "pairs": {"mining": "corpus"}, "dev_pool_from": "bm25+base"}
    pairs, train = stage_configs(told, output="m")
    assert pairs.pairs.mining == "corpus"
    assert (train.dev_pool, train.dev_pool_from) == (30, "bm25+base")


@pytest.fixture(scope="module")
def trained(
    train_set: Path, train_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("trained") / "model"
    fine_tune(out, _config(train_model_dir), data=str(train_set))
    return out


def test_output_is_a_portable_sentence_transformers_folder(trained: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(trained, moved)
    code = (
        "import sys; from sentence_transformers import SentenceTransformer; "
        f"m = SentenceTransformer({str(moved)!r}, local_files_only=True); "
        "print(m.encode(['topic3 number 3']).shape); "
        "print(any(k.startswith('embedtune') for k in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.stdout.split("\n")[:2] == ["(1, 32)", "False"]
    # the model's own files name no path of this machine (the data manifest may: it is
    # the user's record of which files were used)
    for name in (
        "config.json",
        "config_sentence_transformers.json",
        "modules.json",
        "tokenizer_config.json",
        "sentence_bert_config.json",
    ):
        assert "/tmp/" not in (trained / name).read_text(), name
    settings = json.loads((trained / "embedtune.json").read_text())
    assert settings["passages"] == {"window": 12, "stride": 6, "title": True}
    assert settings["base_model"]["name"] == "model" and len(settings["base_model"]["sha256"]) == 64
    assert settings["data"]["dev"]["queries"] == 9
    assert settings["data"]["dev"]["corpus"].endswith("(pool 30 from bm25)")
    fusion = settings["fusion"]
    assert fusion["tuned_on"] == "dev (9 queries)" and 0 <= fusion["tuned"]["weight"] <= 1
    assert len(fusion["base"]["curve"]) == 21
    assert settings["dev"]["tuned"]["ndcg@10"] > settings["dev"]["base"]["ndcg@10"]
    card = (trained / "README.md").read_text()
    assert "base_model: model" in card and "| tuned (max-passage) |" in card
    assert "documents (pool 30 from bm25)" in card
    assert "Hybrid with BM25: weighted sum" in card
    assert (trained.parent / "model.work" / "pairs.jsonl").is_file()


def test_tuned_model_evaluates_with_its_stored_passage_window(
    trained: Path, train_set: Path, train_model_dir: Path
) -> None:
    from embedtune.evaluate.config import EvalConfig
    from embedtune.evaluate.evaluate import evaluate_models

    config = EvalConfig(
        data=str(train_set),
        split="train",
        model=str(trained),
        base_model=str(train_model_dir),
        systems=["tuned-maxp", "base-maxp", "tuned-hybrid"],
        permutations=100,
        bootstrap=100,
        show_progress=False,
    )
    report = evaluate_models(config).report
    assert report["models"]["tuned"]["passages"]["window"] == 12
    # the hybrid uses the fusion weight training chose on dev (fusion: auto)
    chosen = json.loads((trained / "embedtune.json").read_text())["fusion"]["tuned"]["weight"]
    assert report["fusion"]["method"] == "dev"
    assert report["fusion"]["tuned"]["weight"] == chosen
    assert report["systems"]["tuned-maxp"]["ndcg@10"] > report["systems"]["base-maxp"]["ndcg@10"]


def test_an_existing_output_is_never_overwritten(
    trained: Path, train_set: Path, train_model_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        fine_tune(trained, _config(train_model_dir), data=str(train_set))


def test_missing_split_and_missing_inputs_are_errors(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="split 'dev' not found"):
        fine_tune(tmp_path / "m", _config(train_model_dir), data=str(train_set), dev_split="dev")
    with pytest.raises(ConfigError, match="give DATA"):
        fine_tune(tmp_path / "m", _config(train_model_dir))


def test_outcome_says_so_when_not_better(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    # one tiny step at a negligible learning rate cannot beat BM25 on this lexical set
    out = tmp_path / "weak"
    result = fine_tune(
        out, _config(train_model_dir, max_steps=1, learning_rate=1e-9), data=str(train_set)
    )
    outcome = result.settings.outcome.model_dump()
    assert outcome["better"] is False and not outcome["better_than_bm25"]
    assert "NOT BETTER than BM25 on dev" in (out / "README.md").read_text()


def test_pairs_file_training(tmp_path: Path, train_model_dir: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps(
                {"query": f"topic{i} number {i}", "positive": f"topic{i} alpha beta number {i}"}
            )
            + "\n"
            for i in range(40)
        )
    )
    result = fine_tune(tmp_path / "m", _config(train_model_dir), pairs_file=str(pairs))
    assert result.settings.data["dev"]["queries"] == 6
    assert (tmp_path / "m" / "model.safetensors").is_file()


# --- resume: a real process, really killed ----------------------------------------------------

RESUME_ARGS = [
    "--epochs",
    "2",
    "--batch-size",
    "4",
    "--lr",
    "1e-3",
    "--device",
    "cpu",
    "--seed",
    "7",
]


def _train_cmd(data: Path, model: Path, out: Path, *extra: str) -> list[str]:
    config = out.parent / "cfg.yaml"
    config.write_text("passages: {window: 12, stride: 6}\nevals_per_epoch: 1\n")
    return [
        sys.executable,
        "-m",
        "embedtune",
        "train",
        str(data),
        "--output",
        str(out),
        "--base-model",
        str(model),
        "--config",
        str(config),
        *RESUME_ARGS,
        *extra,
    ]


def _weights(folder: Path) -> dict[str, np.ndarray]:
    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(
    train_set: Path, train_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("straight") / "model"
    subprocess.run(
        _train_cmd(train_set, train_model_dir, out), check=True, capture_output=True, timeout=600
    )
    return _weights(out)


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_after_kill_9_gives_the_uninterrupted_weights(
    train_set: Path,
    train_model_dir: Path,
    tmp_path: Path,
    uninterrupted: dict[str, np.ndarray],
) -> None:
    out = tmp_path / "model"
    env = {**os.environ, "EMBEDTUNE_TEST_STEP_DELAY": "0.2"}
    process = subprocess.Popen(
        _train_cmd(train_set, train_model_dir, out),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = tmp_path / "model.work" / "checkpoints"
    deadline = time.time() + 300
    while not list(checkpoints.glob("checkpoint-*/embedtune-complete")):
        assert process.poll() is None and time.time() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not out.exists()
    kept = last_complete_checkpoint(checkpoints)
    assert kept is not None
    before = json.loads((kept / "embedtune-complete").read_text())["seconds"]
    # without --resume the unfinished run is protected
    refused = subprocess.run(
        _train_cmd(train_set, train_model_dir, out), capture_output=True, text=True
    )
    assert refused.returncode == 2 and "--resume" in refused.stderr
    subprocess.run(
        _train_cmd(train_set, train_model_dir, out, "--resume"),
        check=True,
        capture_output=True,
        timeout=600,
    )
    _assert_same(_weights(out), uninterrupted)
    # its seconds hold the killed process's up to that checkpoint (slowed by 0.2 s a step,
    # unlike the resumed one's) and the resumed process's
    assert json.loads((out / "embedtune.json").read_text())["training"]["seconds"] > before


def test_kill_while_a_checkpoint_is_written_falls_back_to_the_last_complete_one(
    train_set: Path,
    train_model_dir: Path,
    tmp_path: Path,
    uninterrupted: dict[str, np.ndarray],
) -> None:
    out = tmp_path / "model"
    # 51 pairs / batch 4 → 13 steps an epoch; die while saving the second (last) checkpoint
    env = {**os.environ, "EMBEDTUNE_TEST_KILL_BEFORE_MARK": "26"}
    killed = subprocess.run(
        _train_cmd(train_set, train_model_dir, out), env=env, capture_output=True, timeout=600
    )
    assert killed.returncode == -signal.SIGKILL
    checkpoints = tmp_path / "model.work" / "checkpoints"
    assert (checkpoints / "checkpoint-26").is_dir()
    assert not (checkpoints / "checkpoint-26" / "embedtune-complete").exists()
    resumed = subprocess.run(
        _train_cmd(train_set, train_model_dir, out, "--resume"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "checkpoint-26 was not completely written" in resumed.stderr
    _assert_same(_weights(out), uninterrupted)


def test_torchrun_two_processes_train_one_model(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ddp"
    command = _train_cmd(train_set, train_model_dir, out)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "embedtune",
        *command[3:],
    ]
    result = subprocess.run(
        torchrun,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    settings = json.loads((out / "embedtune.json").read_text())
    assert settings["training"]["processes"] == 2
    # 51 train pairs at 4 per process per step: one process needs 13 steps an epoch (52 for
    # 4 epochs); two processes share each step's 8 pairs, so at most 7 an epoch
    assert settings["training"]["steps"] <= 4 * 7
    assert not list(tmp_path.glob(".ddp.tmp*"))
    assert settings["dev"]["tuned"]["ndcg@10"] > settings["dev"]["base"]["ndcg@10"]


def test_cached_loss_with_matryoshka_dimensions(tmp_path: Path, train_model_dir: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps(
                {
                    "query": f"topic{i} number {i}",
                    "positive": f"topic{i} alpha beta number {i}",
                    "negatives": [f"topic{(i + 7) % 40} gamma"],
                }
            )
            + "\n"
            for i in range(40)
        )
    )
    config = _config(
        train_model_dir, loss="cached_mnrl", mini_batch_size=3, matryoshka_dims=[32, 16], epochs=1
    )
    result = fine_tune(tmp_path / "m", config, pairs_file=str(pairs))
    assert result.settings.model_dump()["config"]["loss"] == "cached_mnrl"
    assert result.settings.training.model_dump()["steps"] > 0


def test_resume_says_from_which_checkpoint_it_continues(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from embedtune.train.checkpoints import COMPLETE
    from embedtune.train.train import _resume_point

    folder = tmp_path / "checkpoints"
    for step in (13, 26):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
    (folder / "checkpoint-13" / COMPLETE).write_text("")
    with caplog.at_level("INFO", logger="embedtune.train.train"):
        assert _resume_point(folder, resume=False) is None
        assert not caplog.records
        assert _resume_point(folder, resume=True) == folder / "checkpoint-13"
    assert "resuming from step 13 (checkpoint-13)" in caplog.messages
    caplog.clear()
    with caplog.at_level("INFO", logger="embedtune.train.train"):
        assert _resume_point(tmp_path / "none", resume=True) is None
    assert any("starting from the beginning" in m for m in caplog.messages)


def test_report_to_tensorboard_logs_the_loss_and_dev_metrics(
    tmp_path: Path, train_set: Path, train_model_dir: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # a tracker that is not installed, or not one the trainer knows: refused before mining
    for name, message in (("mlflow", "mlflow is not installed"), ("tensorbord", "unknown")):
        with pytest.raises(ConfigError, match=f"report_to: .*{message}"):
            fine_tune(
                tmp_path / name, _config(train_model_dir, report_to=[name]), data=str(train_set)
            )
        assert not (tmp_path / f"{name}.work").exists()
    out = tmp_path / "m"
    config = _config(train_model_dir, report_to=["tensorboard"], max_steps=4, evals_per_epoch=2)
    result = fine_tune(out, config, data=str(train_set))
    (events,) = (out.parent / "m.work" / "checkpoints" / "runs").rglob("events.out.tfevents.*")
    logged = EventAccumulator(str(events.parent)).Reload().Tags()["scalars"]
    assert "train/loss" in logged and "eval/dev_ndcg@10" in logged
    # the same log is kept in the settings record, for the HTML reports
    history = result.settings.training.history
    assert [h for h in history if "loss" in h] and [h for h in history if "dev_ndcg@10" in h]


@pytest.mark.parametrize(
    ("output", "name"),
    [
        ("runs/cmp/cells/full+ewc/grid/ewc_weight=0.1/model", "full+ewc/ewc_weight=0.1"),
        ("runs/cmp/cells/lora@0.25/model", "lora@0.25"),
        ("runs/finance/model", "finance/model"),
        ("model", "model"),
    ],
)
def test_a_tracker_names_the_run_after_its_cell_and_grid_value(output: str, name: str) -> None:
    from embedtune.train.config import TrainConfig
    from embedtune.train.train import _run_name

    assert _run_name(TrainConfig(output=output)) == name
