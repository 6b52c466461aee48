"""Monitor stage: embedding drift, probe re-evaluation and canaries, with alerts.

- :func:`build_profile` / :func:`build_profile_from_embeddings`: a reference profile of a
  model version (kept beside it in the registry, or in a folder);
- :func:`check_window`: a window of query vectors against a profile → :class:`DriftResult`
  (cheap: for a long-running process); :func:`check_drift` reads windows and queries files;
- :func:`append_window` / :class:`WindowWriter` / :func:`read_windows`: the logged-window
  format the server writes;
- :func:`run_probe`: a probe set re-run and compared with its baseline (paired bootstrap);
- :func:`run_canary`: canary texts re-embedded: a model change, reported apart from drift.

numpy, pydantic (and scipy for the binomial tail) only; torch loads only when something is
embedded.
"""

from embedtune.embedding_windows import (
    Window,
    WindowWriter,
    append_window,
    list_windows,
    read_window,
    read_windows,
)
from embedtune.monitor.canary import CanaryResult, compare_canary
from embedtune.monitor.config import DriftSettings, ProbeSettings
from embedtune.monitor.drift import DriftResult, TestResult, WindowStats, check_window
from embedtune.monitor.monitor import (
    build_profile,
    check_drift,
    open_profile,
    run_canary,
    write_check,
)
from embedtune.monitor.probe import ProbeResult, read_history, run_probe
from embedtune.monitor.profile import (
    Profile,
    build_profile_from_embeddings,
    load_profile,
    save_profile,
)
from embedtune.monitor.source import ModelSource, open_source

__all__ = [
    "CanaryResult",
    "DriftResult",
    "DriftSettings",
    "ModelSource",
    "ProbeResult",
    "ProbeSettings",
    "Profile",
    "TestResult",
    "Window",
    "WindowStats",
    "WindowWriter",
    "append_window",
    "build_profile",
    "build_profile_from_embeddings",
    "check_drift",
    "check_window",
    "compare_canary",
    "list_windows",
    "load_profile",
    "open_profile",
    "open_source",
    "read_history",
    "read_window",
    "read_windows",
    "run_canary",
    "run_probe",
    "save_profile",
    "write_check",
]
