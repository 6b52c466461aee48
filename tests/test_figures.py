"""The reports' figures on awkward input: nothing to draw, intervals an ulp inside the mean,
NaN, and labels that matplotlib would read as TeX."""

from __future__ import annotations

import math

from embedtune.figures import (
    Interval,
    Point,
    fragmentation,
    interval_dots,
    page,
    scatter,
    signed_bars,
)


def test_figures_draw_what_they_can_and_nothing_when_there_is_nothing() -> None:
    assert interval_dots({}) == "" and interval_dots({"ndcg@10": []}) == ""
    # a bootstrap bound an ulp inside the mean, a NaN row and a label with `$` in it
    mean = 0.7
    items = [
        Interval("run $x$ a_b", mean, mean + 1e-16, mean - 1e-16),
        Interval("nan", math.nan, math.nan, math.nan),
    ]
    svg = interval_dots({"ndcg@10": items}, references={"ndcg@10": {"bm25": 0.5}})
    assert "<svg" in svg and "run $x$ a_b" in svg  # the label as written, not as math
    assert scatter([Point("p", math.nan, 1.0)], xlabel="x", ylabel="y") == ""
    assert "<svg" in scatter([Point("a", 1.0, 0.5, 0.5 + 1e-16, 0.5)], xlabel="x", ylabel="y")
    assert signed_bars([("nan", math.nan, "")], xlabel="x") == ""
    assert "<svg" in signed_bars([("a", -0.02, "p 0.03 *"), ("b", 0.0, "")], xlabel="x")
    # log axes print plain numbers: with mathtext off, matplotlib's 10^k labels would show
    # as their source (`$\mathdefault{10^{-1}}$`)
    shares = {"1": 0.9, "2": 0.07, "3": 0.02, "5+": 0.001}
    svg = fragmentation({"corpus": {"pieces": shares}, "reference": {"pieces": shares}})
    points = [Point("a", 0.05, 0.5), Point("b", 100.0, 0.6)]
    logx = scatter(points, xlabel="x", ylabel="y", logx=True)
    for drawn in (svg, logx):
        assert "<svg" in drawn and "mathdefault" not in drawn and "$" not in drawn
    assert ">0.01<" in svg
    html = page("t <b>", "s", [])
    assert "t &lt;b&gt;" in html and "<script" not in html


def test_scatter_labels_of_points_in_one_place_do_not_overlap() -> None:
    # full and its defences: the same share of weights, nearly the same score
    from matplotlib.figure import Figure

    from embedtune.figures import _label_points

    points = [
        Point(name, 100.0, 0.850 - i * 0.0005)
        for i, name in enumerate(["full", "full+general", "full+interpolate", "full+ewc", "mlm"])
    ]
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([0.05, 100.0], [0.80, 0.87])
    ax.set_xscale("log")
    _label_points(fig, ax, points)
    labels = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text() for t in labels) == sorted(p.label for p in points)
    boxes = [t.get_window_extent() for t in labels]
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1 :]), labels[i].get_text()
        assert fig.bbox.x0 <= a.x0 and a.x1 <= fig.bbox.x1  # none runs off the figure


def test_no_two_series_look_alike() -> None:
    from embedtune.figures import series_style

    styles = [series_style(i) for i in range(64)]
    assert len(set(styles)) == 64  # a comparison has ten approaches: the 9th is not the 1st
