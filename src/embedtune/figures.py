"""The HTML reports' shared page and figures: one style for ``eval``, ``run`` and ``compare``.

Figures are drawn with matplotlib (its object API, no pyplot state, so it is safe in a server
or a thread) and inlined as SVG with the text kept as text: a page is one file that fetches
nothing, prints, and can be searched. Colours are the Okabe–Ito palette (told apart with the
common colour-vision deficiencies) and every series also differs by marker or hatch, so a page
printed in grey still reads.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any, ParamSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

P = ParamSpec("P")

__all__ = [
    "PALETTE",
    "Interval",
    "Point",
    "Section",
    "curves",
    "diff_profile",
    "figure_svg",
    "fragmentation",
    "histories",
    "interval_dots",
    "page",
    "scatter",
    "series_style",
    "signed_bars",
    "table",
    "training_curves",
    "win_loss",
]

# Okabe & Ito (2008): distinguishable with protanopia, deuteranopia and tritanopia
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def series_style(i: int) -> tuple[str, str]:
    """The colour and marker of the i-th series: past the eighth, the marker shifts so that no
    two of the first 64 series look alike (the 9th is not the 1st again)."""
    n = len(PALETTE)
    return PALETTE[i % n], MARKERS[(i + i // n) % len(MARKERS)]


_BASELINE_STYLE = {"bm25": ":", "base": "--", "base-maxp": "--", "base-hybrid": "-."}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;
margin:24px auto;padding:0 16px;color:#1b1b1b;background:#fff}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:2px}h3{font-size:1em}
p.sub{color:#555;margin-top:0}table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{padding:3px 8px;border-bottom:1px solid #e2e2e2;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.good{color:#00624a;font-weight:600}.bad{color:#a33c00;font-weight:600}
figure{margin:10px 0}figcaption{color:#444;font-size:12.5px;max-width:900px}
svg{max-width:100%;height:auto}ul.notes{color:#444;font-size:13px}.wide{overflow-x:auto}
@media print{body{max-width:none;margin:0}h2{break-after:avoid}figure,table{break-inside:avoid}
.wide{overflow:visible}}
"""


@dataclass(frozen=True)
class Section:
    """One heading of a page and its HTML (figures, tables, text)."""

    title: str
    body: str


@dataclass(frozen=True)
class Interval:
    """A value with its 95% interval (``low``/``high`` equal to it when there is none)."""

    label: str
    value: float
    low: float
    high: float


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """A self-contained page: inline style, inline SVG, no scripts, nothing fetched."""
    body = "".join(f"<h2>{escape(s.title)}</h2>{s.body}" for s in sections if s.body)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class='sub'>{escape(subtitle)}</p>{body}</body></html>\n"
    )


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: int = 1) -> str:
    """An HTML table; columns from ``numeric`` on are right-aligned. Cells are escaped."""
    header = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    lines = []
    for row in rows:
        cells = "".join(
            f"<td{' class=n' if i >= numeric else ''}>{escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    # a table wider than the page scrolls by itself instead of widening the whole page
    return f"<div class=wide><table><tr>{header}</tr>{''.join(lines)}</table></div>"


# applied while a figure is built and saved: small text, labels never read as TeX math (a
# dataset path with `$` in it), text kept as text in the SVG
_RC: dict[Any, Any] = {"font.size": 9, "text.parse_math": False, "svg.fonttype": "none"}


def _styled(draw: Callable[P, str]) -> Callable[P, str]:
    """Build the figure under the report style (matplotlib's rc settings, for this call)."""

    @functools.wraps(draw)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> str:
        import matplotlib

        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def figure_svg(fig: Figure, caption: str = "") -> str:
    """``fig`` as inline SVG (text as text, no external fonts) inside a <figure>."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE (its URL is inert)
    text = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{text}</figure>"


def _references(
    ax: Any, references: dict[str, float], vertical: bool, with_value: bool = True
) -> None:
    for i, (name, value) in enumerate(references.items()):
        style = _BASELINE_STYLE.get(name, (0, (1, 2 + i)))
        line = ax.axvline if vertical else ax.axhline
        label = f"{name} {value:.3f}" if with_value else name
        line(value, color="#444", linestyle=style, linewidth=1.2, label=label)


@_styled
def interval_dots(
    panels: Mapping[str, Sequence[Interval]],
    *,
    references: dict[str, dict[str, float]] | None = None,
    highlight: Sequence[str] = (),
    caption: str = "",
) -> str:
    """Small multiples, one panel per metric: each item a dot with its 95% interval whisker
    and the baselines as labelled vertical lines. Every panel has the same rows (the labels
    of all panels, in first-seen order); an item a panel lacks leaves its row empty.

    Dots, not bars: the axis is zoomed to where the values are, which a bar (whose length is
    read from zero) would misstate."""
    from matplotlib.ticker import MaxNLocator

    panels = {
        name: [i for i in items if _finite(i.value, i.low, i.high)]
        for name, items in panels.items()
    }
    panels = {name: items for name, items in panels.items() if items}
    if not panels:
        return ""
    labels = list(dict.fromkeys(i.label for items in panels.values() for i in items))
    rows = {label: len(labels) - 1 - n for n, label in enumerate(labels)}
    names = list(panels)
    columns = 2 if len(names) > 1 else 1
    grid_rows = -(-len(names) // columns)
    fig = _figure(7.5, grid_rows * (0.9 + 0.24 * max(len(labels), 1)))
    axes = fig.subplots(grid_rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(names):
            ax.set_visible(False)
            continue
        metric = names[index]
        items = panels[metric]
        for item in items:
            color = PALETTE[1] if item.label in highlight else PALETTE[0]
            ax.errorbar(
                [item.value],
                [rows[item.label]],
                # (a bootstrap bound can sit an ulp inside the mean: never a negative whisker)
                xerr=[[max(item.value - item.low, 0.0)], [max(item.high - item.value, 0.0)]],
                fmt="D" if item.label in highlight else "o",
                color=color,
                capsize=3,
                markersize=5,
            )
            ax.annotate(
                f"{item.value:.3f}",
                (item.high, rows[item.label]),
                xytext=(3, -3),
                textcoords="offset points",
                fontsize=7,
            )
        lines = (references or {}).get(metric, {})
        _references(ax, lines, vertical=True, with_value=False)
        ax.set_yticks(list(rows.values()), list(rows))
        ax.set_ylim(-0.7, len(labels) - 0.3)
        low = min([i.low for i in items] + list(lines.values()), default=0.0)
        high = max([i.high for i in items] + list(lines.values()), default=1.0)
        span = max(high - low, 0.05)
        ax.set_xlim(low - 0.08 * span, high + 0.22 * span)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        if high <= 1.0:  # room for the value's label past 1, but no tick a metric cannot reach
            ticks = MaxNLocator(nbins=4).tick_values(*ax.get_xlim())
            ax.set_xticks([t for t in ticks if ax.get_xlim()[0] <= t <= 1.0 + 1e-9])
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    # one legend for the figure, under the panels (inside a small panel it hides the dots):
    # each baseline once, by name (its values are in the tables)
    legend: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(name, handle)
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=4)
    return figure_svg(fig, caption)


def _plain_log(ax: Any, axis: str = "x", base: float = 10) -> None:
    """A log axis labelled with plain numbers (0.5, 2, 30), not powers."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    scale = ax.set_xscale if axis == "x" else ax.set_yscale
    scale("log", base=base)
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=base, subs=(1.0, 2.0, 5.0) if base == 10 else (1.0,)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(FuncFormatter(lambda v, _: ""))


@dataclass(frozen=True)
class Point:
    """One labelled point of a scatter (``y`` with an optional interval)."""

    label: str
    x: float
    y: float
    low: float | None = None
    high: float | None = None


@_styled
def scatter(
    points: Sequence[Point],
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    xmax: float | None = None,
    references: dict[str, float] | None = None,
    caption: str = "",
) -> str:
    """Labelled points (one marker and colour each) with y-intervals and baseline lines;
    ``xmax`` caps the x-axis (a share cannot pass 100%)."""
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    points = [p for p in points if _finite(p.x, p.y)]
    if not points:
        return ""
    for i, p in enumerate(points):
        yerr = None
        if p.low is not None and p.high is not None and _finite(p.low, p.high):
            yerr = [[max(p.y - p.low, 0.0)], [max(p.high - p.y, 0.0)]]
        color, marker = series_style(i)
        ax.errorbar([p.x], [p.y], yerr=yerr, fmt=marker, color=color, capsize=3, markersize=7)
    _references(ax, references or {}, vertical=False)
    if logx:
        _plain_log(ax)
        # a little room past the points, not the decades matplotlib would add around them
        xs = [p.x for p in points if p.x > 0]
        if xs:
            ax.set_xlim(min(xs) / 1.6, min(max(xs) * 1.6, xmax or math.inf))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if references:
        ax.legend(loc="best", fontsize=8, framealpha=0.9)
    _label_points(fig, ax, points)
    return figure_svg(fig, caption)


# where a point's label may go, in points from it: right, left, then further up and down
_LABEL_OFFSETS = [
    (dx, dy, ha)
    for dy in (4, -11, 14, -21, 24, -31, 34, -41)
    for dx, ha in ((6, "left"), (-6, "right"))
]


def _label_points(fig: Figure, ax: Any, points: Sequence[Point]) -> None:
    """Each point's label beside it, at the first nearby place that overlaps no marker,
    no label already placed and stays inside the figure: points that share an x or a y
    (full and its defences at 100% of the weights) would otherwise print over each other."""
    fig.draw_without_rendering()  # lays the figure out, so the extents below are final
    taken = [_marker_box(ax, p) for p in points]
    for p in sorted(points, key=lambda q: -q.y):
        label = ax.annotate(
            p.label,
            (p.x, p.y),
            xytext=_LABEL_OFFSETS[0][:2],
            textcoords="offset points",
            fontsize=8,
        )
        dx, dy, ha = _free_place(fig, label, taken)
        if (dx, dy, ha) not in _LABEL_OFFSETS[:2]:  # moved off its point: a thin leader line
            ax.annotate(
                "",
                (p.x, p.y),
                xytext=(dx, dy + 3),
                textcoords="offset points",
                arrowprops={"arrowstyle": "-", "color": "#777", "linewidth": 0.6},
            )
        taken.append(label.get_window_extent())


def _free_place(fig: Figure, label: Any, taken: list[Any]) -> tuple[int, int, str]:
    """Move ``label`` to the first offset that is free and inside ``fig``, or (crowded
    everywhere) to the usual one."""
    canvas = fig.bbox
    for dx, dy, ha in [*_LABEL_OFFSETS, _LABEL_OFFSETS[0]]:
        label.set_position((dx, dy))
        label.set_horizontalalignment(ha)
        box = label.get_window_extent()
        inside = canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and box.y0 >= canvas.y0
        if inside and not any(box.overlaps(t) for t in taken):
            break
    return dx, dy, ha


def _marker_box(ax: Any, p: Point) -> Any:
    from matplotlib.transforms import Bbox

    x, y = ax.transData.transform((p.x, p.y))
    return Bbox.from_extents(x - 4, y - 4, x + 4, y + 4)


@_styled
def curves(
    series: Mapping[str, Sequence[Point]],
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    references: dict[str, float] | None = None,
    caption: str = "",
) -> str:
    """One line per series (marker and colour each) with a shaded interval where given."""
    fig = _figure(7.5, 4.0)
    ax = fig.add_subplot()
    for i, (name, points) in enumerate(series.items()):
        color, marker = series_style(i)
        xs = [p.x for p in points]
        ax.plot(xs, [p.y for p in points], marker=marker, color=color, label=name)
        lows = [p.low for p in points if p.low is not None]
        highs = [p.high for p in points if p.high is not None]
        if len(lows) == len(highs) == len(points):
            ax.fill_between(xs, lows, highs, color=color, alpha=0.15)
    _references(ax, references or {}, vertical=False)
    if logx:
        _plain_log(ax, base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return figure_svg(fig, caption)


@_styled
def win_loss(rows: Sequence[tuple[str, int, int, int]], *, caption: str = "") -> str:
    """Stacked horizontal bars: per row, the queries won, tied and lost (as shares)."""
    fig = _figure(7.5, 0.9 + 0.3 * max(len(rows), 1))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    left = [0.0] * len(rows)
    parts = (
        ("won", 1, PALETTE[2], ""),
        ("tied", 2, "#bbbbbb", ".."),
        ("lost", 3, PALETTE[5], "//"),
    )
    totals = [max(r[1] + r[2] + r[3], 1) for r in rows]
    for name, index, color, hatch in parts:
        counts = [int(r[index]) for r in rows]
        shares = [c / t for c, t in zip(counts, totals, strict=True)]
        ax.barh(ys, shares, left=left, color=color, hatch=hatch, edgecolor="white", label=name)
        for y, x0, share, count in zip(ys, left, shares, counts, strict=True):
            if share >= 0.06:
                ax.text(x0 + share / 2, y, str(count), ha="center", va="center", fontsize=8)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_yticks(ys, [r[0] for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of judged queries")
    # beside the bars: under them it collides with the axis label when there are few rows
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    return figure_svg(fig, caption)


@_styled
def diff_profile(diffs: Mapping[str, Sequence[float]], *, ylabel: str, caption: str = "") -> str:
    """Per-query differences, each series sorted from most improved to most hurt."""
    fig = _figure(7.5, 3.4)
    ax = fig.add_subplot()
    for i, (name, values) in enumerate(diffs.items()):
        ordered = sorted(values, reverse=True)
        xs = [j / max(len(ordered) - 1, 1) for j in range(len(ordered))]
        style = ("-", "--", "-.", ":")[i % 4]
        ax.plot(xs, ordered, color=PALETTE[i % len(PALETTE)], linestyle=style, label=name)
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_xlabel("queries, sorted by difference (share)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return figure_svg(fig, caption)


@_styled
def training_curves(history: Sequence[dict[str, float]], *, caption: str = "") -> str:
    """The training loss by step and, on a second axis, dev nDCG@10 at each evaluation."""
    losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
    dev = [(h["step"], h["dev_ndcg@10"]) for h in history if "dev_ndcg@10" in h]
    if not losses and not dev:
        return ""
    fig = _figure(7.5, 3.2)
    ax = fig.add_subplot()
    if losses:
        ax.plot(*zip(*losses, strict=True), marker="o", color=PALETTE[0], label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if dev:
        twin = ax.twinx()
        twin.plot(*zip(*dev, strict=True), marker="s", linestyle="--", color=PALETTE[1])
        twin.set_ylabel("dev nDCG@10")
        handles += twin.get_lines()
        labels += ["dev nDCG@10"]
    ax.legend(handles, labels, loc="best", fontsize=8)
    return figure_svg(fig, caption)


@_styled
def fragmentation(analysis: dict[str, Any], *, caption: str = "") -> str:
    """The analysis stage's word-piece histogram: the corpus against general English."""
    corpus = analysis.get("corpus", {}).get("pieces", {})
    reference = analysis.get("reference", {}).get("pieces", {})
    if not corpus:
        return ""
    bins = list(corpus)
    fig = _figure(7.5, 3.0)
    ax = fig.add_subplot()
    xs = list(range(len(bins)))
    name = analysis.get("reference", {}).get("name", "general English")
    # dots joined by lines, not bars: on a log axis a bar's length means nothing
    for i, (label, shares) in enumerate((("this corpus", corpus), (name, reference))):
        ax.plot(
            xs,
            [shares.get(b, float("nan")) for b in bins],
            marker=MARKERS[i],
            linestyle=("-", "--")[i],
            color=PALETTE[i],
            label=label,
        )
    _plain_log(ax, axis="y")  # 0.01, not 10^-2 (mathtext is off: it would print as source)
    ax.set_xticks(xs, [f"{b} piece{'s' if b != '1' else ''}" for b in bins])
    ax.set_ylabel("share of words (log)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return figure_svg(fig, caption)


@_styled
def histories(logs: Mapping[str, Sequence[dict[str, float]]], *, caption: str = "") -> str:
    """Two panels for several trainings: the loss by step, and dev nDCG@10 by step."""
    fig = _figure(7.5, 3.2)
    loss_ax, dev_ax = fig.subplots(1, 2)
    for i, (name, history) in enumerate(logs.items()):
        color, marker = series_style(i)
        style = ("-", "--", "-.", ":")[i % 4]
        losses = [(h["step"], h["loss"]) for h in history if "loss" in h]
        dev = [(h["step"], h["dev_ndcg@10"]) for h in history if "dev_ndcg@10" in h]
        if losses:
            loss_ax.plot(*zip(*losses, strict=True), color=color, linestyle=style, label=name)
        if dev:
            dev_ax.plot(
                *zip(*dev, strict=True),
                color=color,
                marker=marker,
                linestyle=style,
                label=None if losses else name,
            )
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss")
    dev_ax.set_xlabel("step")
    dev_ax.set_ylabel("dev nDCG@10")
    for ax in (loss_ax, dev_ax):
        ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=min(len(logs), 5), fontsize=7, frameon=False)
    return figure_svg(fig, caption)


@_styled
def signed_bars(items: Sequence[tuple[str, float, str]], *, xlabel: str, caption: str = "") -> str:
    """Horizontal bars from zero (a change: right is up, left is down), each with a note."""
    items = [item for item in items if _finite(item[1])]
    if not items:
        return ""
    fig = _figure(7.5, 0.9 + 0.28 * max(len(items), 1))
    ax = fig.add_subplot()
    ys = list(range(len(items)))[::-1]
    values = [value for _, value, _ in items]
    colors = [PALETTE[0] if v >= 0 else PALETTE[5] for v in values]
    hatches = ["" if v >= 0 else "//" for v in values]
    bars = ax.barh(ys, values, color=colors, edgecolor="white")
    for bar, hatch in zip(bars, hatches, strict=True):
        bar.set_hatch(hatch)
    ax.axvline(0, color="#444", linewidth=0.8)
    span = max((abs(v) for v in values), default=0.01) or 0.01
    ax.set_xlim(-1.6 * span, 1.6 * span)
    for y, (_, value, note) in zip(ys, items, strict=True):
        ax.annotate(
            f"{value:+.3f} {note}".strip(),
            (value, y),
            xytext=(4 if value >= 0 else -4, -3),
            textcoords="offset points",
            ha="left" if value >= 0 else "right",
            fontsize=7,
        )
    ax.set_yticks(ys, [label for label, _, _ in items])
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return figure_svg(fig, caption)
