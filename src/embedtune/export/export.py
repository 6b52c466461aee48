"""``embedtune export``: ONNX fp32 (graph-optimised) and int8, a ``torch.export`` program and
best-effort TorchScript, each checked against the PyTorch model before the folder is written.

The folder (written in a temporary sibling, then renamed) holds the model files, the fast
tokenizer (``tokenizer.json``) and ``export.json``: source model name and hash, the encoder spec
(inputs, length limit, pooling, prompts, passage window), parity numbers and file sizes.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from embedtune.corpus.config import PassageConfig
from embedtune.corpus.load import load_beir
from embedtune.corpus.types import Dataset
from embedtune.errors import EmbedtuneError, require
from embedtune.export.config import ExportConfig
from embedtune.export.module import EncoderSpec, embedding_module
from embedtune.io import sha256_file, write_json
from embedtune.model_folder import passages_of
from embedtune.outputs import check_output, replacing
from embedtune.retrieval.onnx import EXPORT_FILE, OnnxEncoder

logger = logging.getLogger(__name__)

__all__ = ["ExportResult", "ParityError", "RetrievalParity", "VariantParity", "export_model"]

FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
SAMPLE = [
    "What was the total revenue growth?",
    "hepatocellular carcinoma treatment options",
    "a",
    "The company leases office space in San Francisco and expects to renew the lease. " * 12,
    "Convertible senior notes due 2025; interest is payable semi-annually.",
    "def read_config(path): return yaml.safe_load(open(path))",
]


class ParityError(EmbedtuneError):
    """An export does not reproduce the PyTorch model closely enough."""


class VariantParity(BaseModel):
    """How closely one exported variant reproduces the PyTorch model.

    Attributes:
        min_cosine: Smallest cosine, over the sample texts, between its vectors and PyTorch's.
        mean_cosine: Mean of those cosines.
        ndcg_drop: int8 only: nDCG@10 of PyTorch minus nDCG@10 of int8 on the eval split.
        ok: int8 only: whether ``ndcg_drop`` is within ``max_ndcg_drop`` (None: unchecked).
        eval: int8 only: why the retrieval check was skipped, when it was.
        error: TorchScript only: why the best-effort export failed (nothing written for it).

    Example:
        >>> int8 = export_model(config).parity["int8"]
        >>> int8.min_cosine, int8.ndcg_drop, int8.ok
        (0.9912, 0.0012, True)
    """

    model_config = ConfigDict(extra="allow")

    min_cosine: float | None = None
    mean_cosine: float | None = None
    ndcg_drop: float | None = None
    ok: bool | None = None
    eval: str | None = None
    error: str | None = None


class RetrievalParity(BaseModel):
    """nDCG@10 of max-passage dense search with PyTorch and each ONNX variant on one split.

    Attributes:
        data: ``DATA:SPLIT`` it was measured on.
        queries: Judged queries searched.
        passages: Passages searched.
        ndcg_at_10: ``pytorch``, ``fp32``, ``int8`` → nDCG@10 (``ndcg@10`` in ``export.json``).

    Example:
        >>> export_model(config).retrieval.ndcg_at_10
        {'pytorch': 0.8471, 'fp32': 0.8471, 'int8': 0.8459}
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    data: str
    queries: int
    passages: int
    ndcg_at_10: dict[str, float] = Field(alias="ndcg@10")


class ExportResult(BaseModel):
    """What :func:`export_model` wrote; ``export.json`` in ``path`` holds the full record
    (encoder spec, tokenizer, ONNX opset and fusions, library versions).

    Attributes:
        path: The export folder.
        source: Name of the exported model.
        source_sha256: Content hash of the exported model (the registry finds its version by it).
        files: Variant (``fp32``, ``int8``, ``torch-export``, ``torchscript``) → file name.
        sizes: Variant → file size in bytes.
        sha256: Variant → sha256 of its file.
        parity: Variant → its parity numbers (a failed TorchScript export has only ``error``).
        retrieval: The int8 retrieval check (None: no int8 or no eval data).

    Example:
        >>> result = export_model(ExportConfig(model="runs/fin/model", output="runs/fin/export",
        ...                                    eval_data="data/fin", eval_split="test"))
        >>> result.parity["fp32"].min_cosine, result.retrieval.ndcg_at_10
        (0.99999, {'pytorch': 0.8471, 'fp32': 0.8471, 'int8': 0.8459})
    """

    path: str
    source: str
    source_sha256: str
    files: dict[str, str]
    sizes: dict[str, int]
    sha256: dict[str, str]
    parity: dict[str, VariantParity]
    retrieval: RetrievalParity | None = None

    @property
    def ok(self) -> bool:
        """False when the int8 model lost more retrieval quality than allowed (it is written,
        but marked not ok, and the registry refuses it)."""
        int8 = self.parity.get("int8")
        return int8 is None or int8.ok is not False

    @classmethod
    def from_meta(cls, path: str | os.PathLike[str], meta: dict[str, Any]) -> ExportResult:
        """The result of the export in ``path`` from its ``export.json`` content ``meta``."""
        parity = dict(meta.get("parity", {}))
        retrieval = parity.pop("eval", None)
        return cls(
            path=os.fspath(path),
            source=meta["source"]["name"],
            source_sha256=meta["source"]["sha256"],
            files=meta["files"],
            sizes=meta["sizes"],
            sha256=meta["sha256"],
            parity={k: VariantParity.model_validate(v) for k, v in parity.items()},
            retrieval=None if retrieval is None else RetrievalParity.model_validate(retrieval),
        )


def _sample(config: ExportConfig, dataset: Dataset | None) -> list[str]:
    """Texts of many lengths, so short ones are padded next to long ones in a batch: the
    fixed examples, then the eval corpus's documents (or variations of the examples)."""
    texts = list(SAMPLE)
    if dataset is not None:
        texts += [d.full_text for d in dataset.corpus.values()]
    words = " ".join(SAMPLE).split()
    while len(texts) < config.parity_texts:
        n = len(texts)
        texts.append(" ".join(words[(n * 7 + j) % len(words)] for j in range((n * 37) % 300 + 1)))
    return texts[: config.parity_texts]


def _tokens(st: Any, spec: EncoderSpec, texts: list[str]) -> tuple[Any, ...]:
    batch = st.tokenizer(
        texts, padding=True, truncation=True, max_length=spec.max_seq_length, return_tensors="pt"
    )
    return tuple(batch[name] for name in spec.input_names)


def _dynamic_shapes(spec: EncoderSpec) -> dict[str, dict[int, Any]]:
    import torch

    # sequences always hold [CLS] and [SEP], and never exceed the model's length limit
    batch = torch.export.Dim("batch", min=1, max=65536)
    seq = torch.export.Dim("seq", min=2, max=spec.max_seq_length)
    return {name: {0: batch, 1: seq} for name in spec.input_names}


def _export_onnx(
    module: Any, args: tuple[Any, ...], spec: EncoderSpec, raw: Path, opset: int
) -> None:
    import torch

    with warnings.catch_warnings():
        # torch's exporter warns about its own internals (pytree, shared dims): not ours to fix
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(raw),
            input_names=spec.input_names,
            output_names=["sentence_embedding"],
            dynamic_shapes=_dynamic_shapes(spec),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


def _optimize(raw: Path, out: Path, st: Any) -> dict[str, int]:
    """onnxruntime's transformer optimizer (fused GELU and layer norms); the runtime adds its
    own graph optimisations when a session loads the file."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = st[0].auto_model.config
    heads = int(getattr(config, "num_attention_heads", 0))
    hidden = int(getattr(config, "hidden_size", 0))
    # The optimizer print()s to stdout (e.g. "failed in shape inference"), where the results go.
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        optimized = optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=hidden)
    for line in printed.getvalue().splitlines():
        logger.debug("onnxruntime optimizer: %s", line)
    optimized.save_model_to_file(str(out))
    return {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}


def _quantize(fp32: Path, out: Path) -> None:
    """Dynamic int8 with per-channel weight scales (per-tensor loses more quality here)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8)


def _cosines(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    cos = (a * b).sum(axis=1)
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def _torch_program(module: Any, args: tuple[Any, ...], spec: EncoderSpec, path: Path) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(module, args, dynamic_shapes=_dynamic_shapes(spec))
        torch.export.save(program, str(path))
    return torch.export.load(str(path)).module()


def _torchscript(module: Any, args: tuple[Any, ...], path: Path) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing warnings; TorchScript itself is deprecated
        traced = torch.jit.trace(module, args, strict=False)
        traced.save(str(path))
        return torch.jit.load(str(path))


def _run_torch(fn: Any, st: Any, spec: EncoderSpec, texts: list[str], batch: int) -> np.ndarray:
    import torch

    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            rows.append(fn(*_tokens(st, spec, texts[start : start + batch])).numpy())
    return np.concatenate(rows)


def _retrieval(
    encoders: dict[str, Any],
    ref: Any,
    st: Any,
    config: ExportConfig,
    dataset: Dataset,
    prompts: dict[str, str],
) -> dict[str, Any]:
    """nDCG@10 of max-passage dense search with each encoder on the named eval split."""
    from embedtune.corpus.passages import split_passages
    from embedtune.retrieval.dense import DenseEncoder, dense_search
    from embedtune.retrieval.metrics import mean, per_query

    queries = dataset.judged_queries()
    docs = list(dataset.corpus.values())
    window = passages_of(ref.path) or PassageConfig()
    passages = split_passages(docs, st.tokenizer, window)
    scores = {}
    for name, model in encoders.items():
        encoder = DenseEncoder(
            model,
            ref,
            query_prompt=prompts.get("query", ""),
            doc_prompt=prompts.get("document", ""),
            batch_size=config.batch_size,
        )
        run = dense_search(encoder, queries, [d.id for d in docs], passages.texts, passages.bounds)
        scores[name] = mean(per_query(run, dataset.qrels, ["ndcg@10"])["ndcg@10"])
    return {
        "data": f"{config.eval_data}:{config.eval_split}",
        "queries": len(queries),
        "passages": len(passages),
        "ndcg@10": {k: round(v, 5) for k, v in scores.items()},
    }


def export_model(config: ExportConfig) -> ExportResult:
    """Export ``config.model`` to the new folder ``config.output`` in ``config.formats``, each
    format checked against the PyTorch model before the folder is written.

    The folder holds the model files, the fast tokenizer (``tokenizer.json``) and
    ``export.json``: source model name and hash, the encoder spec, parity numbers, file sizes
    and hashes. An int8 model is checked on retrieval quality (nDCG@10 on
    ``config.eval_data``); past ``max_ndcg_drop`` it is written but marked not ok.

    Args:
        config: The model, the output folder, the formats and the parity limits.

    Returns:
        What was written: files, sizes, hashes and parity numbers per variant.

    Raises:
        ConfigError: ``config.output`` exists, or the model cannot be found.
        ParityError: fp32 ONNX or the torch.export program drifts from PyTorch (nothing is
            written).
        MissingExtraError: The ``onnx`` (or ``eval``) extra is not installed.

    Example:
        >>> from embedtune.export import ExportConfig, export_model
        >>> result = export_model(ExportConfig(model="runs/fin/model", output="runs/fin/export",
        ...                                    eval_data="data/fin", eval_split="test"))
        >>> result.files, result.ok
        ({'fp32': 'model.onnx', 'int8': 'model.int8.onnx', 'torch-export': 'model.pt2'}, True)
    """
    require("torch", "eval")
    from embedtune.models import load_model, resolve_model
    from embedtune.provenance import library_versions

    out = Path(config.output)
    check_output(out, [config.model, config.eval_data], overwrite=config.overwrite)
    onnx_wanted = {"onnx", "onnx-int8"} & set(config.formats)
    if onnx_wanted:
        require("onnxruntime", "onnx")
        require("onnxscript", "onnx")
    ref = resolve_model(config.model)
    st = load_model(ref, device="cpu")
    module, spec = embedding_module(st)
    # the eval split is read once: sample texts for the cosine check, queries for int8
    dataset = load_beir(config.eval_data, config.eval_split) if config.eval_data else None
    sample = _sample(config, dataset)
    reference = np.asarray(st.encode(sample, batch_size=config.batch_size), dtype=np.float32)
    args = _tokens(st, spec, sample[:4])
    meta: dict[str, Any] = {
        "format": 1,
        "source": {"name": ref.name, "sha256": ref.sha256},
        "encoder": {
            **spec.to_dict(),
            "passages": (passages_of(ref.path) or PassageConfig()).model_dump(),
        },
        "tokenizer": {"pad_token": st.tokenizer.pad_token},
        "files": {},
        "parity": {},
        "versions": library_versions(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        st.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        if onnx_wanted:
            raw = tmp / "model.raw.onnx"
            _export_onnx(module, args, spec, raw, config.opset)
            meta["onnx"] = {"opset": config.opset, "fused": _optimize(raw, tmp / FILES["fp32"], st)}
            raw.unlink()
            meta["files"]["fp32"] = FILES["fp32"]
            if "onnx-int8" in config.formats:
                _quantize(tmp / FILES["fp32"], tmp / FILES["int8"])
                meta["files"]["int8"] = FILES["int8"]
            write_json(tmp / EXPORT_FILE, meta)  # the encoder reads it for the checks below
            for variant in meta["files"]:
                vectors = OnnxEncoder(tmp, variant).encode(sample, batch_size=config.batch_size)
                meta["parity"][variant] = _cosines(vectors, reference)
            if "onnx" not in config.formats:  # fp32 was only the step towards int8
                (tmp / FILES["fp32"]).unlink()
                del meta["files"]["fp32"]
        if "torch-export" in config.formats:
            program = _torch_program(module, args, spec, tmp / "model.pt2")
            vectors = _run_torch(program, st, spec, sample, config.batch_size)
            meta["files"]["torch-export"] = "model.pt2"
            meta["parity"]["torch-export"] = _cosines(vectors, reference)
        if "torchscript" in config.formats:
            try:
                scripted = _torchscript(module, args, tmp / "model.torchscript.pt")
                vectors = _run_torch(scripted, st, spec, sample, config.batch_size)
                meta["files"]["torchscript"] = "model.torchscript.pt"
                meta["parity"]["torchscript"] = _cosines(vectors, reference)
            except Exception as exc:  # best effort: torch deprecates TorchScript
                logger.warning("TorchScript export failed (best effort, skipped): %s", exc)
                meta["parity"]["torchscript"] = {"error": str(exc)[:300]}
        for variant in ("fp32", "torch-export", "torchscript"):
            check = meta["parity"].get(variant, {})
            if "min_cosine" in check and check["min_cosine"] < config.min_cosine:
                raise ParityError(
                    f"{variant} export drifts from PyTorch: min cosine {check['min_cosine']:.6f} "
                    f"< {config.min_cosine} on {len(sample)} texts; nothing was written"
                )
        _check_int8(meta, config, tmp, st, ref, dataset)
        meta["sizes"] = {k: (tmp / f).stat().st_size for k, f in meta["files"].items()}
        meta["sha256"] = {k: sha256_file(tmp / f) for k, f in meta["files"].items()}
        write_json(tmp / EXPORT_FILE, meta)
        with replacing(out, config.overwrite):
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ExportResult.from_meta(out, meta)


def _check_int8(
    meta: dict[str, Any],
    config: ExportConfig,
    tmp: Path,
    st: Any,
    ref: Any,
    dataset: Dataset | None,
) -> None:
    """int8 parity on retrieval: nDCG@10 within ``max_ndcg_drop`` of PyTorch, or 'skipped'."""
    if "int8" not in meta["files"]:
        return
    if dataset is None:
        meta["parity"]["int8"]["eval"] = "skipped (--no-eval): int8 retrieval quality unchecked"
        meta["parity"]["int8"]["ok"] = None
        return
    prompts = dict(meta["encoder"]["prompts"])
    encoders = {"pytorch": st, **{v: OnnxEncoder(tmp, v) for v in meta["files"] if v in FILES}}
    result = _retrieval(encoders, ref, st, config, dataset, prompts)
    drop = result["ndcg@10"]["pytorch"] - result["ndcg@10"]["int8"]
    meta["parity"]["eval"] = result
    meta["parity"]["int8"]["ndcg_drop"] = round(drop, 5)
    meta["parity"]["int8"]["ok"] = drop <= config.max_ndcg_drop
    if drop > config.max_ndcg_drop:
        logger.warning(
            "int8 loses %.4f nDCG@10 against PyTorch on %s (allowed %.4f): marked not ok",
            drop,
            result["data"],
            config.max_ndcg_drop,
        )
