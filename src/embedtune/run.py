"""``embedtune run``: ingest → govern → analyze → pairs → train → evaluate, resumable stage
by stage.

With ``governance.redact``, nothing but the data manifest is written before redaction, and
every later stage reads the redacted copies.

Each finished stage leaves ``stages/<name>.json`` in the run folder; a rerun skips it. The
resolved config is saved as ``config.yaml``; a rerun with a different config is refused so a
run folder always describes one experiment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from embedtune.config import RunConfig, merge_settings
from embedtune.errors import ConfigError
from embedtune.io import write_json, write_text

logger = logging.getLogger(__name__)

STAGES = ("ingest", "govern", "analyze", "pairs", "train", "evaluate")


def _stage(
    folder: Path, name: str, work: Callable[[], dict[str, Any]], *, main_only: bool = False
) -> dict[str, Any]:
    """Run a stage unless its marker exists. Under torchrun, a ``main_only`` stage (one that
    writes files the others read) runs on rank 0 while the other processes wait for it."""
    import json

    from embedtune.train.train import is_main_process

    marker = folder / "stages" / f"{name}.json"
    if main_only and not is_main_process():
        while not marker.is_file():  # torchrun stops this process if rank 0 fails
            time.sleep(1)
    if marker.is_file():
        logger.info("stage %s: already done, skipped", name)
        return dict(json.loads(marker.read_text(encoding="utf-8")))
    logger.info("stage %s: running", name)
    start = time.perf_counter()
    result = work()
    if is_main_process():  # under torchrun only rank 0 records progress
        write_json(marker, {**result, "stage_seconds": round(time.perf_counter() - start, 1)})
    return result


def _train_config(config: RunConfig) -> Any:
    from embedtune.train.config import TrainConfig, preset

    return TrainConfig.model_validate(merge_settings(preset(config.preset), config.train))


def _eval_config(
    config: RunConfig, base_model: str, folder: Path, progress: bool, test_data: str
) -> Any:
    from embedtune.evaluate.config import EvalConfig

    options: dict[str, Any] = {
        "data": test_data,
        "split": config.data.test_split,
        "model": str(folder / "model"),
        "base_model": base_model,
        "ignore_identical_ids": config.eval.ignore_identical_ids,
        "fusion": config.eval.fusion,
        "skip_bad": config.data.skip_bad,
        "show_progress": progress,
    }
    if config.eval.systems:
        options["systems"] = config.eval.systems
    if config.eval.metrics:
        options["metrics"] = config.eval.metrics
    return EvalConfig.model_validate(options)


def run_pipeline(config: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run every stage not yet done; returns the evaluation report."""
    folder = Path(config.output)
    resolved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    saved = folder / "config.yaml"
    if saved.is_file() and saved.read_text(encoding="utf-8") != resolved:
        raise ConfigError(
            f"{folder} was made with another config (see {saved}); use a new "
            "output folder, or restore that config to resume"
        )
    # validate every stage's settings before any work
    train_config = _train_config(config)
    _eval_config(config, train_config.base_model, folder, progress, config.data.test)
    write_text(saved, resolved)
    data = config.data

    def ingest() -> dict[str, Any]:
        from embedtune.corpus.load import load_beir

        train = load_beir(data.train, data.train_split, skip_bad=data.skip_bad)
        test = load_beir(data.test, data.test_split, skip_bad=data.skip_bad)
        return {"train": train.manifest.to_dict(), "test": test.manifest.to_dict()}

    def govern() -> dict[str, Any]:
        from embedtune.governance.run_stage import govern_sources, train_splits

        sources = {
            "train": (data.train, train_splits(data.train, data.train_split, data.dev_split)),
            "test": (data.test, [data.test_split]),
        }
        return govern_sources(
            sources, config.governance, folder, skip_bad=data.skip_bad, progress=progress
        )

    _stage(folder, "ingest", ingest)  # the manifest: the one thing written before redaction
    paths = _stage(folder, "govern", govern, main_only=True)[
        "data"
    ]  # the redacted copies, or the originals

    def analyze() -> dict[str, Any]:
        from embedtune.analyze.analyze import analyze_corpus

        report = analyze_corpus(
            paths["train"],
            data.train_split,
            train_config.base_model,
            folder / "analysis",
            passages=train_config.passages,
            skip_bad=data.skip_bad,
        )
        return {"recommendations": report["recommendations"]}

    def pairs() -> dict[str, Any]:
        from embedtune.train.train import prepare_training_data

        return prepare_training_data(
            folder / "model",
            train_config,
            data=paths["train"],
            split=data.train_split,
            dev_split=data.dev_split,
            skip_bad=data.skip_bad,
        )

    def train() -> dict[str, Any]:
        from embedtune.train.train import train_model, work_dir

        model = folder / "model"
        if model.is_dir():  # trained, then interrupted before the marker was written
            import json

            return dict(json.loads((model / "embedtune.json").read_text(encoding="utf-8")))
        # contrastive checkpoints, or those of the mlm strategy's pretraining phase
        has_checkpoints = any(
            (work_dir(model) / sub).is_dir() for sub in ("checkpoints", "mlm/checkpoints")
        )
        return train_model(
            model,
            train_config,
            data=paths["train"],
            split=data.train_split,
            dev_split=data.dev_split,
            resume=has_checkpoints,
            skip_bad=data.skip_bad,
        ).settings

    def evaluate() -> dict[str, Any]:
        from embedtune.evaluate.evaluate import run_evaluation

        eval_config = _eval_config(config, train_config.base_model, folder, progress, paths["test"])
        return run_evaluation(eval_config, folder / "eval").report

    if config.analyze:
        _stage(folder, "analyze", analyze, main_only=True)
    _stage(folder, "pairs", pairs)
    _stage(folder, "train", train)
    from embedtune.train.train import is_main_process

    if not is_main_process():  # other torchrun processes only help to train
        return {}
    return _stage(folder, "evaluate", evaluate)
