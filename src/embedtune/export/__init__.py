"""Export stage: ONNX fp32 / int8, a torch.export program, TorchScript (best effort), with
parity checks stored beside them, and a torch-free encoder for the ONNX files."""

from embedtune.export.config import ExportConfig

__all__ = ["ExportConfig"]
