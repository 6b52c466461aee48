"""Embed text with an exported ONNX model and nothing but ``tokenizers``, ``onnxruntime`` and
numpy: no torch, no transformers. Same tokenization, pooling and normalisation as the model.

    from embedtune.retrieval.onnx import OnnxEncoder
    vectors = OnnxEncoder("runs/export", variant="int8").encode(["a query"], prompt_name="query")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.errors import ConfigError, require

EXPORT_FILE = "export.json"


class OnnxEncoder:
    """A sentence encoder over one ONNX file of an export folder (``fp32`` or ``int8``)."""

    def __init__(self, folder: str | Path, variant: str = "int8", threads: int | None = None):
        require("onnxruntime", "onnx")
        require("tokenizers", "onnx")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        root = Path(folder)
        meta_file = root / EXPORT_FILE
        if not meta_file.is_file():
            raise ConfigError(f"{root} is not an embedtune export (no {EXPORT_FILE})")
        self.meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        files = self.meta["files"]
        if variant not in files:
            raise ConfigError(
                f"{root} has no '{variant}' ONNX model; it has: {', '.join(sorted(files))}"
            )
        spec = self.meta["encoder"]
        self.variant = variant
        self.max_seq_length = int(spec["max_seq_length"])
        self.prompts: dict[str, str] = dict(spec.get("prompts", {}))
        self.input_names: list[str] = list(spec["input_names"])
        self.tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        pad = self.meta["tokenizer"]["pad_token"]
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad), pad_token=pad)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(root / files[variant]), options, providers=["CPUExecutionProvider"]
        )

    def get_embedding_dimension(self) -> int:
        """The vector size, as sentence-transformers names it."""
        return int(self.meta["encoder"]["dimension"])

    def encode(
        self,
        sentences: list[str] | str,
        batch_size: int = 32,
        prompt: str | None = None,
        prompt_name: str | None = None,
        **_: Any,
    ) -> np.ndarray:
        """Embeddings (float32, one row per text), normalised if the model normalises.

        ``prompt`` (a string) or ``prompt_name`` (one of the model's, e.g. "query") is put in
        front of every text, as sentence-transformers does. Other sentence-transformers keyword
        arguments are accepted and ignored, so this drops in where ``model.encode`` is called.
        """
        texts = [sentences] if isinstance(sentences, str) else list(sentences)
        if prompt is None and prompt_name is not None:
            if prompt_name not in self.prompts:
                raise ConfigError(f"no prompt named '{prompt_name}': {sorted(self.prompts)}")
            prompt = self.prompts[prompt_name]
        if prompt:
            texts = [prompt + t for t in texts]
        out = np.zeros((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        # longest first, as sentence-transformers does: batches of similar length pad less
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer.encode_batch([texts[i] for i in rows])
            feeds = {
                "input_ids": np.array([b.ids for b in batch], dtype=np.int64),
                "attention_mask": np.array([b.attention_mask for b in batch], dtype=np.int64),
                "token_type_ids": np.array([b.type_ids for b in batch], dtype=np.int64),
            }
            result = self.session.run(None, {n: feeds[n] for n in self.input_names})[0]
            out[rows] = result
        return out
