"""Errors that the CLI turns into one clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class EmbedtuneError(Exception):
    """Base class: a problem the user can fix; the CLI prints it without a traceback."""


class DataError(EmbedtuneError):
    """Bad input data, located by file and (where known) line and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.reason = message
        self.hint = hint
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "")
            where += ": "
        text = where + message + (f" (field '{field}')" if field else "")
        if hint:
            text += f"; {hint}"
        super().__init__(text)


class ConfigError(EmbedtuneError):
    """An invalid option or config value."""


class PairsMismatchError(ConfigError):
    """A pairs folder holds pairs made from other data or settings than asked for."""


class MissingExtraError(EmbedtuneError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"this needs the '{extra}' extra ({module} is not installed): "
            f"pip install 'embedtune[{extra}]'"
        )


def require(module: str, extra: str) -> None:
    """Fail with an error naming the extra when an optional dependency is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(extra, module)
