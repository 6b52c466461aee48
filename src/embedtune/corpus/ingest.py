"""Ingest any input into a normalised corpus folder with a manifest."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from embedtune.corpus.config import CorpusConfig, PassageConfig
from embedtune.corpus.load import load_dataset
from embedtune.corpus.types import Document, Qrels
from embedtune.io import write_json, write_jsonl, write_text


def write_beir(
    out: Path,
    documents: Iterable[Document],
    queries: dict[str, str],
    qrels: dict[str, Qrels],
) -> None:
    """A BEIR folder: corpus.jsonl, queries.jsonl (when there are queries or splits) and one
    ``qrels/<split>.tsv`` per split; each file written atomically."""
    write_jsonl(
        out / "corpus.jsonl",
        ({"_id": d.id, "title": d.title, "text": d.text} for d in documents),
    )
    if queries or qrels:
        write_jsonl(out / "queries.jsonl", ({"_id": q, "text": t} for q, t in queries.items()))
    for split, judged in qrels.items():
        write_text(
            out / "qrels" / f"{split}.tsv",
            "query-id\tcorpus-id\tscore\n"
            + "".join(f"{q}\t{d}\t{s}\n" for q, docs in judged.items() for d, s in docs.items()),
        )


def ingest(
    config: CorpusConfig,
    output: str | Path,
    *,
    model: str | None = None,
    passages: PassageConfig | None = None,
) -> dict[str, Any]:
    """Write ``corpus.jsonl`` (and queries/qrels when a split was read), ``manifest.json`` and,
    with a model, ``passages.jsonl`` split by that model's tokenizer. Returns the manifest."""
    dataset = load_dataset(config)
    out = Path(output)
    qrels = {dataset.split: dataset.qrels} if dataset.split is not None else {}
    write_beir(out, dataset.corpus.values(), dataset.queries, qrels)
    manifest = {"input": config.model_dump(mode="json"), **dataset.manifest.to_dict()}
    if model is not None:
        from embedtune.corpus.passages import split_passages
        from embedtune.models import load_model, resolve_model

        ref = resolve_model(model)
        st = load_model(ref)
        settings = passages or PassageConfig()
        split = split_passages(list(dataset.corpus.values()), st.tokenizer, settings)
        write_jsonl(out / "passages.jsonl", split.rows())
        manifest["passages"] = {
            "model": ref.name,
            "model_sha256": ref.sha256,
            **settings.model_dump(),
            "count": len(split),
        }
    write_json(out / "manifest.json", manifest)
    return manifest
