"""EAS (Elastic Architecture Search) results of a run: tidy DataFrames and plotly figures (no torch, no Streamlit).

A run with an architecture generator (``pss generate RUN --train``) holds
``generator/generator.json`` (the superclass map, the cost range, the training
log) and, once scenarios were generated (``pss generate RUN --superclass NAME
--budget B``), ``generator/scenarios.json``: one record per (method, superclass,
budget). :func:`load_eas` reads both through :mod:`pss.io.generator`:

========== ================================= ==========================================
table      one row per                       columns (besides the keys)
========== ================================= ==========================================
scenarios  (method, superclass, budget)      seed, superclass_index, superclass_no (1-based),
                                             budget_label, cost_kind, found, key,
                                             resolution, macs, params, cost, cost_label,
                                             val_acc, val_lo, val_hi, val_images,
                                             test_acc, test_lo, test_hi, test_images,
                                             candidates, draws, evaluations (made),
                                             evaluations_requested (N), in_budget,
                                             in_budget_rate (NaN where not recorded), seconds
training   generator training epoch          ce, constraint, within_budget
superclass superclass                        no. (1-based), superclass, classes, class count
========== ================================= ==========================================

Derived tables: :func:`accuracy_pivot` / :func:`accuracy_table` (EAS Table 1: per
method and budget, each superclass's test accuracy and the mean, pooled over the
test images of the superclasses with more than one class: a one-class superclass
is 100% for any model and is left out of it),
:func:`similarity_frame` (EAS Fig. B: mean pairwise cosine of the generated
architectures across superclasses per budget), :func:`profile_frame` (widths
o_i / o_max per layer of several superclasses' architectures at one budget).
Figures: :func:`superclass_profile_figure`, :func:`similarity_figure`,
:func:`generator_training_figure`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from pss.config import is_builtin_superclasses
from pss.eas.similarity import architecture_vector, mean_pairwise_cosine
from pss.errors import PssError
from pss.io.files import DocumentError
from pss.io.generator import (
    GENERATOR_FILE,
    GENERATOR_WEIGHTS,
    SCENARIOS_FILE,
    generator_dir,
    has_generator,
    read_generator_document,
    read_scenarios,
)
from pss.problem.space import Structure, StructureSpace
from pss.problem.superclasses import resolve_superclasses
from pss.units import format_cost, format_quantity

from . import analysis
from .figures import SERIES_COLORS, TOP_LEGEND, empty_figure, pool_colors
from .load import RunData, load_run

#: how the dashboard names each way of finding a scenario's architecture (``pss generate --method``)
METHOD_NAMES = {"eas": "EAS (generator)", "random": "random", "ofa-t": "OFA-T", "ofa-v": "OFA-V"}
#: rows of the accuracy table within one budget: the baselines first, EAS last (as EAS Table 1)
METHOD_ORDER = ("random", "ofa-v", "ofa-t", "eas")
SCENARIO_COLUMNS = [
    "method", "seed", "superclass", "superclass_index", "superclass_no", "budget", "budget_label", "cost_kind", "found", "key",
    "resolution", "macs", "params", "cost", "cost_label", "val_acc", "val_lo", "val_hi", "val_images",
    "test_acc", "test_lo", "test_hi", "test_images", "candidates", "draws", "evaluations", "evaluations_requested",
    "in_budget", "in_budget_rate", "seconds",
]
PROFILE_COLUMNS = ["superclass", "superclass_index", "method", "series", "budget", "layer", "name", "ratio", "width", "o_max",
                   "resolution", "cost", "key", "multiplier"]
NO_RECORD = "–"
NOTHING_FITS = "nothing fits"


def method_name(method: str) -> str:
    return METHOD_NAMES.get(str(method), str(method))


def file_slug(name: str) -> str:
    """A superclass name as part of a file name: 'Ankle boots & bags' -> 'ankle-boots-bags'."""
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "superclass"


# ---------------------------------------------------------------------------- reading
@dataclass
class EasData:
    """A run's generator and generated scenarios (see the module docstring); ``doc`` is None without a generator."""

    path: Path
    run: dict[str, Any]
    doc: dict[str, Any] | None
    scenarios: pd.DataFrame
    #: generator.pt is there too, so new scenarios can be generated (generator.json alone only describes it)
    can_generate: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def has_generator(self) -> bool:
        return self.doc is not None

    @property
    def superclasses(self) -> list[str]:
        return list((self.doc or {}).get("superclasses", {}).get("superclasses", []))

    @property
    def cost_kind(self) -> str:
        return str((self.doc or {}).get("cost_kind") or self.run.get("constraint", "macs"))

    @property
    def budget_range(self) -> tuple[float, float]:
        """C(φ^min)..C(φ^max) in the generator's cost kind (the budgets it was trained for)."""
        doc = self.doc or {}
        return float(doc.get("c_min", np.nan)), float(doc.get("c_max", np.nan))

    @property
    def training(self) -> pd.DataFrame:
        return training_frame(self.doc)

    @property
    def superclass_map(self) -> pd.DataFrame:
        return superclass_map_frame(self.doc.get("superclasses") if self.doc else None, self.class_names)

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.run.get("dataset", {}).get("class_names") or []]

    @property
    def one_class_superclasses(self) -> list[str]:
        """Superclasses of one class: 100% for any model (argmax over one logit), so left out of every mean."""
        m = self.superclass_map
        return [str(s) for s, n in zip(m["superclass"], m["class count"]) if int(n) < 2] if len(m) else []


def eas_signature(path: str | Path) -> tuple:
    """A cheap fingerprint of the generator's files (a cache key; changes when one is trained or generates)."""
    d = generator_dir(path)
    parts = []
    for name in (GENERATOR_FILE, GENERATOR_WEIGHTS, SCENARIOS_FILE):
        try:
            st = (d / name).stat()
            parts.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((name, None, None))
    return tuple(parts)


def load_eas(run: RunData | str | Path) -> EasData:
    """The generator and its scenarios of ``run`` (a loaded run or its directory); never raises for a damaged
    generator file: the problem is one line in :attr:`EasData.problems` and the tables are empty."""
    data = run if isinstance(run, RunData) else load_run(run)
    problems: list[str] = []
    doc = None
    records: list[dict[str, Any]] = []
    if (generator_dir(data.path) / GENERATOR_FILE).is_file():
        try:
            doc = read_generator_document(data.path)
        except (DocumentError, PssError) as exc:
            problems.append(f"generator/{GENERATOR_FILE} is not readable: {exc}")
    if doc is not None:
        try:
            records = read_scenarios(data.path)
        except (DocumentError, PssError) as exc:
            problems.append(f"generator/{SCENARIOS_FILE} is not readable: {exc}")
    return EasData(path=data.path, run=data.run, doc=doc, scenarios=scenario_frame(records),
                   can_generate=doc is not None and has_generator(data.path), problems=problems)


def _accuracy(block: dict[str, Any] | None) -> tuple[float, float, float, float]:
    """(accuracy, lo, hi, images) of an Accuracy's JSON, NaN when absent."""
    if not block:
        return (np.nan,) * 4
    lo, hi = (block.get("ci95") or [np.nan, np.nan])[:2]
    return float(block.get("accuracy", np.nan)), float(lo), float(hi), float(block.get("images", np.nan))


def _number(value: Any) -> float:
    """A count or rate a record may lack (written before it was recorded, or not applicable): NaN then."""
    return float(value) if value is not None else np.nan


def scenario_frame(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """scenarios.json's records as one row each (columns :data:`SCENARIO_COLUMNS`), sorted by method, superclass, budget.

    A record whose budget nothing fitted has ``found`` False, an empty ``key`` and NaN costs and accuracies.
    """
    rows = []
    for r in records:
        kind = str(r.get("cost_kind") or "macs")
        structure = r.get("structure")
        costs = r.get("costs") or {}
        val, test = _accuracy(r.get("validation")), _accuracy(r.get("test"))
        cost = float(costs.get(kind, np.nan)) if costs else np.nan
        s = Structure.from_json(structure) if structure else None
        rows.append({
            "method": str(r.get("method", "eas")), "seed": int(r.get("seed", 0)), "superclass": str(r["superclass"]),
            "superclass_index": int(r.get("superclass_index", 0)), "superclass_no": int(r.get("superclass_index", 0)) + 1,
            "budget": float(r["budget"]), "budget_label": format_cost(float(r["budget"]), kind), "cost_kind": kind,
            "found": s is not None, "key": s.key if s else "", "resolution": float(s.resolution) if s else np.nan,
            "macs": float(costs.get("macs", np.nan)), "params": float(costs.get("params", np.nan)), "cost": cost,
            "cost_label": format_cost(cost, kind) if np.isfinite(cost) else "",
            "val_acc": val[0], "val_lo": val[1], "val_hi": val[2], "val_images": val[3],
            "test_acc": test[0], "test_lo": test[1], "test_hi": test[2], "test_images": test[3],
            "candidates": int(r.get("candidates", 0)), "draws": int(r.get("draws", 0)),
            "evaluations": _number(r.get("evaluations")), "evaluations_requested": _number(r.get("evaluations_requested")),
            "in_budget": _number(r.get("in_budget")), "in_budget_rate": _number(r.get("in_budget_rate")),
            "seconds": float(r.get("seconds", np.nan)),
        })
    frame = pd.DataFrame(rows, columns=SCENARIO_COLUMNS)
    if not len(frame):
        return frame
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    frame = frame.assign(_m=frame["method"].map(lambda m: order.get(m, len(order))))
    return frame.sort_values(["_m", "method", "superclass_index", "budget"]).drop(columns="_m").reset_index(drop=True)


def training_frame(doc: dict[str, Any] | None) -> pd.DataFrame:
    """The generator's training log: one row per epoch (1-based): validation cross-entropy, the cost-constraint
    loss (EAS Eq. 3) and the share of generated architectures within their budget."""
    log = (doc or {}).get("training") or {}
    series = {k: list(log.get(k) or []) for k in ("ce", "constraint", "within_budget")}
    n = max((len(v) for v in series.values()), default=0)
    out = {"epoch": list(range(1, n + 1))}
    for k, v in series.items():
        out[k] = [float(x) for x in v] + [np.nan] * (n - len(v))
    return pd.DataFrame(out, columns=["epoch", "ce", "constraint", "within_budget"])


def superclass_map_frame(smap: dict[str, Any] | None, class_names: Sequence[str] = ()) -> pd.DataFrame:
    """A superclass map ({superclasses, class_superclass}) as one row per superclass: its number (1-based), name,
    classes (names where known) and how many."""
    columns = ["no.", "superclass", "classes", "class count"]
    if not smap:
        return pd.DataFrame(columns=columns)
    names = list(smap.get("superclasses") or [])
    owner = list(smap.get("class_superclass") or [])
    rows = []
    for i, name in enumerate(names):
        members = [c for c, s in enumerate(owner) if s == i]
        shown = [str(class_names[c]) if c < len(class_names) else str(c) for c in members]
        rows.append({"no.": i + 1, "superclass": str(name), "classes": ", ".join(shown), "class count": len(members)})
    return pd.DataFrame(rows, columns=columns)


def configured_map(run_json: dict[str, Any], run_path: str | Path | None = None) -> tuple[pd.DataFrame | None, str | None]:
    """(the superclass map the run's config names as :func:`superclass_map_frame`, a one-line problem): (None, None)
    when the config has no ``superclasses``. A map file is looked for as written, then next to the run (as export does)."""
    value = (run_json.get("config") or {}).get("superclasses")
    if value is None or not str(value).strip():
        return None, None
    ds = run_json.get("dataset") or {}
    names = [str(c) for c in ds.get("class_names") or []]
    text = str(value).strip()
    base = None
    if run_path is not None and not is_builtin_superclasses(text) and not Path(text).expanduser().is_file():
        base = run_path
    try:
        smap = resolve_superclasses(text, str(ds.get("name") or (run_json.get("config") or {}).get("dataset") or ""),
                                    class_names=names or None, base_dir=base)
    except PssError as exc:
        return None, str(exc)
    return superclass_map_frame(smap.to_json(), names), None


def superclass_settings(run_json: dict[str, Any], doc: dict[str, Any] | None = None) -> dict[str, str]:
    """What the run says about superclasses, in words: {"superclass map": ..., "superclass dropout": ...}.

    From run.json's config (``superclasses``, ``superclass_dropout``); a run whose config predates these keys
    takes them from its generator's description (``doc``) when it has one.
    """
    cfg = run_json.get("config") or {}
    value = cfg.get("superclasses")
    smap = (doc or {}).get("superclasses") or {}
    count = len(smap.get("superclasses") or [])
    if value is None and smap.get("source"):
        value = smap["source"]
        given = " (given to `pss generate --train`)"
    else:
        given = ""
    if value is None or not str(value).strip():
        where = "none (plain training: no superclasses)"
    elif is_builtin_superclasses(str(value)):
        name = f": {smap['name']}" if smap.get("name") else ""
        where = f"built-in{name}" + (f", {count} superclasses" if count else "") + given
    else:
        where = f"file {value}" + (f", {count} superclasses" if count else "") + given
    rate = dropout_rate(run_json, doc)
    dropout = ("no superclass dropout" if rate <= 0 else
               f"{rate:g}: in training each image's non-target superclasses lose their logits with probability {rate:g}")
    return {"superclass map": where, "superclass dropout": dropout}


def dropout_rate(run_json: dict[str, Any], doc: dict[str, Any] | None = None) -> float:
    """The run's superclass dropout rate (config, else the generator's description; 0 when absent)."""
    rate = (run_json.get("config") or {}).get("superclass_dropout")
    if rate is None and doc is not None:
        rate = doc.get("superclass_dropout")
    return float(rate or 0.0)


# ---------------------------------------------------------------------------- scenarios
def same_budget(a: float, b: float) -> bool:
    """Budgets as scenarios.json keys them (rounded to 6 decimals)."""
    return round(float(a), 6) == round(float(b), 6)


def scenario_for(frame: pd.DataFrame, superclass: str, budget: float, method: str = "eas") -> pd.Series | None:
    """The record of (method, superclass, budget), or None when none was generated."""
    if not len(frame):
        return None
    hit = frame[(frame["method"] == method) & (frame["superclass"].str.lower() == str(superclass).lower())
                & frame["budget"].map(lambda b: same_budget(b, budget))]
    return None if not len(hit) else hit.iloc[0]


def recorded_budgets(frame: pd.DataFrame, method: str | None = "eas") -> list[float]:
    """The budgets with at least one record (of ``method``; None: any method), ascending."""
    if not len(frame):
        return []
    rows = frame if method is None else frame[frame["method"] == method]
    out: list[float] = []
    for b in sorted(rows["budget"]):
        if not out or not same_budget(out[-1], b):
            out.append(float(b))
    return out


def budget_stops(eas: EasData, steps: int = 40) -> dict[str, float]:
    """Slider stops in human units ("2.5M MACs" -> 2.5e6): an even grid over the generator's budget range
    C(φ^min)..C(φ^max) and every recorded budget (a recorded one wins when two share a label), ascending."""
    lo, hi = eas.budget_range
    kind = eas.cost_kind
    values: dict[str, float] = {}
    if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
        for v in np.linspace(lo, hi, steps + 1):
            values[format_cost(float(v), kind)] = float(v)
    for b in recorded_budgets(eas.scenarios, None):
        values[format_cost(b, kind)] = float(b)
    return dict(sorted(values.items(), key=lambda kv: kv[1]))


def accuracy_text(acc: float, lo: float, hi: float, images: float | None = None) -> str:
    """'75.9% (95% CI 74.5–77.2%, 4,000 images)'; '' for a missing accuracy."""
    if not np.isfinite(acc):
        return ""
    text = f"{100 * acc:.1f}%"
    inside = []
    if np.isfinite(lo) and np.isfinite(hi):
        inside.append(f"95% CI {100 * lo:.1f}–{100 * hi:.1f}%")
    if images is not None and np.isfinite(images):
        inside.append(f"{int(images):,} images")
    return text + (f" ({', '.join(inside)})" if inside else "")


def effort_text(record: pd.Series | dict[str, Any]) -> str:
    """What a scenario's choice cost, short: "10 of 10 evaluations; 31 of 64 draws fit (48%)"; older records
    (no evaluation count): "10 of 64 drawn"."""
    made, asked = record.get("evaluations", np.nan), record.get("evaluations_requested", np.nan)
    if made is None or not np.isfinite(made):
        return f"{int(record['candidates'])} of {int(record['draws'])} drawn"
    text = f"{made:g} of {asked:g} evaluations" if asked is not None and np.isfinite(asked) else f"{made:g} evaluations"
    rate = record.get("in_budget_rate", np.nan)
    if rate is not None and np.isfinite(rate):
        text += f"; {int(record['in_budget'])} of {int(record['draws'])} draws fit ({100 * rate:.0f}%)"
    return text


# ---------------------------------------------------------------------------- EAS Table 1
def _split(split: str) -> str:
    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', not {split!r}")
    return split


def _superclass_order(frame: pd.DataFrame, superclasses: Sequence[str] | None) -> list[str]:
    if superclasses:
        return list(superclasses)
    return list(frame.sort_values("superclass_index").drop_duplicates("superclass")["superclass"])


def _row_order(frame: pd.DataFrame) -> list[tuple[float, str]]:
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    keys = {(b, m) for b, m in zip(frame["budget"], frame["method"])}
    return sorted(keys, key=lambda k: (k[0], order.get(k[1], len(order)), k[1]))


def _pooled_mean(accs: Sequence[float], images: Sequence[float]) -> float:
    """Accuracy over all the images of the cells given (each cell's accuracy weighted by its image count; cells
    without a count weigh equally); NaN when none is measured."""
    pairs = [(a, n) for a, n in zip(accs, images) if np.isfinite(a)]
    if not pairs:
        return np.nan
    if all(np.isfinite(n) and n > 0 for _, n in pairs):
        return float(sum(a * n for a, n in pairs) / sum(n for _, n in pairs))
    return float(np.mean([a for a, _ in pairs]))


def accuracy_pivot(frame: pd.DataFrame, split: str = "test", superclasses: Sequence[str] | None = None,
                   excluded: Sequence[str] = ()) -> pd.DataFrame:
    """EAS Table 1 in numbers: one row per (budget, method), a column per superclass (its accuracy on ``split``,
    "test" or "val", among its own classes), ``mean`` over the images of the superclasses with an architecture
    except those ``excluded`` (one-class superclasses: :attr:`EasData.one_class_superclasses`), ``found`` (how
    many of those), and ``mean_cost`` (mean cost of their architectures). NaN where there is no record or
    nothing fitted. The mean pools images, as bench/eas.py does: a superclass weighs as many images as it has."""
    col = f"{_split(split)}_acc"
    names = _superclass_order(frame, superclasses)
    counted = [s for s in names if s not in set(excluded)]
    rows = []
    for budget, method in _row_order(frame):
        g = frame[(frame["method"] == method) & frame["budget"].map(lambda b: same_budget(b, budget))]
        by = {s: r for s, r in zip(g["superclass"], g.itertuples())}
        accs = {s: float(getattr(by[s], col)) if s in by else np.nan for s in names}
        images = [float(getattr(by[s], f"{split}_images")) if s in by else np.nan for s in counted]
        found = g[g["found"] & g["superclass"].isin(counted)]
        rows.append({"budget": budget, "method": method, **accs,
                     "mean": _pooled_mean([accs[s] for s in counted], images),
                     "found": int(np.isfinite([accs[s] for s in counted]).sum()) if counted else 0,
                     "mean_cost": float(found["cost"].mean()) if len(found) else np.nan})
    return pd.DataFrame(rows, columns=["budget", "method", *names, "mean", "found", "mean_cost"])


def accuracy_table(frame: pd.DataFrame, split: str = "test", superclasses: Sequence[str] | None = None,
                   excluded: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`accuracy_pivot` for people: budget in human units, the method's name, each cell
    "75.9 (74.5–77.2)" (accuracy and its 95% interval, in %), "–" without a record, "nothing fits"; the mean
    over the superclasses not ``excluded`` (with "k of n" when some are missing) and the mean cost of their
    architectures."""
    pivot = accuracy_pivot(frame, split, superclasses, excluded)
    names = [c for c in pivot.columns if c not in ("budget", "method", "mean", "found", "mean_cost")]
    counted = [s for s in names if s not in set(excluded)]
    kind = str(frame["cost_kind"].iloc[0]) if len(frame) else "macs"
    lo_col, hi_col = f"{split}_lo", f"{split}_hi"
    rows = []
    for p in pivot.to_dict("records"):
        row = {"budget": format_cost(p["budget"], kind), "method": method_name(p["method"])}
        g = frame[(frame["method"] == p["method"]) & frame["budget"].map(lambda b: same_budget(b, p["budget"]))]
        by = {s: r for s, r in zip(g["superclass"], g.to_dict("records"))}
        for s in names:
            r = by.get(s)
            if r is None:
                row[s] = NO_RECORD
            elif not r["found"]:
                row[s] = NOTHING_FITS
            elif not np.isfinite(r[f"{split}_acc"]):
                row[s] = NO_RECORD
            else:
                row[s] = f"{100 * r[f'{split}_acc']:.1f} ({100 * r[lo_col]:.1f}–{100 * r[hi_col]:.1f})"
        mean = p["mean"]
        row["mean"] = "" if not np.isfinite(mean) else f"{100 * mean:.1f}" + ("" if p["found"] == len(counted) else f" ({p['found']} of {len(counted)})")
        row["mean cost"] = format_cost(p["mean_cost"], kind) if np.isfinite(p["mean_cost"]) else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=["budget", "method", *names, "mean", "mean cost"])


def images_note(frame: pd.DataFrame, split: str = "test") -> str:
    """A sentence on how many images each superclass's accuracy rests on (a 95% interval narrows with more)."""
    col = f"{_split(split)}_images"
    rows = frame[np.isfinite(frame[col])] if len(frame) else frame
    if not len(rows):
        return ("No test images were measured (the run has no test split): the table shows validation accuracy, "
                "which also chose the architectures, so it is optimistic." if split == "test" else "")
    per = rows.sort_values("superclass_index").drop_duplicates("superclass")
    listed = ", ".join(f"{s} {int(n):,}" for s, n in zip(per["superclass"], per[col]))
    where = "test" if split == "test" else "validation"
    return (f"Each cell: {where} accuracy in % among the superclass's own classes, with its 95% Wilson interval. "
            f"{where.capitalize()} images per superclass: {listed}.")


# ---------------------------------------------------------------------------- EAS Fig. B
def similarity_frame(frame: pd.DataFrame, space: StructureSpace, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """EAS Fig. B: per (method, budget), the mean cosine similarity over every pair of superclasses of their
    architectures (one-hot choice vectors, :func:`pss.eas.similarity.architecture_vector`). Budgets with fewer
    than two superclasses' architectures are left out. Columns: method, budget, budget_label, similarity,
    superclasses (how many), pairs."""
    columns = ["method", "budget", "budget_label", "similarity", "superclasses", "pairs"]
    rows = []
    found = frame[frame["found"].astype(bool)] if len(frame) else frame
    present = set(found["method"]) if len(found) else set()
    for method in [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER)):
        if methods is not None and method not in methods:
            continue
        g = found[found["method"] == method]
        for budget in recorded_budgets(g, None):
            at = g[g["budget"].map(lambda b: same_budget(b, budget))]
            if len(at) < 2:
                continue
            vectors = [architecture_vector(Structure.from_key(k), space) for k in at["key"]]
            n = len(vectors)
            rows.append({"method": method, "budget": budget, "budget_label": str(at["budget_label"].iloc[0]),
                         "similarity": mean_pairwise_cosine(vectors), "superclasses": n, "pairs": n * (n - 1) // 2})
    return pd.DataFrame(rows, columns=columns)


def run_space(data: RunData) -> StructureSpace:
    """The run's structure space S (rebuilt from run.json without torch)."""
    return analysis.run_problem(data).space


# ---------------------------------------------------------------------------- widths
def _profile_rows(key: str, dims: pd.DataFrame, base: dict[str, Any]) -> list[dict[str, Any]]:
    s = Structure.from_key(key)
    o_max = dims["o_max"].to_numpy(dtype=int)
    names = dims["name"].astype(str).tolist()
    if len(s.widths) != len(o_max):
        raise PssError(f"structure {key} has {len(s.widths)} widths but the run's space has {len(o_max)} layers")
    return [{**base, "layer": i, "name": names[i], "ratio": w / o_max[i], "width": int(w), "o_max": int(o_max[i]),
             "resolution": s.resolution, "key": key} for i, w in enumerate(s.widths)]


def profile_frame(frame: pd.DataFrame, dims: pd.DataFrame, budget: float | None = None, method: str = "eas",
                  superclasses: Sequence[str] | None = None) -> pd.DataFrame:
    """Widths o_i / o_max per layer of the architectures of ``method`` at ``budget`` (None: every budget), one
    superclass each (or those in ``superclasses``): tidy, columns :data:`PROFILE_COLUMNS` (series "generated")."""
    rows: list[dict[str, Any]] = []
    if len(frame):
        g = frame[(frame["method"] == method) & frame["found"]]
        if budget is not None:
            g = g[g["budget"].map(lambda b: same_budget(b, budget))]
        if superclasses is not None:
            g = g[g["superclass"].isin(list(superclasses))]
        for r in g.sort_values(["budget", "superclass_index"]).to_dict("records"):
            base = {"superclass": r["superclass"], "superclass_index": r["superclass_index"], "method": method,
                    "series": "generated", "budget": r["budget"], "cost": r["cost"], "multiplier": np.nan}
            rows += _profile_rows(r["key"], dims, base)
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def scenario_profile(data: RunData, record: pd.Series, reference: bool = True) -> pd.DataFrame:
    """One record's widths (:func:`profile_frame`'s columns) and, when its cost kind is the run's constraint, the
    uniform-width subnet of about the same cost and resolution (series "uniform"), as on the Front & Export page."""
    base = {"superclass": record["superclass"], "superclass_index": int(record["superclass_index"]), "method": record["method"],
            "budget": float(record["budget"]), "multiplier": np.nan}
    rows = _profile_rows(str(record["key"]), data.dimensions, {**base, "series": "generated", "cost": float(record["cost"])})
    if reference and record["cost_kind"] == data.constraint and np.isfinite(record["cost"]):
        ref = analysis.uniform_reference(data, float(record["cost"]), int(record["resolution"]))
        rows += _profile_rows(ref["key"], data.dimensions, {**base, "series": "uniform", "cost": ref["cost"],
                                                            "multiplier": ref["multiplier"]})
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def channels_table(profiles: pd.DataFrame, kind: str = "macs") -> pd.DataFrame:
    """The architectures of a profile table as rows of channels: superclass, subnet, r (px), cost (human units),
    then o_i per layer; the last row holds each layer's o_max. No missing values (blank text instead)."""
    if profiles is None or not len(profiles):
        return pd.DataFrame()
    order = profiles.drop_duplicates("layer").sort_values("layer")["name"].astype(str).tolist()
    rows = []
    for (_, _, series), g in profiles.groupby(["superclass_index", "superclass", "series"], sort=False):
        g = g.sort_values("layer")
        subnet = "generated" if series == "generated" else f"uniform ×{float(g['multiplier'].iloc[0]):.2f}"
        rows.append({"superclass": str(g["superclass"].iloc[0]), "subnet": subnet, "r (px)": str(int(g["resolution"].iloc[0])),
                     "cost": format_cost(float(g["cost"].iloc[0]), kind), **dict(zip(g["name"].astype(str), g["width"].astype(int)))})
    first = profiles.drop_duplicates("layer").sort_values("layer")
    rows.append({"superclass": "", "subnet": "o_max", "r (px)": "", "cost": "", **dict(zip(first["name"].astype(str), first["o_max"].astype(int)))})
    return pd.DataFrame(rows, columns=["superclass", "subnet", "r (px)", "cost", *order])


# ---------------------------------------------------------------------------- figures
def _layout(fig: go.Figure, title: str, **kw) -> go.Figure:
    kw.setdefault("margin", dict(l=60, r=20, t=70, b=50))
    fig.update_layout(template="plotly_white", title=dict(text=title, x=0.01, xanchor="left"), **kw)
    return fig


def superclass_colors(n: int) -> list[str]:
    """One colour per superclass index (qualitative: superclasses have no order)."""
    return pool_colors(max(int(n), 1), "qualitative")


def superclass_profile_figure(profiles: pd.DataFrame, n_superclasses: int | None = None, title: str | None = None) -> go.Figure:
    """Width o_i / o_max per layer (Sec. 3.1's width profile) of each superclass's architecture, one colour per
    superclass; a "uniform" series (every o_i = w · o_max) is dashed in the same colour. Legend: superclass and
    input resolution. Input: :func:`profile_frame` or :func:`scenario_profile`."""
    title = title or "Width profile o<sub>i</sub> / o<sub>max</sub> per layer"
    if profiles is None or not len(profiles):
        return empty_figure(title, "no generated architecture at this budget yet")
    order = profiles.drop_duplicates("layer").sort_values("layer")["name"].astype(str).tolist()
    n = n_superclasses or int(profiles["superclass_index"].max()) + 1
    colors = superclass_colors(n)
    traces = []
    keys = profiles.drop_duplicates(["superclass_index", "series", "budget"])[["superclass_index", "series", "budget"]]
    keys = sorted(keys.itertuples(index=False), key=lambda k: (k[2], k[0], k[1] != "generated"))
    for index, series, budget in keys:
        g = profiles[(profiles["superclass_index"] == index) & (profiles["series"] == series)
                     & profiles["budget"].map(lambda b: same_budget(b, budget))].sort_values("layer")
        name_sc = str(g["superclass"].iloc[0])
        r = int(g["resolution"].iloc[0])
        generated = series == "generated"
        name = f"{name_sc}, {r} px" if generated else f"uniform ×{float(g['multiplier'].iloc[0]):.2f}, {r} px"
        color = colors[int(index) % len(colors)]
        custom = np.column_stack([g["width"].to_numpy(), g["o_max"].to_numpy(), g["cost"].to_numpy(float), g["resolution"].to_numpy()])
        traces.append(go.Scatter(
            x=g["name"].astype(str).to_numpy(dtype=object), y=g["ratio"].to_numpy(float), name=name,
            legendgroup=f"superclass{index}", mode="lines+markers" if generated else "lines",
            line=dict(color=color, dash="solid" if generated else "dash", width=2 if generated else 1.4),
            marker=dict(size=6), customdata=custom,
            hovertemplate=(f"<b>{name}</b> ({name_sc})<br>layer %{{x}}: %{{customdata[0]}} / %{{customdata[1]}} = %{{y:.3f}}"
                           "<br>cost %{customdata[2]:.4~s}, r = %{customdata[3]}<extra></extra>")))
    fig = go.Figure(traces)
    low = min(0.5, float(profiles["ratio"].min()) - 0.03)
    fig.update_xaxes(title_text="layer (searchable width, input to output)", type="category", categoryorder="array", categoryarray=order)
    fig.update_yaxes(title_text="o<sub>i</sub> / o<sub>max</sub>", range=[low, 1.05])
    return _layout(fig, title, height=420, hovermode="closest", legend=dict(groupclick="toggleitem"))


def similarity_figure(similarity: pd.DataFrame, kind: str = "macs", title: str | None = None) -> go.Figure:
    """EAS Fig. B: the mean pairwise cosine similarity of the superclasses' architectures (y, 0..1) against the
    budget (x), one line per method. Near 1: every superclass gets about the same architecture; lower: the
    architectures are specialised per superclass."""
    title = title or "Mean cosine similarity across superclasses, per budget (EAS Fig. B)"
    if similarity is None or not len(similarity):
        return empty_figure(title, "needs architectures of two or more superclasses at one budget")
    traces = []
    methods = list(dict.fromkeys(similarity["method"]))
    for i, method in enumerate(methods):
        g = similarity[similarity["method"] == method].sort_values("budget")
        eas = method == "eas"
        custom = np.column_stack([g["budget_label"].to_numpy(dtype=object), g["superclasses"].to_numpy(), g["pairs"].to_numpy()])
        traces.append(go.Scatter(
            x=g["budget"].to_numpy(float), y=g["similarity"].to_numpy(float), name=method_name(method), mode="lines+markers",
            line=dict(color=SERIES_COLORS[0] if eas else SERIES_COLORS[(i + 1) % len(SERIES_COLORS)], width=2.5 if eas else 1.5,
                      dash="solid" if eas else "dot"),
            marker=dict(size=9 if eas else 7), customdata=custom,
            hovertemplate=(f"<b>{method_name(method)}</b><br>budget %{{customdata[0]}}<br>mean cosine %{{y:.3f}} over "
                           "%{customdata[2]} pairs of %{customdata[1]} superclasses<extra></extra>")))
    fig = go.Figure(traces)
    unit = {"macs": "MACs", "params": "parameters"}.get(kind, kind)
    fig.update_xaxes(title_text=f"budget ({unit}, a ceiling)", tickformat="~s")
    fig.update_yaxes(title_text="mean cosine similarity", range=[0, 1.05])
    return _layout(fig, title, height=380, hovermode="closest", legend=TOP_LEGEND)


def generator_training_figure(training: pd.DataFrame, title: str | None = None) -> go.Figure:
    """The generator's training per epoch (EAS Alg. 1): the validation cross-entropy of the architectures it
    generates, the cost-constraint loss (EAS Eq. 3; 0 when every architecture meets its budget) and the share of
    generated architectures within their budget (%)."""
    title = title or "Generator training"
    if training is None or not len(training):
        return empty_figure(title)
    x = training["epoch"].to_numpy()
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("validation cross-entropy", "cost-constraint loss (Eq. 3)", "within budget (%)"))
    specs = [(1, "ce", "cross-entropy", 1.0, "%{y:.4f}"), (2, "constraint", "constraint loss", 1.0, "%{y:.4f}"),
             (3, "within_budget", "within budget", 100.0, "%{y:.1f}%")]
    for row, col, name, scale, val in specs:
        fig.add_trace(go.Scatter(x=x, y=training[col].to_numpy(float) * scale, name=name, mode="lines+markers",
                                 line=dict(color=SERIES_COLORS[row - 1]), marker=dict(size=6),
                                 hovertemplate=f"{name}<br>epoch %{{x}}: {val}<extra></extra>"), row=row, col=1)
    fig.update_yaxes(rangemode="tozero", row=2, col=1)
    fig.update_yaxes(range=[0, 105], ticksuffix="%", row=3, col=1)
    fig.update_xaxes(title_text="generator epoch", dtick=1 if len(x) <= 20 else None, row=3, col=1)
    return _layout(fig, title, height=520, showlegend=False, hovermode="x unified")


def budget_text(value: float, kind: str) -> str:
    """A budget for a link (?budget=2.5M): :func:`pss.units.format_quantity`, or ms for latency."""
    return format_quantity(value) if kind != "latency" else f"{value:.4g}ms"
