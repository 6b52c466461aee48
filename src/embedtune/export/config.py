"""Settings of the export stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from embedtune.corpus.config import PathStr

Format = Literal["onnx", "onnx-int8", "torch-export", "torchscript"]
DEFAULT_FORMATS: tuple[Format, ...] = ("onnx", "onnx-int8", "torch-export")


class ExportConfig(BaseModel):
    """One export: the model, the new folder, which formats to write and how strictly each
    must match the PyTorch model.

    Attributes:
        model: Model folder or Hub id (``"base"``: the packaged default model).
        output: New folder for the export; never inside the model folder or ``eval_data``.
        overwrite: Replace an existing ``output`` (else it is refused).
        formats: Any of ``onnx`` (fp32, graph-optimised), ``onnx-int8`` (dynamic int8),
            ``torch-export`` (a ``torch.export`` program) and ``torchscript`` (best effort).
        opset: ONNX opset.
        batch_size: Texts encoded at once in the parity checks.
        parity_texts: Sample texts (of many lengths) for the cosine check.
        min_cosine: Smallest cosine allowed, per text, between fp32 ONNX (and torch.export)
            and PyTorch; below it nothing is written.
        eval_data: BEIR data whose split checks int8 on retrieval quality (nDCG@10); None
            skips that check (recorded in ``export.json``).
        eval_split: Split of ``eval_data``.
        max_ndcg_drop: Largest nDCG@10 loss of int8 against PyTorch; past it the export is
            written but marked not ok.

    Example:
        >>> ExportConfig(model="runs/fin/model", output="runs/fin/export",
        ...              formats=["onnx", "onnx-int8"], eval_data="data/fin", eval_split="test")
    """

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="model folder or Hub id ('base' = the default model)")
    output: PathStr = Field(description="new folder for the export")
    overwrite: bool = Field(default=False, description="replace an existing output")
    formats: list[Format] = Field(default_factory=lambda: list(DEFAULT_FORMATS))
    opset: int = Field(default=18, ge=14)
    batch_size: int = Field(default=32, ge=1)
    parity_texts: int = Field(default=64, ge=4, description="sample texts for the cosine check")
    min_cosine: float = 0.9999  # fp32 (and torch.export) against PyTorch, per text
    # int8 is checked on retrieval quality, not per vector: nDCG@10 on a named eval split
    eval_data: PathStr | None = None
    eval_split: str = "test"
    max_ndcg_drop: float = 0.005
