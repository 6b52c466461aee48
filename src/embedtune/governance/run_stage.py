"""The governance stage of ``embedtune run``: scan (and redact) every input folder once."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedtune.corpus.load import resolve_beir
from embedtune.governance.config import GovernanceConfig, ScanConfig
from embedtune.governance.scan import ScanResult, scan

logger = logging.getLogger(__name__)

# What the run's stage marker keeps of each scan's report.
MARKER_KEYS = ("scanned", "found", "types", "redaction")


@dataclass(frozen=True)
class GovernanceResult:
    """The governance stage of a run: one scan per input folder, and the data to read next.

    Attributes:
        redacted: Whether redacted copies were written (``governance.redact``).
        data: Role (``train``, ``test``) → the folder later stages read: the redacted copy,
            or the original when nothing was redacted.
        reports: One scan per folder scanned, by its name under ``governance/`` (a redacted
            copy has moved from the scan's folder to the path in ``data``).
    """

    redacted: bool
    data: dict[str, str]
    reports: dict[str, ScanResult]

    def to_dict(self) -> dict[str, Any]:
        """The run's stage marker: the data paths and a summary of each scan's report."""
        return {
            "redacted": self.redacted,
            "data": dict(self.data),
            "reports": {
                name: {k: result.report[k] for k in MARKER_KEYS}
                for name, result in self.reports.items()
            },
        }


def govern_sources(
    sources: dict[str, tuple[str, list[str]]],
    config: GovernanceConfig,
    folder: Path,
    *,
    skip_bad: bool = False,
    progress: bool = False,
) -> GovernanceResult:
    """Scan each BEIR folder behind ``sources`` (role → (path, splits)) once, reports in
    ``folder/governance/``; with redaction on, redacted copies in ``folder/redacted/<role>`` laid
    out like the originals, and the paths later stages must read instead.

    Args:
        sources: Role → (BEIR folder or parent, splits that role reads).
        config: The run config's ``governance:`` block.
        folder: The run folder.
        skip_bad: Skip (and count) bad records instead of failing.
        progress: Show a progress bar per scan.

    Returns:
        The scans and, per role, the folder later stages read.
    """
    for leftover in (folder / "governance", folder / "redacted"):  # an unfinished earlier try
        shutil.rmtree(leftover, ignore_errors=True)
    jobs: dict[Path, list[str]] = {}
    target: dict[Path, Path] = {}  # folder scanned → where its redacted copy goes
    paths: dict[str, str] = {}
    for role, (path, splits) in sources.items():
        base = Path(path)
        for split in splits:
            root = resolve_beir(base, split)
            jobs.setdefault(root, [])
            if split not in jobs[root]:
                jobs[root].append(split)
            if root not in target:
                target[root] = folder / "redacted" / role / root.relative_to(base)
        first = resolve_beir(base, splits[0])
        # the role reads its redacted copy laid out like the original: flat, or with split
        # subfolders (finance10k/test → redacted/test/test, read as redacted/test, split test)
        copy = target[first]
        for _ in first.relative_to(base).parts:
            copy = copy.parent
        paths[role] = str(copy)
    reports: dict[str, ScanResult] = {}
    for root, splits in jobs.items():
        name = "-".join(target[root].relative_to(folder / "redacted").parts)
        out = folder / "governance" / name
        # overwrite: what an interrupted earlier attempt of this stage left is redone
        scan_config = ScanConfig.from_governance(
            config,
            data=root,
            output=out,
            splits=splits,
            skip_bad=skip_bad,
            progress=progress,
            overwrite=True,
        )
        reports[name] = scan(scan_config)
        if config.redact:
            target[root].parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target[root], ignore_errors=True)
            shutil.move(str(out / "data"), str(target[root]))
    return GovernanceResult(
        redacted=config.redact,
        data=paths if config.redact else {r: p for r, (p, _) in sources.items()},
        reports=reports,
    )
