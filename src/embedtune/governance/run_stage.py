"""The governance stage of ``embedtune run``: scan (and redact) every input folder once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from embedtune.corpus.load import beir_splits, resolve_beir
from embedtune.governance.config import GovernanceConfig
from embedtune.governance.scan import govern


def train_splits(path: str, split: str, dev_split: str | None) -> list[str]:
    """The splits training reads: its own, and the dev split (given, or found as 'dev')."""
    if dev_split is not None:
        return [split, dev_split]
    return [split, "dev"] if split != "dev" and "dev" in beir_splits(Path(path)) else [split]


def govern_sources(
    sources: dict[str, tuple[str, list[str]]],
    config: GovernanceConfig,
    folder: Path,
    *,
    skip_bad: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Scan each BEIR folder behind ``sources`` (role → (path, splits)) once, reports in
    ``folder/governance/``; with redaction on, redacted copies in ``folder/redacted/<role>`` laid
    out like the originals, and the paths later stages must read instead."""
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
    reports = {}
    for root, splits in jobs.items():
        name = "-".join(target[root].relative_to(folder / "redacted").parts)
        out = folder / "governance" / name
        report = govern(root, splits, config, out, skip_bad=skip_bad, progress=progress)
        if config.redact:
            target[root].parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(out / "data"), str(target[root]))
        reports[name] = {k: report[k] for k in ("scanned", "found", "types", "redaction")}
    return {
        "redacted": config.redact,
        "data": paths if config.redact else {r: p for r, (p, _) in sources.items()},
        "reports": reports,
    }
