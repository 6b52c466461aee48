"""Export stage: ONNX fp32 / int8, a torch.export program, TorchScript (best effort), with
parity checks stored beside them. The torch-free encoder for the ONNX files is
`embedtune.retrieval.onnx.OnnxEncoder`.

The stage's verb is `export_model` (`ExportConfig` in, `ExportResult` out); torch loads only
when it runs.
"""

from embedtune.export.config import ExportConfig
from embedtune.export.export import (
    ExportResult,
    ParityError,
    RetrievalParity,
    VariantParity,
    export_model,
)

__all__ = [
    "ExportConfig",
    "ExportResult",
    "ParityError",
    "RetrievalParity",
    "VariantParity",
    "export_model",
]
