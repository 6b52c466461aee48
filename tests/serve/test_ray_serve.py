"""The Ray Serve deployment (marker ``ray``: needs Ray with Serve, out of ``make test``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.serve.conftest import free_port


@pytest.mark.ray
def test_ray_serve_deployment_answers_like_the_server(serve_registry: Path) -> None:
    pytest.importorskip("ray.serve")
    import httpx
    from ray import serve

    from embedtune.serve import ServeConfig
    from embedtune.serve.ray_serve import deployment

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(deployment(ServeConfig(registry=serve_registry, models=["fin"])))
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/embeddings", json={"model": "fin", "input": "a"}
        )
        assert answer.status_code == 200
        assert answer.json()["model"].startswith("fin@")
    finally:
        serve.shutdown()


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_without_ray_the_error_names_the_extra(serve_registry: Path) -> None:
    from embedtune.errors import MissingExtraError
    from embedtune.serve import ServeConfig
    from embedtune.serve.ray_serve import deployment

    with pytest.raises(MissingExtraError, match=r"embedtune\[ray\]"):
        deployment(ServeConfig(registry=serve_registry))
