"""The comparison's config (one YAML file) and the cells it plans: one per approach, and one
per (approach, fraction) of the learning curve."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from embedtune.compare.approaches import get_approach
from embedtune.errors import ConfigError
from embedtune.run.config import (
    DataConfig,
    RunEvalConfig,
    config_error,
    merge_settings,
    preset,
    read_yaml_mapping,
    resolved_recipe,
)
from embedtune.train.config import ProbeSet

logger = logging.getLogger(__name__)

__all__ = [
    "ATTEMPTS_FILE",
    "ERROR_FILE",
    "RESULT_FILE",
    "SPEC_FILE",
    "CellSpec",
    "CompareConfig",
    "GridSpec",
    "LearningCurveConfig",
    "check_general_pairs",
    "load_compare_config",
    "plan_cells",
    "problem",
    "same_settings",
]


# A cell's folder: its spec (written first), its result (written last: the cell is done),
# when it failed the reason, and when each attempt at it started (a killed cell resumes).
SPEC_FILE = "spec.json"
RESULT_FILE = "cell.json"
ERROR_FILE = "error.txt"
ATTEMPTS_FILE = "attempts.json"


class LearningCurveConfig(BaseModel):
    """Which approaches are also trained on a share of the labeled training queries."""

    model_config = ConfigDict(extra="forbid")

    fractions: list[float] = Field(min_length=1, description="shares of the training queries")
    approaches: list[str] = Field(min_length=1, description="labeled approaches to repeat")

    @field_validator("fractions")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if any(not 0 < f <= 1 for f in value):
            raise ValueError(f"fractions must be in (0, 1]: {value}")
        return sorted(set(value))


class CompareConfig(BaseModel):
    """Several adaptation approaches on one dataset under one budget (the shared recipe)."""

    model_config = ConfigDict(extra="forbid")

    output: str = Field(description="comparison folder: cells/<name>/, matrix.json, matrix.md")
    data: DataConfig
    preset: str = "default"
    train: dict[str, Any] = Field(
        default_factory=dict, description="recipe overrides shared by every cell (the budget)"
    )
    eval: RunEvalConfig = Field(default_factory=RunEvalConfig)
    approaches: list[str] = Field(min_length=1, description="approach names (see approaches.py)")
    overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="approach name → recipe keys for its cells only"
    )
    general_pairs: str | None = Field(
        default=None, description="general pairs file for full+general and full+ewc"
    )
    probes: list[ProbeSet] = Field(
        default_factory=list, description="general collections: what each cell forgot"
    )
    learning_curve: LearningCurveConfig | None = None


class GridSpec(BaseModel):
    """A cell that trains once per value of ``key`` and keeps the one dev chooses: the
    largest value whose dev nDCG@10 is within ``tolerance`` of the best."""

    model_config = ConfigDict(extra="forbid")

    key: str
    values: list[float] = Field(min_length=1)
    tolerance: float = Field(default=0.01, ge=0)


class CellSpec(BaseModel):
    """Everything one cell's process needs (``cells/<name>/spec.json``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    approach: str
    fraction: float = 1.0
    description: str
    recipe: dict[str, Any]
    data: DataConfig
    eval: RunEvalConfig
    grid: GridSpec | None = None
    verbosity: str = "normal"
    # The recipe resolved (every default filled in) when the cell was planned. A finished
    # cell is compared by it, so a default changed since does not pass for the same
    # settings. None in specs written before it was recorded.
    settings: dict[str, Any] | None = None


# A spec without `settings` was made by an embedtune whose defaults for these were the
# values below (issue 18 changed them to candidate mining and a BM25 pool of 30, measured by
# bench/mining_quality.py).
BEFORE_SETTINGS: dict[str, Any] = {
    "pairs": {"mining": "corpus"},
    "dev_pool": 100,
    "dev_pool_from": "bm25+base",
}


def _flat(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one mapping of dotted keys (``pairs.mining``)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@cache
def _defaults() -> dict[str, Any]:
    """Today's defaults, flat (read only: every comparison shares them)."""
    return _flat(resolved_recipe({}))


def _settings(cell: CellSpec) -> dict[str, Any]:
    if cell.settings is not None:
        return _flat(cell.settings)
    return _flat(resolved_recipe(merge_settings(BEFORE_SETTINGS, cell.recipe)))


def same_settings(old: CellSpec, new: CellSpec) -> bool:
    """Whether the cell ``old`` describes is the one ``new`` would make: the same data,
    evaluation and grid, and the same recipe once every default is filled in. A setting
    ``old`` does not know (added to embedtune since) must be at its default; one ``new``
    does not know (removed since) is not compared.

    Not compared: how loudly the cell runs, which trackers it logs to, how the code
    describes its approach, and how the recipe was written (keys left to their default, or
    in another order).
    """
    loose = {"recipe", "settings", "verbosity", "description"}
    if old.model_dump(mode="json", exclude=loose) != new.model_dump(mode="json", exclude=loose):
        return False
    try:
        before, now = _settings(old), _settings(new)
    except (ValueError, ConfigError):  # a recipe today's embedtune cannot read
        return False
    defaults = _defaults()
    return all(
        before.get(key, defaults.get(key)) == value
        for key, value in now.items()
        if key in before or key in defaults
    )


def load_compare_config(path: str | Path) -> CompareConfig:
    """Read and validate a comparison YAML; a typo names the field and the file.

    Example:
        >>> config = load_compare_config("examples/compare.yaml")
        >>> [cell.name for cell in plan_cells(config)][:2]
        ['full', 'lora']
    """
    file = Path(path)
    raw = read_yaml_mapping(file)
    try:
        return CompareConfig.model_validate(raw)
    except ValidationError as exc:
        raise config_error(file, exc) from None


def problem(exc: Exception) -> str:
    """A config error in one line: pydantic's as ``field.path: message`` pairs."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors())
    return str(exc).splitlines()[0]


def _cell_name(approach: str, fraction: float) -> str:
    return approach if fraction == 1 else f"{approach}@{fraction:g}"


def _check_names(config: CompareConfig) -> None:
    """Every approach named anywhere is known and fits what the config gives it."""
    curve = config.learning_curve
    named = [*config.approaches, *(curve.approaches if curve else []), *config.overrides]
    for name in named:
        approach = get_approach(name)
        if approach.needs_general and config.general_pairs is None:
            raise ConfigError(
                f"approach '{name}' needs general_pairs: a pairs file of general text"
            )
    if len(set(config.approaches)) != len(config.approaches):
        raise ConfigError(f"approaches: a name given twice: {config.approaches}")
    for name in curve.approaches if curve else []:
        if not get_approach(name).labeled:
            raise ConfigError(
                f"learning_curve: '{name}' uses no labeled queries, so it has no curve over them"
            )


def check_general_pairs(to_run: list[CellSpec]) -> None:
    """Each general pairs file a cell still to run reads must exist (a comparison whose such
    cells are all done renders its report without them)."""
    for cell in to_run:
        path = cell.recipe.get("general_pairs")
        if path is not None and not Path(str(path)).is_file():
            raise ConfigError(f"general_pairs: {path} is not a file (read by cell {cell.name})")


def _recipe(config: CompareConfig, approach: str, fraction: float) -> dict[str, Any]:
    """The shared recipe, then the approach's own keys, then the config's overrides for it."""
    spec = get_approach(approach)
    recipe = merge_settings(preset(config.preset), config.train)
    recipe = merge_settings(recipe, spec.overrides)
    if spec.needs_general:
        recipe["general_pairs"] = config.general_pairs
    if config.probes:
        recipe["probes"] = [p.model_dump(mode="json") for p in config.probes]
    recipe = merge_settings(recipe, config.overrides.get(approach, {}))
    if fraction < 1:
        recipe = merge_settings(recipe, {"pairs": {"query_fraction": fraction}})
    return recipe


def _grid(config: CompareConfig, approach: str) -> GridSpec | None:
    """The approach's grid, unless the config sets its key (then that value alone)."""
    grid = get_approach(approach).grid
    if grid is None or grid.key in config.overrides.get(approach, {}):
        return None
    return GridSpec(key=grid.key, values=list(grid.values))


def plan_cells(config: CompareConfig, verbosity: str = "normal") -> list[CellSpec]:
    """Every cell of the comparison, in run order: the approaches, then the learning curve
    (a fraction of 1 is the approach's own cell when it is in ``approaches``).

    Raises:
        ConfigError: An unknown approach, a bad preset, a recipe a stage refuses.
    """
    _check_names(config)
    wanted = [(a, 1.0) for a in config.approaches]
    curve = config.learning_curve
    if curve is not None:
        wanted += [(a, f) for a in curve.approaches for f in curve.fractions]
    cells: dict[str, CellSpec] = {}
    for approach, fraction in wanted:
        name = _cell_name(approach, fraction)
        if name in cells:
            continue
        recipe = _recipe(config, approach, fraction)
        try:
            settings = resolved_recipe(recipe)
        except ValueError as exc:  # pydantic's ValidationError: name the cell
            raise ConfigError(f"cell {name}: {problem(exc)}") from None
        cells[name] = CellSpec(
            grid=_grid(config, approach),
            name=name,
            approach=approach,
            fraction=fraction,
            description=get_approach(approach).description,
            recipe=recipe,
            settings=settings,
            data=config.data,
            eval=config.eval,
            verbosity=verbosity,
        )
    return list(cells.values())
