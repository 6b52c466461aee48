"""Batch embedding on Ray Data, for corpora too large for one process (the ``ray`` extra).

Each Ray worker loads the model once (a class passed to ``map_batches``) and embeds batches
of passages; rows come back in their original order, so the vectors are the same as the
in-process path's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedtune.errors import require


class _Embedder:
    """One per Ray worker: loading the model is the expensive part, done once."""

    def __init__(self, model_path: str, batch_size: int, prompt: str | None) -> None:
        from embedtune.models import load_model, resolve_model

        self.model = load_model(resolve_model(model_path), device="cpu")
        self.batch_size, self.prompt = batch_size, prompt

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.model.encode(
            [str(t) for t in batch["text"]],
            batch_size=self.batch_size,
            prompt=self.prompt,
            show_progress_bar=False,
        )
        return {"row": batch["row"], "vector": np.asarray(vectors, dtype=np.float32)}


def embed_with_ray(
    texts: list[str],
    model_path: str,
    *,
    batch_size: int = 64,
    prompt: str | None = None,
    workers: int = 1,
    address: str | None = None,
) -> np.ndarray:
    """Embed ``texts`` with the model at ``model_path`` on Ray (local, or the cluster at
    ``address``); returns the vectors in the order of ``texts``."""
    require("ray", "ray")
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    dataset: Any = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
    embedded = dataset.map_batches(
        _Embedder,
        fn_constructor_kwargs={
            "model_path": model_path,
            "batch_size": batch_size,
            "prompt": prompt,
        },
        batch_size=batch_size * 4,
        batch_format="numpy",
        concurrency=workers,
    )
    rows = embedded.take_all()
    order = np.argsort([r["row"] for r in rows])
    return np.stack([rows[i]["vector"] for i in order]).astype(np.float32)
