"""Index stage: passages embedded by a registry version, in LanceDB (embedded) or Qdrant.

`Index` (an `IndexConfig` and a `Registry`) builds (`IndexBuildResult`) and searches
(`SearchHit`); `build_index` and `search_index` are the same as thin functions. LanceDB,
Qdrant and torch load only when an index is opened or built.
"""

from embedtune.index.config import IndexConfig
from embedtune.index.index import (
    Index,
    IndexBuildResult,
    IndexIdentity,
    SearchHit,
    build_index,
    search_index,
)

__all__ = [
    "Index",
    "IndexBuildResult",
    "IndexConfig",
    "IndexIdentity",
    "SearchHit",
    "build_index",
    "search_index",
]
