"""Settings of the export stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Format = Literal["onnx", "onnx-int8", "torch-export", "torchscript"]
DEFAULT_FORMATS: tuple[Format, ...] = ("onnx", "onnx-int8", "torch-export")


class ExportConfig(BaseModel):
    """Which formats to write and how strictly each must match the PyTorch model."""

    model_config = ConfigDict(extra="forbid")

    formats: list[Format] = Field(default_factory=lambda: list(DEFAULT_FORMATS))
    opset: int = Field(default=18, ge=14)
    batch_size: int = Field(default=32, ge=1)
    parity_texts: int = Field(default=64, ge=4, description="sample texts for the cosine check")
    min_cosine: float = 0.9999  # fp32 (and torch.export) against PyTorch, per text
    # int8 is checked on retrieval quality, not per vector: nDCG@10 on a named eval split
    eval_data: str | None = None
    eval_split: str = "test"
    max_ndcg_drop: float = 0.005
