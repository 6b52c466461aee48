"""One small protocol for every encoder: a sentence-transformers model (PyTorch) or the
torch-free :class:`~embedtune.retrieval.onnx.OnnxEncoder` over an ONNX export.

Search, indexing and (later) serving take an ``Encoder`` and never ask which one it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Variant = Literal["torch", "fp32", "int8"]


@runtime_checkable
class Encoder(Protocol):
    """What embedtune needs of an encoder (sentence-transformers' ``encode`` signature)."""

    @property
    def max_seq_length(self) -> int | None:
        """Tokens per text the encoder reads; longer texts are truncated."""
        ...

    @property
    def tokenizer(self) -> Any:
        """The tokenizer (Hugging Face's for PyTorch, ``tokenizers``' for ONNX)."""
        ...

    def get_embedding_dimension(self) -> int | None:
        """The vector size."""
        ...

    def encode(self, sentences: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Embeddings, one row per text; keyword ``prompt`` goes in front of every text."""
        ...


def open_encoder(
    path: str | Path, variant: Variant = "torch", device: str | None = None
) -> Encoder:
    """The encoder of a model folder (``torch``) or of an export folder (``fp32``/``int8``).

    Args:
        path: A sentence-transformers model folder ('base': the packaged default model), or
            a folder written by ``embedtune export`` for the ONNX variants.
        variant: ``torch`` (PyTorch via sentence-transformers), ``fp32`` or ``int8`` (ONNX,
            no torch imported).
        device: For ``torch``: cpu, cuda, … (default: the best available).

    Example:
        >>> encoder = open_encoder("runs/fin-export", "int8")
        >>> encoder.encode(["net revenue growth"], normalize_embeddings=True).shape
        (1, 384)
    """
    if variant == "torch":
        from embedtune.models import load_model, resolve_model

        model: Encoder = load_model(resolve_model(str(path)), device=device)
        return model
    from embedtune.retrieval.onnx import OnnxEncoder

    return OnnxEncoder(path, variant)


def embed(encoder: Encoder, texts: list[str], prompt: str = "", batch_size: int = 64) -> np.ndarray:
    """Normalised float32 embeddings of ``texts`` (cosine = dot product)."""
    vectors = encoder.encode(
        texts,
        prompt=prompt or None,
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)
