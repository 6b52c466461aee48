"""``embedtune run``: ingest → govern → analyze → pairs → train → evaluate, resumable stage
by stage.

With ``governance.redact``, nothing but the data manifest is written before redaction, and
every later stage reads the redacted copies.

Each finished stage leaves ``stages/<name>.json`` in the run folder; a rerun skips it. Every
stage's settings are checked before the first stage runs, and only then is the resolved config
saved as ``config.yaml`` (so a config fixed after a refusal can use the same folder); a rerun
with a different config is refused so a run folder always describes one experiment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from embedtune.errors import ConfigError, EmbedtuneError
from embedtune.io import is_main_process, write_json, write_text
from embedtune.outputs import check_output, replacing

if TYPE_CHECKING:
    from embedtune.train.train import TrainResult

from embedtune.run.config import RunConfig, merge_settings, preset, stage_configs
from embedtune.train.config import has_checkpoints, work_dir

logger = logging.getLogger(__name__)

STAGES = (
    "ingest",
    "govern",
    "analyze",
    "pairs",
    "train",
    "evaluate",
    "export",
    "register",
    "index",
)


def _stage(
    folder: Path, name: str, work: Callable[[], dict[str, Any]], *, main_only: bool = False
) -> dict[str, Any]:
    """Run a stage unless its marker exists. Under torchrun, a ``main_only`` stage (one that
    writes files the others read) runs on rank 0 while the other processes wait for it."""
    import json

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


def _stage_configs(config: RunConfig, folder: Path, train_data: str) -> tuple[Any, Any]:
    """The pairs and train stages' configs from the run's preset and `train:` overrides."""
    data = config.data
    model = folder / "model"
    return stage_configs(
        merge_settings(preset(config.preset), config.train),
        output=model,
        data=train_data,
        split=data.train_split,
        dev_split=data.dev_split,
        skip_bad=data.skip_bad,
        resume=has_checkpoints(model),
    )


def fine_tune(
    output: str | Path,
    recipe: dict[str, Any],
    *,
    data: str | None = None,
    pairs_file: str | None = None,
    split: str = "train",
    dev_split: str | None = None,
    resume: bool = False,
    skip_bad: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Pairs, then training: what ``embedtune train DATA`` does, the two stages in a row.

    Args:
        output: The model folder to create; the pairs go to ``OUTPUT.work/``.
        recipe: A training recipe: a preset (:func:`embedtune.run.config.preset`) with your
            overrides (``pairs``, ``epochs``, ``strategy`` …).
        data: A BEIR folder with a labeled ``split`` (or, with ``supervision: weak``, any).
        pairs_file: Your own pairs instead of (or beside) ``data``.
        split, dev_split: The training split, and the dev split (default: the dev rule).
        resume: Continue an interrupted training from its last complete checkpoint.
        skip_bad: Skip (and count) unreadable records instead of stopping.
        overwrite: Start over in place of an existing model folder (and its pairs and
            checkpoints); the old one is deleted only once the new one is complete.

    Returns:
        TrainResult: the model folder and its settings record.

    Example:
        >>> result = fine_tune("runs/fin", preset("default"), data="../shared/data/finance10k")
        >>> result.settings.dev.tuned["ndcg@10"], result.settings.outcome.better
        (0.91, True)
    """
    from embedtune.pairs.build import build_pairs
    from embedtune.train.train import preflight, train_model

    pairs_config, train_config = stage_configs(
        recipe,
        output=output,
        data=data,
        pairs_file=pairs_file,
        split=split,
        dev_split=dev_split,
        skip_bad=skip_bad,
        resume=resume,
    )
    # refused before any pairs are mined
    check_output(output, [data, pairs_file, train_config.base_model], overwrite=overwrite)
    preflight(train_config)
    with replacing(output, overwrite), replacing(work_dir(output), overwrite):
        built = build_pairs(pairs_config)
        _wait_for_rank_zero(Path(pairs_config.output), built.record.fingerprint)
        return train_model(train_config)


def _wait_for_rank_zero(pairs_dir: Path, fingerprint: str) -> None:
    """Under torchrun every process builds the pairs and rank 0 writes them: the others
    wait until the pairs folder holds them before training reads it."""
    from embedtune.corpus.pairs import read_pair_set

    while not is_main_process():
        try:
            record = read_pair_set(pairs_dir)
        except EmbedtuneError:  # being written
            record = None
        if record is not None and record.fingerprint == fingerprint:
            return
        time.sleep(1)


def eval_config(
    config: RunConfig, base_model: str, folder: Path, progress: bool, test_data: str
) -> Any:
    """The evaluation a run does of ``folder/model``: its test split, with the base model
    and BM25 beside (``embedtune compare`` evaluates each cell the same way)."""
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
        "overwrite": True,  # the stage is redone when an earlier attempt did not finish
    }
    if config.eval.systems:
        options["systems"] = config.eval.systems
    if config.eval.metrics:
        options["metrics"] = config.eval.metrics
    return EvalConfig.model_validate(options)


def _preflight(config: RunConfig, folder: Path, progress: bool) -> Any:
    """Every stage's settings, checked before the first stage runs: a mistake in a late
    stage's settings (a misspelt strategy, a missing key) must not surface after minutes of
    ingesting and mining. Returns the train stage's config."""
    from embedtune.analyze import AnalyzeConfig
    from embedtune.governance.redact import hash_key
    from embedtune.models import resolve_model
    from embedtune.train.train import preflight

    _, train_config = _stage_configs(config, folder, config.data.train)
    preflight(train_config)  # the strategy's name, the probe sets
    resolve_model(train_config.base_model)  # a local model folder (nothing is downloaded)
    eval_config(config, train_config.base_model, folder, progress, config.data.test)
    governance = config.governance
    if governance.redact and governance.mode == "hash":
        hash_key(governance)  # the secret is in the environment
    if governance.ner_model and not Path(governance.ner_model).is_dir():
        raise ConfigError(
            f"governance.ner_model: {governance.ner_model} is not a folder; give a local "
            "token-classification model (names/places are only found with one)"
        )
    if config.analyze:
        AnalyzeConfig(
            data=config.data.train,
            split=config.data.train_split,
            model=train_config.base_model,
            output=str(folder / "analysis"),
            passages=train_config.passages,
            skip_bad=config.data.skip_bad,
        )
    _preflight_ship(config, folder)
    return train_config


def _preflight_ship(config: RunConfig, folder: Path) -> None:
    """The export, register and index settings, checked before the first stage."""
    from embedtune.errors import require

    if config.export is not None:
        require("onnxruntime", "onnx")
        _export_config(config, folder, config.data.test)
    if config.index is not None and config.registry is None:
        raise ConfigError("index: indexes a registered version: add a `registry:` block")
    register = config.registry
    if register is not None:
        from embedtune.registry.registry import check_name, check_tag

        if register.name is not None:
            check_name(register.name)
        for tag in register.tags:
            check_tag(tag)
        check_output(register.path, [config.data.train, config.data.test], exists_ok=True)
    if config.index is not None:
        require("lancedb" if config.index.backend == "lancedb" else "qdrant_client", "index")
        if config.index.encoder != "torch" and config.export is None:
            raise ConfigError(
                f"index.encoder {config.index.encoder} uses the ONNX export: add an `export:` "
                "block, or use encoder torch"
            )


def _export_config(config: RunConfig, folder: Path, test_data: str) -> Any:
    from embedtune.export.config import ExportConfig

    return ExportConfig.model_validate(
        {
            "model": str(folder / "model"),
            "output": str(folder / "export"),
            "overwrite": True,  # the stage is redone when an earlier attempt did not finish
            "formats": config.export.formats if config.export else [],
            "eval_data": test_data,
            "eval_split": config.data.test_split,
        }
    )


@dataclass
class RunResult:
    """What ``embedtune run`` left in its folder.

    Attributes:
        output: The run folder (config.yaml, stages/, analysis/, model/, eval/ …).
        model: The tuned model folder.
        report: The evaluation report (as in eval/report.json); None on the helper
            processes of a torchrun job, which only help to train.
    """

    output: Path
    model: Path
    report: dict[str, Any] | None


def run_pipeline(config: RunConfig, progress: bool = True, overwrite: bool = False) -> RunResult:
    """Run every stage not yet done: ingest → govern → analyze → pairs → train → evaluate.

    Stages that finished in an earlier call (their marker in ``OUTPUT/stages/``) are skipped,
    so calling it again after an interruption resumes. A folder made with another config is
    refused.

    Args:
        config: The run config (``embedtune run`` reads it from YAML).
        progress: Progress bars for the long steps.
        overwrite: Start over in place of an existing run folder (deleted only once the new
            run is complete; a failed run puts it back).

    Returns:
        RunResult: the run folder, the model folder and the evaluation report.

    Example:
        >>> result = run_pipeline(load_run_config("examples/finance10k.yaml"))
        >>> result.report["systems"]["tuned-hybrid"]["ndcg@10"]
        0.883
    """
    folder = Path(config.output)
    # a run folder is resumed, and may hold its own data (the demo's); never inside the data
    inputs = [config.data.train, config.data.test, config.train.get("base_model")]
    check_output(folder, inputs, overwrite=overwrite, exists_ok=True, holds_inputs=True)
    with replacing(folder, overwrite):
        return _run_stages(config, folder, progress)


def _run_stages(config: RunConfig, folder: Path, progress: bool) -> RunResult:
    resolved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    saved = folder / "config.yaml"
    if saved.is_file() and saved.read_text(encoding="utf-8") != resolved:
        raise ConfigError(
            f"{folder} was made with another config (see {saved}); use a new "
            "output folder, or restore that config to resume"
        )
    train_config = _preflight(config, folder, progress)
    write_text(saved, resolved)  # only a config that passed: a fixed one may reuse the folder
    data = config.data

    def ingest() -> dict[str, Any]:
        from embedtune.corpus.load import load_beir

        train = load_beir(data.train, data.train_split, skip_bad=data.skip_bad)
        test = load_beir(data.test, data.test_split, skip_bad=data.skip_bad)
        manifests = {"train": train.manifest.to_dict(), "test": test.manifest.to_dict()}
        if config.governance.redact:
            # This marker is written before the ids are scanned: the document ids the manifest
            # quotes as examples of exact duplicates may be personal (an e-mail address as an
            # id), so only the counts are kept; the govern stage's report lists the examples
            # with personal ids pseudonymised.
            for manifest in manifests.values():
                manifest["duplicates"].pop("examples", None)
        return manifests

    def govern() -> dict[str, Any]:
        from embedtune.corpus.splits import training_splits
        from embedtune.governance.run_stage import govern_sources

        sources = {
            "train": (data.train, training_splits(data.train, data.train_split, data.dev_split)),
            "test": (data.test, [data.test_split]),
        }
        return govern_sources(
            sources, config.governance, folder, skip_bad=data.skip_bad, progress=progress
        ).to_dict()

    _stage(folder, "ingest", ingest)  # the manifest: the one thing written before redaction
    paths = _stage(folder, "govern", govern, main_only=True)[
        "data"
    ]  # the redacted copies, or the originals

    def analyze() -> dict[str, Any]:
        from embedtune.analyze import AnalyzeConfig, analyze_corpus

        result = analyze_corpus(
            AnalyzeConfig(
                data=paths["train"],
                split=data.train_split,
                model=train_config.base_model,
                output=str(folder / "analysis"),
                overwrite=True,  # what an interrupted earlier attempt left is redone
                passages=train_config.passages,
                skip_bad=data.skip_bad,
            )
        )
        return {"recommendations": result.recommendations}

    def pairs() -> dict[str, Any]:
        from embedtune.pairs.build import build_pairs

        pairs_config, _ = _stage_configs(config, folder, paths["train"])
        built = build_pairs(pairs_config)
        _wait_for_rank_zero(Path(pairs_config.output), built.record.fingerprint)
        return {"pairs": built.pairs, "dev_queries": built.dev_queries, **built.record.info}

    def train() -> dict[str, Any]:
        from embedtune.model_folder import read_settings
        from embedtune.train.train import train_model

        model = folder / "model"
        if model.is_dir():  # trained, then interrupted before the marker was written
            settings = read_settings(model)
            return {} if settings is None else settings.model_dump(mode="json")
        _, train_config = _stage_configs(config, folder, paths["train"])
        return train_model(train_config).settings.model_dump(mode="json")

    def evaluate() -> dict[str, Any]:
        from embedtune.evaluate.evaluate import evaluate_models

        settings = eval_config(config, train_config.base_model, folder, progress, paths["test"])
        return evaluate_models(settings, folder / "eval").report

    if config.analyze:
        _stage(folder, "analyze", analyze, main_only=True)
    _stage(folder, "pairs", pairs)
    _stage(folder, "train", train)
    if not is_main_process():  # other torchrun processes only help to train
        return RunResult(folder, folder / "model", None)
    report = _stage(folder, "evaluate", evaluate)
    _write_report(folder, paths["test"], config.data.test_split)
    _ship(config, folder, paths["test"])
    return RunResult(folder, folder / "model", report)


def _write_report(folder: Path, test_data: str, split: str | None) -> None:
    """``OUTPUT/report.html``, rewritten from the stages' artefacts on every call (cheap)."""
    from embedtune.run.report import render_run_html

    try:  # a figure that cannot be drawn must not cost the run its later stages
        page = render_run_html(folder, test_data, split)
    except Exception as exc:
        logger.warning("report.html not written: %s: %s", type(exc).__name__, exc)
        return
    write_text(folder / "report.html", page)
    logger.info("report: %s", folder / "report.html")


def _ship(config: RunConfig, folder: Path, test_data: str) -> None:
    """The optional stages after evaluation: export → register (+ tags) → index."""
    from embedtune.registry import Registry

    def export() -> dict[str, Any]:
        from embedtune.export import export_model

        result = export_model(_export_config(config, folder, test_data))
        return {"output": result.path, "files": result.files, "ok": result.ok}

    def register() -> dict[str, Any]:
        assert config.registry is not None
        registry = Registry(config.registry.path)
        record = registry.add(
            folder / "model", report=folder / "eval" / "report.json", name=config.registry.name
        )
        exported = None
        if config.export is not None:
            exported = registry.add_export(folder / "export", record.id).id
        for tag in config.registry.tags:
            registry.promote(record.id, tag)
        logger.info("register: version %s in %s", record.id, config.registry.path)
        return {"version": record.id, "export": exported, "tags": config.registry.tags}

    def index() -> dict[str, Any]:
        from embedtune.index import Index, IndexConfig

        assert config.index is not None and config.registry is not None
        spec = config.index
        built = Index(
            IndexConfig(
                path=spec.path,
                backend=spec.backend,
                url=spec.url,
                name=spec.name,
                encoder=spec.encoder,
            ),
            Registry(config.registry.path),
        ).build(
            spec.data or test_data,
            spec.split if spec.data else (spec.split or config.data.test_split),
            version,
        )
        return {"table": built.table, "passages": built.passages, "index": built.index}

    if config.export is not None:
        _stage(folder, "export", export)
    if config.registry is not None:
        version = _stage(folder, "register", register)["version"]
        if config.index is not None:
            _stage(folder, "index", index)
