"""Model cards never quote training text: sentence-transformers' automatic card (widget and
dataset examples) would republish whatever a PII scan missed, in every checkpoint too."""

from __future__ import annotations

import json
from pathlib import Path

from embedtune.run import fine_tune

PLANTED = "zqxplanted"


def test_no_card_in_checkpoints_or_the_model_quotes_training_text(
    tmp_path: Path, train_model_dir: Path
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps(
                {
                    "query": f"{PLANTED}{i} topic{i} number {i}",
                    "positive": f"topic{i} alpha {PLANTED}{i} beta number {i}",
                }
            )
            + "\n"
            for i in range(40)
        )
    )
    recipe = {
        "base_model": str(train_model_dir),
        "epochs": 1,
        "batch_size": 8,
        "device": "cpu",
        "passages": {"window": 12, "stride": 6},
    }
    out = tmp_path / "m"
    fine_tune(out, recipe, pairs_file=str(pairs))
    cards = [*out.rglob("*.md"), *(tmp_path / "m.work" / "checkpoints").rglob("*.md")]
    assert (out / "README.md") in cards and len(cards) >= 2, cards  # a checkpoint's card too
    for card in cards:
        assert PLANTED not in card.read_text(encoding="utf-8"), card
