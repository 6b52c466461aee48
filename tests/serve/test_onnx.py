"""ONNX backends: the version's registered export, served without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from openai import OpenAI

from embedtune.registry import Registry
from embedtune.retrieval.encoder import embed
from embedtune.retrieval.onnx import OnnxEncoder
from tests.serve.conftest import TEXTS, serve_thread
from tests.serve.test_embeddings import offline


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_onnx_backend_serves_the_export(onnx_registry: Path, variant: str) -> None:
    record = Registry(onnx_registry).show("general")
    with serve_thread(
        registry=onnx_registry, models=["general"], backend=f"onnx-{variant}", reload_interval_s=0
    ) as running:
        openai = OpenAI(base_url=f"{running.url}/v1", api_key="none", max_retries=0)
        answer = openai.embeddings.create(model="general", input=TEXTS)
        got = np.array([d.embedding for d in answer.data], dtype=np.float32)
        info = openai.models.retrieve("general").model_extra
    exported = embed(OnnxEncoder(record.exports[0].path, variant), TEXTS)  # type: ignore[arg-type]
    np.testing.assert_allclose(got, exported, atol=1e-5)
    assert info is not None and info["backend"] == f"onnx-{variant}"
    assert info["parity"] == record.exports[0].parity[variant]
    if variant == "fp32":  # within the parity the export recorded against PyTorch
        cosines = (got * offline(onnx_registry, "general", TEXTS)).sum(axis=1)
        assert cosines.min() >= record.exports[0].parity["fp32"]["min_cosine"] - 1e-5


def test_onnx_serving_never_imports_torch(onnx_registry: Path) -> None:
    """serve + onnx extras only: the whole path, app to answer, runs without torch."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from starlette.testclient import TestClient
        from embedtune.serve import ServeConfig, create_app

        config = ServeConfig(
            registry={str(onnx_registry)!r}, models=["general"], backend="onnx-int8"
        )
        app = create_app(config, preload=True)
        with TestClient(app) as client:
            answer = client.post(
                "/v1/embeddings", json={{"model": "general", "input": ["a b", "c"]}}
            )
        heavy = sorted(
            m for m in sys.modules
            if m.split(".")[0] in ("torch", "transformers", "sentence_transformers")
        )
        print(json.dumps({{"status": answer.status_code, "heavy": heavy}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "heavy": []}


def test_onnx_backend_without_an_export_is_refused_before_serving(serve_registry: Path) -> None:
    from embedtune.errors import ConfigError
    from embedtune.serve import ServeConfig, create_app

    with pytest.raises(ConfigError, match="no int8 ONNX export"):
        create_app(ServeConfig(registry=serve_registry, backend="onnx-int8"), preload=True)
