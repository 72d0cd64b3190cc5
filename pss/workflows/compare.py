"""`pss compare`: calibrated accuracy of several runs at the same budgets.

For every budget B and every run, the most accurate calibrated subnet whose
cost is at most B (:func:`pss.io.run.subnet_for_budget`: Eq. 5 over the run's
whole calibrated front, min and max subnets included, the function behind
`pss export --budget` and the dashboard's slider), reported with its test
accuracy and 95% interval when the run has a test split. Runs trained with different strategies (PSS,
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
from ..io.comparison import comparison_document
from ..io.run import candidate_test, front_points, open_run, subnet_for_budget
from ..units import format_quantity, parse_quantity


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
            try:
                _, best = subnet_for_budget(front, b, constraint)
            except PssError:  # nothing of this run fits under b
                rows.append(None)
                continue
            rows.append({"key": best["key"], "accuracy": best["accuracy"], "cost": best["costs"][constraint], "test": best.get("test")})
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
    """A plain-text table: one row per budget, per run test (else validation) accuracy @ cost."""
    unit = comparison["constraint"]
    names = [r["name"] for r in comparison["runs"]]
    width = max(30, *(len(n) + 2 for n in names))
    head = f"{'budget (' + unit + ')':>16}" + "".join(f"{n:>{width}}" for n in names)
    lines = [head]
    tested = all(row is None or row.get("test") for r in comparison["runs"] for row in r["results"])
    for i, b in enumerate(comparison["budgets"]):
        cells = []
        for r in comparison["runs"]:
            row = r["results"][i]
            if row is None:
                cells.append(f"{'-':>{width}}")
                continue
            test = candidate_test(row)
            if tested and test is not None:
                lo, hi = test.interval
                text = f"{100 * test.value:.1f}% [{100 * lo:.1f},{100 * hi:.1f}] @ {format_quantity(row['cost'])}"
            else:
                text = f"val {row['accuracy'] * 100:.2f}% @ {format_quantity(row['cost'])}"
            cells.append(f"{text:>{width}}")
        lines.append(f"{format_quantity(b):>16}" + "".join(cells))
    if tested:
        n = next((row["test"]["images"] for r in comparison["runs"] for row in r["results"] if row), 0)
        lines.append(f"test accuracy [95% Wilson interval] on {n:,} test images of the most accurate calibrated subnet "
                     "(chosen on validation) with cost <= budget ('-': none fits); intervals that overlap do not "
                     "establish a difference")
    else:
        lines.append("validation accuracy of the most accurate calibrated subnet with cost <= budget ('-': none fits); "
                     "some runs have no test split, so these figures also chose the subnets and are optimistic")
    return "\n".join(lines)
