"""Settings of the training stage (the shipped recipes are ``embedtune/run/presets.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from embedtune.corpus.config import PassageConfig
from embedtune.models import check_device


def work_dir(output: str | Path) -> Path:
    """``DIR.work/`` beside a model folder: its pairs, checkpoints and logs (for resume)."""
    out = Path(output)
    return out.parent / f"{out.name}.work"


def has_checkpoints(output: str | Path) -> bool:
    """Whether an interrupted training into ``output`` left checkpoints to resume from: the
    contrastive ones, or those of the mlm strategy's pretraining phase."""
    return any((work_dir(output) / sub).is_dir() for sub in ("checkpoints", "mlm/checkpoints"))


# Fields of a TrainConfig that say where, not how: not part of the recipe stored with a model.
JOB_FIELDS = ("output", "pairs_dir", "resume", "overwrite")


class ProbeSet(BaseModel):
    """A general (out-of-domain) collection that measures what fine-tuning forgot."""

    model_config = ConfigDict(extra="forbid")

    data: str
    split: str | None = None
    skip_bad: bool = Field(default=False, description="skip (and count) unreadable records")


class TrainConfig(BaseModel):
    """One training run: strategy, loss, schedule, dev selection."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = "base"
    strategy: str = "full"
    freeze_layers: int | None = Field(
        default=None, ge=0, description="strategy 'layers': bottom layers frozen (default half)"
    )
    # strategies 'lora' and 'adapter' (PEFT)
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.1, ge=0, lt=1)
    lora_targets: list[str] = Field(
        default_factory=lambda: ["query", "key", "value", "dense"],
        description="module names (suffixes) that get LoRA; 'dense' covers the feed-forward",
    )
    adapter_targets: list[str] | None = Field(
        default=None, description="strategy 'adapter' (IA3): modules rescaled (default PEFT's)"
    )
    save_adapter: bool = Field(
        default=False, description="lora/adapter: save the adapter alone, not merged weights"
    )
    # strategy 'bottleneck' (Houlsby adapters): bottleneck width = hidden size // this
    bottleneck_reduction: int = Field(
        default=16, ge=1, description="strategy 'bottleneck': hidden size / adapter width"
    )
    # strategy 'mlm': masked-language-model pretraining on the domain corpus first
    mlm_epochs: float = Field(default=3.0, gt=0)
    mlm_max_steps: int = Field(default=-1, description="stop MLM after this many steps")
    mlm_batch_size: int = Field(default=16, ge=1)
    mlm_learning_rate: float = Field(default=5e-5, gt=0)
    mlm_probability: float = Field(default=0.15, gt=0, lt=1)
    mlm_seq_length: int | None = Field(default=None, ge=8, description="default: the model's")
    mlm_save_steps: int = Field(default=50, ge=1)
    # vocabulary: the N costliest domain terms as new tokens (0: off)
    extend_vocab: int = Field(default=0, ge=0)
    extend_vocab_min_count: int = Field(default=3, ge=1)
    # against forgetting
    general_pairs: str | None = Field(default=None, description="pairs file of general pairs")
    general_fraction: float = Field(
        default=0.1, ge=0, lt=1, description="share of general pairs in the training set"
    )
    # elastic weight consolidation: weights the general pairs depend on (diagonal Fisher,
    # normalised to mean 1) are pulled back to the base with this weight (0: off)
    ewc_weight: float = Field(default=0.0, ge=0, description="EWC penalty weight (0: off)")
    ewc_pairs: int = Field(default=512, ge=2, description="general pairs the Fisher is taken on")
    interpolate: bool | None = Field(
        default=None,
        description="mix tuned and base weights, the ratio chosen on dev (default: on with "
        "weak supervision, where it won on pseudo-dev (BENCHMARKS.md), off with labels)",
    )
    interpolate_grid: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])
    probes: list[ProbeSet] = Field(
        default_factory=list, description="general collections: what the tuning forgot"
    )
    loss: Literal["mnrl", "cached_mnrl"] = "mnrl"
    mini_batch_size: int = Field(default=16, ge=1, description="cached_mnrl forward chunk")
    matryoshka_dims: list[int] | None = None
    epochs: float = Field(default=2.0, gt=0)
    batch_size: int = Field(default=32, ge=2)
    learning_rate: float = Field(default=2e-5, gt=0)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = 0.01
    max_seq_length: int | None = None
    query_prompt: str = ""
    doc_prompt: str = ""
    passages: PassageConfig = Field(default_factory=PassageConfig)
    # 'weak': the pairs and a pseudo-dev split were made from the corpus alone (no labels);
    # must match how the pairs were built (their record says)
    supervision: Literal["labels", "weak"] = "labels"
    # Dev evaluation runs at every checkpoint; over a large corpus it can cost more than the
    # training. The dev corpus is then the judged documents plus the top `dev_pool` documents
    # per dev query (null: the whole corpus).
    dev_pool: int | None = Field(default=30, ge=10)
    # Where the pool comes from. `bm25`: BM25's top `dev_pool` and the judged documents only;
    # the base model encodes just the pool (cost grows with the dev queries; BM25 still
    # indexes the corpus). `bm25+base`: BM25's and the base model's top `dev_pool` (the base
    # model then encodes the whole dev corpus once: its cost grows with the corpus). The
    # default, BM25's top 30, chose checkpoints as well as the base model's and BM25's top 100
    # on finance10k, mediqa2019-qa and finance10k padded to 10^4 documents (BENCHMARKS.md,
    # issue 18). Its hybrid weights lean towards the dense model (it lacks the documents only
    # a dense model ranks high): 1.0 on mediqa2019-qa, where the bm25+base pool chose 0.7.
    dev_pool_from: Literal["bm25+base", "bm25"] = "bm25"
    # `auto`: on a CUDA device, training (and the dev encoding that picks the checkpoint) runs
    # in mixed precision, bf16 where supported, else fp16; full precision elsewhere. `fp32`:
    # always full precision.
    precision: Literal["auto", "fp32"] = "auto"
    evals_per_epoch: int = Field(default=1, ge=1, description="dev evaluations (= checkpoints)")
    max_steps: int = Field(default=-1, description="stop after this many steps (-1: epochs)")
    seed: int = 42
    # experiment tracking through the trainer's own integrations (tensorboard, mlflow, trackio,
    # wandb …), each configured by its own environment variables; off by default
    report_to: list[str] = Field(
        default_factory=list, description="trackers to log to, e.g. [tensorboard] (none: off)"
    )
    device: str | None = None

    @field_validator("device")
    @classmethod
    def _device_available(cls, value: str | None) -> str | None:
        return check_device(value)

    @field_validator("report_to")
    @classmethod
    def _no_tracker(cls, value: list[str]) -> list[str]:
        return [] if value in (["none"], ["None"]) else value

    # the job: where the model goes and which pairs folder it learns from
    output: str | None = Field(default=None, description="model folder to create")
    pairs_dir: str | None = Field(
        default=None, description="pairs folder (pairs stage output); default OUTPUT.work/"
    )
    resume: bool = Field(default=False, description="continue from the last checkpoint")
    overwrite: bool = Field(
        default=False, description="replace an existing model folder (and start over)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.interpolate is None:
            self.interpolate = self.supervision == "weak" and not self.save_adapter
        if self.interpolate and self.save_adapter:
            raise ValueError(
                "interpolate works on merged weights: set save_adapter false or interpolate false"
            )
        if self.ewc_weight and not self.general_pairs:
            raise ValueError("ewc_weight needs general_pairs: the Fisher is taken on them")
        if any(not 0 < a <= 1 for a in self.interpolate_grid):
            raise ValueError(f"interpolate_grid values must be in (0, 1]: {self.interpolate_grid}")
        return self
