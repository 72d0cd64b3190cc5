"""A study directory (`pss study`) as tidy DataFrames, plotly and SVG figures and one self-contained HTML page.

``pss study`` writes the numbers (``study.json``, kind ``pss-study``) and a Markdown report; everything
drawn lives here, because ``pss`` never imports plotting (docs/architecture.md). The dashboard's Study
page, notebooks and ``report.html`` (written through the ``pss.study_reports`` entry point right after
``study.json``) all use these functions, so they cannot disagree. The frames are built from the plain rows of
:mod:`pssviz.studydoc`, which also holds the reading and the SVG figures (no pandas: the Study page's first
tab draws from it); its names are re-exported here.

========== ============================== =============================================================
frame      one row per                    columns
========== ============================== =============================================================
accuracy   (budget, arm)                  budget, label, arm, mean, lo, hi, n_seeds, test_s<seed>...
differences (budget, reference, other)    budget, label, reference, other, difference, lo, hi,
                                          significant, mcnemar_p_s<seed>...
fronts     (run, calibrated subnet)       strategy, seed, run, key, cost, validation, test_acc,
                                          test_lo, test_hi, test_images, pareto
costs      strategy                       strategy, runs, epochs, train_seconds, images_per_second,
                                          selection_seconds (means over the strategy's runs)
========== ============================== =============================================================

An *arm* is a strategy in the main comparison, or one side of PSS-Net Table 6 (``pools_vs_search``:
pools, evolution) or Table 8 (``top_k``: top-1, top-5, ...). Accuracies and differences are fractions,
as in study.json; differences are the reference minus the other arm (pss minus a baseline). A budget
whose arm has no subnet in some seed's front (nothing fits) keeps its row with NaN, never an error.
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
from .studydoc import (  # the pandas-free core, re-exported here
    ACCURACY_COLUMNS,
    DIFFERENCE_COLUMNS,
    REPORT_MISSING,
    TABLES,
    StudyDocFields,
    StudyLoadError,
    accuracy_columns,
    accuracy_rows,
    accuracy_series,
    accuracy_title,
    arm_color,
    budget_axis_title,
    difference_columns,
    difference_rows,
    difference_series,
    difference_titles,
    missing_field,
    read_study_doc,
    recipe_markdown,
    records,
    significance_sentence,
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
    "fronts_frame", "cost_frame", "accuracy_table", "difference_table", "significance_sentence", "recipe_markdown",
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
    """Test accuracy per (budget, arm): mean over seeds and test images with its 95% bootstrap interval.

    ``table``: None for the comparison of strategies, or "pools_vs_search" / "top_k". ``test_s<seed>``
    is each seed's test accuracy; an arm that some seed cannot serve at a budget has NaN and n_seeds 0.
    The rows are :func:`pssviz.studydoc.accuracy_rows` (no pandas: the Study page's first tab draws from them).
    """
    return pd.DataFrame(accuracy_rows(doc, table), columns=accuracy_columns(doc))


def difference_frame(doc: dict[str, Any], table: str | None = None) -> pd.DataFrame:
    """The paired differences per budget: reference minus each other arm (pss minus a baseline), in fractions.

    ``significant``: the 95% interval excludes 0 (study.json's verdict); ``mcnemar_p_s<seed>``: McNemar's exact
    test of that seed's two subnets on the same test images. Rows: :func:`pssviz.studydoc.difference_rows`.
    """
    frame = pd.DataFrame(difference_rows(doc, table), columns=difference_columns(doc))
    return frame.astype({"significant": bool}) if len(frame) else frame


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


def accuracy_table(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`accuracy_frame` as report.md shows it: budgets down, arms across, "13.67% [8.59, 18.75]" cells."""
    if not len(frame):
        return pd.DataFrame()
    cells = [("–" if not np.isfinite(m) else f"{100 * m:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]")
             for m, lo, hi in zip(frame["mean"], frame["lo"], frame["hi"])]
    wide = frame.assign(cell=cells, budget_label="≤ " + frame["label"].astype(str)).pivot_table(
        index=["budget", "budget_label"], columns="arm", values="cell", aggfunc="first", sort=False)
    wide = wide[list(dict.fromkeys(frame["arm"]))].reset_index(level=0, drop=True)
    wide.index.name, wide.columns.name = "budget", None
    return wide


def difference_table(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`difference_frame` as report.md shows it: one row per (budget, other arm), in percentage points."""
    pcols = [c for c in frame.columns if c.startswith("mcnemar_p_s")]
    return pd.DataFrame({
        "budget": "≤ " + frame["label"].astype(str),
        "compared with": frame["other"],
        "difference (points)": [f"{100 * d:+.2f}" for d in frame["difference"]],
        "95% interval": [f"[{100 * lo:+.2f}, {100 * hi:+.2f}]" for lo, hi in zip(frame["lo"], frame["hi"])],
        "significant at 5%": ["yes" if s else "no" for s in frame["significant"]],
        "McNemar p per seed": [", ".join(f"{p:.3g}" for p in row if np.isfinite(p)) for row in frame[pcols].to_numpy(float)],
    })


# ---------------------------------------------------------------------------- figures
def study_accuracy_figure(frame: pd.DataFrame, constraint: str = "macs", title: str | None = None,
                          dodge: float = 0.01) -> go.Figure:
    """Test accuracy (%) against the budget ceiling: one line per arm, with 95% intervals as error bars.

    Input: :func:`accuracy_frame`. A point is the mean over seeds of the subnet each seed's run exports for
    that budget; hover names the budget and lists the seeds' own accuracies. Budgets an arm cannot serve are
    left out. The arms are nudged sideways by ``dodge`` of the budget span each, so that intervals at one
    budget do not hide each other (0: every point exactly at its budget). :func:`study_accuracy_svg` draws
    the same points without plotly.
    """
    import plotly.graph_objects as go  # here, not at the top: the Study page's first screen needs no plotly

    from .figures import SI, _layout, empty_figure

    title = accuracy_title(title)
    series = accuracy_series(records(frame))
    if not series:
        return empty_figure(title)
    budgets = np.concatenate([s.budgets for s in series])
    step = dodge * (float(budgets.max() - budgets.min()) or abs(float(budgets.max())) or 1.0)
    traces = []
    for i, s in enumerate(series):
        arm, color = s.name, s.color
        y, lo, hi = np.array(s.y), np.array(s.lo), np.array(s.hi)
        x = np.array(s.budgets) + (i - (len(series) - 1) / 2) * step
        traces.append(dict(
            type="scatter", x=x, y=y, mode="lines+markers", name=arm, legendgroup=arm,
            line=dict(color=color, width=2), marker=dict(color=color, size=9),
            error_y=dict(type="data", array=hi - y, arrayminus=y - lo, color=color, thickness=1.5, width=5),
            customdata=np.column_stack([np.array(s.labels, dtype=object), lo, hi, np.array(s.notes, dtype=object)]),
            hovertemplate=(f"<b>{arm}</b> at ≤ %{{customdata[0]}}<br>test accuracy %{{y:.2f}}% "
                           "(95% CI %{customdata[1]:.2f}–%{customdata[2]:.2f}%)<br>%{customdata[3]}<extra></extra>")))
    fig = go.Figure(traces)
    fig.update_xaxes(title_text=budget_axis_title(constraint), tickformat=SI)
    fig.update_yaxes(title_text="test accuracy (%)", ticksuffix="%")
    arms = {s.name for s in series}
    return _layout(fig, title, height=460, hovermode="closest", legend=dict(title="strategy" if "pss" in arms else None))


def study_difference_figure(frame: pd.DataFrame, constraint: str = "macs", title: str | None = None) -> go.Figure:
    """The paired difference reference minus each other arm (pss minus a baseline), in percentage points.

    Input: :func:`difference_frame`. Error bars are the 95% bootstrap interval over seeds and the same
    test images; a filled marker is significant at 5% (the interval excludes 0), a hollow one is not;
    hover adds McNemar's exact p of each seed. Above the dashed zero line the reference is more accurate.
    :func:`study_difference_svg` draws the same points without plotly.
    """
    import plotly.graph_objects as go  # here, not at the top: the Study page's first screen needs no plotly

    from .figures import SI, _layout, empty_figure

    rows = records(frame)
    reference, title, subtitle = difference_titles(rows, title)
    title += f"<br><sup>{subtitle}</sup>"
    if not rows:
        return empty_figure(title)
    traces = []
    for s in difference_series(rows):
        other, color, sig = s.name, s.color, s.significant
        y, lo, hi = np.array(s.y), np.array(s.lo), np.array(s.hi)
        traces.append(dict(
            type="scatter", x=np.array(s.budgets), y=y, mode="lines+markers", name=f"{reference} − {other}",
            line=dict(color=color, width=1.5, dash="dot"),
            marker=dict(color=color, size=12, symbol=["circle" if g else "circle-open" for g in sig], line=dict(color=color, width=2)),
            error_y=dict(type="data", array=hi - y, arrayminus=y - lo, color=color, thickness=1.5, width=5),
            customdata=np.column_stack([np.array(s.labels, dtype=object), lo, hi,
                                        np.where(sig, "yes", "no").astype(object), np.array(s.notes, dtype=object)]),
            hovertemplate=(f"<b>{reference} − {other}</b> at ≤ %{{customdata[0]}}<br>difference %{{y:+.2f}} points "
                           "(95% CI %{customdata[1]:+.2f} to %{customdata[2]:+.2f})<br>significant at 5%: %{customdata[3]}"
                           "<br>McNemar p per seed: %{customdata[4]}<extra></extra>")))
    fig = go.Figure(traces)
    fig.add_hline(y=0, line=dict(color="#444", dash="dash", width=1))
    fig.update_xaxes(title_text=budget_axis_title(constraint), tickformat=SI)
    fig.update_yaxes(title_text=f"{reference} − other (percentage points)", ticksuffix="", zeroline=False)
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
         f'<p class="reading">{html.escape(significance_sentence(study.differences))}</p>'),
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
