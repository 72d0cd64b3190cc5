"""`pss compare`: calibrated accuracy of several runs at the same budgets.

For every budget B and every run, the most accurate calibrated subnet whose
cost is at most B (Eq. 5 over the run's whole calibrated front, as the
dashboard's export slider does). Runs trained with different strategies (PSS,
US-Net uniform, MutualNet, random, PSE) are compared on equal terms because
each has a calibrated front (`pss calibrate` or `pss search`).

The result is printed as a table and written as a JSON file
(``kind: pss-comparison``) that the dashboard overlays on the front of any run
it lists (it looks in ``RUN_DIR/comparisons/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PssError
from ..evaluate.selection import FrontPoint, best_within
from ..io.comparison import comparison_document
from ..io.run import front_candidates, open_run
from ..units import format_quantity, parse_quantity


def front_points(front: dict[str, Any]) -> list[FrontPoint]:
    """Every calibrated candidate of a front (references excluded: they are not pool members)."""
    return [FrontPoint(c["key"], float(c["accuracy"]), dict(c["costs"])) for _, c in front_candidates(front)]


def default_budgets(front: dict[str, Any]) -> list[float]:
    """The upper edges theta + delta of a front's pools: every pool's whole band fits."""
    return [float(p["budget"]["value"]) + float(p["budget"]["tolerance"]) for p in front["pools"]]


def compare_runs(
    run_dirs: list[str | Path],
    budgets: list[str | float] | None = None,
    constraint: str | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """The comparison document: for each budget, each run's best calibrated accuracy and cost."""
    if len(run_dirs) < 1:
        raise PssError("give at least one run directory to compare")
    runs = [open_run(r) for r in run_dirs]
    names = list(names) if names else _unique_names([r.path for r in runs])
    if len(names) != len(runs):
        raise PssError(f"--names lists {len(names)} names for {len(runs)} runs; give one per run")
    fronts = []
    for run in runs:
        if not run.has_front():
            raise PssError(f"run {run.path} has no calibrated front; run `pss calibrate {run.path}` (or `pss search`) first")
        fronts.append(run.read_front())
    constraint = constraint or fronts[0].get("constraint", "macs")
    values = [parse_quantity(b) if isinstance(b, str) else float(b) for b in budgets] if budgets else default_budgets(fronts[0])
    if not values:
        raise PssError("no budgets to compare at; pass --budgets 5M,7M,...")
    values = sorted(values)
    entries = []
    for name, run, front in zip(names, runs, fronts):
        points = front_points(front)
        if not any(constraint in p.costs for p in points):
            raise PssError(f"run {run.path} has no {constraint!r} costs in its front; compare with --constraint macs or params")
        rows = []
        for b in values:
            best = best_within(points, b, constraint)
            rows.append(None if best is None else {"key": best.key, "accuracy": best.accuracy, "cost": best.costs[constraint]})
        run_json = run.read_run()
        entries.append({
            "name": name,
            "path": str(run.path.resolve()),
            "strategy": run_json.get("config", {}).get("strategy", "pss"),
            "epochs": front.get("epoch"),
            "method": front.get("method", "calibrate"),
            "results": rows,
        })
    return comparison_document(constraint, values, entries)


def _unique_names(paths: list[Path]) -> list[str]:
    """Folder names, made unique with their parent's name where two runs share one."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def format_comparison(comparison: dict[str, Any]) -> str:
    """A plain-text table: one row per budget, per run accuracy @ cost."""
    unit = comparison["constraint"]
    names = [r["name"] for r in comparison["runs"]]
    width = max(18, *(len(n) + 2 for n in names))
    head = f"{'budget (' + unit + ')':>16}" + "".join(f"{n:>{width}}" for n in names)
    lines = [head]
    for i, b in enumerate(comparison["budgets"]):
        cells = []
        for r in comparison["runs"]:
            row = r["results"][i]
            cells.append(f"{'-':>{width}}" if row is None else f"{row['accuracy'] * 100:>{width - 11}.2f}% @ {format_quantity(row['cost']):>7}")
        lines.append(f"{format_quantity(b):>16}" + "".join(cells))
    lines.append("accuracy of the most accurate calibrated subnet with cost <= budget ('-': none fits)")
    return "\n".join(lines)
