"""The approach matrix: one row per cell (quality with 95% intervals and significance, cost,
forgetting), a verdict per approach, and the learning curves; as JSON and Markdown."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from embedtune.compare.config import CellSpec
    from embedtune.model_folder import ModelSettings

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINES",
    "METRICS",
    "SYSTEMS",
    "CellResult",
    "Matrix",
    "adapter_mb",
    "build_matrix",
    "cell_result",
    "dense_gain",
    "render_markdown",
    "render_table_rows",
]

# The tuned systems a cell is judged by (dense max-passage, and hybrid with BM25), the
# baselines measured beside them on the same queries, and the metrics of the matrix.
SYSTEMS = ("tuned-maxp", "tuned-hybrid")
BASELINES = ("bm25", "base-maxp", "base-hybrid")
METRICS = ("ndcg@10", "mrr@10", "recall@100", "map@100")
_OWN_BASE = {"tuned-maxp": "base-maxp", "tuned-hybrid": "base-hybrid"}
# Strategies that can be shipped as the adapter alone (``save_adapter: true``: PEFT's
# adapter_model.safetensors, the trained weights in fp32, beside a base model the server
# already holds). A comparison saves them merged, so that size is computed from the trained
# weights; tests/train/test_strategies.py checks it against a saved adapter.
ADAPTER_STRATEGIES = ("lora", "ia3", "adapter")
_FP32_BYTES = 4


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Significance(_Record):
    """A paired randomization test of the tuned system against one baseline."""

    diff: float
    p: float
    significant: bool


class Score(_Record):
    """One metric of one system: its mean, 95% bootstrap interval and tests."""

    value: float
    low: float
    high: float
    vs_base: Significance | None = None  # the base model's matching system
    vs_bm25: Significance | None = None


class ProbeChange(_Record):
    """What a cell forgot on one general collection (nDCG@10, max-passage)."""

    data: str
    base: float
    tuned: float
    change: float
    p: float | None = None  # paired randomization test over the probe's queries
    # the tuned model's nDCG@10 per probe query (cells from before it was kept have none)
    tuned_per_query: dict[str, float] = {}


class GridPoint(_Record):
    """One value of a grid approach's key (EWC's weight) and its dev nDCG@10."""

    value: float
    dev_ndcg: float


class CellResult(_Record):
    """One cell's numbers (``cells/<name>/cell.json``)."""

    name: str
    approach: str
    fraction: float
    description: str
    strategy: str
    scores: dict[str, dict[str, Score]]  # system → metric → score
    baselines: dict[str, dict[str, float]]  # bm25, base-maxp, base-hybrid → metric → mean
    evaluated_queries: int
    pairs: int
    steps: int
    trainable_parameters: int
    parameters: int
    train_seconds: float
    wall_seconds: float  # over all attempts, when a killed cell was resumed
    peak_rss_mb: float  # of the last attempt
    size_mb: float
    attempts: int = 1
    forgetting: list[ProbeChange] = []
    interpolation_alpha: float | None = None
    # a grid approach: the values tried on dev, and the one kept
    grid_key: str | None = None
    grid: list[GridPoint] = []
    grid_choice: float | None = None
    # the training log (loss, dev metrics by step) and the dev scores of the kept model
    history: list[dict[str, float]] = []
    dev: dict[str, dict[str, float]] = {}


class Matrix(_Record):
    """The comparison (``matrix.json``)."""

    data: dict[str, Any]
    cells: list[CellResult]
    not_finished: list[str]
    verdicts: dict[str, str]
    learning_curve: dict[str, dict[str, float]]  # approach → fraction → dense nDCG@10
    notes: list[str]


def _significance(report: dict[str, Any], system: str, baseline: str, metric: str) -> Any:
    entry = report.get("significance", {}).get(system, {}).get(baseline)
    return None if entry is None else Significance.model_validate(entry[metric])


def _scores(report: dict[str, Any]) -> dict[str, dict[str, Score]]:
    out: dict[str, dict[str, Score]] = {}
    for system in SYSTEMS:
        if system not in report["systems"]:
            continue
        out[system] = {
            metric: Score(
                value=report["systems"][system][metric],
                low=report["intervals"][system][metric][0],
                high=report["intervals"][system][metric][1],
                vs_base=_significance(report, system, _OWN_BASE[system], metric),
                vs_bm25=_significance(report, system, "bm25", metric),
            )
            for metric in METRICS
            if metric in report["systems"][system]
        }
    return out


def _probes(settings: ModelSettings) -> list[ProbeChange]:
    return [
        ProbeChange(
            data=p["data"],
            base=p["base_ndcg@10"],
            tuned=p["tuned_ndcg@10"],
            change=p["change"],
            p=p.get("p"),
            tuned_per_query=p.get("tuned_per_query", {}),
        )
        for p in settings.forgetting.get("probes", [])
    ]


def cell_result(
    spec: CellSpec,
    report: dict[str, Any],
    settings: ModelSettings,
    *,
    wall_seconds: float,
    peak_rss_mb: float,
    size_bytes: int,
    attempts: int = 1,
) -> CellResult:
    """A cell's row from its evaluation report and its model's settings record."""
    systems = report["systems"]
    interpolation = settings.forgetting.get("interpolation")
    return CellResult(
        name=spec.name,
        approach=spec.approach,
        fraction=spec.fraction,
        description=spec.description,
        strategy=settings.strategy,
        scores=_scores(report),
        baselines={b: dict(systems[b]) for b in BASELINES if b in systems},
        evaluated_queries=report["data"]["evaluated_queries"],
        pairs=settings.pairs,
        steps=settings.training.steps,
        trainable_parameters=settings.training.trainable_parameters,
        parameters=settings.training.parameters,
        train_seconds=settings.training.seconds,
        wall_seconds=round(wall_seconds, 1),
        peak_rss_mb=round(peak_rss_mb, 1),
        size_mb=round(size_bytes / 2**20, 2),
        attempts=attempts,
        forgetting=_probes(settings),
        interpolation_alpha=None if interpolation is None else interpolation["alpha"],
        history=settings.training.history,
        dev={
            "base": settings.dev.base,
            "bm25": settings.dev.bm25,
            "tuned": settings.dev.tuned,
        },
    )


def _ndcg(cell: CellResult, system: str = "tuned-maxp") -> float | None:
    score = cell.scores.get(system, {}).get("ndcg@10")
    return None if score is None else score.value


def dense_gain(cell: CellResult) -> float | None:
    """Dense nDCG@10 over the base model's dense (max-passage) nDCG@10."""
    value, base = _ndcg(cell), cell.baselines.get("base-maxp", {}).get("ndcg@10")
    return None if value is None or base is None else value - base


def _against(score: Score | None, baseline: str) -> str:
    test = None if score is None else (score.vs_bm25 if baseline == "BM25" else score.vs_base)
    if test is None:
        return f"not compared with {baseline}"
    word = "beats" if test.diff > 0 else "below" if test.diff < 0 else "ties"
    return f"{word} {baseline} ({'significant' if test.significant else 'not significant'})"


def _verdict(cell: CellResult, full: CellResult | None) -> str:
    """One line from the numbers: the share of full's gain, the share of weights trained,
    the tests against the base model and BM25, and what it forgot."""
    parts = []
    gain, full_gain = dense_gain(cell), None if full is None else dense_gain(full)
    share = _share(cell)
    reference = cell is not full and full_gain is not None and full_gain > 0
    if reference and gain is not None and full_gain is not None:
        parts.append(
            f"{gain / full_gain:.0%} of full's gain over base at {share:.1%} of the weights"
        )
    elif gain is not None:
        parts.append(f"{gain:+.3f} nDCG@10 over base, training {share:.1%} of the weights")
    dense = cell.scores.get("tuned-maxp", {}).get("ndcg@10")
    parts.append(_against(dense, "base"))
    parts.append(_against(dense, "BM25"))
    hybrid = cell.scores.get("tuned-hybrid", {}).get("ndcg@10")
    if hybrid is not None:
        parts.append(f"hybrid {_against(hybrid, 'BM25')}")
    if cell.forgetting:
        worst = min(cell.forgetting, key=lambda p: p.change)
        tested = ""
        if worst.p is not None:
            tested = f" ({'significant' if worst.p < 0.05 else 'not significant'}, p {worst.p:.2f})"
        parts.append(f"probe nDCG@10 {worst.change:+.3f}{tested}")
    return f"{cell.name}: " + "; ".join(parts)


def _curve(cells: list[CellResult]) -> dict[str, dict[str, float]]:
    curve: dict[str, dict[str, float]] = {}
    for cell in cells:
        value = _ndcg(cell)
        if value is not None:
            curve.setdefault(cell.approach, {})[f"{cell.fraction:g}"] = value
    # only approaches measured at more than one fraction make a curve
    return {
        a: dict(sorted(c.items(), key=lambda kv: float(kv[0])))
        for a, c in curve.items()
        if len(c) > 1
    }


def build_matrix(cells: list[CellResult], not_finished: list[str], data: dict[str, Any]) -> Matrix:
    """The matrix of the finished cells, with a verdict per approach (its full-data cell)."""
    whole = [c for c in cells if c.fraction == 1]
    full = next((c for c in whole if c.approach == "full"), None)
    notes = [
        "dense = tuned-maxp (documents scored by their best passage); hybrid = tuned-hybrid "
        "(fused with BM25 by the weight chosen on dev, or reciprocal rank for label-free cells)",
        "every cell shares one recipe (the budget); a learning-curve cell trains on a share "
        "of the training queries with the same dev and test queries",
    ]
    resumed = [f"{c.name} ({c.attempts})" for c in cells if c.attempts > 1]
    if resumed:
        notes.append(
            "resumed after a kill (attempts): " + ", ".join(resumed) + "; their wall time adds "
            "each attempt's time up to its last write (the work resumed from), their peak "
            "memory is the last attempt's"
        )
    return Matrix(
        data=data,
        cells=cells,
        not_finished=not_finished,
        verdicts={c.name: _verdict(c, full) for c in whole},
        learning_curve=_curve(cells),
        notes=notes,
    )


def _marks(score: Score) -> str:
    bm25 = "†" if score.vs_bm25 is not None and score.vs_bm25.significant else ""
    return bm25 + ("‡" if score.vs_base is not None and score.vs_base.significant else "")


def _shown(cell: CellResult, system: str, metric: str) -> str:
    score = cell.scores.get(system, {}).get(metric)
    if score is None:
        return "–"
    half = (score.high - score.low) / 2
    return f"{score.value:.3f}±{half:.3f}{_marks(score)}"


def _forgot(cell: CellResult) -> str:
    """Each probe's nDCG@10 change, with its test's p where recorded."""
    return (
        ", ".join(
            f"{p.change:+.3f}" + ("" if p.p is None else f" (p {p.p:.2f})") for p in cell.forgetting
        )
        or "–"
    )


def _share(cell: CellResult) -> float:
    return cell.trainable_parameters / max(cell.parameters, 1)


def adapter_mb(strategy: str, trainable_parameters: int) -> float | None:
    """What a strategy's adapter alone weighs on disk, where it can be saved alone (else None)."""
    if strategy not in ADAPTER_STRATEGIES:
        return None
    return trainable_parameters * _FP32_BYTES / 2**20


def _size(cell: CellResult) -> str:
    alone = adapter_mb(cell.strategy, cell.trainable_parameters)
    return f"{cell.size_mb:.1f}" if alone is None else f"{cell.size_mb:.1f} (adapter {alone:.1f})"


def render_table_rows(matrix: Matrix) -> tuple[list[str], list[list[str]]]:
    """The matrix's header and one row of text per cell (Markdown and HTML share them)."""
    head = [
        "cell",
        *(f"dense {m}" for m in METRICS),
        "hybrid ndcg@10",
        "trainable",
        "pairs",
        "wall s",
        "peak RSS MB",
        "size MB",
        "probe Δ",
    ]
    rows = [
        [
            cell.name,
            *(_shown(cell, "tuned-maxp", m) for m in METRICS),
            _shown(cell, "tuned-hybrid", "ndcg@10"),
            f"{cell.trainable_parameters:,} ({_share(cell):.1%})",
            str(cell.pairs),
            f"{cell.wall_seconds:.0f}",
            f"{cell.peak_rss_mb:.0f}",
            _size(cell),
            _forgot(cell),
        ]
        for cell in matrix.cells
    ]
    return head, rows


def _table(matrix: Matrix) -> list[str]:
    head, rows = render_table_rows(matrix)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _baseline_lines(matrix: Matrix) -> list[str]:
    first = next((c for c in matrix.cells if c.fraction == 1), None)
    if first is None:
        return []
    lines = ["| baseline | " + " | ".join(METRICS) + " |", "|" + "---|" * (len(METRICS) + 1)]
    for name, values in first.baselines.items():
        shown = (f"{values[m]:.3f}" if m in values else "–" for m in METRICS)  # not evaluated
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    return lines


def _curve_lines(matrix: Matrix) -> list[str]:
    if not matrix.learning_curve:
        return []
    fractions = sorted({f for c in matrix.learning_curve.values() for f in c}, key=float)
    lines = [
        "## Learning curve (dense nDCG@10 by share of training queries)",
        "",
        "| approach | " + " | ".join(fractions) + " |",
        "|" + "---|" * (len(fractions) + 1),
    ]
    for approach, points in matrix.learning_curve.items():
        values = [f"{points[f]:.3f}" if f in points else "–" for f in fractions]
        lines.append(f"| {approach} | " + " | ".join(values) + " |")
    return [*lines, ""]


def render_markdown(matrix: Matrix) -> str:
    """The matrix as Markdown: baselines, the cell table, verdicts, learning curves."""
    queries = matrix.cells[0].evaluated_queries if matrix.cells else 0
    lines = [
        f"# Approach matrix: {matrix.data.get('test')} ({matrix.data.get('test_split')})",
        "",
        f"{queries} judged test queries. ± half-width of the 95% bootstrap interval; "
        "† significantly different from BM25, ‡ from the base model (paired randomization "
        "test, p < 0.05). Trainable: weights the approach trains (share of the model).",
        "",
        *_baseline_lines(matrix),
        "",
        *_table(matrix),
        "",
        "## Verdicts",
        "",
        *(f"- {line}" for line in matrix.verdicts.values()),
        "",
        *_curve_lines(matrix),
    ]
    if matrix.not_finished:
        lines += [f"Not finished: {', '.join(matrix.not_finished)}", ""]
    lines += [f"- {note}" for note in matrix.notes]
    return "\n".join(lines) + "\n"
