"""embedtune: adapt a general text-embedding model to one domain, and prove it on held-out queries.

``import embedtune`` is light: torch and the model stack load only in the stages that need them.
"""

from __future__ import annotations

from embedtune.corpus import CorpusConfig, Dataset, Document, PassageConfig, load_beir, load_dataset
from embedtune.errors import ConfigError, DataError, EmbedtuneError
from embedtune.evaluate import EvalConfig

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CorpusConfig",
    "DataError",
    "Dataset",
    "Document",
    "EmbedtuneError",
    "EvalConfig",
    "PassageConfig",
    "__version__",
    "load_beir",
    "load_dataset",
]
