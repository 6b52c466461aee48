"""Strategies (lora, adapter, mlm), vocabulary extension and the forgetting defences."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from embedtune.compare.matrix import adapter_mb
from embedtune.corpus.pairs import Pair
from embedtune.errors import ConfigError
from embedtune.models import load_model, resolve_model
from embedtune.run import fine_tune
from embedtune.testing import build_tiny_model
from embedtune.train.config import TrainConfig
from embedtune.train.forgetting import interpolate, mix_general, snapshot
from embedtune.train.strategies import Domain, get_strategy
from embedtune.train.vocab import extend_vocabulary

FAST = {
    "epochs": 2,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "device": "cpu",
    "passages": {"window": 12, "stride": 6},
    "max_steps": 4,
}
TEXTS = ["revenue of the company", "a second text about risks"]


def _config(model: Path, **extra: object) -> dict[str, object]:
    """A training recipe (pairs and training settings, as a preset or --config YAML holds)."""
    return {**FAST, "base_model": str(model), **extra}


def _encode(folder: Path) -> np.ndarray:
    return load_model(resolve_model(str(folder))).encode(TEXTS, normalize_embeddings=True)


@pytest.fixture(scope="module")
def lora_runs(
    tmp_path_factory: pytest.TempPathFactory, train_set: Path, train_model_dir: Path
) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("lora")
    merged, adapter = root / "merged", root / "adapter"
    fine_tune(merged, _config(train_model_dir, strategy="lora"), data=str(train_set))
    fine_tune(
        adapter, _config(train_model_dir, strategy="lora", save_adapter=True), data=str(train_set)
    )
    return {"merged": merged, "adapter": adapter}


def test_lora_trains_few_parameters_and_saves_merged_weights(
    lora_runs: dict[str, Path], train_model_dir: Path
) -> None:
    from sentence_transformers import SentenceTransformer

    out = lora_runs["merged"]
    settings = json.loads((out / "embedtune.json").read_text())
    counts = settings["training"]
    assert 0 < counts["trainable_parameters"] < counts["parameters"] / 2
    assert not (out / "adapter_config.json").exists()
    before = load_file(str(train_model_dir / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    assert set(before) == set(after)  # plain weights: no lora_A/lora_B left
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    plain = SentenceTransformer(str(out), device="cpu", local_files_only=True)
    assert np.allclose(plain.encode(TEXTS, normalize_embeddings=True), _encode(out), atol=1e-6)


def test_lora_adapter_folder_records_its_base_and_matches_the_merged_model(
    lora_runs: dict[str, Path],
    train_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = lora_runs["adapter"]
    assert (folder / "adapter_model.safetensors").is_file()
    # the compare matrix's adapter-only size, computed from the trained weights, is the file's
    trainable = json.loads((folder / "embedtune.json").read_text())["training"]
    on_disk = (folder / "adapter_model.safetensors").stat().st_size / 2**20
    computed = adapter_mb("lora", trainable["trainable_parameters"])
    assert computed is not None and 0 <= on_disk - computed < 0.05  # + the tensor index
    assert not (folder / "model.safetensors").exists()
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == train_model_dir.name  # a name, not a path
    loading = [p for p in folder.glob("*.json") if p.name != "embedtune.json"]  # what ST reads
    assert str(tmp_path.parent) not in "".join(p.read_text() for p in loading)
    monkeypatch.setenv("EMBEDTUNE_ADAPTER_BASE", str(train_model_dir))
    # same seed, same training: the adapter on its base gives the merged model's vectors
    assert np.allclose(_encode(folder), _encode(lora_runs["merged"]), atol=1e-5)
    other = build_tiny_model(tmp_path / "other", ["unrelated words only"], seed=3)
    monkeypatch.setenv("EMBEDTUNE_ADAPTER_BASE", str(other))
    with pytest.raises(ConfigError, match="other weights"):
        _encode(folder)


def test_ia3_adapter_strategy(train_set: Path, train_model_dir: Path, tmp_path: Path) -> None:
    result = fine_tune(
        tmp_path / "ia3", _config(train_model_dir, strategy="adapter"), data=str(train_set)
    )
    counts = result.settings.training.model_dump()
    assert 0 < counts["trainable_parameters"] < counts["parameters"] / 10
    before = load_file(str(train_model_dir / "model.safetensors"))
    after = load_file(str(tmp_path / "ia3" / "model.safetensors"))
    assert set(before) == set(after)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed and all(("key" in k or "value" in k or "output.dense" in k) for k in changed)
    with pytest.raises(ConfigError, match="no module"):
        fine_tune(
            tmp_path / "bad",
            _config(train_model_dir, strategy="lora", lora_targets=["nonexistent"]),
            data=str(train_set),
        )


def test_mlm_pretrains_then_reuses_its_result_on_resume(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    config = TrainConfig.model_validate(
        _config(train_model_dir, strategy="mlm", mlm_max_steps=4, mlm_save_steps=2)
    )
    lines = (train_set / "corpus.jsonl").read_text().splitlines()
    texts = [json.loads(line)["text"] for line in lines]
    strategy = get_strategy("mlm")
    model = load_model(resolve_model(str(train_model_dir)), device="cpu")
    before = snapshot(model)
    domain = Domain(texts, tmp_path / "work")
    strategy.prepare(model, config, domain)
    assert domain.notes["mlm"]["steps"] == 4 and domain.notes["mlm"]["blocks"] > 0
    after = snapshot(model)
    embeddings = "embeddings.word_embeddings.weight"
    assert not np.array_equal(before[embeddings].numpy(), after[embeddings].numpy())
    again = load_model(resolve_model(str(train_model_dir)), device="cpu")
    resumed = Domain(texts, tmp_path / "work", resume=True)
    strategy.prepare(again, config, resumed)
    assert "reused" in resumed.notes["mlm"]
    assert all(np.array_equal(after[k].numpy(), v.numpy()) for k, v in snapshot(again).items())
    # the training's clock counts the phase's seconds across the resume
    mlm = tmp_path / "work" / "mlm"
    assert resumed.clock.earlier == json.loads((mlm / "encoder.json").read_text())["seconds"] > 0
    # killed after its last checkpoint, before the encoder was written: resumed from it
    (mlm / "encoder.safetensors").unlink()
    (mlm / "encoder.json").unlink()
    marker = json.loads((mlm / "checkpoints" / "checkpoint-4" / "embedtune-complete").read_text())
    from_checkpoint = Domain(texts, tmp_path / "work", resume=True)
    strategy.prepare(load_model(resolve_model(str(train_model_dir))), config, from_checkpoint)
    assert marker["step"] == 4 and from_checkpoint.clock.earlier == marker["seconds"] > 0


def test_mlm_loss_projects_only_the_masked_positions(train_model_dir: Path) -> None:
    import torch
    from transformers import DataCollatorForLanguageModeling

    from embedtune.train.strategies.base import transformer
    from embedtune.train.strategies.mlm import _masked_positions_only, _mlm_model

    model = load_model(resolve_model(str(train_model_dir)), device="cpu")
    reference = _mlm_model(transformer(model)).eval()  # eval: no dropout, so the two compare
    fast = _masked_positions_only(_mlm_model(transformer(model))).eval()
    fast.load_state_dict(reference.state_dict())  # the same (fresh) head transform
    rows = model.tokenizer(TEXTS * 3, add_special_tokens=True)["input_ids"]
    collate = DataCollatorForLanguageModeling(model.tokenizer, mlm_probability=0.3, seed=0)
    batch = collate([{"input_ids": r} for r in rows])
    projected: list[int] = []
    fast.get_output_embeddings().register_forward_hook(
        lambda _m, args, _out: projected.append(args[0].shape[:-1].numel())
    )
    want, got = reference(**batch), fast(**batch)
    assert projected == [int((batch["labels"] != -100).sum())] < [batch["labels"].numel()]
    assert torch.allclose(got.loss, want.loss, atol=1e-5)
    want.loss.backward()
    got.loss.backward()
    for (name, a), (_, b) in zip(
        reference.named_parameters(), fast.named_parameters(), strict=True
    ):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_mlm_strategy_in_a_training_run(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    config = _config(train_model_dir, strategy="mlm", mlm_max_steps=2, mlm_save_steps=1)
    result = fine_tune(tmp_path / "mlm", config, data=str(train_set))
    assert result.settings.model_dump()["adaptation"]["strategy"]["mlm"]["steps"] == 2
    assert (tmp_path / "mlm.work" / "mlm" / "encoder.safetensors").is_file()


def test_extend_vocab_adds_whole_word_tokens_from_their_pieces(tmp_path: Path) -> None:
    letters = " ".join("abcdefghijklmnopqrstuvwxyz")  # every word splits into letter pieces
    folder = build_tiny_model(tmp_path / "m", ["alpha beta gamma", letters])
    model = load_model(resolve_model(str(folder)), device="cpu")
    tokenizer = model.tokenizer
    pieces = tokenizer("zyloprimase", add_special_tokens=False)["input_ids"]
    assert len(pieces) >= 3
    texts = ["Zyloprimase levels and zyloprimase dosing with alpha"] * 4 + ["quorvex"] * 3
    info = extend_vocabulary(model, texts, 1, min_count=3)
    assert [t["term"] for t in info["terms"]] == ["zyloprimase"]  # most occurrences × pieces
    new_id = tokenizer.convert_tokens_to_ids("zyloprimase")
    assert tokenizer("ZYLOPRIMASE", add_special_tokens=False)["input_ids"] == [new_id]
    # a whole-word token: a longer word still splits into ordinary pieces
    assert new_id not in tokenizer("zyloprimases", add_special_tokens=False)["input_ids"]
    weight = model[0].auto_model.get_input_embeddings().weight.detach().numpy()
    assert np.allclose(weight[new_id], weight[pieces].mean(axis=0))
    model.save(str(tmp_path / "saved"))
    reloaded = load_model(resolve_model(str(tmp_path / "saved")), device="cpu")
    assert reloaded.tokenizer("zyloprimase", add_special_tokens=False)["input_ids"] == [new_id]
    assert np.allclose(
        reloaded.encode(texts[:1]), model.encode(texts[:1]), atol=1e-6
    )  # the new row survives saving


def test_interpolation_mixes_weights_and_keeps_new_rows(tmp_path: Path) -> None:
    import torch

    folder = build_tiny_model(tmp_path / "m", ["alpha beta gamma"])
    model = load_model(resolve_model(str(folder)), device="cpu")
    base = snapshot(model)
    tuned = {k: (v + 1.0 if v.is_floating_point() else v) for k, v in base.items()}
    key = "embeddings.word_embeddings.weight"
    tuned[key] = torch.cat([tuned[key], torch.full((2, tuned[key].shape[1]), 7.0)])
    model[0].auto_model.resize_token_embeddings(tuned[key].shape[0])
    interpolate(model, tuned, base, 0.25)
    mixed = snapshot(model)
    assert torch.allclose(mixed[key][:-2], base[key] + 0.25)
    assert torch.equal(mixed[key][-2:], torch.full((2, tuned[key].shape[1]), 7.0))
    other = "encoder.layer.0.attention.self.query.weight"
    assert torch.allclose(mixed[other], base[other] + 0.25)


def test_general_pairs_make_up_the_requested_fraction(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    file = tmp_path / "general.jsonl"
    file.write_text(
        "".join(json.dumps({"query": f"g{i}", "positive": f"text {i}"}) + "\n" for i in range(30))
    )
    domain = [Pair(f"q{i}", f"d{i}") for i in range(80)]
    mixed, info = mix_general(domain, str(file), 0.2, seed=1)
    assert info["pairs"] == 20 and len(mixed) == 100  # 20 of 100 = 0.2
    assert sum(p.provenance.get("source", "").startswith("general:") for p in mixed) == 20
    assert mix_general(domain, str(file), 0.2, seed=1)[0] == mixed  # seeded
    with caplog.at_level(logging.WARNING):
        _, info = mix_general(domain, str(file), 0.5, seed=1)
    assert info["pairs"] == 30 and "using all of them" in caplog.text


def test_forgetting_defences_in_a_training_run(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    general = tmp_path / "general.jsonl"
    general.write_text(
        "".join(
            json.dumps({"query": f"topic{i} general", "positive": f"alpha number {i}"}) + "\n"
            for i in range(10)
        )
    )
    config = _config(
        train_model_dir,
        interpolate=True,
        interpolate_grid=[0.5, 1.0],
        general_pairs=str(general),
        probes=[{"data": str(train_set)}],  # its only split, 'train', is found
    )
    result = fine_tune(tmp_path / "out", config, data=str(train_set))
    forgetting = result.settings.model_dump()["forgetting"]
    assert forgetting["general_pairs"]["pairs"] > 0
    assert forgetting["interpolation"]["alpha"] in {0.5, 1.0}
    assert set(forgetting["interpolation"]["dev_ndcg@10"]) == {"0.5", "1.0"}
    best = max(forgetting["interpolation"]["dev_ndcg@10"].values())
    assert result.settings.model_dump()["dev"]["tuned"]["ndcg@10"] == pytest.approx(best, abs=1e-4)
    (probe,) = forgetting["probes"]
    assert probe["change"] == pytest.approx(
        probe["tuned_ndcg@10"] - probe["base_ndcg@10"], abs=2e-4
    )
    # the per-query scores behind it, for testing two models' forgetting against each other
    scores = probe["tuned_per_query"]
    assert len(scores) == probe["queries"]
    assert sum(scores.values()) / len(scores) == pytest.approx(probe["tuned_ndcg@10"], abs=2e-4)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Forgetting" in card and "interpolat" in card
    with pytest.raises(ValueError, match="merged weights"):
        TrainConfig.model_validate(_config(train_model_dir, interpolate=True, save_adapter=True))


def test_weak_supervision_trains_without_reading_labels(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from embedtune.cli.main import app

    # a corpus without any queries or judgments (words the tiny model knows): weak
    # supervision needs none
    corpus_only = tmp_path / "corpus"
    corpus_only.mkdir()
    docs = [
        {
            "_id": f"d{i}",
            "title": f"number {i} topic{(i + 1) % 40}",
            "text": f"topic{i} alpha number {i}. beta gamma topic{(i + 1) % 40} delta. "
            f"topic{i} gamma number {(i + 2) % 40} alpha beta.",
        }
        for i in range(40)
    ]
    (corpus_only / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    settings_file = tmp_path / "train.yaml"
    settings_file.write_text("passages: {window: 12, stride: 6}\nbatch_size: 8\n")
    out = tmp_path / "weak"
    args = ["train", str(corpus_only), "-o", str(out), "--supervision", "weak"]
    args += ["--base-model", str(train_model_dir), "--max-steps", "2", "--device", "cpu"]
    args += ["--config", str(settings_file)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    settings = json.loads((out / "embedtune.json").read_text())
    assert settings["data"]["supervision"] == "weak"
    assert settings["data"]["dev"]["rule"].startswith("pseudo-dev")
    assert settings["data"]["pairs_summary"]["pairs"] > 0
    lines = (tmp_path / "weak.work" / "pairs.jsonl").read_text().splitlines()
    pairs = [json.loads(x) for x in lines]
    assert pairs and all(p["provenance"]["source"].startswith("weak:") for p in pairs)
    # BM25 made the pseudo-dev labels: not compared there, and hybrids fall back to RRF
    assert settings["outcome"]["better_than_bm25"] is None
    assert settings["fusion"]["method"] == "rrf"
    # the label-free default interpolates with the base, the ratio chosen on pseudo-dev
    assert settings["forgetting"]["interpolation"]["alpha"] in [0.25, 0.5, 0.75, 1.0]
    # the pseudo-dev verdict comes with its significance against the base
    assert 0 < settings["outcome"]["p_vs_base"] <= 1
    assert "against base" in settings["outcome"]["notes"][-1]
    assert TrainConfig().interpolate is False  # with labels: off unless asked
    assert TrainConfig(supervision="weak", save_adapter=True).interpolate is False
    from embedtune.evaluate.config import EvalConfig
    from embedtune.evaluate.evaluate import evaluate_models

    result = evaluate_models(
        EvalConfig(
            data=str(train_set),
            split="train",
            model=str(out),
            base_model=str(train_model_dir),
            systems=["bm25", "tuned-hybrid"],
            fusion="dev",
        )
    )
    assert result.report["fusion"]["method"] == "rrf"
    with pytest.raises(ConfigError, match="without --pairs or --dev-split"):
        fine_tune(
            tmp_path / "x",
            _config(train_model_dir, supervision="weak"),
            data=str(train_set),
            dev_split="train",
        )


def test_lora_resume_after_kill_9_gives_the_uninterrupted_weights(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import time

    from tests.train.test_train import _assert_same, _train_cmd, _weights

    lora = ("--strategy", "lora")
    straight = tmp_path / "straight" / "model"
    straight.parent.mkdir()
    subprocess.run(
        _train_cmd(train_set, train_model_dir, straight, *lora),
        check=True,
        capture_output=True,
        timeout=600,
    )
    out = tmp_path / "killed" / "model"
    out.parent.mkdir()
    process = subprocess.Popen(
        _train_cmd(train_set, train_model_dir, out, *lora),
        env={**os.environ, "EMBEDTUNE_TEST_STEP_DELAY": "0.05"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = out.parent / "model.work" / "checkpoints"
    deadline = time.time() + 300
    while not list(checkpoints.glob("checkpoint-*/embedtune-complete")):
        assert process.poll() is None and time.time() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    subprocess.run(
        _train_cmd(train_set, train_model_dir, out, *lora, "--resume"),
        check=True,
        capture_output=True,
        timeout=600,
    )
    _assert_same(_weights(out), _weights(straight))


def test_a_bad_probe_set_fails_before_training(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    from embedtune.errors import DataError

    config = _config(train_model_dir, probes=[{"data": str(tmp_path / "missing")}])
    with pytest.raises(DataError, match="not a BEIR folder"):
        fine_tune(tmp_path / "out", config, data=str(train_set))
    assert not (tmp_path / "out.work").exists()  # nothing mined, nothing trained


def test_ewc_holds_the_weights_the_general_pairs_need_near_the_base(
    train_set: Path, train_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from embedtune.train.ewc import EWCLoss, fisher_diagonal

    general = tmp_path / "general.jsonl"
    texts = [(f"topic{i} general", f"alpha number {i}") for i in range(16)]
    general.write_text("".join(json.dumps({"query": q, "positive": d}) + "\n" for q, d in texts))

    # the estimate: non-negative, mean 1 over the weights, no penalty before any step
    model = load_model(resolve_model(str(train_model_dir)), device="cpu")
    loss = MultipleNegativesRankingLoss(model)
    fisher = fisher_diagonal(model, loss, [Pair(q, d) for q, d in texts], batch_size=8)
    values = np.concatenate([f.numpy().ravel() for f in fisher.values()])
    assert values.min() >= 0 and values.mean() == pytest.approx(1.0, rel=1e-4)
    ewc = EWCLoss(loss, model, fisher, 1.0)
    assert ewc.penalty().item() == 0.0
    # and it grows away from them, quadratically: every weight moved by δ, then by 2δ
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in fisher:
            params[name] += 0.01
        near = ewc.penalty().item()
        for name in fisher:
            params[name] += 0.01
        far = ewc.penalty().item()
        for name in fisher:  # back to the base weights for what follows
            params[name] -= 0.02
    assert near > 0 and far == pytest.approx(4 * near, rel=1e-3)

    def weighted_drift(out: Path) -> float:
        """Σ F (θ − θ*)²: how far the weights the general pairs need moved (what EWC bounds)."""
        before = load_file(str(train_model_dir / "model.safetensors"))
        after = load_file(str(out / "model.safetensors"))
        return float(
            sum(
                (f.numpy() * (after[k] - before[k]) ** 2).sum()
                for name, f in fisher.items()
                if (k := name.removeprefix("0.model.")) in before
            )
        )

    common = {"general_pairs": str(general), "general_fraction": 0.0, "max_steps": 6}
    plain = fine_tune(tmp_path / "plain", _config(train_model_dir, **common), data=str(train_set))
    held = fine_tune(
        tmp_path / "ewc",
        _config(train_model_dir, **common, ewc_weight=1e4, ewc_pairs=16),
        data=str(train_set),
    )
    assert "ewc" not in plain.settings.model_dump()["forgetting"]
    record = held.settings.model_dump()["forgetting"]["ewc"]
    assert record == {"weight": 1e4, "fisher_pairs": 16, "file": str(general)}
    # measured 0.033 vs 0.135: Adam bounds each step by about the learning rate whatever the
    # penalty's size, so the penalised weights oscillate near the base instead of walking away
    assert weighted_drift(tmp_path / "ewc") < 0.5 * weighted_drift(tmp_path / "plain")
    assert "elastic weight consolidation" in (tmp_path / "ewc" / "README.md").read_text()
    with pytest.raises(ValueError, match="needs general_pairs"):
        TrainConfig.model_validate({"ewc_weight": 1.0})
