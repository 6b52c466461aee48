"""Self-contained HTML pages (inline SVG plots, nothing fetched) and the webhook."""

from __future__ import annotations

import html
import json
import logging
import urllib.error
import urllib.request
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["drift_html", "post_webhook", "probe_html"]

_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:24px;max-width:980px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px}"
    "td.n{text-align:right}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}"
    "svg text{font:11px system-ui,sans-serif}h2{margin-top:28px}"
)
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>\n"
    )


def _histograms(
    series: dict[str, np.ndarray], marker: float | None, label: str, width: int = 640
) -> str:
    """Overlaid density histograms (shared bins) with an optional vertical marker."""
    values = [v for v in series.values() if v.size]
    if not values:
        return "<p>(no values)</p>"
    lo = min(float(v.min()) for v in values)
    hi = max(float(v.max()) for v in values)
    if marker is not None:
        lo, hi = min(lo, marker), max(hi, marker)
    hi = hi if hi > lo else lo + 1e-6
    bins = np.linspace(lo, hi, 31)
    height, pad = 200, 30
    dens = {k: np.histogram(v, bins)[0] / max(len(v), 1) for k, v in series.items() if v.size}
    top = max(float(d.max()) for d in dens.values()) or 1.0

    def x(v: float) -> float:
        return pad + (v - lo) / (hi - lo) * (width - 2 * pad)

    parts = [f'<svg width="{width}" height="{height + 50}" role="img">']
    for i, (name, d) in enumerate(dens.items()):
        points = " ".join(
            f"{x(float((bins[j] + bins[j + 1]) / 2)):.1f},"
            f"{height - float(d[j]) / top * (height - 10):.1f}"
            for j in range(len(d))
        )
        color = _COLORS[i % len(_COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        parts.append(
            f'<text x="{width - 170}" y="{14 + 14 * i}" fill="{color}">{html.escape(name)}</text>'
        )
    if marker is not None:
        parts.append(
            f'<line x1="{x(marker):.1f}" x2="{x(marker):.1f}" y1="0" y2="{height}" '
            'stroke="#555" stroke-dasharray="4 3"/>'
        )
        parts.append(f'<text x="{x(marker) + 4:.1f}" y="{height - 4}">threshold</text>')
    parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{height}" y2="{height}" stroke="#888"/>')
    parts.append(f'<text x="{pad}" y="{height + 16}">{lo:.3f}</text>')
    parts.append(f'<text x="{width - pad - 40}" y="{height + 16}">{hi:.3f}</text>')
    parts.append(f'<text x="{width / 2 - 60:.0f}" y="{height + 36}">{html.escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _scatter(series: dict[str, np.ndarray], size: int = 420) -> str:
    """PC1 × PC2 scatter of up to 400 points per series."""
    values = [v for v in series.values() if len(v)]
    if not values:
        return ""
    stacked = np.concatenate(values)
    lo, hi = stacked.min(axis=0), stacked.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    parts = [f'<svg width="{size}" height="{size}" role="img">']
    for i, (name, v) in enumerate(series.items()):
        color = _COLORS[i % len(_COLORS)]
        for px, py in v[:400]:
            cx = 10 + (px - lo[0]) / span[0] * (size - 20)
            cy = size - 10 - (py - lo[1]) / span[1] * (size - 20)
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2" fill="{color}" opacity=".5"/>')
        parts.append(f'<text x="12" y="{16 + 14 * i}" fill="{color}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def drift_html(
    result: dict[str, Any],
    *,
    reference_top1: np.ndarray | None = None,
    window_top1: np.ndarray | None = None,
    threshold: float | None = None,
    reference_pcs: np.ndarray | None = None,
    window_pcs: np.ndarray | None = None,
) -> str:
    """The drift check as one page: verdict, tests, gauges, top-1 histogram, PCA scatter."""
    status = result["status"]
    cls = {"ok": "ok", "shift": "warn"}.get(status, "bad")
    rows = "".join(
        f"<tr><td>{t['name']}</td><td class=n>{t['statistic']:.5g}</td>"
        f"<td class=n>{'' if t['expected'] is None else format(t['expected'], '.4g')}</td>"
        f"<td class=n>{t['p_value']:.4g}</td><td class=n>{t['adjusted_p']:.4g}</td>"
        f"<td class={'bad' if t['rejected'] else 'ok'}>{'yes' if t['rejected'] else 'no'}</td></tr>"
        for t in result["tests"]
    )
    gauges = "".join(
        f"<tr><td>{html.escape(k)}</td><td class=n>{html.escape(json.dumps(v))}</td></tr>"
        for k, v in result["window"].items()
    )
    body = [
        "<h1>Embedding drift check</h1>",
        f"<p>Status: <span class={cls}>{status}</span> (family-wise α = {result['alpha']:.4g}, "
        "Holm). Profile "
        f"<code>{html.escape(str(result.get('profile', {}).get('id', '')))}</code>, model "
        f"<code>{html.escape(str(result.get('profile', {}).get('model', {}).get('name', '')))}"
        "</code>.</p>",
        "<table><tr><th>test</th><th>statistic</th><th>expected</th><th>p</th>"
        f"<th>Holm p</th><th>fires</th></tr>{rows}</table>",
        "<p>tail: share of queries whose top-1 corpus similarity is below the reference's "
        "low percentile (exact binomial); mmd: kernel two-sample test on PCA coordinates "
        "(permutations); centroid: shift of the mean embedding (permutations). "
        "<b>drift</b>: the tail test fired (queries the corpus cannot answer); "
        "<b>shift</b>: only mmd/centroid fired (the queries moved, the corpus still answers "
        "them).</p>",
        f"<h2>Window</h2><table>{gauges}</table>",
    ]
    if reference_top1 is not None and window_top1 is not None:
        body.append("<h2>Top-1 corpus similarity</h2>")
        body.append(
            _histograms(
                {"reference": reference_top1, "window": window_top1},
                threshold,
                "top-1 cosine to the corpus",
            )
        )
    if reference_pcs is not None and window_pcs is not None:
        body.append("<h2>Queries on the first two principal components</h2>")
        body.append(_scatter({"reference": reference_pcs[:, :2], "window": window_pcs[:, :2]}))
    return _page("embedtune drift check", "".join(body))


def _trend(history: list[dict[str, Any]], metric: str, width: int = 640) -> str:
    """The metric over probe runs (one point per run), with the baseline as a dashed line."""
    values = [h["metrics"].get(metric) for h in history]
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if not points:
        return ""
    height, pad = 200, 36
    lo = min(v for _, v in points) - 0.02
    hi = max(v for _, v in points) + 0.02
    n = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i / n * (width - 2 * pad), height - (v - lo) / (hi - lo) * (height - 20)

    parts = [f'<svg width="{width}" height="{height + 40}" role="img">']
    coords = [xy(i, v) for i, v in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    parts.append(f'<polyline fill="none" stroke="{_COLORS[0]}" stroke-width="2" points="{path}"/>')
    for (i, v), (x, y) in zip(points, coords, strict=True):
        color = _COLORS[1] if history[i].get("alert") else _COLORS[0]
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{color}"/>')
        parts.append(f'<text x="{x - 12:.1f}" y="{y - 8:.1f}">{v:.3f}</text>')
    baseline = history[0]["metrics"].get(metric)
    if baseline is not None:
        _, by = xy(0, baseline)
        parts.append(
            f'<line x1="{pad}" x2="{width - pad}" y1="{by:.1f}" y2="{by:.1f}" stroke="#555" '
            'stroke-dasharray="4 3"/>'
        )
    parts.append(
        f'<text x="{pad}" y="{height + 30}">{html.escape(metric)} per probe run '
        "(red: alert; dashed: baseline)</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def probe_html(result: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The probe run as one page: comparison table and the trend over the history."""
    alert = result["alert"]
    rows = "".join(
        f"<tr><td>{m}</td><td class=n>{c['baseline']:.4f}</td><td class=n>{c['current']:.4f}"
        f"</td><td class=n>{c['diff']:+.4f}</td><td class=n>[{c['low']:+.4f}, {c['high']:+.4f}]"
        f"</td><td class=n>{'' if c.get('recorded') is None else format(c['recorded'], '.4f')}"
        "</td></tr>"
        for m, c in result["comparison"].items()
    )
    body = [
        "<h1>Probe re-evaluation</h1>",
        f"<p>Status: <span class={'bad' if alert else 'ok'}>{result['status']}</span>; "
        f"{html.escape(result['reason'])}</p>",
        "<table><tr><th>metric</th><th>baseline</th><th>now</th><th>change</th>"
        f"<th>95% paired bootstrap</th><th>recorded eval</th></tr>{rows}</table>",
        f"<h2>Trend ({len(history)} runs)</h2>",
        _trend(history, result["alert_metric"]),
    ]
    return _page("embedtune probe", "".join(body))


def post_webhook(url: str, payload: dict[str, Any], timeout: float = 10.0) -> str | None:
    """POST ``payload`` as JSON; returns None on success, else why it failed (never raises:
    an unreachable hook must not hide the verdict, which the exit code still carries)."""
    if not url.startswith(("http://", "https://")):
        return f"webhook URL {url!r} is not http(s)"
    data = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                return f"webhook answered HTTP {response.status}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"webhook failed: {exc}"
    return None
