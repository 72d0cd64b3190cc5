"""pssviz.svgchart: the static SVG interval charts of the Study page's first screen, read back as XML.

Pins what a reader sees: one marker per finite estimate at the right height, its interval from lo to hi,
filled only where asked (a verdict "different"), its label (the resolution shipped), the hover text, gaps (not
comparable cells) as marks that are never points and break the line, the dashed reference line at 0, the budget
ticks; and that the SVG figures of the shipped study -- with one cell made not comparable -- show exactly the
points, labels and marks of their plotly twins.
"""

from __future__ import annotations

import copy
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from pssviz import study as studies
from pssviz.svgchart import GAP_MARK, CSS_CLASS, Gap, IntervalPoint, IntervalSeries, interval_chart_svg, nice_ticks, si_number
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
            label = g.find("s:text[@class='point-label']", NS)
            out.append(dict(series=series.get("data-name"), x=float(g.get("data-x")), y=float(g.get("data-y")),
                            lo=float(g.get("data-lo")), hi=float(g.get("data-hi")), filled=g.get("data-filled") == "true",
                            cy=float(circle.get("cy")), cx=float(circle.get("cx")), fill=circle.get("fill"),
                            bar=(float(bar.get("y1")), float(bar.get("y2"))), hover=g.find("s:title", NS).text or "",
                            label=None if label is None else label.text, label_x=None if label is None else float(label.get("x"))))
    return out


def _gaps(root: ET.Element) -> list[dict]:
    out = []
    for series in root.iterfind("s:g[@class='series']", NS):
        for g in series.iterfind("s:g[@class='gap']", NS):
            mark = g.find("s:text", NS)
            out.append(dict(series=series.get("data-name"), x=float(g.get("data-x")), hover=g.find("s:title", NS).text or "",
                            text=mark.text, y=float(mark.get("y")), fill=mark.get("fill")))
    return out


def _plot_bottom(root: ET.Element) -> float:
    return float(root.find("s:line[@class='axis']", NS).get("y1"))


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
    assert "no data yet" in "".join(root.itertext()) and not _points(root) and not _gaps(root)


def test_a_point_label_is_drawn_beside_its_marker():
    a = IntervalSeries("a", "#1f77b4", (IntervalPoint(1.0, 50.0, 45.0, 55.0, True, "a one", "28 px"),
                                       IntervalPoint(2.0, 80.0, 78.0, 82.0, True, "a two")))
    pts = _points(_parse(interval_chart_svg([a], title="t", x_title="x", y_title="y")))
    assert [p["label"] for p in pts] == ["28 px", None], "no label where none is given"
    assert pts[0]["label_x"] > pts[0]["cx"], "beside the marker, not on it"


def _gapped(**kw) -> str:
    """Series a: points at 1 and 3 with a gap at 2 between them; series b: only a gap, at 4."""
    a = IntervalSeries("a", "#1f77b4", (IntervalPoint(1.0, 50.0, 45.0, 55.0), IntervalPoint(3.0, 60.0, 58.0, 62.0)),
                       gaps=(Gap(2.0, "a at 2: not comparable\nseed 0 ships 20 px <untrained>"),))
    b = IntervalSeries("b", "#ff7f0e", (), gaps=(Gap(4.0, "b at 4: not comparable"),))
    return interval_chart_svg([a, b], title="t", x_title="x", y_title="y", **kw)


def test_a_gap_is_a_mark_at_the_bottom_never_a_point():
    root = _parse(_gapped(dodge=0.0))
    pts, gaps = _points(root), _gaps(root)
    assert [(p["series"], p["x"]) for p in pts] == [("a", 1.0), ("a", 3.0)], "a gap is never drawn as a point"
    assert [(g["series"], g["x"], g["text"], g["fill"]) for g in gaps] == [("a", 2.0, GAP_MARK, "#1f77b4"), ("b", 4.0, GAP_MARK, "#ff7f0e")]
    assert gaps[0]["hover"] == "a at 2: not comparable\nseed 0 ships 20 px <untrained>"
    bottom = _plot_bottom(root)
    for g in gaps:
        assert bottom - 20 < g["y"] <= bottom, "in the strip at the bottom of the plot"
        assert all(g["y"] > p["bar"][0] for p in pts), "below every interval: it is no value"
    # the line of a is cut at its gap: two runs of one point each, so no polyline bridges x = 2
    assert not root.findall("s:g[@data-name='a']/s:polyline", NS)
    assert [t.text for t in root.iterfind("s:g[@class='legend-item']/s:text", NS)] == ["a", "b"], "a gap-only series is in the legend"


def test_a_line_joins_the_points_on_either_side_of_a_gap_only_up_to_it():
    a = IntervalSeries("a", "#000", tuple(IntervalPoint(x, x, x - 1, x + 1) for x in (1.0, 2.0, 4.0, 5.0)), gaps=(Gap(3.0, "x"),))
    root = _parse(interval_chart_svg([a], title="t", x_title="x", y_title="y", dodge=0.0))
    lines = root.findall("s:g[@data-name='a']/s:polyline", NS)
    assert [len(line.get("points").split()) for line in lines] == [2, 2]


def test_only_gaps_still_draws_a_chart():
    root = _parse(interval_chart_svg([IntervalSeries("b", "#000", (), gaps=(Gap(1.0, "why"),))], title="t", x_title="x", y_title="y"))
    assert "no data yet" not in "".join(root.itertext()) and [g["hover"] for g in _gaps(root)] == ["why"]


def _plotly_points(fig) -> dict[str, list[tuple]]:
    """Per trace: (x, y, lo, hi, label) of each drawn point; NaN rows (plotly's line breaks at gaps) are left out."""
    out = {}
    for t in fig.data:
        y = np.asarray(t.y, float)
        keep = np.isfinite(y)
        text = list(t.text) if t.text is not None else [None] * len(y)
        out[t.name] = sorted((round(x), round(v, 6), round(v - m, 6), round(v + p, 6), lab or None)
                             for x, v, m, p, lab, k in zip(np.asarray(t.x, float), y, np.asarray(t.error_y.arrayminus, float),
                                                           np.asarray(t.error_y.array, float), text, keep) if k)
    return out


def _svg_points(svg: str) -> dict[str, list[tuple]]:
    out: dict[str, list] = {}
    for p in _points(_parse(svg)):
        out.setdefault(p["series"], []).append((round(p["x"]), round(p["y"], 6), round(p["lo"], 6), round(p["hi"], 6), p["label"]))
    return {k: sorted(v) for k, v in out.items()}


def _plotly_gaps(fig) -> list[tuple]:
    return sorted((round(a.x), a.font.color, a.hovertext.replace("<br>", "\n")) for a in fig.layout.annotations if a.text == GAP_MARK)


def _svg_gaps(svg: str) -> list[tuple]:
    return sorted((round(g["x"]), g["fill"], g["hover"]) for g in _gaps(_parse(svg)))


NOT_COMPARABLE = "seed 0 ships 20 px: uniform trains 28 px inputs only (a test's edit)"


def _with_a_not_comparable_cell(doc: dict) -> dict:
    """The shipped study.json with uniform at the smallest budget made not comparable, as `pss study` writes such a
    cell (its numbers stay in study.json; no test), and pss − mutual there made a verdict "different"."""
    doc = copy.deepcopy(doc)
    entry = doc["comparison"][0]
    entry["strategies"]["uniform"].update(comparable=False, reason=NOT_COMPARABLE)
    entry["vs_pss"]["uniform"] = {"comparable": False, "verdict": "not comparable", "reason": NOT_COMPARABLE, "significant": False}
    entry["vs_pss"]["mutual"].update(comparable=True, verdict="different", significant=True, p_holm=0.001, tost_p_holm=1.0, mdd80=0.004)
    doc.pop("reading", None)
    return doc


@pytest.mark.parametrize("edited", [False, True], ids=["shipped", "not-comparable"])
def test_the_study_svgs_show_exactly_the_points_of_their_plotly_figures(edited):
    """The Study page draws the SVGs, report.html and the notebook the plotly figures: same series, budgets,
    estimates, intervals and resolution labels, the same not-comparable marks with the same reasons, and the
    filled markers are exactly the differences whose verdict is "different"."""
    data = studies.load_study_dir(STUDY)
    doc = _with_a_not_comparable_cell(data.doc) if edited else data.doc
    accuracy, differences = studies.accuracy_frame(doc), studies.difference_frame(doc)
    acc_svg = studies.study_accuracy_svg(accuracy, data.constraint)
    acc_fig = studies.study_accuracy_figure(accuracy, data.constraint, dodge=0)
    assert _svg_points(acc_svg) == _plotly_points(acc_fig)
    assert _svg_gaps(acc_svg) == _plotly_gaps(acc_fig)
    diff_svg = studies.study_difference_svg(differences, data.constraint)
    diff_fig = studies.study_difference_figure(differences, data.constraint)
    assert _svg_points(diff_svg) == _plotly_points(diff_fig)
    assert _svg_gaps(diff_svg) == _plotly_gaps(diff_fig)
    assert len(_svg_points(acc_svg)) == len(data.config["strategies"])
    # the labels: the resolution the seeds ship (study.json's), wherever it starts or changes along a line; the hover
    # of every point names its own
    shipped = {(r.arm, round(r.budget)): f"{r.resolution} px" for r in accuracy.itertuples() if r.comparable}
    previous: dict[str, str] = {}
    for p in _points(_parse(acc_svg)):
        here = shipped[(p["series"], round(p["x"]))]
        assert p["label"] == (here if previous.get(p["series"]) != here else None), (p["series"], p["x"])
        assert f"ships {here}" in p["hover"]
        previous[p["series"]] = here
    assert len({label for *_, label in sum(_svg_points(acc_svg).values(), []) if label}) >= 2, "several resolutions shipped"
    pts = _points(_parse(diff_svg))
    different = {(f"pss − {r.other}", round(r.budget)): r.verdict == "different" for r in differences.itertuples()}
    assert [p["filled"] for p in pts] == [different[(p["series"], round(p["x"]))] for p in pts]
    assert sum(p["filled"] for p in pts) == int((differences["verdict"] == "different").sum())
    ticks = [t.text for t in _parse(acc_svg).find("s:g[@class='x-ticks']", NS)]
    assert ticks == [si_number(b) for b in sorted(set(accuracy["budget"]))]
    if not edited:
        return
    # the edited cell: a mark with its reason in both figures, never a point; the flipped verdict: filled, with Holm's p
    smallest = round(doc["comparison"][0]["budget"])
    assert ("uniform", smallest) not in {(p["series"], round(p["x"])) for p in _points(_parse(acc_svg))}
    assert (smallest, studies.arm_color("uniform", 1)) in {g[:2] for g in _svg_gaps(acc_svg)}
    assert any(NOT_COMPARABLE in hover and "not comparable" in hover for *_, hover in _svg_gaps(acc_svg))
    assert any(NOT_COMPARABLE in hover and "not tested" in hover for *_, hover in _svg_gaps(diff_svg))
    assert ("pss − uniform", smallest) not in {(p["series"], round(p["x"])) for p in pts}
    mutual = next(p for p in pts if p["series"] == "pss − mutual" and round(p["x"]) == smallest)
    assert mutual["filled"] and "verdict: different (Holm-adjusted, 5%)" in mutual["hover"] and "p (Holm) 0.001" in mutual["hover"]
    assert "detectable at 80% power: 0.40 points" in mutual["hover"] and "per seed (McNemar p): s0" in mutual["hover"]
    assert "significant" not in mutual["hover"], "a verdict, never a 'significant: yes' beside an unadjusted p"
