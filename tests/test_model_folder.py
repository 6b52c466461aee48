"""The model folder's record has one owner: written and read back typed, an older folder of
this schema still loads, a newer schema is refused clearly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedtune.errors import DataError
from embedtune.model_folder import (
    SCHEMA_VERSION,
    ModelSettings,
    passages_of,
    read_settings,
    settings_path,
    write_settings,
)

# what `embedtune train` wrote before the record was typed (format 1, session 5's release)
PREVIOUS_RELEASE = {
    "format": 1,
    "passages": {"window": 96, "stride": 48, "title": True},
    "prompts": {"query": "", "document": ""},
    "base_model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "sha256": "ab" * 32},
    "strategy": "full",
    "config": {"epochs": 2.0, "pairs": {"positive": "base"}, "supervision": "labels"},
    "seed": 1,
    "data": {"dev": {"rule": "split 'dev'", "queries": 100}},
    "fusion": {
        "method": "weighted",
        "tuned_on": "dev (100 queries)",
        "base": {"weight": 0.55},
        "tuned": {"weight": 0.65, "curve": {"0.0": 0.5}},
    },
    "adaptation": {},
    "forgetting": {},
    "pairs": 1234,
    "dev": {
        "base": {"ndcg@10": 0.8},
        "bm25": {"ndcg@10": 0.79},
        "tuned": {"ndcg@10": 0.85},
        "best_checkpoint_step": 76,
    },
    "outcome": {
        "better": True,
        "better_than_base": True,
        "better_than_bm25": True,
        "p_vs_base": 0.001,
        "notes": ["better than base (0.8000) and BM25 (0.7900)"],
    },
    "training": {
        "steps": 76,
        "seconds": 350.2,
        "processes": 1,
        "trainable_parameters": 10,
        "parameters": 10,
    },
    "versions": {"embedtune": "0.1.0"},
}


def _folder(tmp_path: Path, content: object) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    settings_path(folder).write_text(json.dumps(content))
    return folder


def test_a_folder_of_the_previous_release_loads_typed(tmp_path: Path) -> None:
    settings = read_settings(_folder(tmp_path, PREVIOUS_RELEASE))
    assert settings is not None and settings.format == SCHEMA_VERSION
    assert settings.passages.window == 96 and settings.base_model.sha256 == "ab" * 32
    assert settings.fusion_weight("tuned") == 0.65 and settings.fusion_weight("other") is None
    assert settings.outcome.better and settings.dev.best_checkpoint_step == 76
    assert passages_of(tmp_path / "model") == settings.passages


def test_written_and_read_back_unchanged_with_unknown_fields_kept(tmp_path: Path) -> None:
    content = {**PREVIOUS_RELEASE, "added_later_in_format_1": {"x": 1}}
    settings = ModelSettings.model_validate(content)
    out = tmp_path / "copy"
    write_settings(out, settings)
    assert json.loads(settings_path(out).read_text()) == content
    assert read_settings(out) == settings


def test_not_an_embedtune_folder_is_none(tmp_path: Path) -> None:
    assert read_settings(tmp_path) is None and passages_of(tmp_path) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({**PREVIOUS_RELEASE, "format": 2}, "newer embedtune: upgrade embedtune"),
        ({**PREVIOUS_RELEASE, "format": "1"}, "schema version"),
        ({k: v for k, v in PREVIOUS_RELEASE.items() if k != "base_model"}, "field 'base_model'"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_bad_records_are_clear_errors(tmp_path: Path, content: object, message: str) -> None:
    folder = _folder(tmp_path, content)
    with pytest.raises(DataError, match=message) as caught:
        read_settings(folder)
    assert str(settings_path(folder)) in str(caught.value)


def test_invalid_json_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    settings_path(folder).write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_settings(folder)
