"""Comparison files (``pss compare``): each run's best calibrated accuracy per budget.

Written to ``FIRST_RUN/comparisons/NAMES.json`` by default, where the
dashboard finds them and overlays them on that run's front.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PssError
from ..version import __version__, utc_timestamp
from .files import COMPARISON_DOC, SCHEMA_VERSION, atomic_write_json, read_document
from .run import COMPARISON_DIR


def comparison_document(constraint: str, budgets: list[float], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The comparison document (kind ``pss-comparison``); ``runs`` holds one entry per run with its ``results``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": COMPARISON_DOC,
        "pss_version": __version__,
        "created": utc_timestamp(),
        "constraint": constraint,
        "budgets": budgets,
        "runs": runs,
    }


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


def read_comparison(path: str | Path) -> dict[str, Any]:
    return read_document(Path(path), "comparison file", COMPARISON_DOC)
