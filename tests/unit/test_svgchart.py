"""pssviz.svgchart: the static SVG interval charts of the Study page's first screen, read back as XML.

Pins what a reader sees: one marker per finite estimate at the right height, its interval from lo to hi,
filled only where asked (significant), the hover text, the dashed reference line at 0, the budget ticks;
and that the SVG figures of a real study show exactly the points of their plotly twins.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pssviz import study as studies
from pssviz.svgchart import CSS_CLASS, IntervalPoint, IntervalSeries, interval_chart_svg, nice_ticks, si_number
from helpers import REPO_ROOT

NS = {"s": "http://www.w3.org/2000/svg"}
STUDY = REPO_ROOT / "sample_checkpoints" / "fashion-mnist-study"


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("class") == CSS_CLASS
    return root


def _points(root: ET.Element) -> list[dict]:
    out = []
    for series in root.iterfind("s:g[@class='series']", NS):
        for g in series.iterfind("s:g[@class='point']", NS):
            circle = g.find("s:circle", NS)
            bar = g.find("s:line", NS)
            out.append(dict(series=series.get("data-name"), x=float(g.get("data-x")), y=float(g.get("data-y")),
                            lo=float(g.get("data-lo")), hi=float(g.get("data-hi")), filled=g.get("data-filled") == "true",
                            cy=float(circle.get("cy")), cx=float(circle.get("cx")), fill=circle.get("fill"),
                            bar=(float(bar.get("y1")), float(bar.get("y2"))), hover=g.find("s:title", NS).text or ""))
    return out


@pytest.mark.parametrize("lo,hi", [(0.0, 1.0), (55.3, 92.1), (-2.4, 34.0), (1.4e6, 2.8e6), (0.001, 0.0013)])
def test_nice_ticks_are_round_evenly_spaced_and_cover_the_range(lo, hi):
    ticks = nice_ticks(lo, hi, count=7)
    steps = np.diff(ticks)
    assert 3 <= len(ticks) <= 12 and np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5, 10))
    assert ticks[0] >= lo - 1e-9 and ticks[-1] <= hi + 1e-9  # inside: the chart pads its own range
    assert ticks[0] - steps[0] < lo and ticks[-1] + steps[0] > hi  # and no whole step left uncovered


def test_si_numbers_read_like_the_budget_labels():
    assert si_number(1465683.0) == "1.466M" and si_number(2.765e6) == "2.765M"
    assert si_number(800_000) == "800k" and si_number(12) == "12" and si_number(3.2e9) == "3.2G"


def _chart(**kw) -> str:
    a = IntervalSeries("a", "#1f77b4", (IntervalPoint(1.0, 50.0, 45.0, 55.0, True, "a one"),
                                       IntervalPoint(2.0, 80.0, 78.0, 82.0, True, "a two")))
    b = IntervalSeries("b", "#ff7f0e", (IntervalPoint(1.0, -5.0, -9.0, -1.0, False, "b one <&>"),
                                       IntervalPoint(2.0, float("nan"), 1.0, 2.0, True, "never drawn")), dashed=True)
    return interval_chart_svg([a, b], title="T & t", x_title="budget", y_title="acc", **kw)


def test_markers_sit_at_their_values_inside_their_intervals():
    root = _parse(_chart(reference=0.0))
    pts = _points(root)
    assert [(p["series"], p["x"], p["y"]) for p in pts] == [("a", 1.0, 50.0), ("a", 2.0, 80.0), ("b", 1.0, -5.0)]  # NaN skipped
    by_y = sorted(pts, key=lambda p: p["y"])
    assert [p["cy"] for p in by_y] == sorted((p["cy"] for p in pts), reverse=True)  # higher value, higher on screen
    # one pixel scale for all: (cy - cy') / (y - y') is the same for every pair, and the bars end at lo and hi
    scale = (pts[1]["cy"] - pts[0]["cy"]) / (pts[1]["y"] - pts[0]["y"])
    for p in pts:
        lo_px, hi_px = p["bar"]
        assert lo_px == pytest.approx(p["cy"] + scale * (p["lo"] - p["y"]), abs=0.15)
        assert hi_px == pytest.approx(p["cy"] + scale * (p["hi"] - p["y"]), abs=0.15)
        assert hi_px < p["cy"] < lo_px
    reference = root.find("s:line[@class='reference']", NS)
    zero_px = float(reference.get("y1"))
    assert zero_px == pytest.approx(pts[0]["cy"] + scale * (0 - 50.0), abs=0.15)
    assert pts[2]["cy"] > zero_px > pts[0]["cy"]  # -5 below the line, 50 above


def test_filled_and_hollow_markers_and_hover_text():
    pts = _points(_parse(_chart()))
    assert [p["filled"] for p in pts] == [True, True, False]
    assert pts[0]["fill"] == "#1f77b4" and pts[2]["fill"] == "none"
    assert [p["hover"] for p in pts] == ["a one", "a two", "b one <&>"]  # escaped in the file, read back whole


def test_series_are_dodged_apart_at_one_x_and_title_legend_ticks_are_there():
    svg = _chart(x_ticks=[(1.0, "1M"), (2.0, "2M")])
    root = _parse(svg)
    a1, _, b1 = _points(root)
    assert a1["cx"] < b1["cx"]  # same x = 1, nudged apart
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "T & t" in texts and "a" in texts and "b" in texts and "budget" in texts and "acc" in texts
    assert [t.text for t in root.find("s:g[@class='x-ticks']", NS)] == ["1M", "2M"]
    undodged = _points(_parse(_chart(dodge=0.0)))
    assert undodged[0]["cx"] == undodged[2]["cx"]


def test_no_points_says_so():
    root = _parse(interval_chart_svg([IntervalSeries("a", "#000", ())], title="t", x_title="x", y_title="y"))
    assert "no data yet" in "".join(root.itertext()) and not _points(root)


def _plotly_points(fig) -> dict[str, list[tuple]]:
    out = {}
    for t in fig.data:
        y = np.asarray(t.y, float)
        out[t.name] = sorted(zip(np.round(np.asarray(t.x, float)), np.round(y, 6), np.round(y - np.asarray(t.error_y.arrayminus), 6),
                                 np.round(y + np.asarray(t.error_y.array), 6)))
    return out


def _svg_points(svg: str) -> dict[str, list[tuple]]:
    out: dict[str, list] = {}
    for p in _points(_parse(svg)):
        out.setdefault(p["series"], []).append((round(p["x"]), round(p["y"], 6), round(p["lo"], 6), round(p["hi"], 6)))
    return {k: sorted(v) for k, v in out.items()}


def test_the_study_svgs_show_exactly_the_points_of_their_plotly_figures():
    """The Study page draws the SVGs, report.html and the notebook the plotly figures: same series, budgets,
    estimates and intervals, and the filled markers are the significant differences."""
    data = studies.load_study_dir(STUDY)
    acc_svg = studies.study_accuracy_svg(data.accuracy, data.constraint)
    assert _svg_points(acc_svg) == _plotly_points(studies.study_accuracy_figure(data.accuracy, data.constraint, dodge=0))
    diff_svg = studies.study_difference_svg(data.differences, data.constraint)
    assert _svg_points(diff_svg) == _plotly_points(studies.study_difference_figure(data.differences, data.constraint))
    assert len(_svg_points(acc_svg)) == len(data.config["strategies"])
    pts = _points(_parse(diff_svg))
    significant = {(f"pss − {r.other}", round(r.budget)): bool(r.significant) for r in data.differences.itertuples()}
    assert [p["filled"] for p in pts] == [significant[(p["series"], round(p["x"]))] for p in pts]
    assert sum(p["filled"] for p in pts) == int(data.differences["significant"].sum()) > 0
    hover = next(p["hover"] for p in pts if p["filled"])
    assert "significant at 5%: yes" in hover and "McNemar p per seed" in hover
    ticks = [t.text for t in _parse(acc_svg).find("s:g[@class='x-ticks']", NS)]
    assert ticks == [si_number(b) for b in sorted(set(data.accuracy["budget"]))]
