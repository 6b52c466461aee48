"""The server's settings: one pydantic model, built by the CLI or in Python."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from embedtune.errors import ConfigError

logger = logging.getLogger(__name__)

Backend = Literal["auto", "torch", "onnx-int8", "onnx-fp32"]
KEYS_ENV = "EMBEDTUNE_API_KEYS"


class ServeConfig(BaseModel):
    """How ``embedtune serve`` runs.

    Attributes:
        registry: The registry folder whose versions are served.
        models: Served names: tags or version ids (empty: every tag of the registry).
        host: Interface to bind (loopback unless told otherwise).
        port: TCP port.
        backend: ``torch``, ``onnx-int8``/``onnx-fp32`` (the version's registered export;
            no torch imported when every served model has one) or ``auto`` (torch when
            sentence-transformers is installed, else the version's ONNX export, int8 first).
        api_keys: Bearer keys accepted (empty: no authentication). Never logged or dumped.
        max_inputs: Inputs per request.
        max_body_bytes: Request body size (larger: 413).
        long_inputs: An input longer than the model reads: ``truncate`` it (as
            sentence-transformers does) or ``reject`` the request (400).
        batch_tokens: Padded tokens per forward pass (inputs x longest input of the batch).
        max_queue: Inputs waiting per worker; over it a request gets 429 with Retry-After.
        batch_wait_ms: The longest a batch waits for as many requests as the previous
            batch had (0: never). A lone client never waits; under concurrency, requests
            still being parsed when a batch ends join the next one instead of trailing it.
        reload_interval_s: How often the registry's tags are checked for moves (0: never).
        device: Torch device (cpu, cuda, ...; None: the best available).
        threads: Torch/onnxruntime intra-op threads (None: the libraries' default).
        access_log: uvicorn's access log (method, path, status; never bodies or keys).
        log_embeddings: Folder for the query embeddings of each served version, in rolling
            windows (float16, no text) that ``embedtune monitor check`` reads; requests with
            ``input_type`` passage/document are documents, not queries, and are not logged.
        log_window: Queries per logged window.
        log_window_seconds: A window is also closed once it is this old.
    """

    model_config = ConfigDict(extra="forbid")

    registry: Path
    models: list[str] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    backend: Backend = "auto"
    api_keys: list[SecretStr] = Field(default_factory=list, exclude=True, repr=False)
    max_inputs: int = Field(default=2048, ge=1)
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    long_inputs: Literal["truncate", "reject"] = "truncate"
    batch_tokens: int = Field(default=16384, ge=1)
    max_queue: int = Field(default=8192, ge=1)
    batch_wait_ms: float = Field(default=5.0, ge=0, le=1000)
    reload_interval_s: float = Field(default=1.0, ge=0)
    device: str | None = "cpu"
    threads: int | None = Field(default=None, ge=1)
    access_log: bool = False
    log_embeddings: Path | None = None
    log_window: int = Field(default=500, ge=1)
    log_window_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("api_keys")
    @classmethod
    def _non_empty(cls, keys: list[SecretStr]) -> list[SecretStr]:
        if any(not k.get_secret_value() for k in keys):
            raise ValueError("an API key is empty")
        return keys


def read_api_keys(file: str | os.PathLike[str] | None = None) -> list[SecretStr]:
    """API keys from ``$EMBEDTUNE_API_KEYS`` (comma-separated) and a file (one per line;
    blank lines and ``#`` comments skipped). Keys come from the environment or a file, never
    from a config that is saved with outputs.

    Raises:
        ConfigError: The file cannot be read.
    """
    keys = [k.strip() for k in os.environ.get(KEYS_ENV, "").split(",") if k.strip()]
    if file is not None:
        path = Path(file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the API key file ({exc})") from None
        keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return [SecretStr(k) for k in dict.fromkeys(keys)]
