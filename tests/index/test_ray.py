"""Ray Data batch embedding gives the in-process vectors (only with the ray extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")


@pytest.mark.ray
def test_ray_embedding_matches_the_in_process_path(train_model_dir: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from embedtune.index.ray_embed import embed_with_ray

    texts = [f"topic{i} number {i} alpha beta" * (1 + i % 3) for i in range(50)]
    expected = SentenceTransformer(str(train_model_dir), device="cpu").encode(texts)
    vectors = embed_with_ray(texts, str(train_model_dir), batch_size=8, workers=2)
    assert vectors.shape == expected.shape
    assert np.abs(vectors - expected).max() < 1e-5
