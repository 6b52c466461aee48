"""Settings of the evaluation stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from embedtune.corpus.config import PassageConfig
from embedtune.retrieval.cache import default_cache_dir
from embedtune.retrieval.metrics import DEFAULT_METRICS, parse_metric

# each query's score by system and metric, beside report.json: what a per-query comparison
# (the compare report's wins and losses) reads without the test collection or the run files
PER_QUERY_FILE = "per_query.json"
SYSTEMS = ("bm25", "base", "base-maxp", "base-hybrid", "tuned", "tuned-maxp", "tuned-hybrid")


class EvalConfig(BaseModel):
    """One evaluation: which data, which systems, how to score them."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="BEIR folder (or a parent holding <split>/)")
    output: str | None = Field(default=None, description="report folder (None: nothing written)")
    overwrite: bool = Field(default=False, description="replace an existing report folder")
    split: str = "test"
    model: str | None = Field(default=None, description="tuned model folder: adds tuned-* systems")
    base_model: str = "base"
    systems: list[str] | None = Field(default=None, description="default: every applicable one")
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS))
    query_prompt: str | None = Field(default=None, description="None: the model's 'query' prompt")
    doc_prompt: str | None = Field(default=None, description="None: the model's 'document' prompt")
    passages: PassageConfig | None = Field(
        default=None, description="None: the window stored with the model, else the defaults"
    )
    # rrf: reciprocal rank; weighted: a weight chosen on --tune-data/--tune-split; dev: the
    # weights the tuned model's training chose on its dev queries (stored with the model);
    # auto: dev where the tuned model stored weights, else rrf (on finance10k and
    # mediqa2019-qa rrf scored 0.03 and 0.065 nDCG@10 below the dev weights: BENCHMARKS.md)
    fusion: Literal["auto", "rrf", "weighted", "dev"] = "auto"
    tune_data: str | None = Field(default=None, description="train/dev data for fusion weights")
    tune_split: str | None = None
    ignore_identical_ids: bool = False
    skip_bad: bool = False
    depth: int = Field(default=100, ge=1)
    batch_size: int = Field(default=64, ge=1)
    chunk_passages: int = Field(default=8192, ge=1)
    cache_dir: str | None = Field(default_factory=default_cache_dir)
    permutations: int = Field(default=10_000, ge=100)
    bootstrap: int = Field(default=10_000, ge=100)
    seed: int = 42
    device: str | None = None
    show_progress: bool = True

    @field_validator("metrics")
    @classmethod
    def _metrics_known(cls, value: list[str]) -> list[str]:
        return [parse_metric(name).name for name in value]

    @model_validator(mode="after")
    def _depth_covers_metrics(self) -> EvalConfig:
        deepest = max(parse_metric(m).k for m in self.metrics)
        if deepest > self.depth:
            raise ValueError(
                f"a metric cut at {deepest} needs depth >= {deepest} (depth is "
                f"{self.depth}: documents retrieved per query)"
            )
        return self

    @field_validator("systems")
    @classmethod
    def _systems_known(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError(f"give at least one system: {', '.join(SYSTEMS)}")
        unknown = [s for s in value if s not in SYSTEMS]
        if unknown:
            raise ValueError(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
        return list(dict.fromkeys(value))
