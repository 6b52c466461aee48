"""One rule for every command's output.

An output may never be, or lie inside, one of the command's inputs (``pairs DATA -o
DATA/corpus.jsonl`` once replaced the corpus it read). An existing output is refused unless the
user says ``overwrite``; an empty folder counts as absent (nothing to lose). With ``overwrite``,
the old output is moved aside while the command runs and deleted only once the new one is
complete: a failed or interrupted command puts the old one back, so nothing is lost either way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from embedtune.errors import ConfigError
from embedtune.io import is_main_process

PathLike = str | os.PathLike[str]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def is_present(path: PathLike) -> bool:
    """A file, or a folder with anything in it (an empty folder holds nothing to lose)."""
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        return any(target.iterdir())
    return target.exists() or target.is_symlink()


def check_output(
    output: PathLike,
    inputs: Iterable[PathLike | None] = (),
    *,
    overwrite: bool = False,
    option: str = "--output",
    exists_ok: bool = False,
    holds_inputs: bool = False,
) -> Path:
    """Refuse an output that is or lies inside an input, or that exists (unless ``overwrite``).

    ``exists_ok`` is for outputs a command resumes or reuses (a run folder, a pairs folder):
    they check what they find themselves. An input inside an existing output is refused when
    the command would write into (or, overwriting, delete) that folder, unless the output
    ``holds_inputs`` by design (a run folder keeps its redacted data). Paths are compared
    resolved, so ``./x`` and a link to ``x`` are the same place.
    """
    out = Path(output).resolve()
    for given in inputs:
        # a Hub id or "base" is no place on disk, and a missing input has nothing to protect
        if given is None or not str(given) or not Path(given).exists():
            continue
        source = Path(given).resolve()
        if _inside(out, source):
            where = "is" if out == source else "lies inside"
            raise ConfigError(
                f"{option} {output} {where} the input {given}: an output never goes into its "
                "input; choose a folder outside it"
            )
        if _inside(source, out) and is_present(output):
            if overwrite:
                raise ConfigError(
                    f"--overwrite would delete {output}, which holds the input {given}: "
                    "choose another output"
                )
            if exists_ok and not holds_inputs:
                raise ConfigError(
                    f"{option} {output} holds the input {given}, which writing there could "
                    "replace: choose another output"
                )
    if is_present(output) and not overwrite and not exists_ok:
        raise ConfigError(
            f"{output} already exists: choose a new {option}, or pass --overwrite to replace it"
        )
    return out


@contextlib.contextmanager
def replacing(output: PathLike, overwrite: bool) -> Iterator[Path]:
    """Write a new ``output`` in place of an existing one only if the writing succeeds.

    Without ``overwrite`` (or with nothing there) this does nothing: the caller has already
    refused an existing output. With it, the old output waits beside the new one, hidden, and
    is deleted on success or put back on any failure, Ctrl-C included.
    """
    target = Path(output)
    # under torchrun only rank 0 writes outputs, so only it moves the old one aside
    if not (overwrite and is_main_process() and (target.exists() or target.is_symlink())):
        yield target
        return
    aside = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    _remove(aside)
    target.rename(aside)
    try:
        yield target
    except BaseException:
        _remove(target)
        aside.rename(target)
        raise
    _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
