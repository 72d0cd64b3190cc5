"""Static SVG charts of point estimates with 95% intervals, drawn without a chart library.

Why they exist: the dashboard opens on the Study page, and a plotly chart cannot be drawn before the browser
has loaded and compiled plotly.js (4.7 MB in Streamlit's bundle). On this project's 2-core machine that
alone takes 1.1-1.2 s, which puts a bare Streamlit page with two tiny plotly charts at 3.0 s after the
server starts (``python bench/first_page.py --page floor``); an inline SVG is drawn together with the
page's text. So the first screen's two figures are SVG; every other figure stays plotly.

One chart kind only: series of points over a numeric x (a budget), each with a vertical interval, a
filled or hollow marker, an optional short label beside it (the resolution a subnet ships), lines between a
series' points, an optional dashed reference line (0 for differences). A series may also hold *gaps*: an x
where it has no estimate to show (a not-comparable cell of a study), drawn as a small "×" at the bottom of the
plot, never as a point, and breaking the series' line. Hovering a point or a gap shows its ``hover`` text
(the SVG ``<title>`` of its group: a native browser tooltip, also read by screen readers). Text and axes use
``currentColor``, so the chart follows the light or dark theme of the page it sits in. Pure functions of their
inputs: tests read the SVG back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

__all__ = ["IntervalPoint", "IntervalSeries", "Gap", "gap_offsets", "interval_chart_svg", "nice_ticks", "si_number", "CSS_CLASS",
           "GAP_MARK", "GAP_SPREAD"]

#: the class of every chart's <svg> element (the browser test and the first-page bench look for it)
CSS_CLASS = "pss-chart"
#: what a gap is drawn as: a mark that reads "no estimate here", not a value
GAP_MARK = "×"
#: pixels between the marks of several series' gaps at one x (when the series are not dodged apart)
GAP_SPREAD = 12.0


@dataclass(frozen=True)
class IntervalPoint:
    """One estimate: ``y`` with its interval [``lo``, ``hi``] at ``x``; ``filled`` False draws a hollow marker."""

    x: float
    y: float
    lo: float
    hi: float
    filled: bool = True
    hover: str = ""
    #: a few characters drawn beside the marker (e.g. "28 px"); empty: none
    label: str = ""


@dataclass(frozen=True)
class Gap:
    """An x where a series has no estimate a reader may compare (e.g. a not-comparable cell), and why (``hover``).

    Drawn as :data:`GAP_MARK` at the bottom of the plot area in the series' colour: it has no y, so it is never
    placed where a value would be."""

    x: float
    hover: str = ""


@dataclass(frozen=True)
class IntervalSeries:
    """A legend entry: its points are joined by a line (``dashed``: dotted) in ``color``, broken at its gaps."""

    name: str
    color: str
    points: tuple[IntervalPoint, ...]
    dashed: bool = False
    gaps: tuple[Gap, ...] = ()


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"tick range must be finite, got [{lo}, {hi}]")
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + 1e-9 * step:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def si_number(value: float) -> str:
    """1465683 -> '1.466M', 800000 -> '800k', 12 -> '12' (four significant digits, trailing zeros dropped)."""
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{suffix}"
    return f"{value:.4g}"


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


class _Scale:
    """Linear map from data [d0, d1] to pixels [p0, p1]."""

    def __init__(self, d0: float, d1: float, p0: float, p1: float):
        self.d0, self.d1, self.p0, self.p1 = d0, d1, p0, p1

    def __call__(self, v: float) -> float:
        if self.d1 == self.d0:
            return (self.p0 + self.p1) / 2
        return self.p0 + (v - self.d0) * (self.p1 - self.p0) / (self.d1 - self.d0)


def _legend(series: list[IntervalSeries], left: float, right: float, top: float) -> tuple[list[str], float]:
    """Legend items left to right, wrapping; (svg parts, height used)."""
    parts, x, y, row = [], left, top, 20
    for s in series:
        width = 34 + 7.2 * len(s.name)
        if x + width > right and x > left:
            x, y = left, y + row
        dash = ' stroke-dasharray="2 3"' if s.dashed else ""
        parts.append(
            f'<g class="legend-item"><line x1="{x:.1f}" y1="{y:.1f}" x2="{x + 22:.1f}" y2="{y:.1f}" stroke="{s.color}" '
            f'stroke-width="2"{dash}/><circle cx="{x + 11:.1f}" cy="{y:.1f}" r="4" fill="{s.color}"/>'
            f'<text x="{x + 28:.1f}" y="{y + 4:.1f}">{escape(s.name)}</text></g>')
        x += width + 12
    return parts, (y - top) + row


def gap_offsets(series: list[IntervalSeries]) -> dict[tuple[int, float], float]:
    """Where several series have a gap at one x and are not dodged apart, their marks sit side by side: (series
    index, x) -> offset in units of :data:`GAP_SPREAD` pixels (0 for a gap alone at its x; centred, in series order).
    The plotly figures shift their marks the same way (``xshift``)."""
    at: dict[float, list[int]] = {}
    for i, s in enumerate(series):
        for g in s.gaps:
            if math.isfinite(g.x) and i not in at.setdefault(g.x, []):
                at[g.x].append(i)
    return {(i, x): k - (len(idx) - 1) / 2 for x, idx in at.items() for k, i in enumerate(idx)}


def _segments(points: list[IntervalPoint], gaps: list[float]) -> list[list[IntervalPoint]]:
    """``points`` (sorted by x) cut into runs that no gap lies between: a line never bridges a missing estimate."""
    runs: list[list[IntervalPoint]] = []
    for p in points:
        if runs and not any(runs[-1][-1].x < g < p.x for g in gaps):
            runs[-1].append(p)
        else:
            runs.append([p])
    return runs


def interval_chart_svg(series: list[IntervalSeries], *, title: str, x_title: str, y_title: str, subtitle: str = "",
                       x_ticks: list[tuple[float, str]] | None = None, y_suffix: str = "", reference: float | None = None,
                       dodge: float = 0.01, width: int = 900, height: int = 440) -> str:
    """An ``<svg>`` chart of ``series`` (see the module docstring); scales with the width of its container.

    ``x_ticks``: (value, label) pairs, e.g. each budget with its SI label (default: round values).
    ``reference``: the y of a dashed horizontal line, kept inside the y range. ``dodge``: each series is
    nudged sideways by this share of the x span, so intervals at one x do not hide each other.
    """
    points = [(i, p) for i, s in enumerate(series) for p in s.points
              if all(math.isfinite(v) for v in (p.x, p.y, p.lo, p.hi))]
    gaps = [g for s in series for g in s.gaps if math.isfinite(g.x)]
    head = (f'<svg class="{CSS_CLASS}" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
            f'xmlns="http://www.w3.org/2000/svg" style="width:100%;height:auto;max-width:{width}px" '
            'font-size="13" fill="currentColor">')
    parts = [head, f"<title>{escape(title)}</title>",
             f'<text class="chart-title" x="8" y="20" font-size="16" font-weight="600">{escape(title)}</text>']
    top = 30.0
    if subtitle:
        parts.append(f'<text class="chart-subtitle" x="8" y="{top + 10:.0f}" font-size="12" opacity="0.75">{escape(subtitle)}</text>')
        top += 18
    if not points and not gaps:
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" opacity="0.6">no data yet</text></svg>')
        return "".join(parts)
    left, right, bottom = 70.0, width - 16.0, height - 50.0
    legend, used = _legend([s for s in series if s.points or s.gaps], left, right, top + 14)
    parts += legend
    top += used + 14

    xs = [p.x for _, p in points] + [g.x for g in gaps]
    x0, x1 = min(xs), max(xs)
    span = (x1 - x0) or abs(x1) or 1.0
    step = dodge * span
    pad = 0.06 * span + step * len(series) / 2
    sx = _Scale(x0 - pad, x1 + pad, left, right)
    ys = [v for _, p in points for v in (p.lo, p.hi)] + ([reference] if reference is not None else [])
    y0, y1 = (min(ys), max(ys)) if ys else (0.0, 1.0)  # only gaps: any y range will do
    ypad = 0.08 * ((y1 - y0) or abs(y1) or 1.0)
    yticks = nice_ticks(y0 - ypad, y1 + ypad, count=7)
    band = 22.0 if gaps else 0.0  # a strip at the bottom for the gap marks, below every value
    sy = _Scale(min(y0 - ypad, yticks[0]), max(y1 + ypad, yticks[-1]), bottom - band, top)

    grid = ['<g class="grid" stroke="currentColor" stroke-opacity="0.12">']
    labels = ['<g class="y-ticks" text-anchor="end" font-size="12" opacity="0.8">']
    for t in yticks:
        grid.append(f'<line x1="{left:.1f}" y1="{sy(t):.1f}" x2="{right:.1f}" y2="{sy(t):.1f}"/>')
        labels.append(f'<text x="{left - 6:.1f}" y="{sy(t) + 4:.1f}">{_fmt(t)}{escape(y_suffix)}</text>')
    ticks = x_ticks if x_ticks is not None else [(t, si_number(t)) for t in nice_ticks(x0, x1)]
    labels += ["</g>", '<g class="x-ticks" text-anchor="middle" font-size="12" opacity="0.8">']
    for value, label in ticks:
        grid.append(f'<line x1="{sx(value):.1f}" y1="{top:.1f}" x2="{sx(value):.1f}" y2="{bottom:.1f}"/>')
        labels.append(f'<text x="{sx(value):.1f}" y="{bottom + 17:.1f}">{escape(label)}</text>')
    grid.append("</g>")
    labels.append("</g>")
    parts += grid + labels
    parts.append(f'<line class="axis" x1="{left:.1f}" y1="{bottom:.1f}" x2="{right:.1f}" y2="{bottom:.1f}" '
                 'stroke="currentColor" stroke-opacity="0.5"/>')
    if reference is not None:
        parts.append(f'<line class="reference" x1="{left:.1f}" y1="{sy(reference):.1f}" x2="{right:.1f}" '
                     f'y2="{sy(reference):.1f}" stroke="currentColor" stroke-opacity="0.7" stroke-dasharray="6 4"/>')
    parts.append(f'<text class="x-title" x="{(left + right) / 2:.1f}" y="{height - 10:.1f}" text-anchor="middle">{escape(x_title)}</text>')
    parts.append(f'<text class="y-title" transform="translate(16 {(top + bottom) / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle">{escape(y_title)}</text>')

    side_by_side = gap_offsets(series) if step == 0 else {}
    for i, s in enumerate(series):
        shown = sorted((p for p in s.points if all(math.isfinite(v) for v in (p.x, p.y, p.lo, p.hi))), key=lambda p: p.x)
        holes = sorted((g for g in s.gaps if math.isfinite(g.x)), key=lambda g: g.x)
        if not shown and not holes:
            continue
        shift = (i - (len(series) - 1) / 2) * step
        dash = ' stroke-dasharray="2 4"' if s.dashed else ""
        parts.append(f'<g class="series" data-name="{escape(s.name)}">')
        for run in _segments(shown, [g.x for g in holes]):
            if len(run) > 1:
                path = " ".join(f"{sx(p.x + shift):.1f},{sy(p.y):.1f}" for p in run)
                parts.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"{dash}/>')
        for p in shown:
            x, y, lo, hi = sx(p.x + shift), sy(p.y), sy(p.lo), sy(p.hi)
            fill = s.color if p.filled else "none"
            label = (f'<text class="point-label" x="{x + 7:.1f}" y="{y - 6:.1f}" font-size="10" fill="{s.color}">'
                     f'{escape(p.label)}</text>') if p.label else ""
            parts.append(
                f'<g class="point" data-x="{p.x!r}" data-y="{p.y!r}" data-lo="{p.lo!r}" data-hi="{p.hi!r}" '
                f'data-filled="{str(p.filled).lower()}"><title>{escape(p.hover)}</title>'
                f'<line x1="{x:.1f}" y1="{lo:.1f}" x2="{x:.1f}" y2="{hi:.1f}" stroke="{s.color}" stroke-width="1.5"/>'
                f'<line x1="{x - 4:.1f}" y1="{lo:.1f}" x2="{x + 4:.1f}" y2="{lo:.1f}" stroke="{s.color}" stroke-width="1.5"/>'
                f'<line x1="{x - 4:.1f}" y1="{hi:.1f}" x2="{x + 4:.1f}" y2="{hi:.1f}" stroke="{s.color}" stroke-width="1.5"/>'
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{fill}" stroke="{s.color}" stroke-width="2"/>'
                f'{label}<circle cx="{x:.1f}" cy="{y:.1f}" r="10" fill="transparent"/></g>')
        for g in holes:
            x = sx(g.x + shift) + GAP_SPREAD * side_by_side.get((i, g.x), 0.0)
            parts.append(
                f'<g class="gap" data-x="{g.x!r}"><title>{escape(g.hover)}</title>'
                f'<text x="{x:.1f}" y="{bottom - 5:.1f}" text-anchor="middle" font-size="15" font-weight="700" '
                f'fill="{s.color}">{GAP_MARK}</text>'
                f'<rect x="{x - 8:.1f}" y="{bottom - 20:.1f}" width="16" height="18" fill="transparent"/></g>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
