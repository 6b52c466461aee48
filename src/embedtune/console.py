"""What reaches the terminal: embedtune's own log lines and progress bars, and how much the
libraries underneath (transformers, sentence-transformers, datasets, huggingface_hub, torch)
may print.

An application — the CLI, a script — calls :func:`configure_output` once at start; importing
embedtune changes no global logging. Three levels:

- ``quiet``: embedtune's warnings and errors only; no progress bars (for scripts and CI logs),
  but a step that runs long says how far it is in one structured line on stderr every 30 s
  (``progress step="encode passages" done=1200 total=31223 unit=psg rate=38.1 eta_s=787``).
- ``normal``: one line per stage and one progress bar per long step; libraries speak only on
  errors (no "Loading weights", "Writing model shards" or "Computing widget examples" bars).
- ``verbose``: embedtune's debug lines too (the training loss), and the libraries at their own
  defaults.

Embedtune's own bars come from :func:`progress`, never from ``tqdm`` directly: it passes
``disable=`` explicitly, which is what keeps them alive when library bars are switched off.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from rich.console import Console

logger = logging.getLogger(__name__)

Verbosity = Literal["quiet", "normal", "verbose"]
VERBOSITIES: tuple[Verbosity, ...] = get_args(Verbosity)

_EMBEDTUNE_LEVEL = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}

# Read by each library when it is first imported (and inherited by child processes such as
# torchrun workers); a value the user set in the environment is left alone.
_QUIET_ENV = {
    # huggingface_hub's bars, which transformers follows: "Loading weights", "Writing model shards"
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_VERBOSITY": "error",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",  # datasets' map/filter bars
    "DATASETS_VERBOSITY": "error",
    # The default of every tqdm bar that does not pass disable= itself, i.e. bars with no switch
    # of their own (sentence-transformers' "Computing widget examples" when a model is trained).
    "TQDM_DISABLE": "1",
    # torch logs through its own handler (e.g. the ONNX exporter's "torchvision is not installed")
    "TORCH_LOGS": "-all",
}

_verbosity: Verbosity = "normal"
_env_set: dict[str, str] = {}  # what configure_output put into os.environ (undone by verbose)
_quieted_loaded = False  # whether already-imported libraries were silenced through their APIs


def configure_output(verbosity: Verbosity = "normal") -> None:
    """Set how much embedtune and the libraries under it print; call once, before heavy imports.

    Libraries not yet imported are configured through the environment variables they read on
    import; libraries already imported through their own APIs. Log records still need a handler
    to appear (the CLI installs :func:`log_handler` on the root logger).

    Args:
        verbosity: ``quiet``, ``normal`` or ``verbose`` (see the module docstring).

    Example:
        >>> from embedtune.console import configure_output
        >>> configure_output("quiet")  # a script that wants results, not chatter
    """
    global _verbosity
    if verbosity not in VERBOSITIES:
        raise ValueError(f"verbosity {verbosity!r}: choose one of {', '.join(VERBOSITIES)}")
    _verbosity = verbosity
    quiet_libraries = verbosity != "verbose"
    logging.getLogger("embedtune").setLevel(_EMBEDTUNE_LEVEL[verbosity])
    # Libraries without a level of their own (sentence-transformers, accelerate, peft) and the
    # ones that log straight to the root logger (onnxruntime's quantizer) follow the root level.
    # embedtune's records are unaffected: a propagated record is checked by handlers, not by
    # the root logger's level.
    logging.getLogger().setLevel(logging.ERROR if quiet_libraries else logging.WARNING)
    _set_environment(quiet_libraries)
    _set_loaded_libraries(quiet_libraries)
    if verbosity == "verbose":
        logger.debug("%s", _versions())


def verbosity() -> Verbosity:
    """The level set by the last :func:`configure_output` (``normal`` if never called)."""
    return _verbosity


def progress_enabled() -> bool:
    """Whether embedtune draws progress bars (everywhere but ``quiet``)."""
    return _verbosity != "quiet"


# quiet mode: seconds between two progress lines of one step (a shorter step prints none)
PROGRESS_LINE_SECONDS = 30.0


class ProgressLines:
    """Quiet mode's stand-in for a bar (the part of tqdm's interface embedtune uses): one
    ``key=value`` line on stderr every :data:`PROGRESS_LINE_SECONDS`, and a last one when a
    step that printed any ends, for logs that a person or a log pipeline reads."""

    def __init__(
        self,
        iterable: Iterable[Any] | None,
        desc: str,
        total: float | None,
        unit: str,
        initial: float = 0,
    ) -> None:
        self.iterable = iterable
        self.desc = desc
        self.total = total if total is not None else _length(iterable)
        self.unit = unit
        self.n = self._initial = initial
        self._start = self._last = time.monotonic()
        self._printed = False

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= PROGRESS_LINE_SECONDS:
            self._last = now
            self._line(now)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or self.desc

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if self._printed:
            self._printed = False  # once
            self._line(time.monotonic(), done=True)

    def _line(self, now: float, done: bool = False) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = (self.n - self._initial) / elapsed
        parts = [f"progress step={_quote(self.desc)} done={self.n:g}"]
        if self.total:
            parts.append(f"total={self.total:g}")
        parts.append(f"unit={self.unit} rate={rate:.3g} elapsed_s={elapsed:.0f}")
        if done:
            parts.append("finished=true")
        elif self.total and rate > 0:
            parts.append(f"eta_s={max(self.total - self.n, 0) / rate:.0f}")
        sys.stderr.write(" ".join(parts) + "\n")
        sys.stderr.flush()
        self._printed = True


def _length(iterable: Iterable[Any] | None) -> float | None:
    try:
        return float(len(iterable))  # type: ignore[arg-type]
    except TypeError:
        return None


def _quote(text: str) -> str:
    return '"' + text.replace('"', "'") + '"' if " " in text or not text else text


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    desc: str,
    total: float | None = None,
    unit: str = "it",
    enabled: bool = True,
    leave: bool = False,
    **kwargs: Any,
) -> Any:
    """One embedtune progress bar (a ``tqdm``) on stderr; off when ``enabled`` is false; in
    ``quiet`` output a :class:`ProgressLines` instead (a line every 30 s of a long step). Use
    it for long steps only: one bar per step.

    Args:
        iterable: what to iterate over (or None and call ``update``).
        desc: a short name of the step (``encode``, ``train``).
        total: the number of units, when ``iterable`` has no length.
        unit: the unit counted (``psg``, ``step``).
        enabled: the caller's own switch (e.g. a ``show_progress`` option).
        leave: keep the finished bar on screen (by default it vanishes: the stage's log line
            is the lasting record).
        **kwargs: passed on to ``tqdm``.
    """
    from tqdm.auto import tqdm

    if enabled and not progress_enabled():
        return ProgressLines(iterable, desc, total, unit, initial=kwargs.get("initial", 0))
    return tqdm(
        iterable,
        desc=desc,
        total=total,
        unit=unit,
        disable=not (enabled and progress_enabled()),
        dynamic_ncols=True,
        leave=leave,
        **kwargs,
    )


def log_handler(console: Console | None = None) -> logging.Handler:
    """A rich log handler for stderr that writes between progress bars, never through one."""
    from rich.console import Console
    from rich.logging import RichHandler

    class _BarSafeRichHandler(RichHandler):
        def emit(self, record: logging.LogRecord) -> None:
            from tqdm import tqdm

            # clears the bars drawn on stdout/stderr, writes the line, then redraws them
            with tqdm.external_write_mode(file=sys.stderr):
                super().emit(record)

    return _BarSafeRichHandler(
        console=console or Console(stderr=True), show_path=False, show_time=False
    )


def _set_environment(quiet: bool) -> None:
    for key, value in _QUIET_ENV.items():
        if quiet:
            if key not in os.environ:
                os.environ[key] = _env_set[key] = value
        elif key in _env_set:
            if os.environ.get(key) == _env_set[key]:
                del os.environ[key]
            del _env_set[key]


def _set_loaded_libraries(quiet: bool) -> None:
    """Silence (or, after an earlier silence, restore) libraries that are already imported.

    A progress-bar switch the user set in the environment was read on import and wins: the
    libraries warn when code overrides it, so they are left alone then.
    """
    global _quieted_loaded
    if not quiet and not _quieted_loaded:
        return  # never touched: they are at their own defaults
    level = logging.ERROR if quiet else logging.WARNING
    if "huggingface_hub" in sys.modules:
        from huggingface_hub import constants as hub_constants
        from huggingface_hub import utils as hub_utils
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity(level)
        hub_bars_from_env = hub_constants.HF_HUB_DISABLE_PROGRESS_BARS is not None
        if not hub_bars_from_env:
            (hub_utils.disable_progress_bars if quiet else hub_utils.enable_progress_bars)()
        if "transformers" in sys.modules:
            from transformers.utils import logging as transformers_logging

            transformers_logging.set_verbosity(level)
            if not hub_bars_from_env:  # transformers' own switch ("Loading weights")
                switch = transformers_logging.disable_progress_bar
                (switch if quiet else transformers_logging.enable_progress_bar)()
    if "datasets" in sys.modules:
        import datasets

        datasets.logging.set_verbosity(level)
        if datasets.config.HF_DATASETS_DISABLE_PROGRESS_BARS is None:
            (datasets.disable_progress_bars if quiet else datasets.enable_progress_bars)()
    if "torch" in sys.modules:
        logging.getLogger("torch").setLevel(level)
    _quieted_loaded = quiet


def _versions() -> str:
    """Versions of the stack, for bug reports (read from package metadata: nothing imported)."""
    parts = [f"python {sys.version.split()[0]}"]
    for name in ("embedtune", "torch", "transformers", "sentence-transformers"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " · ".join(parts)


__all__ = [
    "VERBOSITIES",
    "Verbosity",
    "configure_output",
    "log_handler",
    "progress",
    "progress_enabled",
    "verbosity",
]
