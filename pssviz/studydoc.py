"""study.json as plain rows: the pandas-free core of :mod:`pssviz.study`.

The dashboard opens on the Study page. Its first tab (the recipe, the reading, the two figures as static
SVG) is drawn from these rows before pandas is imported, which keeps the first page close to Streamlit's
own start-up time (``bench/first_page.py``). :mod:`pssviz.study` builds its DataFrames from the same rows
(``pd.DataFrame(accuracy_rows(doc), columns=...)``) and its plotly figures from the same series, so the page,
the notebooks and ``report.html`` cannot disagree. Row keys are the frames' columns (see pssviz.study).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from pss.config import STRATEGIES
from pss.errors import PssError
from pss.io.study import REPORT_FILE, STUDY_JSON, read_study
from pss.units import COST_UNITS

from .style import SERIES_COLORS
from .svgchart import IntervalPoint, IntervalSeries, interval_chart_svg, si_number

#: the tables of study.json beside the main comparison, with their titles (PSS-Net's numbering)
TABLES = {
    "pools_vs_search": "PSS-Net Table 6: the pss supernet's pool subnets vs evolutionary search on the same supernet",
    "top_k": "PSS-Net Table 8: calibrating each pool's top-k entries (by the metric m)",
}
ACCURACY_COLUMNS = ["budget", "label", "arm", "mean", "lo", "hi", "n_seeds"]
DIFFERENCE_COLUMNS = ["budget", "label", "reference", "other", "difference", "lo", "hi", "significant"]
NAN = float("nan")
REPORT_MISSING = f"{REPORT_FILE} is missing; rerun `pss study` to write it"
Rows = list[dict[str, Any]]


class StudyLoadError(Exception):
    """A study directory cannot be read at all; the message is one line for the user."""


def read_study_doc(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """(study.json, problems a reader should see) of a study directory; raises :class:`StudyLoadError` (one line)."""
    path = Path(path).expanduser()
    try:
        doc = read_study(path)
    except PssError as exc:
        raise StudyLoadError(str(exc)) from None
    problems = [] if (path / REPORT_FILE).is_file() else [REPORT_MISSING]
    return doc, problems


class StudyDocFields:
    """What every view of a study reads from its study.json (``doc``): the cost kind and the study's settings."""

    doc: dict[str, Any]

    @property
    def constraint(self) -> str:
        return str(self.doc.get("constraint", "macs"))

    @property
    def config(self) -> dict[str, Any]:
        return self.doc.get("study") or {}


@dataclass
class StudySummary(StudyDocFields):
    """What the Study page's first tab shows: study.json, its problems, and the main comparison as rows."""

    path: Path
    doc: dict[str, Any]
    accuracy: "Rows"
    differences: "Rows"
    problems: list[str]


def study_summary(path: str | Path) -> StudySummary:
    """A study directory's :class:`StudySummary`, without pandas; raises :class:`StudyLoadError` (one line)."""
    path = Path(path).expanduser()
    doc, problems = read_study_doc(path)
    try:
        return StudySummary(path, doc, accuracy_rows(doc), difference_rows(doc), problems)
    except (KeyError, TypeError, ValueError) as exc:
        raise missing_field(path, exc) from None


def missing_field(path: str | Path, exc: Exception) -> StudyLoadError:
    """The one-line error for a study.json that parses but lacks what the tables need."""
    return StudyLoadError(f"{Path(path).expanduser() / STUDY_JSON} lacks a required field ({exc}); it was not written by pss study")


# ---------------------------------------------------------------------------- rows
def _section(doc: dict[str, Any], table: str | None) -> tuple[list[dict[str, Any]], str, str, str | None]:
    """(per-budget entries, key of the arms, key of the differences, reference arm) of the comparison or a table."""
    if table is None:
        return list(doc.get("comparison") or []), "strategies", "vs_pss", "pss"
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; study.json has {', '.join(TABLES)}")
    t = (doc.get("tables") or {}).get(table)
    if not t:
        return [], "arms", "vs_reference", None
    return list(t.get("comparison") or []), "arms", "vs_reference", t.get("reference")


def _arms(doc: dict[str, Any], entries: list[dict[str, Any]], key: str, table: str | None) -> list[str]:
    """The arms in the study's order: its strategies, or a table's arms as study.json lists them."""
    if table is None:
        return list((doc.get("study") or {}).get("strategies") or dict.fromkeys(a for e in entries for a in e[key]))
    return list(dict.fromkeys(a for e in entries for a in e[key]))


def _seeds(doc: dict[str, Any]) -> list[int]:
    return [int(s) for s in (doc.get("study") or {}).get("seeds") or []]


def accuracy_columns(doc: dict[str, Any]) -> list[str]:
    return ACCURACY_COLUMNS + [f"test_s{s}" for s in _seeds(doc)]


def difference_columns(doc: dict[str, Any]) -> list[str]:
    return DIFFERENCE_COLUMNS + [f"mcnemar_p_s{s}" for s in _seeds(doc)]


def accuracy_rows(doc: dict[str, Any], table: str | None = None) -> Rows:
    """Test accuracy per (budget, arm), every key of :func:`accuracy_columns` in every row (NaN where an arm
    cannot serve a budget in some seed, with n_seeds 0). ``table``: None, "pools_vs_search" or "top_k"."""
    entries, key, _, _ = _section(doc, table)
    columns = accuracy_columns(doc)
    rows = []
    for e in entries:
        for arm in _arms(doc, entries, key, table):
            r = e[key].get(arm)
            row = dict.fromkeys(columns, NAN) | {"budget": float(e["budget"]), "label": e["label"], "arm": arm, "n_seeds": 0}
            if r is not None:
                row.update(mean=float(r["mean_test_accuracy"]), lo=float(r["ci95"][0]), hi=float(r["ci95"][1]), n_seeds=len(r["per_seed"]))
                row.update({f"test_s{p['seed']}": float(p["test"]["accuracy"]) for p in r["per_seed"]})
            rows.append(row)
    return rows


def difference_rows(doc: dict[str, Any], table: str | None = None) -> Rows:
    """The paired differences per budget, reference minus each other arm, in fractions (keys: :func:`difference_columns`)."""
    entries, _, diff_key, reference = _section(doc, table)
    columns = difference_columns(doc)
    rows = []
    for e in entries:
        for other, d in (e.get(diff_key) or {}).items():
            row = dict.fromkeys(columns, NAN) | {
                "budget": float(e["budget"]), "label": e["label"], "reference": reference, "other": other,
                "difference": float(d["mean_difference"]), "lo": float(d["ci95"][0]), "hi": float(d["ci95"][1]),
                "significant": bool(d["significant"])}
            row.update({f"mcnemar_p_s{p['seed']}": float(p["mcnemar_p"]) for p in d["per_seed"]})
            rows.append(row)
    return rows


def records(table: Any) -> Rows:
    """Rows from a list of dicts or a pandas DataFrame (``to_dict("records")``), so both kinds of caller fit."""
    return table.to_dict("records") if hasattr(table, "to_dict") else list(table)


# ---------------------------------------------------------------------------- words
def _budget_list(labels: list[str]) -> str:
    return ", ".join(f"≤ {lab}" for lab in labels)


def significance_sentence(differences: Iterable[Mapping[str, Any]] | Any) -> str:
    """A plain reading of the differences (rows or :func:`pssviz.study.difference_frame`): how many are
    significant at 5%, and which way."""
    rows = records(differences)
    n = len(rows)
    if not n:
        return "There is nothing to compare: the study has no reference arm (pss) or no budget that every run can serve."
    reference = str(rows[0]["reference"])
    sig = [r for r in rows if r["significant"]]
    if not sig:
        others = ", ".join(dict.fromkeys(str(r["other"]) for r in rows))
        return (f"None of the {n} differences is significant at 5%: every 95% interval contains 0, so with these seeds "
                f"and test images {reference} cannot be told apart from {others}.")
    parts = []
    for other in dict.fromkeys(r["other"] for r in sig):
        better = [r["label"] for r in sig if r["other"] == other and r["difference"] > 0]
        worse = [r["label"] for r in sig if r["other"] == other and r["difference"] < 0]
        if better:
            parts.append(f"{reference} is more accurate than {other} at {_budget_list(better)}")
        if worse:
            parts.append(f"{reference} is less accurate than {other} at {_budget_list(worse)}")
    k = len(sig)
    verb = "is" if k == 1 else "are"
    rest = f"; the other {n - k} intervals contain 0" if n > k else ""
    return f"{k} of {n} differences {verb} significant at 5% (the 95% interval excludes 0): " + "; ".join(parts) + rest + "."


def recipe_markdown(doc: dict[str, Any]) -> str:
    """The study in one Markdown paragraph: recipe, overrides, strategies, seeds, selection effort."""
    s = doc.get("study") or {}
    overrides = ", ".join(f"`{k}={v}`" for k, v in (s.get("set") or {}).items()) or "no overrides"
    return (f"Recipe `{s.get('recipe')}` with {overrides}; strategies {', '.join(s.get('strategies') or [])}; seeds "
            f"{', '.join(map(str, s.get('seeds') or []))}; {s.get('evaluations')} calibrated evaluations per budget for every "
            f"strategy; budgets are ceilings in {COST_UNITS.get(str(doc.get('constraint')), doc.get('constraint'))}. "
            "Accuracy is top-1 on the test split, which no selection saw.")


# ---------------------------------------------------------------------------- series, shared by the plotly and SVG figures
def arm_color(arm: str, position: int) -> str:
    """A strategy keeps its colour in every study figure (pss.config's order); other arms go by position."""
    i = STRATEGIES.index(arm) if arm in STRATEGIES else position
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def budget_axis_title(constraint: str) -> str:
    return f"budget ({COST_UNITS.get(constraint, constraint)}, ceiling)"


@dataclass(frozen=True)
class ArmSeries:
    """One arm's points by budget, in percent (accuracy) or percentage points (differences), with their hover notes."""

    name: str
    color: str
    budgets: list[float]
    labels: list[str]
    y: list[float]
    lo: list[float]
    hi: list[float]
    notes: list[str]
    significant: list[bool] | None = None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def accuracy_series(rows: Rows) -> list[ArmSeries]:
    """Per arm, in the rows' order: its budgets it can serve (sorted), the mean and 95% interval in %, and each
    seed's accuracy as text."""
    shown = [r for r in rows if _finite(r["mean"])]
    out = []
    for i, arm in enumerate(dict.fromkeys(r["arm"] for r in shown)):
        g = sorted((r for r in shown if r["arm"] == arm), key=lambda r: r["budget"])
        seeds = [", ".join(f"seed {k[6:]}: {100 * v:.2f}%" for k, v in r.items() if k.startswith("test_s") and _finite(v)) for r in g]
        out.append(ArmSeries(str(arm), arm_color(str(arm), i), [float(r["budget"]) for r in g], [str(r["label"]) for r in g],
                             [100 * r["mean"] for r in g], [100 * r["lo"] for r in g], [100 * r["hi"] for r in g], seeds))
    return out


def difference_series(rows: Rows) -> list[ArmSeries]:
    """Per other arm: the difference and its 95% interval in points by budget, significance, McNemar's p per seed."""
    out = []
    for i, other in enumerate(dict.fromkeys(r["other"] for r in rows), start=1):
        g = sorted((r for r in rows if r["other"] == other), key=lambda r: r["budget"])
        ps = [", ".join(f"seed {k[11:]}: {v:.3g}" for k, v in r.items() if k.startswith("mcnemar_p_s") and _finite(v)) or "–"
              for r in g]
        out.append(ArmSeries(str(other), arm_color(str(other), i), [float(r["budget"]) for r in g], [str(r["label"]) for r in g],
                             [100 * r["difference"] for r in g], [100 * r["lo"] for r in g], [100 * r["hi"] for r in g], ps,
                             [bool(r["significant"]) for r in g]))
    return out


def accuracy_title(title: str | None) -> str:
    return title or "Test accuracy at each budget (mean over seeds, 95% interval)"


def difference_titles(rows: Rows, title: str | None) -> tuple[str, str, str]:
    """(reference arm, title, subtitle) of the difference figure."""
    reference = str(rows[0]["reference"]) if rows else "pss"
    title = title or f"{reference} minus each {'baseline' if reference == 'pss' else 'arm'} (paired, same test images)"
    return reference, title, "filled: significant at 5% (95% interval excludes 0) · hollow: not significant"


def _budget_ticks(rows: Rows) -> list[tuple[float, str]]:
    return [(b, si_number(b)) for b in sorted({float(r["budget"]) for r in rows}) if math.isfinite(b)]


def study_accuracy_svg(accuracy: Any, constraint: str = "macs", title: str | None = None, dodge: float = 0.01) -> str:
    """Test accuracy per budget as a static SVG (:mod:`pssviz.svgchart`): the points, intervals, colours and hover
    text of :func:`pssviz.study.study_accuracy_figure`, drawn with the page's text instead of after plotly.js has
    loaded. ``accuracy``: :func:`accuracy_rows` or the accuracy frame."""
    rows = records(accuracy)
    series = [IntervalSeries(s.name, s.color, tuple(
        IntervalPoint(b, v, a, z, True, f"{s.name} at ≤ {label}\ntest accuracy {v:.2f}% (95% CI {a:.2f}–{z:.2f}%)" + (f"\n{n}" if n else ""))
        for b, label, v, a, z, n in zip(s.budgets, s.labels, s.y, s.lo, s.hi, s.notes))) for s in accuracy_series(rows)]
    return interval_chart_svg(series, title=accuracy_title(title), x_title=budget_axis_title(constraint),
                              y_title="test accuracy (%)", y_suffix="%", x_ticks=_budget_ticks(rows), dodge=dodge, height=460)


def study_difference_svg(differences: Any, constraint: str = "macs", title: str | None = None) -> str:
    """The paired differences as a static SVG: filled markers significant at 5%, hollow ones not, the dashed line
    at 0; hover gives the interval and McNemar's p of each seed. ``differences``: rows or the difference frame."""
    rows = records(differences)
    reference, title, subtitle = difference_titles(rows, title)
    series = [IntervalSeries(f"{reference} − {s.name}", s.color, tuple(
        IntervalPoint(b, v, a, z, sg, f"{reference} − {s.name} at ≤ {label}\ndifference {v:+.2f} points (95% CI {a:+.2f} to "
                      f"{z:+.2f})\nsignificant at 5%: {'yes' if sg else 'no'}\nMcNemar p per seed: {p}")
        for b, label, v, a, z, sg, p in zip(s.budgets, s.labels, s.y, s.lo, s.hi, s.significant, s.notes)), dashed=True)
        for s in difference_series(rows)]
    return interval_chart_svg(series, title=title, subtitle=subtitle, x_title=budget_axis_title(constraint),
                              y_title=f"{reference} − other (percentage points)", reference=0.0,
                              x_ticks=_budget_ticks(rows), dodge=0.0, height=440)
