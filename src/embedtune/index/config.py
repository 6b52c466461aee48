"""Settings of the vector index."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_K = 10_000


class IndexConfig(BaseModel):
    """Where the vectors live and how they are built and searched.

    Attributes:
        backend: ``lancedb`` (embedded, a folder) or ``qdrant`` (a server, or local mode).
        path: Index folder (LanceDB, or Qdrant's local mode).
        url: Qdrant server or cluster URL (then ``path`` is unused).
        name: Index name searches use (LanceDB pointer file / Qdrant alias).
        encoder: ``torch``, or ``fp32``/``int8`` for the version's ONNX export.
        batch_size: Texts encoded at once.
        chunk: Passages embedded and written at once.
        ray_workers: Embed on Ray Data with this many workers (0: in process).
        ray_address: Ray cluster address (None: a local Ray).
        ann_min_rows: LanceDB builds an IVF-PQ index from this many rows (below: exact).
        nprobes: IVF partitions searched.
        refine_factor: Re-rank ``k`` × this candidates with the full vectors.
        k: Documents a search returns (1 to ``MAX_K``), for callers that take it from the
            config, like ``embedtune search -k``.
        keep: Tables of this index name kept after a successful rebuild, the new one included:
            ``2`` keeps the one replaced too, so a bad rebuild can be rolled back by hand
            (point the LanceDB pointer file / Qdrant alias back at it); ``1`` keeps only the
            new table; ``0`` drops none. The table the name points at is never dropped, and a
            table an interrupted build left behind is removed at the next build of the name
            whatever ``keep`` is.

    Example:
        >>> IndexConfig(path="runs/index", encoder="int8")
        >>> IndexConfig(backend="qdrant", path="unused", url="http://127.0.0.1:6333")
    """

    model_config = ConfigDict(extra="forbid")

    backend: Literal["lancedb", "qdrant"] = "lancedb"
    path: str = Field(description="index folder (LanceDB, or Qdrant's local mode)")
    url: str | None = Field(default=None, description="Qdrant server/cluster URL")
    name: str = Field(default="passages", pattern=r"^[A-Za-z0-9_-]+$")
    encoder: Literal["torch", "fp32", "int8"] = "torch"
    batch_size: int = Field(default=64, ge=1)
    chunk: int = Field(default=4096, ge=1, description="passages embedded and written at once")
    ray_workers: int = Field(
        default=0, ge=0, description="embed on Ray Data with this many workers (0: in process)"
    )
    ray_address: str | None = None
    # LanceDB IVF-PQ: built once a table holds this many vectors (below, search is exact)
    ann_min_rows: int = Field(default=2048, ge=256)
    nprobes: int = Field(default=32, ge=1)
    refine_factor: int = Field(default=10, ge=1, description="re-rank k × this with full vectors")
    # documents a search returns: at least one, and few enough that k × refine_factor
    # candidates stay a small read
    k: int = Field(default=10, ge=1, le=MAX_K, description="documents a search returns")
    keep: int = Field(
        default=2,
        ge=0,
        description="tables of this name kept after a rebuild, the new one included (0: all)",
    )
