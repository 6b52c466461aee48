"""Bottleneck adapters (Houlsby): identity at start, only adapters train, save/reload, ONNX."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file

from embedtune.bottleneck import CONFIG_FILE, KEY, adapter_parameters
from embedtune.errors import ConfigError
from embedtune.run import fine_tune
from embedtune.train.config import TrainConfig
from embedtune.train.strategies import STRATEGIES, Domain, count_trainable, get_strategy
from tests.train.test_train import FAST as TRAIN_FAST

FAST = {**TRAIN_FAST, "max_steps": 4}  # the training tests' recipe, a few steps
REDUCTION = 4  # the tiny model's hidden size is 32: adapters of width 8
TEXTS = ["topic3 number 3", "alpha beta " * 30, "x", "gamma delta topic7 number 7 alpha"]


def _load(folder: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    # sentence-transformers 6 imports a module class outside its own package only when trusted
    return SentenceTransformer(
        str(folder), device="cpu", local_files_only=True, trust_remote_code=True
    )


def _adapted(folder: Path, tmp_path: Path, reduction: int = REDUCTION) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    config = TrainConfig(strategy="bottleneck", bottleneck_reduction=reduction)
    strategy = get_strategy("bottleneck")
    strategy.check(model, config)
    return strategy.prepare(model, config, Domain([], tmp_path))


@pytest.fixture(scope="module")
def trained(
    train_set: Path, train_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("bottleneck") / "model"
    config = {
        **FAST,
        "base_model": str(train_model_dir),
        "strategy": "bottleneck",
        "bottleneck_reduction": REDUCTION,
        "evals_per_epoch": 3,  # checkpoints at steps 2 and 4: the best one is reloaded
    }
    result = fine_tune(out, config, data=str(train_set))
    return out, result


def test_registered_with_ia3_and_its_old_name() -> None:
    assert {"bottleneck", "ia3", "adapter"} <= set(STRATEGIES)
    assert "IA3" in STRATEGIES["ia3"].description
    assert "older name of 'ia3'" in STRATEGIES["adapter"].description
    assert STRATEGIES["adapter"].prepare is STRATEGIES["ia3"].prepare


def test_adapters_start_as_the_identity(train_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(str(train_model_dir), device="cpu", local_files_only=True)
    model = _adapted(train_model_dir, tmp_path)
    names = [n for n, _ in model.named_parameters() if KEY in n]
    assert len(names) == 2 * 2 * 4  # 2 layers × 2 sites × (down, up) × (weight, bias)
    np.testing.assert_array_equal(model.encode(TEXTS), base.encode(TEXTS))
    trainable, total = count_trainable(model)
    assert trainable == adapter_parameters(32, REDUCTION, sites=4) == 4 * (2 * 32 * 8 + 8 + 32)
    assert total == sum(p.numel() for p in base.parameters()) + trainable
    assert all(p.requires_grad == (KEY in n) for n, p in model.named_parameters())


def test_training_changes_only_the_adapters(
    trained: tuple[Path, Any], train_model_dir: Path
) -> None:
    out, result = trained
    before = load_file(str(train_model_dir / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    adapters = {k for k in after if KEY in k}
    assert set(after) - adapters == set(before)
    assert all(np.array_equal(before[k], after[k]) for k in before)  # base bit-identical
    ups = [k for k in adapters if ".up.weight" in k]
    assert len(ups) == 4 and all(np.abs(after[k]).max() > 0 for k in ups)  # they trained
    assert result.settings.dev.best_checkpoint_step in (2, 4)  # reloaded from a checkpoint
    counts = result.settings.training.model_dump()
    assert counts["trainable_parameters"] == adapter_parameters(32, REDUCTION, sites=4)
    assert result.settings.adaptation["strategy"]["bottleneck"] == {
        "reduction": REDUCTION,
        "bottleneck_size": 8,
        "adapters": 4,
    }
    record = json.loads((out / CONFIG_FILE).read_text())
    assert record["reduction"] == REDUCTION and len(record["sites"]) == 4
    modules = json.loads((out / "modules.json").read_text())
    assert modules[0]["type"] == "embedtune.bottleneck.BottleneckTransformer"


def test_saved_folder_reloads_with_the_same_embeddings(
    train_model_dir: Path, tmp_path: Path
) -> None:
    import torch

    model = _adapted(train_model_dir, tmp_path)
    with torch.no_grad():  # adapters as after training: not the identity
        for name, parameter in model.named_parameters():
            if KEY in name:
                parameter.normal_(0, 0.2)
    model.save(str(tmp_path / "saved"))
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "saved", moved)
    reloaded = _load(moved)
    assert type(reloaded[0]).__name__ == "BottleneckTransformer"
    expected = model.encode(TEXTS)
    assert not np.allclose(expected, _adapted(train_model_dir, tmp_path).encode(TEXTS))
    np.testing.assert_allclose(reloaded.encode(TEXTS), expected, atol=1e-6, rtol=0)
    assert reloaded[0].bottleneck_config() == model[0].bottleneck_config()


def test_trained_folder_reloads_and_a_plain_load_is_no_silent_substitute(
    trained: tuple[Path, Any], train_model_dir: Path
) -> None:
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel

    out, _ = trained
    base = SentenceTransformer(str(train_model_dir), device="cpu", local_files_only=True)
    tuned = _load(out).encode(TEXTS)
    assert not np.allclose(tuned, base.encode(TEXTS), atol=1e-4)
    # without trust, sentence-transformers refuses (it does not drop the adapters)
    with pytest.raises(ValueError, match="BottleneckTransformer"):
        SentenceTransformer(str(out), device="cpu", local_files_only=True)
    # plain transformers reports every adapter weight as unexpected
    _, info = AutoModel.from_pretrained(str(out), output_loading_info=True)
    assert set(info["unexpected_keys"]) == {
        k for k in load_file(str(out / "model.safetensors")) if KEY in k
    }
    assert not info["missing_keys"]


def test_a_model_without_bert_layers_is_refused(train_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import DistilBertConfig, DistilBertModel

    folder = tmp_path / "distil"
    config = DistilBertConfig(vocab_size=64, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(train_model_dir / name, folder / name)
    first = Transformer(str(folder))
    model = SentenceTransformer(modules=[first, Pooling(32, "mean")], device="cpu")
    with pytest.raises(ConfigError, match=r"DistilBertModel has no encoder\.layer.*'lora'"):
        get_strategy("bottleneck").check(model, TrainConfig(strategy="bottleneck"))
    with pytest.raises(ConfigError, match="needs a BERT-style encoder"):
        get_strategy("bottleneck").prepare(model, TrainConfig(), Domain([], tmp_path))


def test_embedtune_loads_and_exports_it_without_trust_remote_code(
    trained: tuple[Path, Any], tmp_path: Path
) -> None:
    from embedtune.export import ExportConfig, export_model
    from embedtune.models import open_folder

    out, _ = trained
    loaded = open_folder(out, device="cpu")  # what eval, export, index and serve use
    assert type(loaded[0]).__name__ == "BottleneckTransformer"
    assert np.allclose(loaded.encode(TEXTS), _load(out).encode(TEXTS), atol=1e-6)
    result = export_model(ExportConfig(model=str(out), output=tmp_path / "x", formats=["onnx"]))
    assert result.parity["fp32"].min_cosine is not None
    assert result.parity["fp32"].min_cosine >= 0.9999


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"save_adapter": True, "interpolate": False}, "always saved inside the model folder"),
        ({"interpolate": True}, "no base weights to mix"),
        ({"supervision": "weak"}, "set interpolate false"),  # weak turns interpolate on
    ],
)
def test_settings_that_do_not_apply_are_refused(
    train_model_dir: Path, setting: dict[str, object], message: str
) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(train_model_dir), device="cpu", local_files_only=True)
    config = TrainConfig.model_validate({"strategy": "bottleneck", **setting})
    with pytest.raises(ConfigError, match=message):
        get_strategy("bottleneck").check(model, config)
