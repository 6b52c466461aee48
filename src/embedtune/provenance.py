"""What made an artefact: library versions and the machine."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

_PACKAGES = (
    "embedtune",
    "torch",
    "transformers",
    "sentence-transformers",
    "bm25s",
    "numpy",
    "PyStemmer",
    "tokenizers",
    "presidio-analyzer",
    "wordfreq",
)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that affect results."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
