"""The one dev-split rule: a named split, else 'dev' beside the training split, else held out."""

from __future__ import annotations

from pathlib import Path

from embedtune.corpus.splits import dev_split_for, training_splits
from tests.conftest import write_train_set


def test_the_dev_rule(tmp_path: Path) -> None:
    data = write_train_set(tmp_path / "data", n=10)
    assert dev_split_for(data, "train", None) is None  # no dev split: held out from train
    assert training_splits(data, "train", None) == ["train"]
    assert dev_split_for(data, "train", "other") == "other"  # named: always that one
    write_train_set(tmp_path / "data", n=10, split="dev")
    assert dev_split_for(data, "train", None) == "dev"
    assert training_splits(data, "train", None) == ["train", "dev"]
    assert dev_split_for(data, "dev", None) is None  # training on dev: dev is not its own dev
