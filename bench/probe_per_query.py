"""Add the per-query probe scores to compare cells that finished before they were kept.

A cell's forgetting record holds the tuned model's nDCG@10 on each probe collection; since
2026-12-01 it also keeps that score per probe query (``forgetting[].tuned_per_query``), which
is what lets two approaches' forgetting be tested against each other (the base model's scores
are the same for both and cancel). Cells finished before then have only the mean. This
measures the per-query scores again from each such cell's saved model, the same way training
did (max-passage over the whole probe corpus, the model's own passage settings and prompts),
checks that their mean is the recorded nDCG@10 to the recorded four decimals (else it stops:
the model is not the one that was measured), and writes them into ``cell.json``.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/probe_per_query.py runs/compare-mediqa \\
        --cells full,lora,layers,ia3

Then ``compare_snapshot.py save`` carries the updated cells to ``bench/results``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from embedtune.compare.config import RESULT_FILE, SPEC_FILE, CellSpec
from embedtune.compare.matrix import CellResult
from embedtune.io import write_json
from embedtune.model_folder import read_settings
from embedtune.models import load_model, resolve_model
from embedtune.train.config import ProbeSet
from embedtune.train.data import DevSet
from embedtune.train.forgetting import load_probes


def fill(cell: Path) -> None:
    result = CellResult.model_validate_json((cell / RESULT_FILE).read_text(encoding="utf-8"))
    spec = CellSpec.model_validate_json((cell / SPEC_FILE).read_text(encoding="utf-8"))
    probes = [ProbeSet.model_validate(p) for p in spec.recipe.get("probes", [])]
    settings = read_settings(cell / "model")
    if settings is None:
        raise SystemExit(f"{cell / 'model'}: no embedtune model folder")
    model = load_model(resolve_model(str(cell / "model")), device="cpu")
    prompts = settings.prompts
    changes = []
    for probe, data, change in zip(probes, load_probes(probes), result.forgetting, strict=True):
        if change.tuned_per_query:
            changes.append(change)
            continue
        ids = list(data.judged_queries())
        dev = DevSet.from_dataset(data, ids, model.tokenizer, settings.passages)
        q, d = prompts.query or "", prompts.document or ""
        run = dev.search(model, query_prompt=q, doc_prompt=d)
        scores = dev.per_query(run)
        mean = float(np.mean(list(scores.values())))
        if round(mean, 4) != change.tuned:
            raise SystemExit(
                f"{cell.name} on {probe.data}: nDCG@10 {mean:.4f} now, {change.tuned} recorded; "
                "not the model that was measured, nothing written"
            )
        print(f"{cell.name} on {probe.data}: {len(scores)} queries, mean {mean:.4f} = recorded")
        per_query = {q: round(v, 4) for q, v in scores.items()}
        changes.append(change.model_copy(update={"tuned_per_query": per_query}))
    write_json(cell / RESULT_FILE, result.model_copy(update={"forgetting": changes}).model_dump())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an embedtune compare output folder")
    parser.add_argument("--cells", required=True, help="comma list of cell names")
    args = parser.parse_args()
    for name in args.cells.split(","):
        fill(args.folder / "cells" / name)


if __name__ == "__main__":
    main()
