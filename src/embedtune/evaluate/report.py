"""The human-readable evaluation table."""

from __future__ import annotations

from typing import Any

_MATCHING_BASE = {"tuned": "base", "tuned-maxp": "base-maxp", "tuned-hybrid": "base-hybrid"}


def comparison_base(system: str, available: list[str]) -> str | None:
    """The base-model system a system is compared with: its own variant, else ``base``."""
    candidate = _MATCHING_BASE.get(system, "base" if system != "base" else None)
    if candidate in available and candidate != system:
        return candidate
    return "base" if "base" in available and system != "base" and system != "bm25" else None


def significance_marks(report: dict[str, Any], system: str, metric: str) -> str:
    """† when ``system`` differs significantly from bm25, ‡ from its base-model system."""
    sig = report["significance"].get(system, {})
    base = comparison_base(system, list(report["systems"]))
    mark = "†" if "bm25" in sig and sig["bm25"][metric]["significant"] else ""
    if base and base in sig and sig[base][metric]["significant"]:
        mark += "‡"
    return mark


def render_markdown(report: dict[str, Any]) -> str:
    """System × metric table; † = significantly different from BM25, ‡ = from the base model."""
    systems = list(report["systems"])
    metrics = list(next(iter(report["systems"].values())))
    data = report["data"]
    lines = [
        f"# Retrieval evaluation: {report['config']['data']} ({data['split']})",
        "",
        f"{data['evaluated_queries']} judged queries, {data['counts']['documents']} documents. "
        "† significantly different from bm25, ‡ from the base model "
        f"({report['tests']['significance']}); ± half-width of the 95% bootstrap interval.",
        "",
        "| system | " + " | ".join(metrics) + " |",
        "|---|" + "---:|" * len(metrics),
    ]
    for system in systems:
        cells = []
        for metric in metrics:
            value = report["systems"][system][metric]
            lo, hi = report["intervals"][system][metric]
            mark = significance_marks(report, system, metric)
            cells.append(f"{value:.3f}{mark} ±{(hi - lo) / 2:.3f}")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    for warning in report.get("warnings", []):
        lines += ["", f"Warning: {warning}"]
    return "\n".join(lines) + "\n"
