"""``embedtune serve``: an OpenAI-compatible embedding server over registry versions."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from embedtune.cli.options import RegistryOption

logger = logging.getLogger(__name__)

__all__ = ["serve_command"]


def serve_command(
    registry: RegistryOption = Path("registry"),
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="a tag or version id to serve (repeat for several; default: every tag)",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="interface to bind (0.0.0.0: every one)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    backend: Annotated[
        str,
        typer.Option(
            help="auto, torch, onnx-int8 or onnx-fp32 (ONNX: the version's registered export)"
        ),
    ] = "auto",
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="file of accepted bearer keys, one per line (also: $EMBEDTUNE_API_KEYS, "
            "comma-separated); without either, no key is asked"
        ),
    ] = None,
    max_inputs: Annotated[int, typer.Option(help="inputs per request")] = 2048,
    long_inputs: Annotated[
        str, typer.Option(help="an input over the model's token limit: truncate or reject")
    ] = "truncate",
    device: Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:N, mps")] = "cpu",
    threads: Annotated[
        int | None, typer.Option(help="intra-op threads (default: the libraries' own)")
    ] = None,
    access_log: Annotated[
        bool, typer.Option(help="log each request's method, path and status (never bodies)")
    ] = False,
    log_embeddings: Annotated[
        Path | None,
        typer.Option(
            help="write query embeddings (float16, no text) in windows per version to this "
            "folder, for `embedtune monitor check`"
        ),
    ] = None,
    log_window: Annotated[
        int, typer.Option(help="queries per logged window and per live window on /metrics")
    ] = 500,
    window_gauges: Annotated[
        bool,
        typer.Option(
            help="export the last --log-window queries' drift statistics on /metrics "
            "(embedtune_window_*) for each version with a monitor profile"
        ),
    ] = True,
    verbose: bool = False,
) -> None:
    """Serve registry versions behind OpenAI's /v1/embeddings (adapters share their base)."""
    from embedtune.cli.main import _run, _setup_logging

    _setup_logging(verbose)

    def start() -> Any:
        from embedtune.serve import ServeConfig, serve
        from embedtune.serve.config import read_api_keys
        from embedtune.serve.models import check_served

        config = ServeConfig.model_validate(
            {
                "registry": registry,
                "models": model or [],
                "host": host,
                "port": port,
                "backend": backend,
                "api_keys": read_api_keys(api_key_file),
                "max_inputs": max_inputs,
                "long_inputs": long_inputs,
                "device": device,
                "threads": threads,
                "access_log": access_log,
                "log_embeddings": log_embeddings,
                "log_window": log_window,
            }
        )
        check_served(config)  # a wrong name fails before anything loads
        watches = None
        if window_gauges:
            from embedtune.monitor.live import profile_watches
            from embedtune.registry import Registry

            watches = profile_watches(Registry(registry), size=log_window)
        serve(config, watches=watches)

    _run(start)
