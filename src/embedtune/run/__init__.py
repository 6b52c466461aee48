"""The run layer: the only place (besides the CLI) that chains stages.

- :mod:`embedtune.run.config`: the run YAML (one block per stage), the shipped training
  recipes (``presets.yaml``), and how one recipe becomes the pairs and train stages' configs;
- :mod:`embedtune.run.pipeline`: ``embedtune run`` (ingest → govern → analyze → pairs →
  train → evaluate, resumable stage by stage) and :func:`fine_tune` (pairs, then training).
"""

from embedtune.run.config import (
    RunConfig,
    load_run_config,
    load_watch_config,
    preset,
    stage_configs,
)
from embedtune.run.pipeline import RunResult, fine_tune, run_pipeline

__all__ = [
    "RunConfig",
    "RunResult",
    "fine_tune",
    "load_run_config",
    "load_watch_config",
    "preset",
    "run_pipeline",
    "stage_configs",
]
