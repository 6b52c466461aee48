"""Index stage: passages embedded by a registry version, in LanceDB (embedded) or Qdrant."""

from embedtune.index.config import IndexConfig

__all__ = ["IndexConfig"]
