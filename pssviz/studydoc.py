"""study.json as plain rows: the pandas-free core of :mod:`pssviz.study`.

The dashboard opens on the Study page. Its first tab (the reading, the recipe, the two figures as static
SVG, the tables as Markdown) is drawn from these rows before pandas is imported, which keeps the first page
close to Streamlit's own start-up time (``bench/first_page.py``). :mod:`pssviz.study` builds its DataFrames
from the same rows (``pd.DataFrame(accuracy_rows(doc), columns=...)``), its plotly figures from the same
series and its tables from the same cells, so the page, the notebooks and ``report.html`` cannot disagree.
Row keys are the frames' columns (see pssviz.study).

What a reader may conclude comes from study.json alone: its ``reading`` (the sentences ``pss study`` wrote
into report.md; :func:`pss.io.study.reading_sentences` for a study.json written before it had them), and
each cell's ``comparable`` flag and each difference's ``verdict`` (Holm-adjusted test, TOST for equivalence).
A cell that is not comparable has no numbers here (NaN) and is drawn as a mark, never as a point: it can be
neither a win nor a loss. A study.json written before cells had a ``comparable`` flag reads as comparable
(a missing cell as not), and its differences have no verdict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pss.config import STRATEGIES
from pss.errors import PssError
from pss.io.study import REPORT_FILE, STUDY_JSON, read_study, reading_sentences
from pss.units import COST_UNITS

from .style import SERIES_COLORS
from .svgchart import Gap, IntervalPoint, IntervalSeries, interval_chart_svg, si_number

#: the tables of study.json beside the main comparison, with their titles (PSS-Net's numbering)
TABLES = {
    "pools_vs_search": "PSS-Net Table 6: the pss supernet's pool subnets vs evolutionary search on the same supernet",
    "top_k": "PSS-Net Table 8: calibrating each pool's top-k entries (by the metric m)",
}
ACCURACY_COLUMNS = ["budget", "label", "arm", "comparable", "mean", "lo", "hi", "n_seeds", "resolution", "evaluations",
                    "evaluations_max", "reason"]
DIFFERENCE_COLUMNS = ["budget", "label", "reference", "other", "comparable", "verdict", "difference", "lo", "hi", "p_holm",
                      "tost_p_holm", "mdd80", "margin", "significant", "reason"]
#: the columns of :func:`difference_cells`, as report.md's difference tables head them
DIFFERENCE_TABLE_COLUMNS = ["budget", "compared with", "difference [95% CI]", "verdict (Holm)", "p (Holm)",
                            "detectable at 80% power", "per seed (McNemar p)"]
NOT_COMPARABLE = "not comparable"
#: a table cell without a number: "—" where a cell is not comparable (as report.md), "–" where a number is missing
NO_CELL, NO_NUMBER = "—", "–"
#: the reason of a cell that an older study.json left empty (null): some seed had nothing to ship
MISSING_CELL = "some seed has no calibrated subnet at or under this ceiling"
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
        reading(doc)  # a study.json whose reading cannot be made lacks what the page needs: one line, not a traceback
        return StudySummary(path, doc, accuracy_rows(doc), difference_rows(doc), problems)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise missing_field(path, exc) from None


def missing_field(path: str | Path, exc: Exception) -> StudyLoadError:
    """The one-line error for a study.json that parses but lacks what the tables need."""
    return StudyLoadError(f"{Path(path).expanduser() / STUDY_JSON} lacks a required field ({exc}); it was not written by pss study")


# ---------------------------------------------------------------------------- seeds
def seeds_by_strategy(doc: dict[str, Any]) -> dict[str, list[int]]:
    """Each strategy's seeds: study.json's ``study.seeds`` is one list for all, or a list per strategy."""
    s = doc.get("study") or {}
    seeds = s.get("seeds") or []
    if isinstance(seeds, dict):
        return {str(k): [int(x) for x in v] for k, v in seeds.items()}
    return {str(k): [int(x) for x in seeds] for k in s.get("strategies") or []}


def _seeds(doc: dict[str, Any]) -> list[int]:
    """Every seed of the study (the union over strategies, sorted): the per-seed columns of the frames."""
    seeds = (doc.get("study") or {}).get("seeds") or []
    if isinstance(seeds, dict):
        return sorted({int(x) for v in seeds.values() for x in v})
    return sorted({int(x) for x in seeds})


def seeds_text(doc: dict[str, Any]) -> str:
    """"seeds 0, 1", or per strategy when they differ: "pss 5 seeds (0, 1, 2, 3, 4), uniform 3 seeds (0, 1, 2)"."""
    seeds = (doc.get("study") or {}).get("seeds") or []
    if not isinstance(seeds, dict):
        return f"seeds {', '.join(map(str, seeds))}"
    return ", ".join(f"{s} {len(v)} seed{'s' if len(v) != 1 else ''} ({', '.join(map(str, v))})" for s, v in seeds.items())


def seed_count_text(doc: dict[str, Any]) -> str:
    """How many seeds each strategy has, as a short figure: "2", or "3-5" when strategies differ."""
    counts = sorted({len(v) for v in seeds_by_strategy(doc).values()}) or [0]
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


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


def accuracy_columns(doc: dict[str, Any]) -> list[str]:
    return ACCURACY_COLUMNS + [f"test_s{s}" for s in _seeds(doc)]


def difference_columns(doc: dict[str, Any]) -> list[str]:
    return DIFFERENCE_COLUMNS + [f"difference_s{s}" for s in _seeds(doc)] + [f"mcnemar_p_s{s}" for s in _seeds(doc)]


_KEY_RESOLUTION = re.compile(r"r(\d+)-")


def _resolution(row: dict[str, Any]) -> int | None:
    """The input resolution a per-seed row ships: its ``resolution``, else the ``r<px>-`` of its structure key."""
    if row.get("resolution"):
        return int(row["resolution"])
    m = _KEY_RESOLUTION.match(str(row.get("key") or ""))
    return int(m.group(1)) if m else None


def shipped_resolution(cell: dict[str, Any] | None) -> str:
    """The resolutions a cell's seeds ship, as report.md writes them: "28", or "20/24" when seeds differ ("" if none)."""
    res = sorted({r for r in (_resolution(p) for p in (cell or {}).get("per_seed") or []) if r is not None})
    return "/".join(map(str, res))


def _effort(cell: dict[str, Any] | None) -> tuple[float, float]:
    """(fewest, most) calibrated subnets at or under the ceiling over a cell's seeds; NaN when study.json has none."""
    n = [int(x) for x in (cell or {}).get("evaluations") or []]
    return (float(min(n)), float(max(n))) if n else (NAN, NAN)


def cell_comparable(cell: dict[str, Any] | None) -> bool:
    """Whether a cell (an arm at a budget) can be compared: flagged so (older study.json: unflagged) and with a mean."""
    return cell is not None and bool(cell.get("comparable", True)) and cell.get("mean_test_accuracy") is not None


def accuracy_rows(doc: dict[str, Any], table: str | None = None) -> Rows:
    """Test accuracy per (budget, arm), every key of :func:`accuracy_columns` in every row. ``table``: None,
    "pools_vs_search" or "top_k".

    A cell that is not comparable (some seed ships a subnet its strategy never trained, or none) keeps its row
    with NaN numbers, n_seeds 0 and its ``reason``; ``resolution`` and ``evaluations`` (the fewest calibrated
    subnets at or under the ceiling over its seeds; ``evaluations_max`` the most) are given for every cell.
    """
    entries, key, _, _ = _section(doc, table)
    columns = accuracy_columns(doc)
    rows = []
    for e in entries:
        for arm in _arms(doc, entries, key, table):
            r = e[key].get(arm)
            ok = cell_comparable(r)
            fewest, most = _effort(r)
            reason = "" if ok else str((r or {}).get("reason") or MISSING_CELL)
            row = dict.fromkeys(columns, NAN) | {
                "budget": float(e["budget"]), "label": e["label"], "arm": arm, "comparable": ok, "n_seeds": 0,
                "resolution": shipped_resolution(r), "evaluations": fewest, "evaluations_max": most, "reason": reason}
            if ok:
                row.update(mean=float(r["mean_test_accuracy"]), lo=float(r["ci95"][0]), hi=float(r["ci95"][1]), n_seeds=len(r["per_seed"]))
                row.update({f"test_s{p['seed']}": float(p["test"]["accuracy"]) for p in r["per_seed"]})
            rows.append(row)
    return rows


def _number(value: Any) -> float:
    return NAN if value is None else float(value)


def difference_rows(doc: dict[str, Any], table: str | None = None) -> Rows:
    """The paired differences per budget, reference minus each other arm, in fractions (keys: :func:`difference_columns`).

    ``verdict`` is study.json's (Holm-adjusted, 5%: different, equivalent within ``margin``, inconclusive), or
    "not comparable" with NaN numbers and its ``reason``; ``significant`` is verdict == "different" (an older
    study.json's unadjusted flag is not carried over: its verdict is ""). Per seed pair: the difference and
    McNemar's p.
    """
    entries, _, diff_key, reference = _section(doc, table)
    columns = difference_columns(doc)
    default_margin = float((doc.get("study") or {}).get("equivalence_margin", 0.5)) / 100
    rows = []
    for e in entries:
        for other, d in (e.get(diff_key) or {}).items():
            ok = bool(d.get("comparable", True)) and d.get("mean_difference") is not None
            row = dict.fromkeys(columns, NAN) | {
                "budget": float(e["budget"]), "label": e["label"], "reference": reference, "other": other, "comparable": ok,
                "verdict": str(d.get("verdict") or "") if ok else NOT_COMPARABLE, "margin": float(d.get("margin") or default_margin),
                "significant": ok and d.get("verdict") == "different", "reason": "" if ok else str(d.get("reason") or MISSING_CELL)}
            if ok:
                row.update(difference=float(d["mean_difference"]), lo=float(d["ci95"][0]), hi=float(d["ci95"][1]),
                           p_holm=_number(d.get("p_holm")), tost_p_holm=_number(d.get("tost_p_holm")), mdd80=_number(d.get("mdd80")))
                for p in d.get("per_seed") or []:
                    row[f"mcnemar_p_s{p['seed']}"] = float(p["mcnemar_p"])
                    row[f"difference_s{p['seed']}"] = _number(p.get("difference"))
            rows.append(row)
    return rows


def records(table: Any) -> Rows:
    """Rows from a list of dicts or a pandas DataFrame (``to_dict("records")``), so both kinds of caller fit."""
    return table.to_dict("records") if hasattr(table, "to_dict") else list(table)


# ---------------------------------------------------------------------------- words
def reading(doc: dict[str, Any]) -> list[str]:
    """The study in plain sentences: what is different, equivalent, inconclusive and not comparable.

    The one source of every conclusion the page, report.html and notebook 06 state: study.json's ``reading``,
    which ``pss study`` also wrote into report.md; for a study.json without one (written by an older version, or
    edited), :func:`pss.io.study.reading_sentences` makes it from the numbers in the same words.
    """
    stored = doc.get("reading")
    if isinstance(stored, list) and stored and all(isinstance(s, str) for s in stored):
        return list(stored)
    return reading_sentences(doc)


def recipe_markdown(doc: dict[str, Any]) -> str:
    """The study in one Markdown paragraph: recipe, overrides, strategies, seeds, selection effort, how it judges."""
    s = doc.get("study") or {}
    overrides = ", ".join(f"`{k}={v}`" for k, v in (s.get("set") or {}).items()) or "no overrides"
    margin = s.get("equivalence_margin")
    judged = (f" Differences are judged at 5% after Holm's adjustment over all of them; 'equivalent' means a difference "
              f"beyond ±{float(margin):g} points is ruled out (TOST).") if margin is not None else ""
    return (f"Recipe `{s.get('recipe')}` with {overrides}; strategies {', '.join(s.get('strategies') or [])}; "
            f"{seeds_text(doc)}; {s.get('evaluations')} calibrated evaluations per budget for every "
            f"strategy; budgets are ceilings in {COST_UNITS.get(str(doc.get('constraint')), doc.get('constraint'))}. "
            f"Accuracy is top-1 on the test split, which no selection saw.{judged}")


def plateau_sentence(doc: dict[str, Any]) -> str | None:
    """Whether training had levelled off (study.json's ``plateau``), in report.md's words; None when not measured."""
    p = doc.get("plateau") or {}
    if p.get("max_points") is None or p.get("mean_points") is None:
        return None
    return (f"The max subnet's validation accuracy gained {float(p['mean_points']):.2f} points on average (at most "
            f"{float(p['max_points']):.2f}) over the last quarter of training; the target is under "
            f"{float(p.get('threshold_points', 0.3)):g} points: " + ("reached." if p.get("reached") else
            "**not reached** — the runs were still improving, so longer training could change the comparison."))


def families_sentence(doc: dict[str, Any]) -> str | None:
    """What each strategy trained (study.json's ``trained_families``), in report.md's words; None when not recorded."""
    families = doc.get("trained_families") or {}
    if not families:
        return None
    return ("What each strategy trained (its subnets are chosen, and compared, only among these): "
            + "; ".join(f"{s}: {f.get('description', '')}" for s, f in families.items()) + ".")


def not_comparable_notes(rows: Rows) -> list[str]:
    """One line per not-comparable cell of :func:`accuracy_rows`: the arm, the budget and why (report.md's list)."""
    return [f"{r['arm']} at ≤ {r['label']}: {r['reason']}" for r in rows if not r["comparable"]]


# ---------------------------------------------------------------------------- table cells, shared by the page and the frames
def accuracy_cell(row: dict[str, Any]) -> str:
    """An accuracy row as report.md's cell: "89.12% [88.50, 89.74] (28 px)", "—" when not comparable."""
    if not row["comparable"] or not _finite(row["mean"]):
        return NO_CELL
    px = f" ({row['resolution']} px)" if row.get("resolution") else ""
    return f"{100 * row['mean']:.2f}% [{100 * row['lo']:.2f}, {100 * row['hi']:.2f}]{px}"


def effort_cell(row: dict[str, Any]) -> str:
    """Calibrated subnets at or under the ceiling: "20", or "18-20" when seeds differ ("–" when not recorded)."""
    fewest, most = row.get("evaluations"), row.get("evaluations_max")
    if not _finite(fewest):
        return NO_NUMBER
    return str(int(fewest)) if not _finite(most) or most == fewest else f"{int(fewest)}-{int(most)}"


def _grid(rows: Rows, cell: Any) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(arms, [(budget "≤ label", a cell per arm)]) in the rows' order; an arm without a row at a budget: "–"."""
    arms = list(dict.fromkeys(str(r["arm"]) for r in rows))
    by_budget: dict[str, dict[str, str]] = {}
    for r in rows:
        by_budget.setdefault(f"≤ {r['label']}", {})[str(r["arm"])] = cell(r)
    return arms, [(b, [cells.get(a, NO_NUMBER) for a in arms]) for b, cells in by_budget.items()]


def accuracy_grid(rows: Rows) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The accuracy table: budgets down, arms across, :func:`accuracy_cell` each."""
    return _grid(rows, accuracy_cell)


def effort_grid(rows: Rows) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The selection effort: budgets down, arms across, :func:`effort_cell` each (the same effort for every arm is
    what makes a comparison fair: a strategy that chose among more subnets had more chances)."""
    return _grid(rows, effort_cell)


def _p(p: Any) -> str:
    return f"{p:.2g}" if _finite(p) else NO_NUMBER


def verdict_text(row: dict[str, Any]) -> str:
    """The verdict as report.md writes it: "equivalent (±0.5)" names the margin; "–" when study.json has none."""
    v = str(row["verdict"] or "")
    if v == "equivalent":
        return f"equivalent (±{100 * row['margin']:g})"
    return v or NO_NUMBER


def per_seed_text(row: dict[str, Any]) -> str:
    """Each seed pair's difference and McNemar's p: "s0 +0.12 (0.53), s1 -0.05 (0.8)"."""
    parts = []
    for k, p in row.items():
        if k.startswith("mcnemar_p_s") and _finite(p):
            seed = k[len("mcnemar_p_s"):]
            d = row.get(f"difference_s{seed}")
            parts.append(f"s{seed} {100 * d:+.2f} ({p:.2g})" if _finite(d) else f"s{seed} ({p:.2g})")
    return ", ".join(parts) or NO_NUMBER


def difference_cells(row: dict[str, Any]) -> list[str]:
    """A difference row as report.md's table row (:data:`DIFFERENCE_TABLE_COLUMNS`); "—" when not comparable."""
    budget, other = f"≤ {row['label']}", str(row["other"])
    if not row["comparable"]:
        return [budget, other, NO_CELL, NOT_COMPARABLE, NO_NUMBER, NO_NUMBER, NO_NUMBER]
    mdd = f"{100 * row['mdd80']:.2f} points" if _finite(row["mdd80"]) else NO_NUMBER
    return [budget, other, f"{100 * row['difference']:+.2f} points [{100 * row['lo']:+.2f}, {100 * row['hi']:+.2f}]",
            verdict_text(row), _p(row["p_holm"]), mdd, per_seed_text(row)]


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    """A GitHub pipe table (Streamlit's st.markdown draws it with the page's text, no data grid to load)."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), "|" + "---|" * len(header), *(line(r) for r in body)])


def accuracy_markdown(rows: Rows) -> str:
    arms, body = accuracy_grid(rows)
    return markdown_table(["budget", *arms], [[b, *cells] for b, cells in body])


def effort_markdown(rows: Rows) -> str:
    arms, body = effort_grid(rows)
    return markdown_table(["budget", *arms], [[b, *cells] for b, cells in body])


def difference_markdown(rows: Rows) -> str:
    return markdown_table(DIFFERENCE_TABLE_COLUMNS, [difference_cells(r) for r in rows])


# ---------------------------------------------------------------------------- series, shared by the plotly and SVG figures
def arm_color(arm: str, position: int) -> str:
    """A strategy keeps its colour in every study figure (pss.config's order); other arms go by position."""
    i = STRATEGIES.index(arm) if arm in STRATEGIES else position
    return SERIES_COLORS[i % len(SERIES_COLORS)]


def budget_axis_title(constraint: str) -> str:
    return f"budget ({COST_UNITS.get(constraint, constraint)}, ceiling)"


@dataclass(frozen=True)
class GapCell:
    """A budget where a series shows no estimate (a not-comparable cell): drawn as a mark, with why in its hover."""

    budget: float
    label: str
    hover: str


@dataclass(frozen=True)
class ArmSeries:
    """One series of a study figure: its points by budget in percent (accuracy) or percentage points (differences),
    each with its hover text (several lines), filled or hollow, and a short tag drawn beside it ("28 px"); and its
    not-comparable budgets (``gaps``). The SVG and the plotly figure both draw exactly this."""

    name: str
    color: str
    budgets: list[float]
    labels: list[str]
    y: list[float]
    lo: list[float]
    hi: list[float]
    hovers: list[str]
    filled: list[bool]
    tags: list[str]
    gaps: list[GapCell] = field(default_factory=list)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _effort_phrase(row: dict[str, Any]) -> str:
    n = effort_cell(row)
    return "" if n == NO_NUMBER else f" · chosen among {n} calibrated subnets at or under the ceiling"


def accuracy_series(rows: Rows) -> list[ArmSeries]:
    """Per arm, in the rows' order: its comparable budgets (sorted) with the mean and 95% interval in %, tagged with
    the resolution shipped; its not-comparable budgets as gaps with their reason."""
    out = []
    for i, arm in enumerate(dict.fromkeys(r["arm"] for r in rows)):
        g = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["budget"])
        shown = [r for r in g if r["comparable"] and _finite(r["mean"])]
        hovers = []
        for r in shown:
            seeds = ", ".join(f"seed {k[6:]}: {100 * v:.2f}%" for k, v in r.items() if k.startswith("test_s") and _finite(v))
            ships = f"ships {r['resolution']} px" if r["resolution"] else "ships"
            hovers.append(f"{arm} at ≤ {r['label']}\ntest accuracy {100 * r['mean']:.2f}% (95% CI {100 * r['lo']:.2f}–"
                          f"{100 * r['hi']:.2f}%)\n{ships}{_effort_phrase(r)}" + (f"\n{seeds}" if seeds else ""))
        gaps = [GapCell(float(r["budget"]), str(r["label"]), f"{arm} at ≤ {r['label']}: not comparable\n{r['reason']}")
                for r in g if not (r["comparable"] and _finite(r["mean"]))]
        out.append(ArmSeries(str(arm), arm_color(str(arm), i), [float(r["budget"]) for r in shown], [str(r["label"]) for r in shown],
                             [100 * r["mean"] for r in shown], [100 * r["lo"] for r in shown], [100 * r["hi"] for r in shown],
                             hovers, [True] * len(shown), resolution_tags(shown, [g.budget for g in gaps]), gaps))
    return [s for s in out if s.budgets or s.gaps]


def resolution_tags(shown: Rows, gaps: list[float]) -> list[str]:
    """The label beside each accuracy point of one series: "24 px" where the resolution it ships starts or changes
    along the line (the first point, a new resolution, the first point after a gap), "" where it goes on as before.
    Why not every point: five strategies at six budgets put 30 labels into a band a few points high, where they
    cover each other and the intervals; the line between two labels ships the first one's resolution, and every
    point's hover names its own."""
    tags, last = [], None
    for r in shown:
        res = r["resolution"]
        gap_between = last is not None and any(last["budget"] < g < r["budget"] for g in gaps)
        tags.append(f"{res} px" if res and (last is None or res != last["resolution"] or gap_between) else "")
        last = r
    return tags


def _difference_hover(reference: str, other: str, r: dict[str, Any]) -> str:
    verdict = verdict_text(r)
    if verdict == NO_NUMBER:
        verdict = "– (this study.json predates verdicts; rerun `pss study`)"
    elif r["verdict"] in ("different", "inconclusive"):
        verdict += " (Holm-adjusted, 5%)"
    lines = [f"{reference} − {other} at ≤ {r['label']}", f"verdict: {verdict}",
             f"difference {100 * r['difference']:+.2f} points (95% CI {100 * r['lo']:+.2f} to {100 * r['hi']:+.2f})"]
    stats = [f"p (Holm) {_p(r['p_holm'])}"] if _finite(r["p_holm"]) else []
    if _finite(r["tost_p_holm"]):
        stats.append(f"equivalence p (Holm) {_p(r['tost_p_holm'])}")
    if _finite(r["mdd80"]):
        stats.append(f"detectable at 80% power: {100 * r['mdd80']:.2f} points")
    if stats:
        lines.append(" · ".join(stats))
    lines.append(f"per seed (McNemar p): {per_seed_text(r)}")
    return "\n".join(lines)


def difference_series(rows: Rows) -> list[ArmSeries]:
    """Per other arm: the comparable differences and their 95% intervals in points by budget, filled where the
    verdict is "different" (Holm), with the verdict, Holm's p, the detectable difference and each seed pair in the
    hover; not-comparable budgets as gaps with their reason."""
    out = []
    for i, other in enumerate(dict.fromkeys(r["other"] for r in rows), start=1):
        g = sorted((r for r in rows if r["other"] == other), key=lambda r: r["budget"])
        reference = str(g[0]["reference"])
        shown = [r for r in g if r["comparable"] and _finite(r["difference"])]
        gaps = [GapCell(float(r["budget"]), str(r["label"]),
                        f"{reference} − {other} at ≤ {r['label']}: not comparable, not tested\n{r['reason']}")
                for r in g if not (r["comparable"] and _finite(r["difference"]))]
        out.append(ArmSeries(str(other), arm_color(str(other), i), [float(r["budget"]) for r in shown], [str(r["label"]) for r in shown],
                             [100 * r["difference"] for r in shown], [100 * r["lo"] for r in shown], [100 * r["hi"] for r in shown],
                             [_difference_hover(reference, str(other), r) for r in shown], [bool(r["significant"]) for r in shown],
                             [""] * len(shown), gaps))
    return out


def accuracy_title(title: str | None) -> str:
    return title or "Test accuracy at each budget (mean over seeds, 95% interval; labels: the resolution shipped from there on)"


ACCURACY_SUBTITLE = "×: not comparable (a seed ships a subnet its strategy never trained, or none): hover for why"


def difference_titles(rows: Rows, title: str | None) -> tuple[str, str, str]:
    """(reference arm, title, subtitle) of the difference figure."""
    reference = str(rows[0]["reference"]) if rows else "pss"
    title = title or f"{reference} minus each {'baseline' if reference == 'pss' else 'arm'} (paired, same test images)"
    return reference, title, "filled: different (Holm-adjusted, 5%) · hollow: equivalent or inconclusive · ×: not comparable"


def _budget_ticks(rows: Rows) -> list[tuple[float, str]]:
    return [(b, si_number(b)) for b in sorted({float(r["budget"]) for r in rows}) if math.isfinite(b)]


def _svg_series(s: ArmSeries, name: str, dashed: bool = False) -> IntervalSeries:
    return IntervalSeries(name, s.color, tuple(
        IntervalPoint(b, v, a, z, f, h, t) for b, v, a, z, f, h, t in zip(s.budgets, s.y, s.lo, s.hi, s.filled, s.hovers, s.tags)),
        dashed=dashed, gaps=tuple(Gap(g.budget, g.hover) for g in s.gaps))


def study_accuracy_svg(accuracy: Any, constraint: str = "macs", title: str | None = None, dodge: float = 0.01) -> str:
    """Test accuracy per budget as a static SVG (:mod:`pssviz.svgchart`): the points, intervals, resolution labels,
    not-comparable marks, colours and hover text of :func:`pssviz.study.study_accuracy_figure`, drawn with the
    page's text instead of after plotly.js has loaded. ``accuracy``: :func:`accuracy_rows` or the accuracy frame."""
    rows = records(accuracy)
    series = accuracy_series(rows)
    subtitle = ACCURACY_SUBTITLE if any(s.gaps for s in series) else ""
    return interval_chart_svg([_svg_series(s, s.name) for s in series], title=accuracy_title(title), subtitle=subtitle,
                              x_title=budget_axis_title(constraint), y_title="test accuracy (%)", y_suffix="%",
                              x_ticks=_budget_ticks(rows), dodge=dodge, height=460)


def study_difference_svg(differences: Any, constraint: str = "macs", title: str | None = None) -> str:
    """The paired differences as a static SVG: filled markers where the verdict is "different" (Holm), hollow ones
    otherwise, not-comparable cells as marks, the dashed line at 0; hover gives the verdict, the interval, Holm's
    p, the detectable difference and each seed pair. ``differences``: rows or the difference frame."""
    rows = records(differences)
    reference, title, subtitle = difference_titles(rows, title)
    series = [_svg_series(s, f"{reference} − {s.name}", dashed=True) for s in difference_series(rows)]
    return interval_chart_svg(series, title=title, subtitle=subtitle, x_title=budget_axis_title(constraint),
                              y_title=f"{reference} − other (percentage points)", reference=0.0,
                              x_ticks=_budget_ticks(rows), dodge=0.0, height=440)
