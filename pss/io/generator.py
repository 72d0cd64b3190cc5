"""The EAS architecture generator's files in a run directory (the one owner of their format; no torch).

Layout::

    RUN_DIR/generator/          the generator of seed 0 (`pss generate RUN --train`)
      generator.json    what the generator was trained on and how: superclass map, cost kind and range,
                        settings, gate layout, the training log (kind "pss-generator")
      generator.pt      its weights (a state dict; written and read by pss.io.checkpoint, weights_only)
      scenarios.json    architectures found for (superclass, budget) scenarios by the generator and by the
                        baselines with the same seed, with their cost, effort (calibrated evaluations, draws
                        and how many fit the budget) and per-superclass validation and test accuracy
                        (kind "pss-generated")
    RUN_DIR/generator-s1/       the same for seed 1 (`pss generate RUN --train --seed 1`), generator-s2/, ...

A seed is one replicate of the whole EAS pipeline on the same supernet: the generator
trained with that seed, its draws, and the baselines' draws and searches with that
seed. Each seed has its own folder, so training one seed never touches another's
files, and a run from before seeds existed (generator/ only) reads as seed 0.

A new ``pss generate --train`` replaces that seed's generator.json and generator.pt
and removes its scenarios.json (its architectures came from the old generator).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import PssError
from ..version import __version__, utc_timestamp
from .files import SCHEMA_VERSION, atomic_write_json, read_document

GENERATOR_DIR = "generator"
GENERATOR_FILE = "generator.json"
GENERATOR_WEIGHTS = "generator.pt"
SCENARIOS_FILE = "scenarios.json"
GENERATOR_DOC = "pss-generator"
SCENARIOS_DOC = "pss-generated"
_SEED_DIR = re.compile(r"^generator-s([1-9][0-9]*)$")


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PssError(f"a generator seed is a whole number >= 0, got {seed!r}")
    return seed


def generator_dir(run_path: str | Path, seed: int = 0) -> Path:
    """The folder of the generator of ``seed``: ``generator/`` for 0 (as before seeds existed), ``generator-sS/``."""
    name = GENERATOR_DIR if _check_seed(seed) == 0 else f"{GENERATOR_DIR}-s{seed}"
    return Path(run_path) / name


def generator_seeds(run_path: str | Path) -> list[int]:
    """The seeds with a generator description (generator.json) in the run, ascending."""
    root = Path(run_path)
    seeds = [0] if (root / GENERATOR_DIR / GENERATOR_FILE).is_file() else []
    if root.is_dir():
        for child in root.iterdir():
            m = _SEED_DIR.match(child.name)
            if m and (child / GENERATOR_FILE).is_file():
                seeds.append(int(m.group(1)))
    return sorted(seeds)


def has_generator(run_path: str | Path, seed: int = 0) -> bool:
    d = generator_dir(run_path, seed)
    return (d / GENERATOR_FILE).is_file() and (d / GENERATOR_WEIGHTS).is_file()


def _train_hint(run_path: str | Path, seed: int) -> str:
    return f"pss generate {run_path} --train" + (f" --seed {seed}" if seed else "")


def generator_document(*, superclasses: dict[str, Any], kind: str, c_min: float, c_max: float, settings: dict[str, Any],
                       layout: dict[str, Any], training: dict[str, Any], run_epoch: int, dropout: float,
                       validation_images: int, seed: int = 0) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": GENERATOR_DOC,
        "created": utc_timestamp(),
        "pss_version": __version__,
        "seed": _check_seed(int(seed)),
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


def write_generator_document(run_path: str | Path, doc: dict[str, Any], seed: int = 0) -> None:
    d = generator_dir(run_path, seed)
    d.mkdir(exist_ok=True)
    (d / SCENARIOS_FILE).unlink(missing_ok=True)
    atomic_write_json(d / GENERATOR_FILE, doc)


def read_generator_document(run_path: str | Path, seed: int = 0) -> dict[str, Any]:
    path = generator_dir(run_path, seed) / GENERATOR_FILE
    if not path.is_file():
        which = "no architecture generator" if not seed else f"no architecture generator of seed {seed}"
        raise PssError(f"run {run_path} has {which}; train one with `{_train_hint(run_path, seed)}`")
    doc = read_document(path, "generator description", GENERATOR_DOC)
    stored = doc.get("seed", seed)  # a description from before seeds is its folder's
    if stored != seed:
        raise PssError(f"{path} describes the generator of seed {stored}, not {seed}; train it again with "
                       f"`{_train_hint(run_path, seed)}`")
    return doc


def draw_tally_json(draws: int, in_budget: int, resolutions: Mapping[int, int],
                    in_budget_resolutions: Mapping[int, int]) -> dict[str, Any]:
    """What rejection within the ceiling saw for one scenario: raw draws, those within the budget (duplicates
    included), their ratio, and the draws at each input resolution (px, as a string key) before and after."""
    return {"draws": int(draws), "in_budget": int(in_budget),
            "in_budget_rate": (int(in_budget) / int(draws)) if draws else None,
            "draw_resolutions": {str(int(r)): int(n) for r, n in sorted(resolutions.items())},
            "in_budget_resolutions": {str(int(r)): int(n) for r, n in sorted(in_budget_resolutions.items())}}


def scenario_record(*, superclass: str, superclass_index: int, budget: float, kind: str, structure: dict[str, Any] | None,
                    costs: dict[str, float] | None, validation: dict[str, Any] | None, test: dict[str, Any] | None,
                    candidates: int, draws: int, seconds: float, method: str = "eas", seed: int = 0,
                    evaluations: float | None = None, evaluations_requested: int | None = None,
                    tally: dict[str, Any] | None = None, shared_search: dict[str, Any] | None = None,
                    fallback: bool = False) -> dict[str, Any]:
    """One scenario: the chosen architecture (None when nothing fits), its costs and accuracies, and the effort.

    ``evaluations`` counts the calibrated evaluations spent choosing it (for OFA-V, whose one search per budget
    serves every superclass, its share: the search's evaluations over the scenarios sharing it, given in
    ``shared_search``); ``evaluations_requested`` is the N every method was given. ``tally``
    (:func:`draw_tally_json`) is there for the methods that draw within the ceiling (eas, random).
    """
    made = None if evaluations is None else (int(evaluations) if float(evaluations).is_integer() else float(evaluations))
    record = {"method": method, "seed": _check_seed(int(seed)), "superclass": superclass, "superclass_index": int(superclass_index),
              "budget": float(budget), "cost_kind": kind, "structure": structure, "costs": costs, "validation": validation,
              "test": test, "candidates": int(candidates), "draws": int(draws),
              "evaluations": made, "evaluations_requested": None if evaluations_requested is None else int(evaluations_requested),
              "in_budget": None, "in_budget_rate": None, "draw_resolutions": None, "in_budget_resolutions": None,
              "shared_search": shared_search, "fallback": bool(fallback), "seconds": float(seconds)}
    if tally is not None:
        record.update({k: tally[k] for k in ("in_budget", "in_budget_rate", "draw_resolutions", "in_budget_resolutions")})
        record["draws"] = int(tally["draws"])
    return record


def read_scenarios(run_path: str | Path, seed: int = 0) -> list[dict[str, Any]]:
    """The scenarios recorded so far with ``seed`` (empty when none); a record from before seeds gets ``seed``."""
    path = generator_dir(run_path, seed) / SCENARIOS_FILE
    if not path.is_file():
        return []
    records = list(read_document(path, "generated scenarios", SCENARIOS_DOC).get("scenarios", []))
    return [{**r, "seed": int(r.get("seed", seed))} for r in records]


def write_scenarios(run_path: str | Path, records: Sequence[dict[str, Any]], generator_created: str, seed: int = 0) -> None:
    """Add ``records`` to the scenarios of ``seed``, replacing earlier records of the same (method, superclass, budget)."""
    def key(r: dict[str, Any]) -> tuple:
        return r.get("method", "eas"), r["superclass"], round(float(r["budget"]), 6)

    wrong = sorted({int(r.get("seed", seed)) for r in records} - {seed})
    if wrong:
        raise PssError(f"records of seed {wrong[0]} cannot go into the scenarios of seed {seed}")
    merged = {key(r): r for r in read_scenarios(run_path, seed)}
    merged.update({key(r): {**r, "seed": seed} for r in records})
    d = generator_dir(run_path, seed)
    d.mkdir(exist_ok=True)
    atomic_write_json(d / SCENARIOS_FILE, {
        "schema_version": SCHEMA_VERSION, "kind": SCENARIOS_DOC, "updated": utc_timestamp(),
        "generator_created": generator_created, "seed": seed,
        "scenarios": sorted(merged.values(), key=lambda r: (r.get("method", "eas"), r["superclass_index"], r["budget"])),
    })
