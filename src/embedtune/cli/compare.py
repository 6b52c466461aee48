"""``embedtune compare``: several adaptation approaches on one dataset, one budget, one
matrix."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

logger = logging.getLogger(__name__)

__all__ = ["compare_command"]


def compare_command(
    config_file: Annotated[
        Path, typer.Argument(help="compare YAML: output, data, approaches, learning_curve")
    ],
    only: Annotated[
        str | None,
        typer.Option(help="comma list of cells to run, e.g. full,lora@0.25 (others: skipped)"),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="run again the finished cells made with other settings (each replaced only "
            "when its new run starts; the others are kept)",
        ),
    ] = False,
    verbose: bool = False,
) -> None:
    """Train and evaluate each approach (and learning-curve fraction) in its own process,
    then write matrix.json, matrix.md and report.html; rerun to resume where it stopped."""
    from embedtune.cli.main import _output, _run, _setup_logging, _split_list, console

    _setup_logging(verbose)
    verbosity = (
        "verbose" if verbose or _output["verbose"] else "quiet" if _output["quiet"] else "normal"
    )

    def build() -> Any:
        from embedtune.compare import compare, load_compare_config
        from embedtune.compare.run import raise_failures

        result = compare(
            load_compare_config(config_file),
            only=_split_list(only),
            overwrite=overwrite,
            verbosity=verbosity,
        )
        console.print(f"matrix: {result.output / 'matrix.md'}")
        if result.reported:
            console.print(f"report: {result.output / 'report.html'}")
        for line in result.matrix.verdicts.values():
            console.print(line)
        raise_failures(result)
        return result

    _run(build)
