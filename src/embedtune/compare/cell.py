"""One cell of a comparison, in its own process: ``python -m embedtune.compare.cell DIR``.

A process per cell makes its wall time and peak memory its own (nothing cached by an earlier
cell, no memory an earlier cell held). It reads ``DIR/spec.json``, trains into ``DIR/model``
(on pairs shared with the comparison's other cells; a grid approach trains once per value and
keeps the one dev chooses), evaluates on the test split into ``DIR/eval`` and writes
``DIR/cell.json`` last (atomically): a folder without it is unfinished. Run again on such a
folder (the runner does so when the settings are unchanged), it resumes: a model already
trained is kept, a training continues from its last complete checkpoint, and the test
evaluation is done again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from embedtune.compare.config import ATTEMPTS_FILE, ERROR_FILE, RESULT_FILE, SPEC_FILE, CellSpec
from embedtune.compare.matrix import CellResult, GridPoint, cell_result
from embedtune.errors import EmbedtuneError, PairsMismatchError
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


def _shared_pairs(spec: CellSpec, folder: Path, model: Path) -> tuple[Path, Path]:
    """The comparison's store for this cell's pairs, and where training reads them.

    Cells with the same pairs recipe train on the same pairs (the issue's "same pairs"), built
    once: the first cell to need them builds and stores them (``<comparison>/pairs/<key>/``);
    the next copies them in, and the pairs stage finds them already built (it checks their
    fingerprint: data, settings, base model)."""
    from embedtune.run.config import stage_configs

    data = spec.data
    pairs_config, train_config = stage_configs(
        spec.recipe,
        output=model,
        data=data.train,
        split=data.train_split,
        dev_split=_dev_split(spec),
        skip_bad=data.skip_bad,
    )
    exclude: dict[str, Any] = {"output": True, "overwrite": True}
    if pairs_config.pairs.mining_encoder is None:  # keys made before the option still match
        exclude["pairs"] = {"mining_encoder": True, "mining_variant": True}
    key = pairs_config.model_dump_json(exclude=exclude)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return folder.parent.parent / "pairs" / digest, Path(train_config.pairs_dir or "")


def _dev_split(spec: CellSpec) -> str | None:
    # weak supervision uses no labels, the dev split's neither: it draws its own pseudo-dev
    # split from the corpus (the labeled cells of the same comparison use data.dev_split)
    return None if spec.recipe.get("supervision") == "weak" else spec.data.dev_split


def _copy_files(source: Path, target: Path) -> None:
    """The files (not folders: checkpoints stay) of ``source`` into a new ``target``, whole
    or not at all; a ``target`` another process made meanwhile is kept."""
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for file in source.iterdir():
        if file.is_file():
            shutil.copy2(file, partial / file.name)
    try:
        partial.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(partial, ignore_errors=True)  # the same pairs, stored by another cell


def _trained(model: Path) -> Any:
    """The result of a training an earlier attempt finished (None: there is none)."""
    from embedtune.model_folder import read_settings
    from embedtune.train.train import TrainResult

    settings = read_settings(model) if model.is_dir() else None
    if settings is None:
        if model.exists():  # not a model this cell's training wrote (it writes atomically)
            shutil.rmtree(model)
        return None
    logger.info("%s: trained by an earlier attempt, kept", model)
    return TrainResult(model, settings)


def _train(spec: CellSpec, folder: Path, recipe: dict[str, Any], model: Path) -> Any:
    """Pairs (shared with the comparison's other cells) and training into ``model``; an
    earlier attempt's finished model is kept, and its checkpoints are resumed from."""
    from embedtune.run.pipeline import fine_tune
    from embedtune.train.config import has_checkpoints

    done = _trained(model)
    if done is not None:
        return done
    resume = has_checkpoints(model)

    def train() -> Any:
        return fine_tune(
            model,
            recipe,
            data=spec.data.train,
            split=spec.data.train_split,
            dev_split=_dev_split(spec),
            skip_bad=spec.data.skip_bad,
            resume=resume,
        )

    store, pairs_dir = _shared_pairs(spec.model_copy(update={"recipe": recipe}), folder, model)
    if not store.is_dir():
        trained = train()
        if not store.exists():
            _copy_files(pairs_dir, store)
        return trained
    _copy_files(store, pairs_dir)
    try:
        return train()
    except PairsMismatchError:
        # the stored pairs no longer match their inputs (the data or the base model changed
        # in place since): built again, and stored again
        logger.warning("pairs in %s were made from other data or settings: rebuilt", store)
        shutil.rmtree(pairs_dir)
        shutil.rmtree(store)
        trained = train()
        _copy_files(pairs_dir, store)
        return trained


def _grid_value(value: float) -> str:
    return f"{value:g}"


def _choose(tried: list[GridPoint], tolerance: float) -> GridPoint:
    """The largest value whose dev nDCG@10 is within ``tolerance`` of the best one's.

    A grid of defence strengths (EWC's weight) is chosen on dev, but dev is in-domain: it
    sees the cost of a stronger pull towards the base, never its benefit (less forgetting),
    so the best dev score alone would always pick the weakest defence. The strongest one that
    dev cannot tell from the best (within ``tolerance``) is kept instead."""
    best = max(p.dev_ndcg for p in tried)
    return max((p for p in tried if p.dev_ndcg >= best - tolerance), key=lambda p: p.value)


def _train_grid(spec: CellSpec, folder: Path) -> tuple[Any, list[GridPoint], float]:
    """One training per grid value (each in ``grid/<key>=<value>/``), the value chosen on
    dev; its model is moved to ``model/`` (and its work folder beside)."""
    from embedtune.train.config import work_dir

    assert spec.grid is not None
    record = folder / "grid.json"
    if record.is_file():  # chosen by an earlier attempt, killed before cell.json
        kept = _trained(folder / "model")
        if kept is not None:
            shutil.rmtree(folder / "grid", ignore_errors=True)
            saved = json.loads(record.read_text(encoding="utf-8"))
            return kept, [GridPoint.model_validate(p) for p in saved["tried"]], saved["chosen"]
    results, tried = {}, []
    for value in spec.grid.values:
        name = f"{spec.grid.key}={_grid_value(value)}"
        logger.info("cell %s: %s (grid %s)", spec.name, name, spec.grid.values)
        model = folder / "grid" / name / "model"
        recipe = {**spec.recipe, spec.grid.key: value}
        results[value] = _train(spec, folder, recipe, model)
        tried.append(GridPoint(value=value, dev_ndcg=results[value].settings.dev.tuned["ndcg@10"]))
    chosen = _choose(tried, spec.grid.tolerance)
    logger.info("cell %s: %s = %s chosen on dev", spec.name, spec.grid.key, chosen.value)
    write_json(record, {"tried": [p.model_dump() for p in tried], "chosen": chosen.value})
    source = folder / "grid" / f"{spec.grid.key}={_grid_value(chosen.value)}" / "model"
    source.rename(folder / "model")
    work_dir(source).rename(work_dir(folder / "model"))
    # the other values' models and checkpoints (their dev scores are in cell.json)
    shutil.rmtree(folder / "grid")
    trained = results[chosen.value]
    return trained, tried, chosen.value


def _earlier_attempts(folder: Path) -> list[dict[str, float]]:
    """The start and end of each earlier (killed or failed) attempt at this cell, which the
    runner records (``attempts.json``; the last entry is this attempt)."""
    record = folder / ATTEMPTS_FILE
    if not record.is_file():  # a cell run by hand
        return []
    return [a for a in json.loads(record.read_text(encoding="utf-8")) if "ended" in a]


def run_cell(folder: Path) -> CellResult:
    """Train and evaluate the cell described by ``folder/spec.json``; write ``cell.json``."""
    from embedtune.evaluate.evaluate import evaluate_models

    started = time.perf_counter()
    spec = CellSpec.model_validate_json((folder / SPEC_FILE).read_text(encoding="utf-8"))
    grid: list[GridPoint] = []
    chosen = None
    if spec.grid is None:
        trained = _train(spec, folder, spec.recipe, folder / "model")
    else:
        trained, grid, chosen = _train_grid(spec, folder)
    settings = _eval_config(spec, folder, str(spec.recipe.get("base_model", "base")))
    shutil.rmtree(folder / "eval", ignore_errors=True)  # an earlier attempt's, unfinished
    report = evaluate_models(settings, folder / "eval").report
    earlier = _earlier_attempts(folder)
    result = cell_result(
        spec,
        report,
        trained.settings,
        wall_seconds=sum(a["ended"] - a["started"] for a in earlier)
        + time.perf_counter()
        - started,
        # Linux reports kilobytes: the peak of this process (this attempt at the cell) alone
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        size_bytes=_size_bytes(folder / "model"),
        attempts=len(earlier) + 1,
    )
    if spec.grid is not None:
        result = result.model_copy(
            update={"grid": grid, "grid_key": spec.grid.key, "grid_choice": chosen}
        )
    write_json(folder / RESULT_FILE, result.model_dump(mode="json"))
    return result


def _setup_logging(verbosity: str) -> None:
    from embedtune.console import configure_output, log_handler

    logging.basicConfig(format="%(message)s", handlers=[log_handler()])
    configure_output("quiet" if verbosity == "quiet" else verbosity)  # type: ignore[arg-type]


def _die_with_runner(runner_pid: int) -> None:
    """End this process when the runner that started it dies (Linux): after a kill -9 of the
    runner, the rerun resumes this cell, and an orphan still writing into the cell's folder
    would corrupt the new attempt."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != runner_pid:  # the runner was gone before the line above took effect
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    """The cell process: 0 when ``cell.json`` was written; 1 with the reason in ``error.txt``.

    Arguments: the cell's folder, then (from the runner) the runner's process id."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        _die_with_runner(int(args[1]))
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
