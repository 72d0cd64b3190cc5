"""The EAS architecture generator's files in a run directory (the one owner of their format; no torch).

Layout::

    RUN_DIR/generator/
      generator.json    what the generator was trained on and how: superclass map, cost kind and range,
                        settings, gate layout, the training log (kind "pss-generator")
      generator.pt      its weights (a state dict; written and read by pss.io.checkpoint, weights_only)
      scenarios.json    architectures generated for (superclass, budget) scenarios, with their cost and
                        per-superclass validation and test accuracy (kind "pss-generated")

A new ``pss generate --train`` replaces generator.json and generator.pt and
removes scenarios.json (its architectures came from the old generator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import PssError
from ..version import __version__, utc_timestamp
from .files import SCHEMA_VERSION, atomic_write_json, read_document

GENERATOR_DIR = "generator"
GENERATOR_FILE = "generator.json"
GENERATOR_WEIGHTS = "generator.pt"
SCENARIOS_FILE = "scenarios.json"
GENERATOR_DOC = "pss-generator"
SCENARIOS_DOC = "pss-generated"


def generator_dir(run_path: str | Path) -> Path:
    return Path(run_path) / GENERATOR_DIR


def has_generator(run_path: str | Path) -> bool:
    d = generator_dir(run_path)
    return (d / GENERATOR_FILE).is_file() and (d / GENERATOR_WEIGHTS).is_file()


def generator_document(*, superclasses: dict[str, Any], kind: str, c_min: float, c_max: float, settings: dict[str, Any],
                       layout: dict[str, Any], training: dict[str, Any], run_epoch: int, dropout: float,
                       validation_images: int) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": GENERATOR_DOC,
        "created": utc_timestamp(),
        "pss_version": __version__,
        "run_epoch": int(run_epoch),
        "superclass_dropout": float(dropout),
        "superclasses": superclasses,
        "cost_kind": kind,
        "c_min": float(c_min),
        "c_max": float(c_max),
        "settings": settings,
        "layout": layout,
        "training": training,
        "validation_images": int(validation_images),
    }


def write_generator_document(run_path: str | Path, doc: dict[str, Any]) -> None:
    d = generator_dir(run_path)
    d.mkdir(exist_ok=True)
    (d / SCENARIOS_FILE).unlink(missing_ok=True)
    atomic_write_json(d / GENERATOR_FILE, doc)


def read_generator_document(run_path: str | Path) -> dict[str, Any]:
    path = generator_dir(run_path) / GENERATOR_FILE
    if not path.is_file():
        raise PssError(f"run {run_path} has no architecture generator; train one with `pss generate {run_path} --train`")
    return read_document(path, "generator description", GENERATOR_DOC)


def scenario_record(*, superclass: str, superclass_index: int, budget: float, kind: str, structure: dict[str, Any] | None,
                    costs: dict[str, float] | None, validation: dict[str, Any] | None, test: dict[str, Any] | None,
                    candidates: int, draws: int, seconds: float, method: str = "eas") -> dict[str, Any]:
    """One generated scenario: the chosen architecture (None when nothing fits), its costs and accuracies."""
    return {"method": method, "superclass": superclass, "superclass_index": int(superclass_index), "budget": float(budget),
            "cost_kind": kind, "structure": structure, "costs": costs, "validation": validation, "test": test,
            "candidates": int(candidates), "draws": int(draws), "seconds": float(seconds)}


def read_scenarios(run_path: str | Path) -> list[dict[str, Any]]:
    """The generated scenarios recorded so far (empty when none)."""
    path = generator_dir(run_path) / SCENARIOS_FILE
    if not path.is_file():
        return []
    return list(read_document(path, "generated scenarios", SCENARIOS_DOC).get("scenarios", []))


def write_scenarios(run_path: str | Path, records: Sequence[dict[str, Any]], generator_created: str) -> None:
    """Add ``records``, replacing earlier records of the same (method, superclass, budget)."""
    def key(r: dict[str, Any]) -> tuple:
        return r.get("method", "eas"), r["superclass"], round(float(r["budget"]), 6)

    merged = {key(r): r for r in read_scenarios(run_path)}
    merged.update({key(r): r for r in records})
    d = generator_dir(run_path)
    d.mkdir(exist_ok=True)
    atomic_write_json(d / SCENARIOS_FILE, {
        "schema_version": SCHEMA_VERSION, "kind": SCENARIOS_DOC, "updated": utc_timestamp(),
        "generator_created": generator_created,
        "scenarios": sorted(merged.values(), key=lambda r: (r.get("method", "eas"), r["superclass_index"], r["budget"])),
    })
