"""Export benchmark: parity and speed of PyTorch, ONNX fp32 and ONNX int8 on finance10k.

# export the model, checking int8 on finance10k/test (parity numbers land in export.json)
.venv/bin/python bench/export_bench.py export MODEL bench/out/export
# documents/s of one backend over the first N finance10k/test passages (same batch size,
# one warm-up batch first); run each backend as its own process
.venv/bin/python bench/export_bench.py encode --backend int8 bench/out/export
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

DATA = "../shared/data/finance10k"


def _passages(folder: str, n: int) -> list[str]:
    from tokenizers import Tokenizer

    from embedtune.corpus.load import load_beir

    # split by the export's own tokenizer, so this runs without torch for the ONNX backends
    docs = list(load_beir(DATA, "test").corpus.values())
    tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
    tokenizer.no_truncation()
    texts = []
    for doc in docs:
        ids = tokenizer.encode(doc.full_text, add_special_tokens=False).ids
        texts += [tokenizer.decode(ids[i : i + 96]) for i in range(0, max(1, len(ids)), 48)]
        if len(texts) >= n:
            break
    return texts[:n]


def encode(backend: str, folder: str, n: int, batch: int) -> None:
    texts = _passages(folder, n)
    if backend == "torch":
        from embedtune.models import load_model, resolve_model

        meta = json.loads((Path(folder) / "bench.json").read_text())
        model = load_model(resolve_model(meta["source_path"]), device="cpu")
    else:
        from embedtune.retrieval.onnx import OnnxEncoder

        model = OnnxEncoder(folder, backend)
    model.encode(texts[:batch], batch_size=batch)  # warm-up
    start = time.perf_counter()
    model.encode(texts, batch_size=batch)
    seconds = time.perf_counter() - start
    print(json.dumps({"backend": backend, "texts": len(texts), "docs_per_s": len(texts) / seconds}))


def export(model: str, folder: str) -> None:
    from embedtune.export import ExportConfig, export_model
    from embedtune.retrieval.onnx import EXPORT_FILE

    result = export_model(ExportConfig(model=model, output=folder, eval_data=DATA))
    meta = json.loads((Path(result.path) / EXPORT_FILE).read_text())
    meta["source_path"] = str(Path(model).resolve()) if Path(model).exists() else model
    (Path(folder) / "bench.json").write_text(json.dumps(meta, indent=2))
    print(json.dumps({"parity": meta["parity"], "sizes": meta["sizes"]}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export")
    e.add_argument("model")
    e.add_argument("folder")
    c = sub.add_parser("encode")
    c.add_argument("--backend", choices=["torch", "fp32", "int8"], required=True)
    c.add_argument("folder")
    c.add_argument("--n", type=int, default=1024)
    c.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    if args.command == "export":
        export(args.model, args.folder)
    else:
        encode(args.backend, args.folder, args.n, args.batch)


if __name__ == "__main__":
    main()
