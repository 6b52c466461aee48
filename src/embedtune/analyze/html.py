"""The analysis as one self-contained HTML page: inline SVG charts, no scripts, no fetches."""

from __future__ import annotations

from html import escape
from typing import Any

from embedtune.corpus.vocab import PIECE_BINS

STYLE = """
body{font:14px/1.5 system-ui,sans-serif;max-width:920px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd}
td.n{text-align:right}code{font-size:12px}svg text{font:11px system-ui,sans-serif}
"""


def _bars(
    labels: list[str],
    series: dict[str, list[float]],
    *,
    marker: float | None = None,
    marker_label: str = "",
    percent: bool = False,
) -> str:
    """Vertical grouped bars; an optional vertical marker at a fractional x position."""
    width, height, pad = 860, 220, 30
    colors = ["#3b6ea5", "#c8893b"]
    top = max((v for values in series.values() for v in values), default=0) or 1
    slot = (width - 2 * pad) / max(1, len(labels))
    bar = slot * 0.8 / max(1, len(series))
    parts = [f'<svg width="{width}" height="{height + 40}" role="img">']
    for i, label in enumerate(labels):
        x0 = pad + i * slot
        for j, values in enumerate(series.values()):
            h = (height - pad) * values[i] / top
            x = x0 + slot * 0.1 + j * bar
            tip = f"{values[i]:.1%}" if percent else f"{values[i]:g}"
            parts.append(
                f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colors[j % 2]}"><title>{escape(label)}: {tip}</title></rect>'
            )
        if len(labels) <= 12 or i % max(1, len(labels) // 10) == 0:
            parts.append(f'<text x="{x0:.1f}" y="{height + 14}">{escape(label)}</text>')
    if marker is not None:
        x = pad + marker * (width - 2 * pad)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="10" y2="{height}" stroke="#b00" '
            f'stroke-dasharray="4"/><text x="{x + 4:.1f}" y="20" fill="#b00">'
            f"{escape(marker_label)}</text>"
        )
    for j, name in enumerate(series):
        parts.append(
            f'<rect x="{pad + j * 160}" y="{height + 24}" width="10" height="10" '
            f'fill="{colors[j % 2]}"/><text x="{pad + j * 160 + 14}" y="{height + 33}">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _terms(terms: list[dict[str, Any]]) -> str:
    """Horizontal bars of count × extra pieces, labelled with the tokenization."""
    if not terms:
        return "<p>No frequent domain term is split into 3 or more pieces.</p>"
    row, width = 20, 860
    top = max(t["count"] * (t["pieces"] - 1) for t in terms)
    parts = [f'<svg width="{width}" height="{row * len(terms) + 10}" role="img">']
    for i, t in enumerate(terms):
        score = t["count"] * (t["pieces"] - 1)
        w = 300 * score / top
        y = i * row + 4
        label = f"{t['term']}  →  {' '.join(t['tokens'])}"
        parts.append(
            f'<rect x="0" y="{y}" width="{w:.1f}" height="{row - 6}" fill="#3b6ea5">'
            f"<title>{t['count']} × {t['pieces']} pieces</title></rect>"
            f'<text x="{w + 6:.1f}" y="{y + 11}">{escape(label)} ({t["count"]}×)</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """The page: summary table, recommendations, three charts."""
    corpus, ref, lengths = report["corpus"], report["reference"], report["lengths"]
    hist = lengths["histogram"]
    labels = [f"{a}–{b}" for a, b in zip(hist["edges"], hist["edges"][1:], strict=False)]
    span = hist["edges"][-1] - hist["edges"][0] or 1
    marker = (lengths["max_tokens"] - hist["edges"][0]) / span
    rows = [
        ("tokens per word", corpus["tokens_per_word"], ref["tokens_per_word"]),
        ("words in 3+ pieces", f"{corpus['share_3plus']:.1%}", f"{ref['share_3plus']:.1%}"),
        ("words with [UNK]", f"{corpus['unk_share']:.2%}", f"{ref['unk_share']:.2%}"),
        ("words", f"{corpus['words']:,} running", f"{ref['words']:,} listed (by frequency)"),
    ]
    table = "".join(
        f"<tr><td>{escape(name)}</td><td class=n>{a}</td><td class=n>{b}</td></tr>"
        for name, a, b in rows
    )
    advice = "".join(f"<li>{escape(line)}</li>" for line in report["recommendations"])
    model = report["model"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embedtune analysis</title>
<style>{STYLE}</style></head><body>
<h1>Vocabulary gap: {escape(str(model["name"]))}</h1>
<p>{report["data"]["counts"]["documents"]:,} documents; reference: {escape(ref["name"])}
{escape(ref["version"])} ({ref["words"]:,} most frequent words, weighted by frequency).</p>
<h2>Recommendations</h2><ul>{advice}</ul>
<h2>Fragmentation</h2>
<table><tr><th></th><th>corpus</th><th>general English</th></tr>{table}</table>
{
        _bars(
            [f"{b} piece{'s' if b != '1' else ''}" for b in PIECE_BINS],
            {
                "corpus": [corpus["pieces"][b] for b in PIECE_BINS],
                "general English": [ref["pieces"][b] for b in PIECE_BINS],
            },
            percent=True,
        )
    }
<h2>Most fragmented domain terms (count × extra pieces)</h2>
{_terms(report["top_terms"])}
<h2>Document length (tokens)</h2>
<p>Model limit {lengths["max_tokens"]} tokens: {lengths["truncated_share"]:.1%} of documents are
longer and {lengths["text_lost_share"]:.1%} of the text falls past it; median
{lengths["p50"]}, p95 {lengths["p95"]}, longest {lengths["max"]}.
{report["passages"]["count"]:,} passages of {report["passages"]["window"]} tokens
({report["passages"]["per_document"]} per document).</p>
{
        _bars(
            labels,
            {"documents": [float(c) for c in hist["counts"]]},
            marker=marker,
            marker_label=f"max {lengths['max_tokens']}",
        )
    }
</body></html>
"""
