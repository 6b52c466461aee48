"""The run config: one YAML file composed of each stage's settings, saved resolved next to
every output of ``embedtune run``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from embedtune.errors import ConfigError
from embedtune.governance.config import GovernanceConfig
from embedtune.monitor.config import WatchConfig

if TYPE_CHECKING:
    from embedtune.pairs.config import BuildPairsConfig
    from embedtune.train.config import TrainConfig


class DataConfig(BaseModel):
    """Labeled training data and the held-out evaluation data (BEIR folders)."""

    model_config = ConfigDict(extra="forbid")

    train: str = Field(description="BEIR folder (or parent) holding the training split")
    train_split: str = "train"
    dev_split: str | None = None
    test: str = Field(description="BEIR folder (or parent) holding the held-out split")
    test_split: str = "test"
    skip_bad: bool = False


class RunEvalConfig(BaseModel):
    """What the final evaluation reports."""

    model_config = ConfigDict(extra="forbid")

    systems: list[str] | None = None
    metrics: list[str] | None = None
    ignore_identical_ids: bool = False
    # hybrids fuse with the weights chosen on dev during training (rrf: reciprocal rank)
    fusion: Literal["rrf", "dev"] = "dev"


class RunExportConfig(BaseModel):
    """Export the tuned model to ``RUN/export`` (int8 is checked on the test split)."""

    model_config = ConfigDict(extra="forbid")

    formats: list[str] = Field(default_factory=lambda: ["onnx", "onnx-int8"])


class RunRegisterConfig(BaseModel):
    """Add the tuned model (with its eval report, and its export if any) to a registry and
    point tags at it. A registry usually outlives runs, so it lives outside the run folder."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(default="registry", description="registry folder")
    name: str | None = Field(default=None, description="readable name (default: the folder's)")
    tags: list[str] = Field(default_factory=list, description="tags to point at the version")


class RunIndexConfig(BaseModel):
    """Embed a corpus with the registered version into a vector index (needs ``register``)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(default="index", description="index folder (LanceDB, or Qdrant local)")
    backend: Literal["lancedb", "qdrant"] = "lancedb"
    url: str | None = None
    name: str = "passages"
    encoder: Literal["torch", "fp32", "int8"] = "torch"
    data: str | None = Field(default=None, description="corpus to index (default: data.test)")
    split: str | None = Field(default=None, description="its split (default: data.test_split)")


class RunConfig(BaseModel):
    """ingest → govern → analyze → pairs → train → evaluate (→ export → register → index),
    in one file."""

    model_config = ConfigDict(extra="forbid")

    output: str = Field(description="run folder; finished stages in it are not redone")
    data: DataConfig
    preset: str = "default"
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides")
    eval: RunEvalConfig = Field(default_factory=RunEvalConfig)
    governance: GovernanceConfig = Field(default_factory=GovernanceConfig)
    analyze: bool = Field(default=True, description="write the vocabulary-gap analysis")
    export: RunExportConfig | None = Field(default=None, description="export after evaluation")
    registry: RunRegisterConfig | None = Field(
        default=None, description="add the model to a registry"
    )
    index: RunIndexConfig | None = Field(default=None, description="index a corpus with it")
    monitor: WatchConfig | None = Field(
        default=None,
        description="what `embedtune monitor watch` follows once the model is served (the run "
        "itself does not use it)",
    )


def merge_settings(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, merging nested mappings key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; any other content is a clear error."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found")
    try:
        loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        # one line: the problem and where (PyYAML's own text spans several, with a caret)
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{file}{where}: not valid YAML: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{file}: expected a mapping of settings at the top level")
    return loaded


def load_run_config(path: str | Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a run YAML; a typo names the field and the file.

    Example:
        >>> run_pipeline(load_run_config("examples/finance10k.yaml")).report["systems"]
    """
    file = Path(path)
    raw = read_yaml_mapping(file)
    raw.update(overrides or {})
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(file, exc) from None


def config_error(file: str | Path, exc: ValidationError, section: str = "") -> ConfigError:
    """A validation error of a config file as one line: the file, then each problem as
    ``field.path: message`` (``section.field.path`` for a section of the file)."""
    prefix = f"{section}." if section else ""
    problems = "; ".join(
        f"{prefix}{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
    )
    return ConfigError(f"{file}: {problems}")


def load_watch_config(path: str | Path) -> WatchConfig:
    """The ``monitor`` section of a YAML file, for ``embedtune monitor watch``: a run config
    (validated whole; the registry and its tags default to the run's ``registry`` section)
    or a file holding only ``monitor:``.

    Example:
        >>> load_watch_config("examples/served.yaml").models
        ['finance']
    """
    file = Path(path)
    raw = read_yaml_mapping(file)
    if not isinstance(raw.get("monitor"), dict):
        raise ConfigError(f"{file}: no 'monitor:' section (see docs/monitoring.md)")
    section = dict(raw["monitor"])
    if set(raw) - {"monitor"}:  # a run config: check all of it, then borrow its registry
        run = load_run_config(file)
        if run.registry is not None:
            section.setdefault("registry", run.registry.path)
            if run.registry.tags:
                section.setdefault("models", run.registry.tags)
    try:
        return WatchConfig.model_validate(section)
    except ValidationError as exc:
        raise config_error(file, exc, "monitor") from None


def preset(name: str) -> dict[str, Any]:
    """A named training recipe from the shipped ``presets.yaml`` (``default`` or ``fast``).

    Example:
        >>> recipe = preset("default") | {"strategy": "lora", "learning_rate": 5e-4}
        >>> fine_tune("runs/lora", recipe, data="../shared/data/finance10k")
    """
    text = resources.files("embedtune.run").joinpath("presets.yaml").read_text("utf-8")
    presets = yaml.safe_load(text)
    if name not in presets:
        raise ConfigError(f"unknown preset '{name}': choose from {', '.join(presets)}")
    return dict(presets[name] or {})


def stage_configs(
    recipe: dict[str, Any],
    *,
    output: str | Path,
    data: str | None = None,
    pairs_file: str | None = None,
    split: str = "train",
    dev_split: str | None = None,
    skip_bad: bool = False,
    resume: bool = False,
) -> tuple[BuildPairsConfig, TrainConfig]:
    """One training recipe (a preset with your overrides) as the pairs stage's and the train
    stage's configs: the pairs go to ``OUTPUT.work/``, where training reads them.

    The recipe is one mapping for the user (``pairs``, ``weak``, ``dev_fraction`` … beside
    ``epochs``, ``strategy`` …); each stage validates its own keys, and the shared ones (base
    model, passages, prompts, device, supervision) go to both.
    """
    from embedtune.pairs.config import RECIPE_KEYS, SHARED_KEYS, BuildPairsConfig
    from embedtune.train.config import TrainConfig, work_dir

    work = work_dir(output)
    pairs_part = {k: v for k, v in recipe.items() if k in RECIPE_KEYS or k in SHARED_KEYS}
    train_part = {k: v for k, v in recipe.items() if k not in RECIPE_KEYS or k == "supervision"}
    train = TrainConfig.model_validate(
        {**train_part, "output": str(output), "pairs_dir": str(work), "resume": resume}
    )
    pairs = BuildPairsConfig.model_validate(
        {
            **pairs_part,
            "output": str(work),
            "data": data,
            "pairs_file": pairs_file,
            "split": split,
            "dev_split": dev_split,
            "skip_bad": skip_bad,
        }
    )
    return pairs, train


def resolved_recipe(recipe: dict[str, Any]) -> dict[str, Any]:
    """The recipe with every default filled in, as the pairs and train stages read it: what
    makes two trainings the same, whichever defaults a recipe left unsaid. Where the stages
    read and write, and the trackers they log to, are not part of it.

    Example:
        >>> resolved_recipe(preset("default"))["train"]["epochs"]
        2.0
    """
    from embedtune.pairs.config import RECIPE_KEYS, SHARED_KEYS
    from embedtune.train.config import JOB_FIELDS

    # the device is taken as written: checking that it exists here would refuse to compare
    # a recipe made on a GPU machine
    device = recipe.get("device")
    pairs, train = stage_configs({**recipe, "device": None}, output="model")
    resolved = {
        "pairs": pairs.model_dump(mode="json", include={*RECIPE_KEYS, *SHARED_KEYS}),
        "train": train.model_dump(mode="json", exclude={*JOB_FIELDS, "report_to"}),
    }
    resolved["pairs"]["device"] = resolved["train"]["device"] = device
    return resolved
