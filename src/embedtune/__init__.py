"""embedtune: adapt a general text-embedding model to one domain, and prove it on held-out queries.

The Python API is the CLI's: one verb per stage, each taking its config (data paths inside)
and returning a typed result; the CLI calls the same functions.

    import embedtune as et

    corpus = et.ingest(et.IngestConfig(path="docs/", output="runs/ingest"))
    pairs = et.build_pairs(et.BuildPairsConfig(data="data/fin", output="runs/m.work"))
    model = et.train_model(et.TrainConfig(output="runs/m", pairs_dir="runs/m.work"))
    report = et.evaluate_models(et.EvalConfig(data="data/fin", split="test", model="runs/m"))

``import embedtune`` is light: every name below is imported on first use, so torch and the
model stack load only in the stages that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embedtune.analyze.analyze import analyze_corpus
    from embedtune.analyze.config import AnalyzeConfig
    from embedtune.corpus import CorpusConfig, Dataset, Document, PassageConfig
    from embedtune.corpus.config import IngestConfig
    from embedtune.corpus.ingest import ingest
    from embedtune.corpus.load import load_beir, load_dataset
    from embedtune.errors import ConfigError, DataError, EmbedtuneError
    from embedtune.evaluate.config import EvalConfig
    from embedtune.evaluate.evaluate import EvalResult, evaluate_models
    from embedtune.export.config import ExportConfig
    from embedtune.export.export import export_model
    from embedtune.governance.config import ScanConfig
    from embedtune.governance.scan import scan
    from embedtune.index.config import IndexConfig
    from embedtune.index.index import Index
    from embedtune.model_folder import ModelSettings, read_settings
    from embedtune.monitor.drift import check_window
    from embedtune.monitor.monitor import build_profile, check_drift
    from embedtune.monitor.probe import run_probe
    from embedtune.monitor.profile import load_profile
    from embedtune.monitor.source import open_source
    from embedtune.pairs.build import PairsResult, build_pairs
    from embedtune.pairs.config import BuildPairsConfig
    from embedtune.registry.registry import Registry
    from embedtune.retrieval.onnx import OnnxEncoder
    from embedtune.run import RunResult, fine_tune, run_pipeline
    from embedtune.run.config import RunConfig, load_run_config, preset
    from embedtune.serve.app import create_app
    from embedtune.serve.config import ServeConfig
    from embedtune.train.config import TrainConfig
    from embedtune.train.train import TrainResult, train_model

__version__ = "0.1.0"

# public name → the module that defines it (imported when the name is first used)
_LAZY = {
    "AnalyzeConfig": "embedtune.analyze.config",
    "BuildPairsConfig": "embedtune.pairs.config",
    "ConfigError": "embedtune.errors",
    "CorpusConfig": "embedtune.corpus",
    "DataError": "embedtune.errors",
    "Dataset": "embedtune.corpus",
    "Document": "embedtune.corpus",
    "EmbedtuneError": "embedtune.errors",
    "EvalConfig": "embedtune.evaluate.config",
    "EvalResult": "embedtune.evaluate.evaluate",
    "ExportConfig": "embedtune.export.config",
    "Index": "embedtune.index.index",
    "IndexConfig": "embedtune.index.config",
    "IngestConfig": "embedtune.corpus.config",
    "ModelSettings": "embedtune.model_folder",
    "OnnxEncoder": "embedtune.retrieval.onnx",
    "PairsResult": "embedtune.pairs.build",
    "PassageConfig": "embedtune.corpus",
    "Registry": "embedtune.registry.registry",
    "RunConfig": "embedtune.run.config",
    "RunResult": "embedtune.run.pipeline",
    "ScanConfig": "embedtune.governance.config",
    "TrainConfig": "embedtune.train.config",
    "TrainResult": "embedtune.train.train",
    "analyze_corpus": "embedtune.analyze.analyze",
    "build_pairs": "embedtune.pairs.build",
    "evaluate_models": "embedtune.evaluate.evaluate",
    "export_model": "embedtune.export.export",
    "fine_tune": "embedtune.run",
    "ingest": "embedtune.corpus.ingest",
    "load_beir": "embedtune.corpus.load",
    "load_dataset": "embedtune.corpus.load",
    "load_run_config": "embedtune.run.config",
    "preset": "embedtune.run.config",
    "read_settings": "embedtune.model_folder",
    "run_pipeline": "embedtune.run",
    "scan": "embedtune.governance.scan",
    "train_model": "embedtune.train.train",
    "ServeConfig": "embedtune.serve.config",
    "create_app": "embedtune.serve.app",
    "build_profile": "embedtune.monitor.monitor",
    "check_drift": "embedtune.monitor.monitor",
    "check_window": "embedtune.monitor.drift",
    "load_profile": "embedtune.monitor.profile",
    "open_source": "embedtune.monitor.source",
    "run_probe": "embedtune.monitor.probe",
}

__all__ = [
    "AnalyzeConfig",
    "BuildPairsConfig",
    "ConfigError",
    "CorpusConfig",
    "DataError",
    "Dataset",
    "Document",
    "EmbedtuneError",
    "EvalConfig",
    "EvalResult",
    "ExportConfig",
    "Index",
    "IndexConfig",
    "IngestConfig",
    "ModelSettings",
    "OnnxEncoder",
    "PairsResult",
    "PassageConfig",
    "Registry",
    "RunConfig",
    "RunResult",
    "ScanConfig",
    "ServeConfig",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "analyze_corpus",
    "build_pairs",
    "build_profile",
    "check_drift",
    "check_window",
    "create_app",
    "evaluate_models",
    "export_model",
    "fine_tune",
    "ingest",
    "load_beir",
    "load_dataset",
    "load_profile",
    "load_run_config",
    "open_source",
    "preset",
    "read_settings",
    "run_pipeline",
    "run_probe",
    "scan",
    "train_model",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'embedtune' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
