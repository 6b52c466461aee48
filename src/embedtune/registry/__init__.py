"""Registry stage: immutable, content-addressed model versions with lineage, moving tags.

`Registry` (a folder) returns typed records: `VersionRecord`, `ExportRecord`, `VersionDiff`.
"""

from embedtune.registry.records import (
    EvalSummary,
    ExportRecord,
    Lineage,
    VersionDiff,
    VersionRecord,
)
from embedtune.registry.registry import Registry

__all__ = ["EvalSummary", "ExportRecord", "Lineage", "Registry", "VersionDiff", "VersionRecord"]
