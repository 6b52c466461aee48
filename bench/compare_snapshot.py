"""Carry an `embedtune compare` folder's finished cells from one machine (or session) to the next.

A full matrix takes longer on 2 CPU cores than one working session, and the run folder (models,
checkpoints, run files: gigabytes) does not travel. What the matrix and the report read from a
finished cell is small: its ``spec.json`` (the settings it was made with, checked on resume),
its ``cell.json`` (every number of the matrix) and the per-query nDCG@10 of its test evaluation
(the report's wins and losses); and the comparison's ``analysis/`` (the report's corpus
figures, tens of kilobytes). ``save`` copies those into a folder kept in git; ``restore``
puts them back into a run folder, where ``embedtune compare`` counts the cells as done and runs
only the others.

    python bench/compare_snapshot.py save runs/compare-finance10k bench/results/finance10k
    python bench/compare_snapshot.py restore bench/results/finance10k runs/compare-finance10k

A restored cell keeps the wall time and memory measured where it ran; BENCHMARKS.md says which
session measured which cells. The comparison's shared pairs (``pairs/<key>/``, built by the
first cell that needs them) travel too, when small: without them the next session's first cell
would build them again, and its wall time would hold that work where its predecessors' did not.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

# what the compare report reads from per_query.json (compare/report.py::query_outcomes)
_SYSTEMS = ("tuned-maxp", "base-maxp", "bm25")
_METRIC = "ndcg@10"


_PAIRS_LIMIT_MB = 50  # a pairs store larger than this stays behind (git is not for data)


def _copy_pairs(source: Path, target: Path) -> None:
    """Each shared pairs store of ``source`` that ``target`` lacks (files only: they are
    flat), when it is small enough to keep."""
    for store in sorted((source / "pairs").glob("*")):
        if not store.is_dir() or (target / "pairs" / store.name).exists():
            continue
        size = sum(f.stat().st_size for f in store.iterdir() if f.is_file())
        if size > _PAIRS_LIMIT_MB * 1e6:
            print(f"pairs/{store.name}: {size / 1e6:.0f} MB, not copied")
            continue
        partial = target / "pairs" / f".{store.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for file in store.iterdir():
            if file.is_file():
                shutil.copy2(file, partial / file.name)
        partial.rename(target / "pairs" / store.name)
        print(f"copied pairs/{store.name}")


def _finished(folder: Path) -> list[Path]:
    return sorted(p.parent for p in (folder / "cells").glob("*/cell.json"))


def save(run: Path, keep: Path) -> None:
    if (run / "analysis" / "analysis.json").is_file():
        shutil.copytree(run / "analysis", keep / "analysis", dirs_exist_ok=True)
    _copy_pairs(run, keep)
    for cell in _finished(run):
        target = keep / "cells" / cell.name
        (target / "eval").mkdir(parents=True, exist_ok=True)
        for name in ("spec.json", "cell.json"):
            shutil.copy2(cell / name, target / name)
        per_query = cell / "eval" / "per_query.json"
        if per_query.is_file():
            values = json.loads(per_query.read_text(encoding="utf-8"))
            kept = {
                s: {_METRIC: {q: round(v, 6) for q, v in values[s][_METRIC].items()}}
                for s in _SYSTEMS
                if _METRIC in values.get(s, {})
            }
            (target / "eval" / "per_query.json").write_text(json.dumps(kept), encoding="utf-8")
        print(f"saved {cell.name}")


def restore(keep: Path, run: Path) -> None:
    if (keep / "analysis").is_dir() and not (run / "analysis" / "analysis.json").is_file():
        shutil.copytree(keep / "analysis", run / "analysis", dirs_exist_ok=True)
    _copy_pairs(keep, run)
    for cell in _finished(keep):
        target = run / "cells" / cell.name
        if (target / "cell.json").is_file():
            print(f"{cell.name}: already in {run}, kept")
            continue
        if target.exists():  # an unfinished attempt: the finished one kept here replaces it
            shutil.rmtree(target)
        shutil.copytree(cell, target)
        print(f"restored {cell.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["save", "restore"])
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path)
    args = parser.parse_args()
    if not (args.source / "cells").is_dir():
        raise SystemExit(f"error: {args.source}/cells: no such folder")
    (save if args.action == "save" else restore)(args.source, args.target)


if __name__ == "__main__":
    main()
