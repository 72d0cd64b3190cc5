"""A study directory (``pss study``): the study file it ran, its runs, ``study.json`` and ``report.md``.

::

    STUDY_DIR/
      study.yaml          the study as run (recipe, overrides, strategies, seeds, budgets, evaluations)
      runs/<strategy>-s<seed>/   one ordinary run directory each (train, calibrate/search, dashboard)
      study.json          every number of the comparison (kind ``pss-study``)
      report.md           the comparison as tables, honest about significance
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ..config import StudyConfig
from ..errors import PssError
from ..version import __version__, utc_timestamp
from .files import SCHEMA_VERSION, atomic_write_bytes, atomic_write_json, read_document

STUDY_FILE = "study.yaml"
STUDY_JSON = "study.json"
REPORT_FILE = "report.md"
RUNS_DIR = "runs"
STUDY_DOC = "pss-study"


def run_name(strategy: str, seed: int) -> str:
    return f"{strategy}-s{seed}"


def study_as_yaml(study: StudyConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(study), sort_keys=False)


def prepare_study_dir(out: str | Path, study: StudyConfig) -> Path:
    """``out`` ready for ``study``: new or empty (then study.yaml is written), or holding a study with the same
    training (recipe and overrides): a restart keeps its finished runs, and a changed selection, budget list,
    strategy or seed list is taken (study.yaml is updated; runs it no longer names stay on disk, unreported).
    A folder with other files, or a study that trains differently, is refused."""
    root = Path(out).expanduser()
    if root.exists() and not root.is_dir():
        raise PssError(f"--out {root} exists and is not a directory")
    text = study_as_yaml(study)
    stored = root / STUDY_FILE
    if stored.is_file():
        try:
            old = yaml.safe_load(stored.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PssError(f"cannot read {stored}: {exc}; use a new --out") from None
        if not isinstance(old, dict) or (old.get("recipe"), old.get("set")) != (study.recipe, study.set):
            raise PssError(f"{root} holds a different study (its recipe or set differ, so its runs were trained "
                           "differently); use a new --out, or delete it to start over")
        if stored.read_text() != text:
            atomic_write_bytes(stored, text.encode())
        return root
    if root.is_dir() and any(root.iterdir()):
        raise PssError(f"--out {root} is not empty and holds no {STUDY_FILE}; give a new or empty directory")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(stored, text.encode())
    return root


def study_document(study: StudyConfig, budgets: list[float], constraint: str, runs: list[dict[str, Any]],
                   comparison: list[dict[str, Any]], method: dict[str, Any],
                   tables: dict[str, Any] | None = None) -> dict[str, Any]:
    """study.json (kind ``pss-study``); ``tables``: PSS-Net Tables 6 and 8 from the same runs (null without pss runs)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": STUDY_DOC,
        "pss_version": __version__,
        "created": utc_timestamp(),
        "study": dataclasses.asdict(study),
        "constraint": constraint,
        "budgets": budgets,
        "statistics": method,
        "runs": runs,
        "comparison": comparison,
        "tables": tables or {},
    }


def write_study(root: Path, doc: dict[str, Any], report: str) -> None:
    atomic_write_json(root / STUDY_JSON, doc)
    atomic_write_bytes(root / REPORT_FILE, report.encode())


def read_study(root: str | Path) -> dict[str, Any]:
    return read_document(Path(root).expanduser() / STUDY_JSON, "study file", STUDY_DOC)
