"""The guide's claims about domain fine-tuning, checked against one `embedtune compare` folder.

    python bench/compare_claims.py runs/compare-finance10k [--model base]

Prints Markdown for BENCHMARKS.md. Every sentence is computed from the folder's finished cells
(cell.json and the per-query nDCG@10 in eval/per_query.json; a folder restored by
compare_snapshot.py has both) and the test queries; nothing is typed in by hand. The claims,
as every guide's table states them (and first the table itself, each entry measured):

1. "LoRA lands within 2–5 points of full fine-tuning": full − lora in nDCG@10 points (dense
   and hybrid), with a paired randomization test over the test queries, and the same at each
   learning-curve fraction both approaches ran.
2. "Adapters forget least": each approach's probe nDCG@10 change (forgetting) with its p; the
   claim can only be borne out where something forgets measurably.
3. "MLM pretraining helps rare terms": mlm (MLM, then contrastive) against full on the test
   queries holding a rare fragmented term (a word the base tokenizer splits into 3+ pieces and
   general English rarely uses: the analysis stage's rule, Zipf < 3.5) and on the others.
4. "Weak labels suit a large unlabeled corpus": the label-free cell against the base model and
   BM25, and which share of the labels the labeled learning curve needs to match it.
"""

from __future__ import annotations

import argparse
import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from embedtune.compare.config import CellSpec
from embedtune.compare.matrix import CellResult, Matrix, build_matrix, dense_gain
from embedtune.corpus.load import load_beir
from embedtune.corpus.vocab import count_words, fragmented_terms, is_uncased, tokenize_words
from embedtune.retrieval.stats import SIGNIFICANCE_LEVEL, randomization_test

ADAPTERS = ("lora", "ia3", "bottleneck")
RARE_ZIPF = 3.5  # analyze's default general_zipf


def per_query(folder: Path, cell: str) -> dict[str, float]:
    values = json.loads((folder / "cells" / cell / "eval" / "per_query.json").read_text())
    return values["tuned-maxp"]["ndcg@10"]


def paired(a: dict[str, float], b: dict[str, float], queries: list[str]) -> tuple[float, float]:
    """Mean of a − b over ``queries`` in nDCG points, and the paired test's p."""
    x = np.array([a[q] for q in queries])
    y = np.array([b[q] for q in queries])
    return float((x - y).mean() * 100), randomization_test(x, y)


def _p(p: float) -> str:
    shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    return shown + (" (significant)" if p < SIGNIFICANCE_LEVEL else "")


def lora_vs_full(m: Matrix, folder: Path) -> list[str]:
    cells = {c.name: c for c in m.cells}
    lines = []
    for suffix in ["", *(f"@{f}" for f in _fractions(m))]:
        full, lora = cells.get(f"full{suffix}"), cells.get(f"lora{suffix}")
        if full is None or lora is None:
            continue
        a, b = per_query(folder, full.name), per_query(folder, lora.name)
        gap, p = paired(a, b, sorted(a))
        hybrid = (
            full.scores["tuned-hybrid"]["ndcg@10"].value
            - lora.scores["tuned-hybrid"]["ndcg@10"].value
        ) * 100
        within = "within" if 2 <= gap <= 5 else ("closer than" if gap < 2 else "further than")
        lines.append(
            f"- {full.name} vs {lora.name} ({full.pairs} pairs): full − lora = {gap:+.1f} "
            f"points dense ({_p(p)}), {hybrid:+.1f} hybrid — {within} 2–5 points."
        )
    return lines or ["- full and lora not both measured."]


def _fractions(m: Matrix) -> list[str]:
    found = {c.name.split("@", 1)[1] for c in m.cells if "@" in c.name}
    return sorted(found, key=float)


def forgetting(m: Matrix) -> list[str]:
    lines, forgot = [], []
    for c in m.cells:
        if "@" in c.name:
            continue
        for probe in c.forgetting:
            name = Path(probe.data).name
            tested = "not tested" if probe.p is None else _p(probe.p)
            lines.append(f"- {c.name}: {name} {probe.change * 100:+.1f} points ({tested})")
            if probe.p is not None and probe.p < SIGNIFICANCE_LEVEL and probe.change < 0:
                forgot.append(c.name)
    if not forgot:
        verdict = "No approach forgets significantly, so the claim cannot be told apart here."
    else:
        adapters = [c for c in forgot if c in ADAPTERS]
        verdict = f"Significant forgetting: {', '.join(forgot)}" + (
            "; adapters among them." if adapters else "; no adapter among them."
        )
    return [*lines, verdict, *_forgetting_against_full(m)]


def _forgetting_against_full(m: Matrix) -> list[str]:
    """Each adapter's forgetting against full's, tested over the probe queries: the base
    model's scores are the same for both, so the difference of the tuned scores is the
    difference of the changes."""
    cells = {c.name: c for c in m.cells}
    full = cells.get("full")
    if full is None:
        return []
    lines = []
    for name in ADAPTERS:
        cell = cells.get(name)
        if cell is None:
            continue
        for mine, theirs in zip(cell.forgetting, full.forgetting, strict=False):
            probe = Path(mine.data).name
            lacking = [n for n, x in ((name, mine), ("full", theirs)) if not x.tuned_per_query]
            if lacking:
                lines.append(
                    f"- {name} vs full on {probe}: not tested ({' and '.join(lacking)} ran before "
                    "cells kept per-query probe scores)"
                )
                continue
            gap, p = paired(
                mine.tuned_per_query, theirs.tuned_per_query, sorted(mine.tuned_per_query)
            )
            lines.append(
                f"- {name} − full on {probe}: {gap:+.1f} points ({_p(p)}; positive: "
                f"{name} forgets less)"
            )
    return lines


def rare_term_queries(data: str, split: str, model: str) -> set[str]:
    """The test queries holding a rare fragmented word."""
    from transformers import AutoTokenizer

    from embedtune.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model).path)
    dataset = load_beir(data, split, skip_bad=True)
    lower = is_uncased(tokenizer)
    rare = set()
    for qid, text in dataset.queries.items():
        counts = count_words([text.lower() if lower else text])
        ids = tokenize_words(tokenizer, list(counts))
        terms, _ = fragmented_terms(counts, ids, 1, RARE_ZIPF)
        if terms:
            rare.add(qid)
    return rare


def mlm_rare_terms(m: Matrix, folder: Path, model: str) -> list[str]:
    names = {c.name for c in m.cells}
    if not {"mlm", "full"} <= names:
        return ["- mlm or full not measured."]
    a, b = per_query(folder, "mlm"), per_query(folder, "full")
    rare = rare_term_queries(m.data["test"], m.data.get("test_split"), model)
    lines = []
    for label, queries in (
        ("with a rare fragmented term", sorted(q for q in a if q in rare)),
        ("without", sorted(q for q in a if q not in rare)),
    ):
        gap, p = paired(a, b, queries)
        lines.append(
            f"- {len(queries)} test queries {label}: mlm − full = {gap:+.1f} points ({_p(p)})"
        )
    return lines


def weak_labels(m: Matrix) -> list[str]:
    cells = {c.name: c for c in m.cells}
    weak = cells.get("weak")
    if weak is None:
        return ["- weak not measured."]
    score = weak.scores["tuned-maxp"]["ndcg@10"]
    lines = [
        f"- weak (no labels): dense nDCG@10 {score.value:.3f}; vs base "
        f"{_sig(score.vs_base)}; vs BM25 {_sig(score.vs_bm25)}."
    ]
    for approach, curve in m.learning_curve.items():
        points = sorted((float(f), v) for f, v in curve.items())
        matched = [f for f, v in points if v >= score.value]
        if not matched:
            lines.append(f"- weak lands above every point of {approach}'s curve.")
            continue
        fewest = min(matched)
        rises = all(a[1] <= b[1] for a, b in pairwise(points))
        lines.append(
            f"- {approach} matches or beats weak from {fewest:g} of the labels"
            + ("" if fewest > points[0][0] else " (its fewest measured)")
            + ("" if rises else f"; {approach}'s curve is not monotone, so read it with care")
            + "."
        )
    return lines


def _labels(c: CellResult, cells: dict[str, CellResult]) -> str:
    """The labels an approach used, and for a learning-curve approach the fewest with which
    it already beat the base model significantly."""
    if c.approach == "weak":
        return "none (pseudo-queries from the corpus)"
    curve = sorted(
        (x for x in cells.values() if x.approach == c.approach and x.fraction < 1),
        key=lambda x: x.fraction,
    )
    enough = next((x for x in [*curve, c] if _beats_base(x)), None)
    if not curve:
        return f"{c.pairs} pairs"
    if enough is None:
        return f"{c.pairs} pairs; never beats base significantly"
    return f"{c.pairs} pairs; beats base from {enough.pairs} ({enough.fraction:g})"


def _beats_base(c: CellResult) -> bool:
    test = c.scores["tuned-maxp"]["ndcg@10"].vs_base
    return test is not None and test.significant and test.diff > 0


def guide_table(m: Matrix) -> list[str]:
    """The guide's table (labeled data required, compute cost, forgetting risk, best fit)
    with every entry measured: one row per approach at all of its labels."""
    cells = {c.name: c for c in m.cells}
    full = cells.get("full")
    full_gain = dense_gain(full) if full else None
    rows = [
        "| approach | labels used | dense nDCG@10 (vs base) | share of full's gain | "
        "trainable | training s / cell s | peak RSS GB | probe Δ (p) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in m.cells:
        if c.fraction < 1:
            continue
        score = c.scores["tuned-maxp"]["ndcg@10"]
        gain, share = dense_gain(c), "—"
        if c.name != "full" and gain is not None and full_gain is not None and full_gain > 0:
            share = f"{gain / full_gain:.0%}"
        probe = ", ".join(
            f"{x.change * 100:+.1f} ({'p < 0.001' if x.p < 0.001 else f'{x.p:.3f}'})"
            if x.p is not None
            else f"{x.change * 100:+.1f} (not tested)"
            for x in c.forgetting
        )
        rows.append(
            f"| {c.name} | {_labels(c, cells)} | {score.value:.3f} ({_short(score.vs_base)}) | "
            f"{share} | {c.trainable_parameters / c.parameters:.1%} | "
            f"{c.train_seconds:,.0f} / {c.wall_seconds:,.0f} | {c.peak_rss_mb / 1024:.1f} | "
            f"{probe or '—'} |"
        )
    return rows


def metrics_table(m: Matrix) -> list[str]:
    """Every approach at all of its labels on the four metrics (dense; hybrid nDCG@10 beside),
    each ± half its 95% bootstrap interval, and the dev score training kept."""
    rows = [
        "| approach | nDCG@10 | MRR@10 | Recall@100 | MAP@100 | hybrid nDCG@10 (vs base hybrid) "
        "| dev nDCG@10 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in m.cells:
        if c.fraction < 1:
            continue
        dense = c.scores["tuned-maxp"]
        hybrid = c.scores["tuned-hybrid"]["ndcg@10"]
        dev = c.dev.get("tuned", {}).get("ndcg@10") if c.dev else None
        values = " | ".join(
            f"{dense[k].value:.3f} ± {(dense[k].high - dense[k].low) / 2:.3f}"
            for k in ("ndcg@10", "mrr@10", "recall@100", "map@100")
        )
        shown = (
            "—" if dev is None else f"{dev:.3f}" + (" (pseudo-dev)" if c.approach == "weak" else "")
        )
        rows.append(
            f"| {c.name} | {values} | {hybrid.value:.3f} ({_short(hybrid.vs_base)}) | {shown} |"
        )
    base = m.cells[0].baselines if m.cells else {}
    rows.append("")
    rows.append(
        "Baselines (test): "
        + ", ".join(f"{k} {v['ndcg@10']:.3f}" for k, v in base.items() if "ndcg@10" in v)
        + " nDCG@10."
    )
    return rows


def learning_table(m: Matrix) -> list[str]:
    """Quality against the share of labeled training queries, per learning-curve approach
    (same dev, same test): dense and hybrid nDCG@10 with the test against the base model's."""
    curve = sorted(
        (c for c in m.cells if c.approach in m.learning_curve),
        key=lambda c: (c.approach, c.fraction),
    )
    if not curve:
        return ["- no learning curve measured."]
    rows = [
        "| approach | share of training queries | pairs | steps | dense nDCG@10 (vs base) | "
        "hybrid nDCG@10 (vs base hybrid) | dev nDCG@10 | training s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in curve:
        dense, hybrid = c.scores["tuned-maxp"]["ndcg@10"], c.scores["tuned-hybrid"]["ndcg@10"]
        dev = c.dev.get("tuned", {}).get("ndcg@10") if c.dev else None
        rows.append(
            f"| {c.approach} | {c.fraction:g} | {c.pairs} | {c.steps} | "
            f"{dense.value:.3f} ({_short(dense.vs_base)}) | "
            f"{hybrid.value:.3f} ({_short(hybrid.vs_base)}) | "
            f"{'—' if dev is None else f'{dev:.3f}'} | {c.train_seconds:,.0f} |"
        )
    return rows


def finished(folder: Path) -> Matrix:
    """The matrix of the cells finished so far (``matrix.json`` is written only when a
    ``compare`` command ends; a running comparison already has more)."""
    done = sorted(folder.glob("cells/*/cell.json"))
    cells = [CellResult.model_validate_json(p.read_text()) for p in done]
    spec = CellSpec.model_validate_json((done[0].parent / "spec.json").read_text())
    return build_matrix(cells, [], spec.data.model_dump(mode="json"))


def _short(s: Any) -> str:
    if s is None:
        return "not tested"
    p = "p < 0.001" if s.p < 0.001 else f"p {s.p:.3f}"
    return f"{s.diff * 100:+.1f}, {p}"


def _sig(s: Any) -> str:
    if s is None:
        return "not tested"
    return f"{s.diff * 100:+.1f} points ({_p(s.p)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument(
        "--model", help="the base model (its tokenizer); default: the one the cells trained"
    )
    args = parser.parse_args()
    m = finished(args.folder)
    if args.model is None:
        spec = CellSpec.model_validate_json(next(args.folder.glob("cells/*/spec.json")).read_text())
        args.model = str(spec.recipe.get("base_model", "base"))
    total = sum(c.wall_seconds for c in m.cells)
    training = sum(c.train_seconds for c in m.cells)
    print(
        f"{len(m.cells)} cells finished; their processes ran {total / 3600:.1f} h in all "
        f"({training / 3600:.1f} h of it training), one after another.\n"
    )
    for title, lines in (
        ("The guide's table, measured", guide_table(m)),
        ("Every metric, dense (hybrid nDCG@10 beside)", metrics_table(m)),
        ("Learning curves: how many labels", learning_table(m)),
        ("LoRA within 2–5 points of full", lora_vs_full(m, args.folder)),
        ("Adapters forget least", forgetting(m)),
        ("MLM helps rare terms", mlm_rare_terms(m, args.folder, args.model)),
        ("Weak labels for large unlabeled corpora", weak_labels(m)),
    ):
        print(f"**{title}**\n")
        print("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
