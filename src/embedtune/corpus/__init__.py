"""Corpus stage: load domain text (BEIR, JSONL/CSV, folders) and split it into passages.

The stage's verb is `ingest` (`IngestConfig` in, `IngestResult` out); torch loads only when
it is given a model to split passages with.
"""

from embedtune.corpus.config import CorpusConfig, Fields, IngestConfig, PassageConfig
from embedtune.corpus.ingest import IngestResult, ingest
from embedtune.corpus.load import load_beir, load_dataset
from embedtune.corpus.types import Dataset, Document, Manifest

__all__ = [
    "CorpusConfig",
    "Dataset",
    "Document",
    "Fields",
    "IngestConfig",
    "IngestResult",
    "Manifest",
    "PassageConfig",
    "ingest",
    "load_beir",
    "load_dataset",
]
