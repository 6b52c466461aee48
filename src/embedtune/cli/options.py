"""Options that several commands share, defined once so they read the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RegistryOption = Annotated[
    Path,
    typer.Option(
        "--registry",
        envvar="EMBEDTUNE_REGISTRY",
        help="registry folder (default ./registry, or $EMBEDTUNE_REGISTRY)",
    ),
]
OverwriteOption = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="replace an existing output (the old one is deleted only once the new one is done)",
    ),
]


# pairs and train: mine with the ONNX export of the base model
MiningEncoderOption = Annotated[
    str | None,
    typer.Option(
        help="an `embedtune export` folder of the base model: mine with its int8 ONNX "
        "model (faster on CPU; its parity is recorded with the pairs)"
    ),
]
