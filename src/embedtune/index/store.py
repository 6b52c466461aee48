"""The ``VectorStore`` protocol and its two backends: LanceDB (embedded) and Qdrant.

A *table* is one immutable build; an *alias* names the build searches use. A rebuild writes a
new table beside the old one and then moves the alias in one step (a Qdrant alias operation,
or LanceDB's pointer file replaced by rename), so search never sees a half-built index. Each
table carries its identity (model version, encoder variant, pooling, prompts, passages) and,
beside it, its build record: the table the alias pointed at when it was built, so the chain of
tables an alias was switched to can be followed back (retention keeps the last few, and a table
outside the chain is an interrupted build's). Tables built before that record existed have none.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from embedtune.io import write_json


class VectorStore(Protocol):
    def create(
        self, table: str, dim: int, identity: dict[str, Any], *, previous: str | None = None
    ) -> None: ...
    def add(self, table: str, vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None: ...
    def finish(self, table: str) -> dict[str, Any]: ...
    def switch(self, alias: str, table: str) -> None: ...
    def current(self, alias: str) -> tuple[str, dict[str, Any]] | None: ...
    def search(self, table: str, vector: np.ndarray, k: int) -> list[dict[str, Any]]: ...
    def count(self, table: str) -> int: ...
    def tables(self) -> list[str]: ...
    def drop(self, table: str) -> None: ...
    def target(self, alias: str) -> str | None: ...
    def build_record(self, table: str) -> dict[str, Any] | None: ...


def _build_meta(previous: str | None) -> str:
    return json.dumps({"previous": previous}, sort_keys=True)


class LanceStore:
    """LanceDB in a folder: no server. IVF-PQ once a table is large enough, refined with the
    full vectors so the ANN top-k matches exact search."""

    def __init__(self, path: str | Path, *, ann_min_rows: int, nprobes: int, refine: int):
        import lancedb

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.db = lancedb.connect(str(self.path))
        self.ann_min_rows, self.nprobes, self.refine = ann_min_rows, nprobes, refine

    def create(
        self, table: str, dim: int, identity: dict[str, Any], *, previous: str | None = None
    ) -> None:
        import pyarrow as pa

        schema = pa.schema(
            [
                pa.field("vector", pa.list_(pa.float32(), dim)),
                pa.field("doc_id", pa.string()),
                pa.field("passage", pa.int32()),
                pa.field("text_sha256", pa.string()),
            ],
            metadata={
                "identity": json.dumps(identity, sort_keys=True),
                "build": _build_meta(previous),
            },
        )
        self.db.create_table(table, schema=schema, mode="create")

    def add(self, table: str, vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        dim = vectors.shape[1]
        flat = pa.array(vectors.astype(np.float32).ravel())
        batch = pa.table(
            {
                "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
                "doc_id": [p["doc_id"] for p in payloads],
                "passage": pa.array([p["passage"] for p in payloads], pa.int32()),
                "text_sha256": [p["text_sha256"] for p in payloads],
            }
        )
        self.db.open_table(table).add(batch)

    def finish(self, table: str) -> dict[str, Any]:
        from lancedb.index import IvfPq

        handle = self.db.open_table(table)
        rows = handle.count_rows()
        if rows < self.ann_min_rows:
            return {"index": "flat (exact)", "rows": rows}
        dim = handle.schema.field("vector").type.list_size
        partitions = max(1, int(np.sqrt(rows)))
        sub_vectors = next(s for s in (dim // 8, dim // 4, dim // 2, 1) if s and dim % s == 0)
        handle.create_index(
            "vector",
            config=IvfPq(
                distance_type="cosine", num_partitions=partitions, num_sub_vectors=sub_vectors
            ),
        )
        return {
            "index": "IVF-PQ",
            "rows": rows,
            "partitions": partitions,
            "sub_vectors": sub_vectors,
        }

    def _pointer(self, alias: str) -> Path:
        return self.path / f"{alias}.current.json"

    def switch(self, alias: str, table: str) -> None:
        write_json(self._pointer(alias), {"table": table})  # temp file + rename: atomic

    def current(self, alias: str) -> tuple[str, dict[str, Any]] | None:
        table = self.target(alias)
        if table is None:
            return None
        meta = self.db.open_table(table).schema.metadata or {}
        return table, json.loads(meta[b"identity"])

    def search(self, table: str, vector: np.ndarray, k: int) -> list[dict[str, Any]]:
        builder: Any = self.db.open_table(table).search(vector.astype(np.float32))
        query = (
            builder.distance_type("cosine")
            .nprobes(self.nprobes)
            .refine_factor(self.refine)
            .limit(k)
        )
        return [
            {"doc_id": r["doc_id"], "passage": r["passage"], "score": 1.0 - r["_distance"]}
            for r in query.to_list()
        ]

    def count(self, table: str) -> int:
        return int(self.db.open_table(table).count_rows())

    def tables(self) -> list[str]:
        names: list[str] = []
        token: str | None = None
        while True:  # list_tables pages its answer
            page = self.db.list_tables(page_token=token)
            names.extend(page.tables)
            token = page.page_token
            if not token or not page.tables:
                return names

    def drop(self, table: str) -> None:
        self.db.drop_table(table)

    def target(self, alias: str) -> str | None:
        pointer = self._pointer(alias)
        if not pointer.is_file():
            return None
        return str(json.loads(pointer.read_text(encoding="utf-8"))["table"])

    def build_record(self, table: str) -> dict[str, Any] | None:
        meta = self.db.open_table(table).schema.metadata or {}
        return json.loads(meta[b"build"]) if b"build" in meta else None


class QdrantStore:
    """Qdrant: a server or cluster with ``url``, else qdrant-client's local mode in a folder
    (the same client code; local mode is meant for small collections)."""

    def __init__(self, path: str | Path, url: str | None = None):
        from qdrant_client import QdrantClient

        self.client = QdrantClient(url=url) if url else QdrantClient(path=str(path))

    def create(
        self, table: str, dim: int, identity: dict[str, Any], *, previous: str | None = None
    ) -> None:
        from qdrant_client import models

        self.client.create_collection(
            table,
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            metadata={
                "identity": json.dumps(identity, sort_keys=True),
                "build": _build_meta(previous),
            },
        )

    def add(self, table: str, vectors: np.ndarray, payloads: list[dict[str, Any]]) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(
                # a stable id per (document, passage): re-adding the same passage overwrites it
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{p['doc_id']}#{p['passage']}")),
                vector=v.tolist(),
                payload=p,
            )
            for v, p in zip(vectors, payloads, strict=True)
        ]
        self.client.upsert(table, points=points, wait=True)

    def finish(self, table: str) -> dict[str, Any]:
        return {"index": "HNSW (Qdrant)", "rows": self.count(table)}

    def switch(self, alias: str, table: str) -> None:
        from qdrant_client import models

        operations: list[Any] = []
        if any(a.alias_name == alias for a in self.client.get_aliases().aliases):
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=table, alias_name=alias)
            )
        )
        self.client.update_collection_aliases(change_aliases_operations=operations)

    def current(self, alias: str) -> tuple[str, dict[str, Any]] | None:
        for a in self.client.get_aliases().aliases:
            if a.alias_name == alias:
                meta = self.client.get_collection(a.collection_name).config.metadata or {}
                return a.collection_name, json.loads(meta["identity"])
        return None

    def search(self, table: str, vector: np.ndarray, k: int) -> list[dict[str, Any]]:
        found = self.client.query_points(table, query=vector.tolist(), limit=k, with_payload=True)
        return [
            {"doc_id": p.payload["doc_id"], "passage": p.payload["passage"], "score": p.score}
            for p in found.points
            if p.payload
        ]

    def count(self, table: str) -> int:
        return int(self.client.count(table, exact=True).count)

    def tables(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections]

    def drop(self, table: str) -> None:
        self.client.delete_collection(table)

    def target(self, alias: str) -> str | None:
        for a in self.client.get_aliases().aliases:
            if a.alias_name == alias:
                return str(a.collection_name)
        return None

    def build_record(self, table: str) -> dict[str, Any] | None:
        meta = self.client.get_collection(table).config.metadata or {}
        return json.loads(meta["build"]) if "build" in meta else None
