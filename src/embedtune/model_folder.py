"""The record embedtune keeps in every model folder it writes: ``embedtune.json``.

This module is its only reader and writer. The record says how the model splits documents
into passages, which prompts it uses, which base model it was trained from (by name and
content hash), and how it did on dev against the base model and BM25. Evaluation, export,
the registry, the index and the model loader all read it through :func:`read_settings`.

``format`` is the schema version. A folder written by this release (format 1) loads; a folder
from a newer embedtune (a higher format) is refused with a message saying so, rather than
read half-right.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedtune.corpus.config import PassageConfig
from embedtune.errors import DataError
from embedtune.io import write_json

logger = logging.getLogger(__name__)

SETTINGS_FILE = "embedtune.json"
SCHEMA_VERSION = 1


class _Record(BaseModel):
    # Unknown keys are kept (and written back): a field added within one schema version
    # must not be dropped by an older reader.
    model_config = ConfigDict(extra="allow")


class BaseModelRef(_Record):
    """The model training started from, as it is known elsewhere (a Hub id by default)."""

    name: str
    sha256: str


class Prompts(_Record):
    """Text put in front of queries and documents before encoding ('' or None: none)."""

    query: str | None = None
    document: str | None = None


class DevScores(_Record):
    """Dev metrics of the base model, BM25 and the tuned model (max-passage scoring)."""

    base: dict[str, float]
    bm25: dict[str, float]
    tuned: dict[str, float]
    best_checkpoint_step: int | None = None


class Outcome(_Record):
    """Whether the tuned model beat the base model (and BM25, where judged) on dev."""

    better: bool
    better_than_base: bool
    better_than_bm25: bool | None
    p_vs_base: float
    notes: list[str] = Field(default_factory=list)


class TrainingStats(_Record):
    """How long training took and how much of the model it changed."""

    steps: int
    seconds: float
    processes: int = 1
    trainable_parameters: int
    parameters: int
    # the trainer's log: {"step", "loss", "learning_rate"} every few steps and
    # {"step", "dev_ndcg@10", ...} at each dev evaluation (the report's training curves)
    # (left out of the file when empty: a record written before it existed reads back and is
    # written again unchanged)
    history: list[dict[str, float]] = Field(default_factory=list, exclude_if=lambda h: not h)


class ModelSettings(_Record):
    """Everything embedtune stores with a trained model (``embedtune.json``)."""

    format: int = SCHEMA_VERSION
    passages: PassageConfig = Field(default_factory=PassageConfig)
    prompts: Prompts = Field(default_factory=Prompts)
    base_model: BaseModelRef
    strategy: str
    config: dict[str, Any] = Field(description="the resolved training config")
    seed: int
    data: dict[str, Any] = Field(default_factory=dict, description="manifest, dev rule, pairs")
    fusion: dict[str, Any] | None = Field(
        default=None, description="hybrid fusion chosen on dev: method, weight per family"
    )
    adaptation: dict[str, Any] = Field(default_factory=dict)
    forgetting: dict[str, Any] = Field(default_factory=dict)
    pairs: int
    dev: DevScores
    outcome: Outcome
    training: TrainingStats
    versions: dict[str, str] = Field(default_factory=dict)

    def fusion_weight(self, family: str) -> float | None:
        """The weighted-fusion weight chosen on dev for ``base`` or ``tuned`` (None: none)."""
        if not self.fusion or family not in self.fusion:
            return None
        return float(self.fusion[family]["weight"])


def settings_path(folder: str | Path) -> Path:
    """Where a model folder keeps its record."""
    return Path(folder) / SETTINGS_FILE


def read_settings(folder: str | Path) -> ModelSettings | None:
    """The record of a model folder written by embedtune; None for any other model folder.

    Example:
        >>> read_settings("runs/fin-model").dev.tuned["ndcg@10"]
        0.91

    Raises:
        DataError: the record is unreadable, from a newer embedtune, or malformed.
    """
    path = settings_path(folder)
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(raw, dict):
        raise DataError("expected a JSON object", path=path)
    version = raw.get("format")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise DataError(
            f"schema version (format) {version!r} is not one this embedtune reads (up to "
            f"{SCHEMA_VERSION}); the model was written by a newer embedtune: upgrade embedtune "
            "to use it",
            path=path,
        )
    try:
        return ModelSettings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise DataError(f"field '{where}': {first['msg']}", path=path) from None


def passages_of(folder: str | Path) -> PassageConfig | None:
    """The passage window stored with a model folder (None: not an embedtune model)."""
    settings = read_settings(folder)
    return None if settings is None else settings.passages


def write_settings(folder: str | Path, settings: ModelSettings) -> Path:
    """Write the record into ``folder`` atomically; returns its path."""
    path = settings_path(folder)
    write_json(path, settings.model_dump(mode="json"))
    return path
