"""Corpus stage: load domain text (BEIR, JSONL/CSV, folders) and split it into passages."""

from embedtune.corpus.config import CorpusConfig, Fields, PassageConfig
from embedtune.corpus.load import load_beir, load_dataset
from embedtune.corpus.types import Dataset, Document, Manifest

__all__ = [
    "CorpusConfig",
    "Dataset",
    "Document",
    "Fields",
    "Manifest",
    "PassageConfig",
    "load_beir",
    "load_dataset",
]
