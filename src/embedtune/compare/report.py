"""The comparison as one self-contained HTML page (``report.html``): the matrix, quality with
intervals, quality against cost, learning curves, per-query wins and losses, training and dev
curves, forgetting, the EWC weight chosen on dev, and the corpus's fragmentation."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from embedtune.compare.matrix import METRICS, CellResult, Matrix, render_table_rows
from embedtune.figures import (
    Interval,
    Point,
    Section,
    curves,
    fragmentation,
    histories,
    interval_dots,
    page,
    scatter,
    signed_bars,
    table,
    win_loss,
)

__all__ = ["query_outcomes", "render_compare_html"]

_TIE = 1e-9
# the systems each cell's dense max-passage ranking is compared with, query by query
_AGAINST = ("base-maxp", "bm25")


def _interval(cell: CellResult, system: str, metric: str, label: str) -> Interval | None:
    score = cell.scores.get(system, {}).get(metric)
    return None if score is None else Interval(label, score.value, score.low, score.high)


def _whole(matrix: Matrix) -> list[CellResult]:
    return [c for c in matrix.cells if c.fraction == 1]


def _references(cell: CellResult, metric: str, names: tuple[str, ...]) -> dict[str, float]:
    return {n: cell.baselines[n][metric] for n in names if metric in cell.baselines.get(n, {})}


def _quality(matrix: Matrix) -> Section:
    cells = _whole(matrix)
    if not cells:
        return Section("Quality", "")
    panels: dict[str, list[Interval]] = {}
    references: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        items = [i for c in cells if (i := _interval(c, "tuned-maxp", metric, c.name))]
        if items:
            panels[f"dense {metric}"] = items
            references[f"dense {metric}"] = _references(cells[0], metric, ("bm25", "base-maxp"))
    hybrid = [i for c in cells if (i := _interval(c, "tuned-hybrid", "ndcg@10", c.name))]
    if hybrid:
        panels["hybrid ndcg@10"] = hybrid
        references["hybrid ndcg@10"] = _references(cells[0], "ndcg@10", ("bm25", "base-hybrid"))
    if not panels:  # the evaluation left the tuned systems out (eval.systems)
        return Section("Quality with 95% intervals", "")
    figure = interval_dots(
        panels,
        references=references,
        caption="Each approach's test score (dense: documents scored by their best passage; "
        "hybrid: fused with BM25) with its 95% bootstrap interval over queries; the lines are "
        "the base model and BM25 on the same queries.",
    )
    return Section("Quality with 95% intervals", figure)


def _cost(matrix: Matrix) -> Section:
    cells = _whole(matrix)
    if not cells:
        return Section("Quality against cost", "")
    references = _references(cells[0], "ndcg@10", ("bm25", "base-maxp"))

    def points(x: Any) -> list[Point]:
        out = []
        for cell in cells:
            score = cell.scores.get("tuned-maxp", {}).get("ndcg@10")
            if score is not None:
                out.append(Point(cell.name, x(cell), score.value, score.low, score.high))
        return out

    body = scatter(
        points(lambda c: c.wall_seconds / 60),
        xlabel="wall time of the cell, minutes (log; pairs, training, test evaluation)",
        ylabel="dense nDCG@10",
        logx=True,
        references=references,
        caption="Quality against time. Pairs are built once per pairs recipe and shared, so "
        "the first cell to use them also carries their cost; a cell whose setting is chosen "
        "on dev (full+ewc) carries one training per value tried. Times are on the machine "
        "the comparison ran on.",
    ) + scatter(
        points(lambda c: 100 * c.trainable_parameters / max(c.parameters, 1)),
        xlabel="weights trained, % of the model (log)",
        xmax=150,
        ylabel="dense nDCG@10",
        logx=True,
        references=references,
        caption="Quality against the share of the model's weights each approach trains.",
    )
    return Section("Quality against cost", body)


def _learning_curves(matrix: Matrix) -> Section:
    series: dict[str, list[Point]] = {}
    for cell in matrix.cells:
        if cell.approach not in matrix.learning_curve:
            continue
        score = cell.scores.get("tuned-maxp", {}).get("ndcg@10")
        if score is not None:
            point = Point(cell.name, cell.fraction, score.value, score.low, score.high)
            series.setdefault(cell.approach, []).append(point)
    if not series:
        return Section("How many labels", "")
    for points in series.values():
        points.sort(key=lambda p: p.x)
    first = matrix.cells[0]
    body = curves(
        series,
        xlabel="share of the labeled training queries (log 2)",
        ylabel="dense nDCG@10",
        logx=True,
        references=_references(first, "ndcg@10", ("bm25", "base-maxp")),
        caption="Test nDCG@10 by the share of training queries each approach learned from "
        "(same dev and test queries); bands are 95% intervals.",
    )
    pairs = {c.name: c.pairs for c in matrix.cells if c.approach in series}
    note = "<p>Pairs per cell: " + escape(", ".join(f"{k} {v}" for k, v in pairs.items()))
    return Section("How many labels (learning curves)", body + note + "</p>")


def query_outcomes(folder: Path, cell: str) -> list[tuple[str, int, int, int]]:
    """A cell's dense ranking against the base model's and BM25's, query by query: the
    (label, won, tied, lost) rows, from its test evaluation's per-query scores."""
    from embedtune.evaluate.config import PER_QUERY_FILE

    path = folder / "cells" / cell / "eval" / PER_QUERY_FILE
    if not path.is_file():
        return []
    values = json.loads(path.read_text(encoding="utf-8"))
    scores = {
        s: values[s]["ndcg@10"] for s in ("tuned-maxp", *_AGAINST) if "ndcg@10" in values.get(s, {})
    }
    if "tuned-maxp" not in scores:
        return []
    rows = []
    for other in (s for s in _AGAINST if s in scores):
        diffs = [v - scores[other][q] for q, v in scores["tuned-maxp"].items()]
        won = sum(d > _TIE for d in diffs)
        lost = sum(d < -_TIE for d in diffs)
        rows.append((f"{cell} vs {other}", won, len(diffs) - won - lost, lost))
    return rows


def _per_query(matrix: Matrix, folder: Path) -> Section:
    rows = [row for c in _whole(matrix) for row in query_outcomes(folder, c.name)]
    if not rows:
        return Section("Per query", "")
    body = win_loss(
        rows,
        caption="Test queries on which each approach's dense ranking scores a higher, equal "
        "or lower nDCG@10 than the base model's and BM25's (counts in the bars).",
    )
    return Section("Per-query wins and losses", body)


def _training(matrix: Matrix) -> Section:
    logs = {_dev_name(c): c.history for c in _whole(matrix) if c.history}
    if not logs:
        return Section("Training and dev curves", "")
    body = histories(
        logs,
        caption="Left: the training loss as logged; right: dev nDCG@10 at each evaluation "
        "(the checkpoint kept is the best on dev). A flat or falling dev curve is "
        "over-training on these pairs. A label-free cell is scored on its own pseudo-dev "
        "split (queries made from held-out documents), not on the labeled dev queries: "
        "its dev numbers do not compare with the others'.",
    )
    rows = [
        (
            _dev_name(c),
            f"{c.dev.get('base', {}).get('ndcg@10', float('nan')):.3f}",
            f"{c.dev.get('bm25', {}).get('ndcg@10', float('nan')):.3f}",
            f"{c.dev.get('tuned', {}).get('ndcg@10', float('nan')):.3f}",
            c.steps,
        )
        for c in _whole(matrix)
        if c.dev
    ]
    head = ["cell", "dev base", "dev bm25", "dev tuned", "steps"]
    return Section("Training and dev curves", body + table(head, rows))


def _dev_name(cell: CellResult) -> str:
    """A cell's name where its dev scores are shown: a label-free cell's are on pseudo-dev."""
    return f"{cell.name} (pseudo-dev)" if cell.approach == "weak" else cell.name


def _probe_name(data: str) -> str:
    """A probe's short name: its folder, and the one above when the folder is a split's."""
    path = Path(data)
    return path.name if path.name not in {"test", "dev", "train"} else "/".join(path.parts[-2:])


def _forgetting(matrix: Matrix) -> Section:
    items = [
        (
            f"{c.name} · {_probe_name(p.data)}",
            p.change,
            "" if p.p is None else f"p {p.p:.3f}" + (" *" if p.p < 0.05 else ""),
        )
        for c in _whole(matrix)
        for p in c.forgetting
    ]
    if not items:
        return Section("Forgetting", "")
    body = signed_bars(
        items,
        xlabel="probe nDCG@10 change (tuned − base)",
        caption="What each approach forgot: nDCG@10 on general collections no cell trains "
        "on, tuned minus base; p from a paired randomization test over the probe's queries "
        "(* below 0.05). Left of zero is forgetting.",
    )
    return Section("Forgetting (general collections)", body)


def _grids(matrix: Matrix) -> Section:
    rows = [
        (
            c.name,
            c.grid_key or "",
            f"{p.value:g}",
            f"{p.dev_ndcg:.4f}",
            "kept" if p.value == c.grid_choice else "",
        )
        for c in matrix.cells
        for p in c.grid
    ]
    if not rows:
        return Section("Chosen on dev", "")
    note = (
        "<p>Dev is in-domain: it sees what a stronger pull towards the base costs, not what "
        "it saves, so the strongest value within 0.01 dev nDCG@10 of the best is kept.</p>"
    )
    head = ["cell", "key", "value", "dev nDCG@10", ""]
    return Section("Chosen on dev", table(head, rows, numeric=2) + note)


def _analysis(folder: Path) -> Section:
    path = folder / "analysis" / "analysis.json"
    if not path.is_file():
        return Section("The corpus and the tokenizer", "")
    analysis = json.loads(path.read_text(encoding="utf-8"))
    corpus, reference = analysis.get("corpus", {}), analysis.get("reference", {})
    figure = fragmentation(
        analysis,
        caption=f"Words of the training corpus by the number of word pieces the base "
        f"tokenizer splits them into: {corpus.get('tokens_per_word', 0):.2f} tokens per word "
        f"against {reference.get('tokens_per_word', 0):.2f} in general English.",
    )
    terms = [
        (t["term"], " ".join(t["tokens"]), t["count"]) for t in analysis.get("top_terms", [])[:12]
    ]
    body = figure + table(["costliest domain term", "pieces", "count"], terms, numeric=2)
    return Section("The corpus and the tokenizer", body)


def _summary(matrix: Matrix) -> Section:
    verdicts = "".join(f"<li>{escape(v)}</li>" for v in matrix.verdicts.values())
    missing = (
        f"<p class=bad>Not finished: {escape(', '.join(matrix.not_finished))}</p>"
        if matrix.not_finished
        else ""
    )
    return Section("Verdicts", f"<ul>{verdicts}</ul>{missing}")


def _matrix_table(matrix: Matrix) -> Section:
    head, rows = render_table_rows(matrix)
    notes = "".join(f"<li>{escape(n)}</li>" for n in matrix.notes)
    legend = (
        "<p>± half-width of the 95% bootstrap interval; † significantly different from BM25, "
        "‡ from the base model (paired randomization test, p &lt; 0.05).</p>"
    )
    return Section("The matrix", table(head, rows) + legend + f"<ul class=notes>{notes}</ul>")


def render_compare_html(matrix: Matrix, folder: Path) -> str:
    """The comparison page (``report.html``) from the matrix and the cells' folders."""
    data = matrix.data
    queries = matrix.cells[0].evaluated_queries if matrix.cells else 0
    sections = [
        _summary(matrix),
        _quality(matrix),
        _cost(matrix),
        _learning_curves(matrix),
        _per_query(matrix, folder),
        _forgetting(matrix),
        _training(matrix),
        _grids(matrix),
        _matrix_table(matrix),
        _analysis(folder),
    ]
    return page(
        "Which adaptation approach, on this data?",
        f"Trained on {data.get('train')} ({data.get('train_split')}), tested on "
        f"{data.get('test')} ({data.get('test_split')}): {queries} judged test queries.",
        sections,
    )
