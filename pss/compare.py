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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import PssError
from .pools import format_quantity, parse_quantity
from .runs import SCHEMA_VERSION, atomic_write_json, open_run, read_json, utc_timestamp

COMPARISON_DIR = "comparisons"


@dataclass(frozen=True)
class FrontPoint:
    """One calibrated subnet of a front: its key, accuracy and costs."""

    key: str
    accuracy: float
    costs: dict[str, float]


def front_points(front: dict[str, Any]) -> list[FrontPoint]:
    """Every calibrated candidate of a front (references excluded: they are not pool members)."""
    return [FrontPoint(c["key"], float(c["accuracy"]), dict(c["costs"])) for p in front["pools"] for c in p["candidates"]]


def best_within(points: list[FrontPoint], budget: float, constraint: str) -> FrontPoint | None:
    """Eq. 5 over a front: the most accurate point with cost <= budget (ties: the cheaper). None if nothing fits."""
    fits = [p for p in points if p.costs.get(constraint) is not None and p.costs[constraint] <= budget]
    if not fits:
        return None
    return max(fits, key=lambda p: (p.accuracy, -p.costs[constraint]))


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
        if not run.front_file.is_file():
            raise PssError(f"run {run.path} has no calibrated front; run `pss calibrate {run.path}` (or `pss search`) first")
        fronts.append(read_json(run.front_file, "calibrated front"))
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
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "pss-comparison",
        "pss_version": __version__,
        "created": utc_timestamp(),
        "constraint": constraint,
        "budgets": values,
        "runs": entries,
    }


def _unique_names(paths: list[Path]) -> list[str]:
    """Folder names, made unique with their parent's name where two runs share one."""
    names = [p.name for p in paths]
    return [f"{p.parent.name}/{p.name}" if names.count(p.name) > 1 else p.name for p in paths]


def default_output(comparison: dict[str, Any]) -> Path:
    """RUN_DIR/comparisons/<names>.json of the first run, where the dashboard finds it."""
    first = Path(comparison["runs"][0]["path"])
    stem = "-vs-".join(r["name"].replace("/", "_") for r in comparison["runs"])[:120]
    return first / COMPARISON_DIR / f"{stem}.json"


def write_comparison(comparison: dict[str, Any], out: str | Path | None = None) -> Path:
    path = Path(out).expanduser() if out else default_output(comparison)
    if path.exists() and path.is_dir():
        raise PssError(f"--out {path} is a directory; give a file name such as {path / 'comparison.json'}")
    atomic_write_json(path, comparison)
    return path


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


def read_comparison(path: str | Path) -> dict[str, Any]:
    data = read_json(Path(path), "comparison file")
    if data.get("kind") != "pss-comparison":
        raise PssError(f"{path} is not a pss comparison file (kind {data.get('kind')!r})")
    return data
