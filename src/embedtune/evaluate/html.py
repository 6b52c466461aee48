"""The evaluation as one self-contained HTML page (``report.html``): the scores with their
intervals as bars, the significance tests, and the per-query wins and losses of each tuned
system against the base model and BM25."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from embedtune.evaluate.report import comparison_base, significance_marks
from embedtune.figures import (
    Interval,
    Section,
    diff_profile,
    interval_dots,
    page,
    table,
    win_loss,
)

__all__ = ["per_query_sections", "render_html", "score_sections", "wins_ties_losses"]

_TIE = 1e-9


def wins_ties_losses(a: dict[str, float], b: dict[str, float]) -> tuple[int, int, int]:
    """How many queries ``a`` scores above, equal to and below ``b`` (same query ids)."""
    diffs = [a[q] - b[q] for q in a if q in b]
    won = sum(d > _TIE for d in diffs)
    lost = sum(d < -_TIE for d in diffs)
    return won, len(diffs) - won - lost, lost


def score_sections(report: dict[str, Any], highlight: tuple[str, ...] = ()) -> list[Section]:
    """The score table (± interval, significance marks) and one bar figure per metric."""
    systems = list(report["systems"])
    metrics = list(next(iter(report["systems"].values())))
    rows = []
    for system in systems:
        cells = [system]
        for metric in metrics:
            value = report["systems"][system][metric]
            lo, hi = report["intervals"][system][metric]
            cells.append(
                f"{value:.3f}{significance_marks(report, system, metric)} ±{(hi - lo) / 2:.3f}"
            )
        rows.append(cells)
    note = (
        "<p>† significantly different from bm25, ‡ from the base model "
        f"({escape(report['tests']['significance'])}); ± half-width of the 95% interval "
        f"({escape(report['tests']['intervals'])}).</p>"
    )
    panels = {
        metric: [
            Interval(s, report["systems"][s][metric], *report["intervals"][s][metric])
            for s in systems
        ]
        for metric in metrics
    }
    figure = interval_dots(
        panels,
        highlight=highlight or tuple(s for s in systems if s.startswith("tuned")),
        caption="Each system's mean with its 95% bootstrap interval over queries "
        "(tuned systems as diamonds).",
    )
    return [
        Section("Scores", table(["system", *metrics], rows) + note),
        Section("Scores with intervals", figure),
    ]


def per_query_sections(
    per_query: dict[str, dict[str, dict[str, float]]], metric: str = "ndcg@10"
) -> list[Section]:
    """Each tuned system against its base-model system and BM25, query by query (on
    ``metric``, or the first metric evaluated when that one was not)."""
    systems = list(per_query)
    measured = list(next(iter(per_query.values()), {}))
    if metric not in measured:
        if not measured:
            return []
        metric = measured[0]
    rows: list[tuple[str, int, int, int]] = []
    diffs: dict[str, Sequence[float]] = {}
    for system in (s for s in systems if s.startswith("tuned")):
        mine = per_query[system][metric]
        for other in (comparison_base(system, systems), "bm25"):
            if other is None or other not in per_query:
                continue
            theirs = per_query[other][metric]
            rows.append((f"{system} vs {other}", *wins_ties_losses(mine, theirs)))
            diffs[f"{system} − {other}"] = [mine[q] - theirs[q] for q in mine if q in theirs]
    if not rows:
        return []
    body = win_loss(
        rows,
        caption=f"Queries on which each tuned system scores a higher, equal or lower {metric} "
        "than the system it is compared with (counts in the bars).",
    ) + diff_profile(
        diffs,
        ylabel=f"{metric} difference",
        caption="The per-query differences, sorted: the area above zero is what tuning "
        "gained, below zero what it lost.",
    )
    return [Section(f"Per query ({metric})", body)]


def _settings(report: dict[str, Any]) -> Section:
    data = report["data"]
    rows = [
        ("data", f"{report['config']['data']} ({data['split']})"),
        ("judged queries", data["evaluated_queries"]),
        ("documents", data["counts"]["documents"]),
        *(
            (f"model: {k}", v.get("name", v) if isinstance(v, dict) else v)
            for k, v in report["models"].items()
        ),
        ("fusion", report.get("fusion", {}).get("method", "")),
        ("seed", report.get("seed", "")),
    ]
    return Section("Settings", table(["", "value"], rows, numeric=2))


def render_html(report: dict[str, Any], per_query: dict[str, dict[str, dict[str, float]]]) -> str:
    """The evaluation page: scores, bars, per-query wins and losses, warnings, settings."""
    warnings = report.get("warnings", [])
    sections = [
        *score_sections(report),
        *per_query_sections(per_query),
        Section(
            "Warnings",
            "".join(f"<p class=bad>{escape(w)}</p>" for w in warnings),
        ),
        _settings(report),
    ]
    data = report["data"]
    return page(
        "Retrieval evaluation",
        f"{report['config']['data']} ({data['split']}): {data['evaluated_queries']} judged queries",
        sections,
    )
