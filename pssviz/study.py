"""A study directory (`pss study`) as tidy DataFrames, plotly and SVG figures and one self-contained HTML page.

``pss study`` writes the numbers (``study.json``, kind ``pss-study``) and a Markdown report; everything
drawn lives here, because ``pss`` never imports plotting (docs/architecture.md). The dashboard's Study
page, notebooks and ``report.html`` (written through the ``pss.study_reports`` entry point right after
``study.json``) all use these functions, so they cannot disagree. The frames are built from the plain rows of
:mod:`pssviz.studydoc`, which also holds the reading (study.json's own sentences), the table cells and the SVG
figures (no pandas: the Study page's first tab draws from it); its names are re-exported here.

========== ============================== =============================================================
frame      one row per                    columns
========== ============================== =============================================================
accuracy   (budget, arm)                  budget, label, arm, comparable, mean, lo, hi, n_seeds,
                                          resolution, evaluations, evaluations_max, reason,
                                          test_s<seed>...
differences (budget, reference, other)    budget, label, reference, other, comparable, verdict,
                                          difference, lo, hi, p_holm, tost_p_holm, mdd80, margin,
                                          significant, reason, difference_s<seed>...,
                                          mcnemar_p_s<seed>...
fronts     (run, calibrated subnet)       strategy, seed, run, key, cost, validation, test_acc,
                                          test_lo, test_hi, test_images, pareto
costs      strategy                       strategy, runs, epochs, train_seconds, images_per_second,
                                          selection_seconds (means over the strategy's runs)
========== ============================== =============================================================

An *arm* is a strategy in the main comparison, or one side of PSS-Net Table 6 (``pools_vs_search``:
pools, evolution) or Table 8 (``top_k``: top-1, top-5, ...). Accuracies and differences are fractions,
as in study.json; differences are the reference minus the other arm (pss minus a baseline). A cell that is
not comparable (some seed ships a subnet its strategy never trained, or has none at that ceiling) keeps its
row with ``comparable`` False, NaN numbers, its ``reason`` and, for a difference, the verdict "not
comparable"; ``<seed>`` runs over every seed of the study (strategies may have different seeds).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pss.errors import PssError
from pss.evaluate.selection import pareto_front
from pss.io.files import atomic_write_bytes
from pss.io.run import RunDir, candidate_test, front_points, front_subnets
from pss.io.study import REPORT_FILE, STUDY_JSON
from pss.units import COST_UNITS
from pss.version import __version__

from .discover import find_study, study_signature
from .svgchart import GAP_MARK, GAP_SPREAD, Gap, IntervalSeries, gap_offsets
from .studydoc import (  # the pandas-free core, re-exported here
    ACCURACY_COLUMNS,
    ACCURACY_SUBTITLE,
    DIFFERENCE_COLUMNS,
    DIFFERENCE_TABLE_COLUMNS,
    REPORT_MISSING,
    TABLES,
    ArmSeries,
    StudyDocFields,
    StudyLoadError,
    accuracy_columns,
    accuracy_grid,
    accuracy_rows,
    accuracy_series,
    accuracy_title,
    arm_color,
    budget_axis_title,
    difference_cells,
    difference_columns,
    difference_rows,
    difference_series,
    difference_titles,
    effort_grid,
    families_sentence,
    missing_field,
    not_comparable_notes,
    plateau_sentence,
    read_study_doc,
    reading,
    recipe_markdown,
    records,
    seeds_by_strategy,
    study_accuracy_svg,
    study_difference_svg,
)

if TYPE_CHECKING:
    import plotly.graph_objects as go

REPORT_HTML = "report.html"
SEED_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
FRONT_COLUMNS = ["strategy", "seed", "run", "key", "cost", "validation", "test_acc", "test_lo", "test_hi", "test_images", "pareto"]
COST_COLUMNS = ["strategy", "runs", "epochs", "train_seconds", "images_per_second", "selection_seconds"]
__all__ = [
    "TABLES", "ACCURACY_COLUMNS", "DIFFERENCE_COLUMNS", "accuracy_rows", "difference_rows",
    "StudyData", "StudyLoadError", "find_study", "load_study_dir", "study_signature", "accuracy_frame", "difference_frame",
    "fronts_frame", "cost_frame", "accuracy_table", "difference_table", "effort_table", "reading", "recipe_markdown",
    "plateau_sentence", "families_sentence", "not_comparable_notes", "seeds_by_strategy",
    "study_accuracy_figure", "study_difference_figure", "study_fronts_figure", "study_accuracy_svg", "study_difference_svg", "markdown_to_html", "report_html",
    "write_report_html",
]


@dataclass
class StudyData(StudyDocFields):
    """One study: study.json as read, its tidy frames (see the module docstring) and report.md."""

    path: Path
    doc: dict[str, Any]
    accuracy: pd.DataFrame
    differences: pd.DataFrame
    fronts: pd.DataFrame
    costs: pd.DataFrame
    #: Tables 6 and 8 that the study has: name -> (accuracy frame, difference frame)
    tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = field(default_factory=dict)
    report_md: str = ""
    #: runs whose front could not be read (their fronts are missing from the fronts figure)
    problems: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"Study: {self.config.get('description') or self.config.get('recipe', self.path.name)}"


# ---------------------------------------------------------------------------- finding and reading
def load_study_dir(path: str | Path) -> StudyData:
    """Read a study directory (see the module docstring). Raises :class:`StudyLoadError` (one line)."""
    path = Path(path).expanduser()
    doc, _ = read_study_doc(path)  # the one place that turns an unreadable study.json into StudyLoadError
    try:
        data = StudyData(path, doc, accuracy_frame(doc), difference_frame(doc), pd.DataFrame(columns=FRONT_COLUMNS), cost_frame(doc))
        data.tables = {name: (accuracy_frame(doc, name), difference_frame(doc, name)) for name in TABLES if (doc.get("tables") or {}).get(name)}
    except (KeyError, TypeError, ValueError) as exc:
        raise missing_field(path, exc) from None
    data.fronts = fronts_frame(path, doc, data.problems)
    try:
        data.report_md = (path / REPORT_FILE).read_text(encoding="utf-8")
    except OSError:
        data.problems.append(REPORT_MISSING)
    return data


# ---------------------------------------------------------------------------- tidy frames
def accuracy_frame(doc: dict[str, Any], table: str | None = None) -> pd.DataFrame:
    """Test accuracy per (budget, arm): mean over seeds with its 95% t interval (seeds and test images as noise).

    ``table``: None for the comparison of strategies, or "pools_vs_search" / "top_k". ``test_s<seed>``
    is each seed's test accuracy; ``resolution`` the input size the seeds ship ("28", "20/24"); ``evaluations``
    the fewest calibrated subnets at or under the ceiling over the seeds (the selection effort). A cell that
    is not comparable has NaN numbers, n_seeds 0 and its ``reason``. The rows are
    :func:`pssviz.studydoc.accuracy_rows` (no pandas: the Study page's first tab draws from them).
    """
    frame = pd.DataFrame(accuracy_rows(doc, table), columns=accuracy_columns(doc))
    return frame.astype({"comparable": bool}) if len(frame) else frame


def difference_frame(doc: dict[str, Any], table: str | None = None) -> pd.DataFrame:
    """The paired differences per budget: reference minus each other arm (pss minus a baseline), in fractions.

    ``verdict``: study.json's, from Holm-adjusted p-values at 5% (different / equivalent within ``margin`` by
    TOST / inconclusive) or "not comparable" (NaN numbers, ``reason``); ``significant`` is verdict ==
    "different"; ``mdd80`` the difference the test would detect with 80% power; per seed pair the difference
    and McNemar's exact p. Rows: :func:`pssviz.studydoc.difference_rows`.
    """
    frame = pd.DataFrame(difference_rows(doc, table), columns=difference_columns(doc))
    return frame.astype({"significant": bool, "comparable": bool}) if len(frame) else frame


def _run_front_rows(run: dict[str, Any], front: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """Every calibrated subnet a budget can choose in one run's front, flagged when on its Pareto front."""
    on_front = {p.key for p in pareto_front([p for p in front_points(front) if p.costs.get(kind) is not None], kind)}
    rows = []
    for _, c in front_subnets(front):
        if c["costs"].get(kind) is None:
            continue
        test = candidate_test(c)
        lo, hi = test.interval if test is not None else (np.nan, np.nan)
        rows.append({"strategy": run["strategy"], "seed": int(run["seed"]), "run": Path(run["path"]).name, "key": c["key"],
                     "cost": float(c["costs"][kind]), "validation": float(c["accuracy"]),
                     "test_acc": test.value if test is not None else np.nan, "test_lo": lo, "test_hi": hi,
                     "test_images": test.images if test is not None else np.nan, "pareto": c["key"] in on_front})
    return rows


def fronts_frame(study_dir: str | Path, doc: dict[str, Any], problems: list[str] | None = None) -> pd.DataFrame:
    """Each run's calibrated subnets (its ``calibration/front.json``) in the study's cost kind, with test accuracy.

    ``pareto`` marks the subnets some budget buys (validation accuracy decides, as `pss export` does); a run
    whose front cannot be read is left out and named in ``problems``.
    """
    kind = str(doc.get("constraint", "macs"))
    rows = []
    for run in doc.get("runs") or []:
        try:
            front = RunDir(Path(study_dir) / run["path"]).read_front()
            rows += _run_front_rows(run, front, kind)
        except (PssError, KeyError, TypeError) as exc:
            if problems is not None:
                problems.append(f"the front of {run.get('path')} is not drawn: {exc}")
    frame = pd.DataFrame(rows, columns=FRONT_COLUMNS)
    return frame.astype({"pareto": bool}) if len(frame) else frame


def cost_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """What each strategy cost: its runs, and the means over them of epochs, training seconds, training
    throughput (images/s) and selection seconds (calibration or search), as study.json measured them."""
    runs = pd.DataFrame(doc.get("runs") or [], columns=["strategy", "seed", "epochs", "train_seconds", "images_per_second", "selection_seconds"])
    order = list((doc.get("study") or {}).get("strategies") or dict.fromkeys(runs["strategy"]))
    rows = []
    for strategy in order:
        g = runs[runs["strategy"] == strategy]
        if not len(g):
            continue
        mean = {c: float(pd.to_numeric(g[c], errors="coerce").mean()) for c in COST_COLUMNS[2:]}
        rows.append({"strategy": strategy, "runs": len(g), **mean})
    return pd.DataFrame(rows, columns=COST_COLUMNS)


# ---------------------------------------------------------------------------- tables and words
def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _wide(grid: tuple[list[str], list[tuple[str, list[str]]]]) -> pd.DataFrame:
    arms, body = grid
    if not body:
        return pd.DataFrame()
    wide = pd.DataFrame([cells for _, cells in body], index=pd.Index([b for b, _ in body], name="budget"), columns=arms)
    wide.columns.name = None
    return wide


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`accuracy_frame` as report.md shows it: budgets down, arms across, "89.12% [88.50, 89.74] (28 px)"
    cells, "—" where a cell is not comparable (:func:`pssviz.studydoc.accuracy_cell`)."""
    return _wide(accuracy_grid(records(frame)))


def effort_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The selection effort of :func:`accuracy_frame` as report.md shows it: per budget and arm, the calibrated
    subnets at or under the ceiling ("20", or "18-20" when seeds differ)."""
    return _wide(effort_grid(records(frame)))


def difference_table(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`difference_frame` as report.md shows it: one row per (budget, other arm), the difference in points with
    its interval, the verdict, Holm's p, the difference detectable at 80% power and each seed pair ("—" and "not
    comparable" where the cell is not). Its columns are :data:`pssviz.studydoc.DIFFERENCE_TABLE_COLUMNS`."""
    return pd.DataFrame([difference_cells(r) for r in records(frame)], columns=DIFFERENCE_TABLE_COLUMNS)


# ---------------------------------------------------------------------------- figures
def _series_arrays(s: ArmSeries, shift: float) -> dict[str, np.ndarray]:
    """A series' points as plotly arrays, sorted by budget, with a NaN point at each gap that lies between two of
    its points: plotly breaks the line there, as the SVG does (a line never bridges a not-comparable budget)."""
    rows = [(b, y, lo, hi, h, f, t) for b, y, lo, hi, h, f, t in zip(s.budgets, s.y, s.lo, s.hi, s.hovers, s.filled, s.tags)]
    if rows:
        first, last = min(s.budgets), max(s.budgets)
        rows += [(g.budget, np.nan, np.nan, np.nan, "", False, "") for g in s.gaps if first < g.budget < last]
    rows.sort(key=lambda r: r[0])
    cols = list(zip(*rows)) if rows else [()] * 7
    b, y, lo, hi = (np.array(c, dtype=float) for c in cols[:4])
    return {"x": b + shift, "y": y, "lo": lo, "hi": hi, "hover": np.array([h.replace("\n", "<br>") for h in cols[4]], dtype=object),
            "filled": np.array(cols[5], dtype=bool), "tags": np.array(cols[6], dtype=object)}


def _gap_annotations(s: ArmSeries, shift: float, side: dict[tuple[int, float], float], i: int) -> list[dict[str, Any]]:
    """A series' not-comparable budgets as "×" marks at the bottom of the plot (no y: never read as a value),
    in its colour, the reason in their hover, side by side with other series' marks at the same budget when not
    dodged (``side``: :func:`pssviz.svgchart.gap_offsets`) -- the plotly twin of the SVG's gap marks."""
    return [dict(x=g.budget + shift, y=0, xref="x", yref="paper", yanchor="bottom", text=GAP_MARK, showarrow=False,
                 xshift=GAP_SPREAD * side.get((i, g.budget), 0.0), font=dict(color=s.color, size=16),
                 hovertext=g.hover.replace("\n", "<br>"), name=f"gap {s.name}")
            for g in s.gaps]


def _gap_sides(series: list[ArmSeries], step: float) -> dict[tuple[int, float], float]:
    """:func:`pssviz.svgchart.gap_offsets` of these series (none when they are dodged apart), as the SVG places them."""
    if step:
        return {}
    return gap_offsets([IntervalSeries(s.name, s.color, (), gaps=tuple(Gap(g.budget) for g in s.gaps)) for s in series])


def _y_range_with_gap_band(series: list[ArmSeries], reference: float | None = None) -> list[float] | None:
    """A y range with room below every value for the gap marks (None when no series has a gap: autorange)."""
    if not any(s.gaps for s in series):
        return None
    ys = [v for s in series for v in (*s.lo, *s.hi)] + ([reference] if reference is not None else [])
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    span = (hi - lo) or abs(hi) or 1.0
    return [lo - 0.18 * span, hi + 0.08 * span]


def _dodge_step(series: list[ArmSeries], dodge: float) -> float:
    budgets = [b for s in series for b in (*s.budgets, *(g.budget for g in s.gaps))]
    return dodge * ((max(budgets) - min(budgets)) or abs(max(budgets)) or 1.0)


def study_accuracy_figure(frame: pd.DataFrame, constraint: str = "macs", title: str | None = None,
                          dodge: float = 0.01) -> go.Figure:
    """Test accuracy (%) against the budget ceiling: one line per arm, with 95% intervals as error bars.

    Input: :func:`accuracy_frame`. A point is the mean over seeds of the subnet each seed's run exports for
    that budget, labelled with the resolution it ships ("28 px"); hover adds the selection effort and the seeds'
    own accuracies. A not-comparable cell is a "×" at the bottom of the plot with its reason in the hover, never
    a point. The arms are nudged sideways by ``dodge`` of the budget span each, so that intervals at one
    budget do not hide each other (0: every point exactly at its budget). :func:`study_accuracy_svg` draws
    the same points, labels and marks without plotly.
    """
    import plotly.graph_objects as go  # here, not at the top: the Study page's first screen needs no plotly

    from .figures import SI, _layout, empty_figure

    title = accuracy_title(title)
    series = accuracy_series(records(frame))
    if not series:
        return empty_figure(title)
    if any(s.gaps for s in series):
        title += f"<br><sup>{ACCURACY_SUBTITLE}</sup>"
    step = _dodge_step(series, dodge)
    side = _gap_sides(series, step)
    traces, marks = [], []
    for i, s in enumerate(series):
        shift = (i - (len(series) - 1) / 2) * step
        a = _series_arrays(s, shift)
        traces.append(dict(
            type="scatter", x=a["x"], y=a["y"], mode="lines+markers+text", name=s.name, legendgroup=s.name,
            line=dict(color=s.color, width=2), marker=dict(color=s.color, size=9),
            text=a["tags"], textposition="top right", textfont=dict(size=10, color=s.color),
            error_y=dict(type="data", array=a["hi"] - a["y"], arrayminus=a["y"] - a["lo"], color=s.color, thickness=1.5, width=5),
            hovertext=a["hover"], hovertemplate="%{hovertext}<extra></extra>"))
        marks += _gap_annotations(s, shift, side, i)
    fig = go.Figure(traces)
    for m in marks:
        fig.add_annotation(**m)
    fig.update_xaxes(title_text=budget_axis_title(constraint), tickformat=SI)
    fig.update_yaxes(title_text="test accuracy (%)", ticksuffix="%", range=_y_range_with_gap_band(series))
    arms = {s.name for s in series}
    return _layout(fig, title, height=460, hovermode="closest", legend=dict(title="strategy" if "pss" in arms else None),
                   margin=dict(l=60, r=20, t=90, b=50))


def study_difference_figure(frame: pd.DataFrame, constraint: str = "macs", title: str | None = None) -> go.Figure:
    """The paired difference reference minus each other arm (pss minus a baseline), in percentage points.

    Input: :func:`difference_frame`. Error bars are the 95% t interval over seeds and the same test images; a
    filled marker is a verdict "different" (Holm-adjusted p < 5%), a hollow one "equivalent" or "inconclusive";
    a not-comparable cell is a "×" at the bottom (untested). Hover gives the verdict, the interval, Holm's p,
    the difference detectable at 80% power and each seed pair's difference with McNemar's exact p. Above the
    dashed zero line the reference is more accurate. :func:`study_difference_svg` draws the same without plotly.
    """
    import plotly.graph_objects as go  # here, not at the top: the Study page's first screen needs no plotly

    from .figures import SI, _layout, empty_figure

    rows = records(frame)
    reference, title, subtitle = difference_titles(rows, title)
    title += f"<br><sup>{subtitle}</sup>"
    if not rows:
        return empty_figure(title)
    series = difference_series(rows)
    side = _gap_sides(series, 0.0)
    traces, marks = [], []
    for i, s in enumerate(series):
        a = _series_arrays(s, 0.0)
        traces.append(dict(
            type="scatter", x=a["x"], y=a["y"], mode="lines+markers", name=f"{reference} − {s.name}",
            line=dict(color=s.color, width=1.5, dash="dot"),
            marker=dict(color=s.color, size=12, symbol=["circle" if f else "circle-open" for f in a["filled"]],
                        line=dict(color=s.color, width=2)),
            error_y=dict(type="data", array=a["hi"] - a["y"], arrayminus=a["y"] - a["lo"], color=s.color, thickness=1.5, width=5),
            hovertext=a["hover"], hovertemplate="%{hovertext}<extra></extra>"))
        marks += _gap_annotations(s, 0.0, side, i)
    fig = go.Figure(traces)
    for m in marks:
        fig.add_annotation(**m)
    fig.add_hline(y=0, line=dict(color="#444", dash="dash", width=1))
    fig.update_xaxes(title_text=budget_axis_title(constraint), tickformat=SI)
    fig.update_yaxes(title_text=f"{reference} − other (percentage points)", ticksuffix="", zeroline=False,
                     range=_y_range_with_gap_band(series, 0.0))
    return _layout(fig, title, height=440, hovermode="closest", margin=dict(l=60, r=20, t=90, b=50))


def study_fronts_figure(study: StudyData, title: str | None = None) -> go.Figure:
    """Every run's Pareto front, overlaid: its subnets' test accuracy (95% Wilson interval) against cost.

    The points are the subnets some budget buys (chosen by validation accuracy, as `pss export` does);
    y is their test accuracy, which chose nothing. One colour per strategy, one dash per seed; the legend
    groups a strategy's seeds, so one click hides a strategy.
    """
    import plotly.graph_objects as go  # here, not at the top: the Study page's first screen needs no plotly

    from .figures import SI, _layout, empty_figure

    unit = COST_UNITS.get(study.constraint, study.constraint)
    title = title or "Each run's Pareto front: test accuracy (95% interval) vs. cost"
    front = study.fronts[study.fronts["pareto"]] if len(study.fronts) else study.fronts
    if not len(front):
        return empty_figure(title)
    strategies = list(dict.fromkeys([*study.config.get("strategies", []), *front["strategy"]]))
    seeds = sorted(set(front["seed"]))
    traces = []
    for (strategy, seed), g in sorted(front.groupby(["strategy", "seed"], sort=False),
                                      key=lambda kv: (strategies.index(kv[0][0]), kv[0][1])):
        g = g.sort_values("cost")
        color = arm_color(str(strategy), strategies.index(strategy))
        y, lo, hi = (100 * g[c].to_numpy(float) for c in ("test_acc", "test_lo", "test_hi"))
        first = seed == min(front.loc[front["strategy"] == strategy, "seed"])
        traces.append(dict(
            type="scatter", x=g["cost"].to_numpy(float), y=y, mode="lines+markers", name=f"seed {seed}",
            legendgroup=str(strategy), legendgrouptitle=dict(text=str(strategy)) if first else None, meta=str(g["run"].iloc[0]),
            line=dict(color=color, dash=SEED_DASHES[seeds.index(seed) % len(SEED_DASHES)], width=1.8),
            marker=dict(color=color, size=7), text=g["key"].to_numpy(dtype=object),
            error_y=dict(type="data", array=hi - y, arrayminus=y - lo, color=color, thickness=1, width=3),
            customdata=np.column_stack([100 * g["validation"].to_numpy(float), lo, hi, g["test_images"].to_numpy(float)]),
            hovertemplate=(f"<b>{strategy}, seed {seed}</b><br>%{{text}}<br>cost %{{x:.4~s}} {unit}<br>test %{{y:.2f}}% "
                           "(95% CI %{customdata[1]:.2f}–%{customdata[2]:.2f}%, %{customdata[3]:,.0f} images)"
                           "<br>validation %{customdata[0]:.2f}% (chose it)<extra></extra>")))
    fig = go.Figure([{k: v for k, v in t.items() if v is not None} for t in traces])
    fig.update_xaxes(title_text=f"cost ({unit})", tickformat=SI)
    fig.update_yaxes(title_text="test accuracy (%)", ticksuffix="%")
    return _layout(fig, title, height=500, hovermode="closest", legend=dict(groupclick="togglegroup"))


# ---------------------------------------------------------------------------- report.html
_INLINE = ((re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"))


def _inline(text: str) -> str:
    """Escape, then the inline Markdown report.md uses: `code` and **bold**."""
    out = html.escape(text, quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _table_html(lines: list[str]) -> str:
    """A pipe table: header row, the |---| row, body rows."""
    head, body = _cells(lines[0]), [_cells(r) for r in lines[1:] if not re.fullmatch(r"\|?[\s:|-]+\|?", r.strip())]
    rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>\n" for r in body)
    return ("<table>\n<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead>\n"
            f"<tbody>\n{rows}</tbody>\n</table>")


def markdown_to_html(text: str) -> str:
    """The Markdown report.md is written in, as HTML: ``#`` headings, paragraphs, ``- `` lists and pipe tables.

    Not a general Markdown parser: just what ``pss study`` writes. Text is escaped, so a cell's ``<=`` stays text.
    """
    out: list[str] = []
    block: list[str] = []
    kind = None

    def flush() -> None:
        nonlocal kind
        if kind == "p":
            out.append(f"<p>{_inline(' '.join(block))}</p>")
        elif kind == "ul":
            out.append("<ul>\n" + "".join(f"<li>{_inline(b)}</li>\n" for b in block) + "</ul>")
        elif kind == "table":
            out.append(_table_html(block))
        block.clear()
        kind = None

    for raw in text.splitlines():
        line = raw.rstrip()
        heading = re.match(r"(#{1,6})\s+(.*)", line)
        new = None if not line.strip() else "h" if heading else "table" if line.lstrip().startswith("|") else \
            "ul" if line.lstrip().startswith("- ") else "p"
        if new != kind or new == "h":
            flush()
        if new == "h":
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif new is not None:
            kind = new
            block.append(line.lstrip()[2:] if new == "ul" else line.strip())
    flush()
    return "\n".join(out)


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; } h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; } tbody tr:nth-child(even) { background: #fafafa; }
code { background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; font-size: 0.9em; }
.figure { margin: 1em 0; } .reading { font-weight: 600; } .footer { color: #777; font-size: 0.85em; margin-top: 3em; }
"""


def _figures_html(study: StudyData) -> str:
    """The three figures, plotly.js inlined once (with the first), each with its caption."""
    figs = [
        (study_accuracy_figure(study.accuracy, study.constraint), ""),
        (study_difference_figure(study.differences, study.constraint),
         "".join(f'<p class="reading">{html.escape(sentence, quote=False)}</p>' for sentence in reading(study.doc))),
        (study_fronts_figure(study), "<p>Each run's subnets that some budget buys (chosen by validation accuracy), "
                                     "drawn at their test accuracy with its 95% interval.</p>"),
    ]
    parts = []
    for i, (fig, caption) in enumerate(figs):
        div = fig.to_html(include_plotlyjs=i == 0, full_html=False, config={"displaylogo": False}, default_width="100%")
        parts.append(f'<div class="figure">{div}{caption}</div>')
    return "\n".join(parts)


def report_html(study_dir: str | Path) -> str:
    """report.html: the study's report.md as HTML with its three figures, in one file that needs no network.

    The title and the study's paragraph come first, then the figures (plotly.js inlined once), then
    report.md's tables and method notes. Raises :class:`StudyLoadError` when study.json cannot be read.
    """
    study = load_study_dir(study_dir)
    md = study.report_md or f"# {study.title}\n\n{recipe_markdown(study.doc)}\n"
    head, sep, rest = md.partition("\n## ")
    if not re.match(r"#\s", head):
        head = f"# {study.title}\n\n{head}"
    problems = "".join(f"<p><em>{html.escape(p)}</em></p>\n" for p in study.problems)
    created = html.escape(str(study.doc.get("created", "")))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(study.title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{markdown_to_html(head)}\n{problems}{_figures_html(study)}\n{markdown_to_html(sep.lstrip() + rest) if sep else ''}\n"
        f'<p class="footer">Written by pss-explorer {html.escape(__version__)} from {STUDY_JSON} (created {created}); '
        "every number is in that file.</p>\n</body>\n</html>\n"
    )


def write_report_html(study_dir: str | Path) -> Path:
    """Write ``report.html`` into the study directory (atomically: a temp file, then os.replace); its path.

    Registered as the ``pss.study_reports`` entry point ``html``: ``pss study`` calls it after study.json.
    """
    path = Path(study_dir).expanduser() / REPORT_HTML
    atomic_write_bytes(path, report_html(study_dir).encode("utf-8"))
    return path
