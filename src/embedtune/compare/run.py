"""``embedtune compare``: every cell of the comparison, each in its own process, then the
matrix.

Resumable: a cell whose folder holds ``cell.json`` is done and skipped. A cell without it (a
process killed midway, or a failed one) made with the same settings resumes: its training
continues from its last complete checkpoint (an mlm cell's pretraining takes hours on a CPU),
a model it finished is kept, and its test evaluation is done again. A cell made with other
settings is started over. A finished cell made with other settings (the config changed) is
refused, so a folder's matrix always describes one set of cells; new approaches may be added
to a config later.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedtune.compare.config import (
    ATTEMPTS_FILE,
    ERROR_FILE,
    RESULT_FILE,
    SPEC_FILE,
    CellSpec,
    CompareConfig,
    check_general_pairs,
    plan_cells,
    problem,
    same_settings,
)
from embedtune.compare.matrix import CellResult, Matrix, build_matrix, render_markdown
from embedtune.errors import ConfigError, EmbedtuneError
from embedtune.io import write_json, write_text
from embedtune.outputs import check_output
from embedtune.run.config import merge_settings, preset

logger = logging.getLogger(__name__)

__all__ = ["CompareResult", "compare", "raise_failures"]


@dataclass
class CompareResult:
    """What :func:`compare` left in its folder.

    Attributes:
        output: The comparison folder (cells/, analysis/, matrix.json, matrix.md,
            report.html).
        matrix: The matrix of every finished cell.
        ran: The cells run by this call (the others were done, or not asked for).
        failed: Cell name → why it failed (its folder is started over next time).
        reported: Whether report.html was written (a figure that could not be drawn is
            warned about; the matrix files are written anyway).
    """

    output: Path
    matrix: Matrix
    ran: list[str]
    failed: dict[str, str]
    reported: bool = True


def _preflight(config: CompareConfig, cells: list[CellSpec], folder: Path) -> None:
    """Every cell's recipe through the pairs, train and eval configs, before any training:
    a misspelt key or a missing probe set fails now, not after the first cell's hour."""
    from embedtune.models import resolve_model
    from embedtune.run.config import RunConfig, stage_configs
    from embedtune.run.pipeline import eval_config
    from embedtune.train.train import preflight

    data = config.data
    probes_checked: list[Any] | None = None
    for cell in cells:
        model = folder / "cells" / cell.name / "model"
        try:
            _, train_config = stage_configs(
                cell.recipe, output=model, data=data.train, split=data.train_split
            )
        except ValueError as exc:  # pydantic's ValidationError: name the cell
            raise ConfigError(f"cell {cell.name}: {problem(exc)}") from None
        # the probe sets are the same for every cell: read (and their warnings shown) once
        checked = train_config.probes == probes_checked
        preflight(train_config.model_copy(update={"probes": []}) if checked else train_config)
        probes_checked = train_config.probes
        resolve_model(train_config.base_model)  # a local folder: nothing is downloaded
        run = RunConfig(output=str(folder), data=data, train=cell.recipe, eval=config.eval)
        eval_config(run, train_config.base_model, model.parent, False, data.test)


def _select(cells: list[CellSpec], only: list[str] | None) -> list[CellSpec]:
    if not only:
        return cells
    names = [c.name for c in cells]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ConfigError(f"--only {','.join(unknown)}: no such cell; cells: {', '.join(names)}")
    return [c for c in cells if c.name in only]


def _stale(cells: list[CellSpec], folder: Path) -> list[str]:
    """The finished cells made with other settings than they would be made with now."""
    return [
        cell.name
        for cell in cells
        if _done(folder, cell) and not _same_settings(cell, folder / "cells" / cell.name)
    ]


def _same_settings(cell: CellSpec, folder: Path) -> bool:
    try:
        old = CellSpec.model_validate_json((folder / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none, or written by another embedtune
        return False
    return same_settings(old, cell)


def _last_write(folder: Path) -> float:
    """When the newest file under ``folder`` was written (0 for none)."""
    return max((f.stat().st_mtime for f in folder.rglob("*") if f.is_file()), default=0.0)


def _prepare(cell: CellSpec, folder: Path) -> None:
    """An unfinished earlier attempt made with these settings is kept for the cell to resume
    (anything else there is deleted), and this attempt's start is recorded.

    An attempt killed midway left no end time: it is taken as its last write in the folder
    (a checkpoint, most often), so the cell's wall time counts the work it resumes from and
    not the work it lost, which the new attempt does again (and counts then)."""
    attempts: list[dict[str, float]] = []
    if folder.exists() and _same_settings(cell, folder):
        record = folder / ATTEMPTS_FILE
        if record.is_file():
            attempts = json.loads(record.read_text(encoding="utf-8"))
        else:  # started by an embedtune without the record: the spec is written first
            attempts = [{"started": (folder / SPEC_FILE).stat().st_mtime}]
        if attempts and "ended" not in attempts[-1]:
            attempts[-1]["ended"] = max(_last_write(folder), attempts[-1]["started"])
        (folder / ERROR_FILE).unlink(missing_ok=True)
        logger.info("cell %s: resuming an unfinished attempt", cell.name)
    elif folder.exists():  # made with other settings
        shutil.rmtree(folder)
    write_text(folder / SPEC_FILE, cell.model_dump_json(indent=2))
    write_json(folder / ATTEMPTS_FILE, [*attempts, {"started": time.time()}])


def _run_cell(cell: CellSpec, folder: Path) -> str | None:
    """Run one cell in a child process; None on success, else why it failed."""
    _prepare(cell, folder)
    done = subprocess.run(
        [sys.executable, "-m", "embedtune.compare.cell", str(folder), str(os.getpid())],
        check=False,
    )
    if done.returncode == 0 and (folder / RESULT_FILE).is_file():
        return None
    error = folder / ERROR_FILE
    if error.is_file():
        return error.read_text(encoding="utf-8").strip()
    return f"its process exited with code {done.returncode} (see the lines above)"


def _finished(
    cells: list[CellSpec], folder: Path, stale: set[str]
) -> tuple[list[CellResult], list[str]]:
    """The finished cells' results, and the names of the others (a stale cell, made with
    other settings and not run again, counts as missing: a matrix holds one set of cells)."""
    results, missing = [], []
    for cell in cells:
        if _done(folder, cell) and cell.name not in stale:
            path = folder / "cells" / cell.name / RESULT_FILE
            results.append(CellResult.model_validate(json.loads(path.read_text("utf-8"))))
        else:
            missing.append(cell.name)
    return results, missing


def _write_matrix(
    config: CompareConfig, cells: list[CellSpec], folder: Path, stale: set[str]
) -> tuple[Matrix, bool]:
    """The matrix (matrix.json, matrix.md) and the report; whether the report was written."""
    from embedtune.compare.report import render_compare_html

    results, missing = _finished(cells, folder, stale)
    matrix = build_matrix(results, missing, config.data.model_dump(mode="json"))
    write_json(folder / "matrix.json", matrix.model_dump(mode="json"))
    write_text(folder / "matrix.md", render_markdown(matrix))
    report = folder / "report.html"
    try:  # a figure that cannot be drawn must not cost the comparison its cells
        page = render_compare_html(matrix, folder)
    except Exception as exc:
        logger.warning("report.html not written: %s: %s", type(exc).__name__, exc)
        report.unlink(missing_ok=True)  # an older report would disagree with the matrix
        return matrix, False
    write_text(report, page)
    return matrix, True


def _analyze(config: CompareConfig, folder: Path, again: bool = False) -> None:
    """The analysis stage on the training corpus, once (the report shows its fragmentation);
    ``again`` when the settings changed (the training data or base model may have)."""
    output = folder / "analysis"
    if (output / "analysis.json").is_file() and not again:
        return
    data = config.data
    model = merge_settings(preset(config.preset), config.train).get("base_model", "base")
    try:
        _analysis(data, model, output)
    except EmbedtuneError as exc:  # the report goes without its fragmentation figure
        logger.warning("analysis of %s skipped: %s", data.train, exc)


def _analysis(data: Any, model: str, output: Path) -> None:
    from embedtune.analyze import AnalyzeConfig, analyze_corpus

    analyze_corpus(
        AnalyzeConfig(
            data=data.train,
            split=data.train_split,
            model=model,
            output=str(output),
            overwrite=True,  # an unfinished earlier attempt
            skip_bad=data.skip_bad,
        )
    )


def compare(
    config: CompareConfig,
    *,
    only: list[str] | None = None,
    overwrite: bool = False,
    verbosity: str = "normal",
) -> CompareResult:
    """Run every cell not yet done (each approach, and each learning-curve fraction), then
    write the approach matrix.

    Args:
        config: The comparison (``embedtune compare`` reads it from YAML).
        only: Run only these cells (by name, e.g. ``lora`` or ``lora@0.25``); the matrix
            still shows every finished cell.
        overwrite: Run again the finished cells made with other settings (refused
            without it); each is replaced only when its new run starts, and cells made with
            the current settings are kept.
        verbosity: The cells' output: quiet, normal or verbose.

    Returns:
        CompareResult: the folder, the matrix, the cells run and the ones that failed.

    Example:
        >>> result = compare(load_compare_config("examples/compare.yaml"))
        >>> result.matrix.verdicts["lora"]
        'lora: 94% of full's gain over base at 2.4% of the weights; ...'
    """
    folder = Path(config.output)
    cells = plan_cells(config, verbosity)
    chosen = _select(cells, only)
    inputs = [config.data.train, config.data.test, *(c.recipe.get("general_pairs") for c in cells)]
    check_output(folder, inputs, overwrite=overwrite, exists_ok=True)
    stale = set(_stale(cells, folder))
    if stale and not overwrite:
        name = sorted(stale)[0]
        raise ConfigError(
            f"cell {name} in {folder} was made with other settings (see "
            f"{folder / 'cells' / name / SPEC_FILE}); use a new output folder, or "
            "--overwrite to run such cells again"
        )
    # only what will run is checked: finished cells need neither inputs nor a preflight
    to_run = [c for c in chosen if c.name in stale or not _done(folder, c)]
    check_general_pairs(to_run)
    _preflight(config, to_run, folder)
    with _locked(folder):  # created only now: a mistake above leaves nothing behind
        _analyze(config, folder, again=bool(stale))
        ran, failed = _run_cells(chosen, folder, {c.name for c in to_run}, stale)
        matrix, reported = _write_matrix(config, cells, folder, stale - set(ran))
    logger.info("matrix: %s", folder / "matrix.md")
    return CompareResult(folder, matrix, ran, failed, reported)


def _done(folder: Path, cell: CellSpec) -> bool:
    return (folder / "cells" / cell.name / RESULT_FILE).is_file()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One ``compare`` at a time on a folder: a second one would delete the cell the first
    is still training (an unfinished cell is started over)."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"{folder} is in use by another embedtune compare; wait for it to end"
            ) from None
        yield  # the lock goes with the file's closing, and with the process


def _run_cells(
    chosen: list[CellSpec], folder: Path, todo: set[str], stale: set[str]
) -> tuple[list[str], dict[str, str]]:
    """Run the cells named in ``todo`` (unfinished, or ``stale``), in ``chosen``'s order."""
    ran: list[str] = []
    failed: dict[str, str] = {}
    spent = 0.0
    for number, cell in enumerate(chosen, start=1):
        where = folder / "cells" / cell.name
        if cell.name not in todo:
            logger.info("cell %s: already done, skipped", cell.name)
            continue
        if cell.name in stale:  # --overwrite: replaced only now, so a Ctrl-C loses nothing
            logger.info("cell %s: made with other settings, run again", cell.name)
        logger.info("cell %s (%d/%d): %s", cell.name, number, len(chosen), cell.description)
        started = time.perf_counter()
        reason = _run_cell(cell, where)
        seconds = time.perf_counter() - started
        spent += seconds
        if reason is None:
            ran.append(cell.name)
            logger.info("cell %s: done in %.0f s", cell.name, seconds)
        else:
            failed[cell.name] = reason
            logger.error("cell %s: FAILED after %.0f s: %s", cell.name, seconds, reason)
        finished = len(ran) + len(failed)
        if finished < len(todo):  # cells differ (grids train more), so only a rough guide
            left = spent / finished * (len(todo) - finished)
            logger.info(
                "%d of %d cells to run are done; about %.1f h left at this run's mean cell time",
                finished,
                len(todo),
                left / 3600,
            )
    return ran, failed


def raise_failures(result: CompareResult) -> None:
    """An error naming the failed cells (the matrix holds the others)."""
    if result.failed:
        reasons = "; ".join(f"{name}: {why}" for name, why in result.failed.items())
        raise EmbedtuneError(
            f"{len(result.failed)} cell(s) failed ({reasons}); rerun to retry them"
        )
