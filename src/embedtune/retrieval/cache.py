"""Where embedtune caches what it computes: document embeddings, LLM questions."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> str:
    """``$EMBEDTUNE_CACHE`` or ``~/.cache/embedtune``."""
    return os.environ.get("EMBEDTUNE_CACHE", str(Path.home() / ".cache" / "embedtune"))
