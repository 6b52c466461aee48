"""Fixtures of the serve tests: a registry with two LoRA adapters of one tiny base, a full
fine-tune with an ONNX export, and a real uvicorn on 127.0.0.1 in a thread."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from embedtune.model_folder import ModelSettings, write_settings
from embedtune.models import folder_sha256
from embedtune.registry import Registry
from embedtune.testing import build_tiny_model, settings_record

TEXTS = [
    "Total revenue grew because ride volume increased.",
    "Insurance reserves may be insufficient for claims.",
    "The company leases office space in San Francisco.",
    "Drivers are classified as independent contractors.",
    "why did revenue grow",
    "query: passage:",
]
API_KEY = "test-key-0123456789"


def settings(base: Path, strategy: str, prompts: dict[str, str] | None = None) -> ModelSettings:
    """A settings record as training writes it (base recorded by path and content hash)."""
    return settings_record(
        str(base),
        folder_sha256(str(base)),
        strategy,
        prompts=prompts or {},
        config={"learning_rate": 1e-4, "save_adapter": strategy == "lora"},
        outcome={
            "better": True,
            "better_than_base": True,
            "better_than_bm25": None,
            "p_vs_base": 0.5,
        },
    )


def make_adapter(base: Path, out: Path, seed: int, prompts: dict[str, str]) -> Path:
    """A LoRA adapter folder as ``save_adapter: true`` writes it, with random (non-zero)
    weights so that each adapter moves the vectors its own way."""
    import torch
    from peft import LoraConfig, TaskType
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(base), device="cpu")
    config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION, r=4, lora_alpha=8, target_modules=["query", "value"]
    )
    model.add_adapter(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    model.prompts = prompts
    model.save(str(out))
    write_settings(out, settings(base, "lora", prompts))
    return out


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-models")
    base = build_tiny_model(root / "base", TEXTS, seed=0)
    full = build_tiny_model(root / "full", TEXTS, seed=3)
    write_settings(full, settings(base, "full"))
    prompts = {"query": "query: ", "document": "passage: "}
    return {
        "base": base,
        "fin": make_adapter(base, root / "fin", 1, prompts),
        "law": make_adapter(base, root / "law", 2, {}),
        "general": full,
    }


@pytest.fixture(scope="session")
def serve_registry(tmp_path_factory: pytest.TempPathFactory, serve_models: dict[str, Path]) -> Path:
    """fin and law: LoRA adapters of one base; general: a full fine-tune of it."""
    root = tmp_path_factory.mktemp("serve-registry")
    registry = Registry(root / "registry")
    for tag in ("fin", "law", "general"):
        version = registry.add(serve_models[tag], name=f"{tag}-v1")
        registry.promote(version.id, tag)
    return registry.root


@pytest.fixture(scope="session")
def onnx_registry(tmp_path_factory: pytest.TempPathFactory, serve_registry: Path) -> Path:
    """The registry above, with an ONNX export (fp32 and int8) of 'general' (~15 s)."""
    from embedtune.export import ExportConfig, export_model

    root = tmp_path_factory.mktemp("onnx-registry")
    registry = Registry(shutil.copytree(serve_registry, root / "registry"))
    export = root / "export"
    export_model(
        ExportConfig(
            model=str(registry.verified_path("general")),
            output=str(export),
            formats=["onnx", "onnx-int8"],
            parity_texts=4,
        )
    )
    registry.add_export(export)
    return registry.root


@pytest.fixture
def registry_copy(serve_registry: Path, tmp_path: Path) -> Path:
    """A registry of one's own (its tags may move)."""
    return Path(shutil.copytree(serve_registry, tmp_path / "registry"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0, process: Any = None) -> None:
    """Poll ``/readyz`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready after {timeout} s")


class ThreadServer:
    """uvicorn serving an app on 127.0.0.1 in a thread of this process."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        wait_ready(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_thread(watches: Any = None, **settings: Any) -> ThreadServer:
    from embedtune.serve import ServeConfig, create_app

    config = ServeConfig.model_validate(settings)
    return ThreadServer(create_app(config, preload=True, watches=watches))


@pytest.fixture(scope="session")
def server(serve_registry: Path) -> Iterator[ThreadServer]:
    """Every tag of the shared registry, API key required, small body limit."""
    with serve_thread(
        registry=serve_registry,
        api_keys=[API_KEY],
        max_body_bytes=64 * 1024,
        max_inputs=2048,
        reload_interval_s=0,
    ) as running:
        yield running
