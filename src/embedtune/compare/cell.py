"""One cell of a comparison, in its own process: ``python -m embedtune.compare.cell DIR``.

A process per cell makes its wall time and peak memory its own (nothing cached by an earlier
cell, no memory an earlier cell held). It reads ``DIR/spec.json``, trains into ``DIR/model``,
evaluates on the test split into ``DIR/eval`` and writes ``DIR/cell.json`` last (atomically):
a folder without it is unfinished, and the runner starts it over.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

from embedtune.compare.config import ERROR_FILE, RESULT_FILE, SPEC_FILE, CellSpec
from embedtune.compare.matrix import CellResult, cell_result
from embedtune.errors import EmbedtuneError
from embedtune.io import write_json, write_text

logger = logging.getLogger(__name__)

__all__ = ["main", "run_cell"]


def _eval_config(spec: CellSpec, folder: Path, base_model: str) -> Any:
    """The evaluation ``embedtune run`` does: the tuned model beside the base model and BM25."""
    from embedtune.run.config import RunConfig
    from embedtune.run.pipeline import eval_config

    run = RunConfig(output=str(folder), data=spec.data, train=spec.recipe, eval=spec.eval)
    return eval_config(run, base_model, folder, spec.verbosity != "quiet", spec.data.test)


def _size_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def run_cell(folder: Path) -> CellResult:
    """Train and evaluate the cell described by ``folder/spec.json``; write ``cell.json``."""
    from embedtune.evaluate.evaluate import evaluate_models
    from embedtune.run.pipeline import fine_tune

    started = time.perf_counter()
    spec = CellSpec.model_validate_json((folder / SPEC_FILE).read_text(encoding="utf-8"))
    data = spec.data
    # weak supervision draws its own pseudo-dev split from the corpus
    dev_split = None if spec.recipe.get("supervision") == "weak" else data.dev_split
    trained = fine_tune(
        folder / "model",
        spec.recipe,
        data=data.train,
        split=data.train_split,
        dev_split=dev_split,
        skip_bad=data.skip_bad,
    )
    settings = _eval_config(spec, folder, str(spec.recipe.get("base_model", "base")))
    report = evaluate_models(settings, folder / "eval").report
    result = cell_result(
        spec,
        report,
        trained.settings,
        wall_seconds=time.perf_counter() - started,
        # Linux reports kilobytes: the peak of this process (the cell) alone
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        size_bytes=_size_bytes(folder / "model"),
    )
    write_json(folder / RESULT_FILE, result.model_dump(mode="json"))
    return result


def _setup_logging(verbosity: str) -> None:
    from embedtune.console import configure_output, log_handler

    logging.basicConfig(format="%(message)s", handlers=[log_handler()])
    configure_output("quiet" if verbosity == "quiet" else verbosity)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    """The cell process: 0 when ``cell.json`` was written; 1 with the reason in ``error.txt``."""
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0])
    spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
    _setup_logging(spec.get("verbosity", "normal"))
    try:
        run_cell(folder)
    except EmbedtuneError as exc:
        # the runner reads the reason: one line, like the CLI's
        write_text(folder / ERROR_FILE, str(exc) + "\n")
        logger.error("cell %s: %s", folder.name, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
