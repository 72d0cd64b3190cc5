"""The run directory: its file names, and the one place that builds and reads its JSON documents.

Layout (documented with its JSON schemas in ``docs/run-format.md``)::

    RUN_DIR/
      run.json                    config, space, budgets, dataset, versions
      snapshots/epoch_0001.json   one per finished epoch
      checkpoint.pt               weights, optimizer, pools, RNG states (last epoch)   (pss.io.checkpoint)
      calibration/front.json      calibrated top-k per pool and each pool's best
      calibration/bn_stats.pt     the calibrated BN statistics of those subnets       (pss.io.checkpoint)
      comparisons/*.json          `pss compare` results the dashboard overlays        (pss.io.comparison)
      latency_lut.json            a latency run's own copy of its LUT                  (pss.io.lut)

Every file is written atomically, so a reader (the dashboard, possibly while
training runs) never sees half a file. This module imports no torch: the
dashboard reads runs through it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..config import TrainConfig
from ..errors import PssError
from ..evaluate.selection import CalibratedSubnet, FrontPoint, best_within, select_best
from ..evaluate.statistics import Accuracy
from ..problem.budgets import Budget
from ..problem.problem import Problem
from ..sampling.pools import SubnetPool
from ..sampling.prioritized import pool_temperature, prioritized_probs, space_sampling_probability
from ..units import format_cost, format_quantity
from ..version import __version__, utc_timestamp
from .files import FRONT_DOC, RUN_DOC, SCHEMA_VERSION, SNAPSHOT_DOC, atomic_write_json, read_document
from .lut import RUN_LUT_FILE, load_lut, resolve_lut_path

RUN_FILE = "run.json"
SNAPSHOT_DIR = "snapshots"
CHECKPOINT_FILE = "checkpoint.pt"
CALIBRATION_DIR = "calibration"
FRONT_FILE = "front.json"
BN_STATS_FILE = "bn_stats.pt"
COMPARISON_DIR = "comparisons"

RUN_ENTRIES = (RUN_FILE, SNAPSHOT_DIR, CHECKPOINT_FILE, CALIBRATION_DIR, COMPARISON_DIR, RUN_LUT_FILE)
"""Everything `pss train` and the commands after it put in a run directory."""

RUN_FIELDS = {"config": dict, "dataset": dict, "model": dict, "space": dict, "constraint": str, "budgets": list,
              "reference_subnets": dict}
"""The top-level fields of run.json that commands read, with their JSON types."""
DATASET_FIELDS = ("name", "num_classes", "in_channels", "num_train", "num_val", "mean", "std", "class_names")

SNAPSHOT_NAME = re.compile(r"^epoch_(\d{4,})\.json$")
"""``epoch_NNNN.json``; copies such as ``epoch_0003 (1).json`` do not match."""


class RunDir:
    """Paths, readers and writers of one run directory.

    ``calibration`` names the folder of the calibrated front: ``calibration/``
    (what every command reads) or an alternative one made by
    :meth:`alternative`, so a study can select the same trained supernet in
    several ways (PSS-Net Tables 6 and 8) without replacing the run's front.
    """

    def __init__(self, path: str | Path, calibration: str = CALIBRATION_DIR) -> None:
        self.path = Path(path).expanduser()
        self.calibration = calibration

    def __repr__(self) -> str:
        extra = "" if self.calibration == CALIBRATION_DIR else f", calibration={self.calibration!r}"
        return f"RunDir({str(self.path)!r}{extra})"

    def alternative(self, name: str) -> RunDir:
        """The same run with its front in ``calibration-<name>/``: another selection, the run's own front untouched."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
            raise ValueError(f"bad alternative front name {name!r}")
        return RunDir(self.path, f"{CALIBRATION_DIR}-{name}")

    # ------------------------------------------------------------------ paths
    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def snapshot_dir(self) -> Path:
        return self.path / SNAPSHOT_DIR

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def front_file(self) -> Path:
        return self.path / self.calibration / FRONT_FILE

    @property
    def bn_stats_file(self) -> Path:
        return self.path / self.calibration / BN_STATS_FILE

    @property
    def comparison_dir(self) -> Path:
        return self.path / COMPARISON_DIR

    @property
    def lut_file(self) -> Path:
        return self.path / RUN_LUT_FILE

    def is_run(self) -> bool:
        return self.run_file.is_file()

    def has_front(self) -> bool:
        return self.front_file.is_file()

    def clear(self) -> None:
        """Remove the run's own files (:data:`RUN_ENTRIES` and temp files); never follows a link, keeps anything else."""
        alternatives = [p.name for p in self.path.glob(f"{CALIBRATION_DIR}-*") if re.fullmatch(r"[a-z0-9][a-z0-9_-]*", p.name[len(CALIBRATION_DIR) + 1:])]
        for name in (*RUN_ENTRIES, *alternatives):
            p = self.path / name
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
        self.remove_temp_files()

    def remove_temp_files(self) -> int:
        """Delete the ``.NAME.*.tmp`` files an interrupted atomic write left behind; returns how many."""
        removed = 0
        for folder in (self.path, self.snapshot_dir, self.path / CALIBRATION_DIR):
            if folder.is_dir() and not folder.is_symlink():
                for p in folder.glob(".*.tmp"):
                    if p.is_file() and not p.is_symlink():
                        p.unlink()
                        removed += 1
        return removed

    def snapshot_path(self, epoch: int) -> Path:
        return self.snapshot_dir / f"epoch_{epoch:04d}.json"

    def snapshot_paths(self) -> list[Path]:
        """The snapshot files in epoch order."""
        if not self.snapshot_dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.snapshot_dir.iterdir() if (m := SNAPSHOT_NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    # ------------------------------------------------------------------ run.json
    def read_run(self) -> dict[str, Any]:
        """run.json, checked for the fields every command relies on (one-line PssError when one is missing)."""
        doc = read_document(self.run_file, "run file", RUN_DOC)
        missing = [k for k, kind in RUN_FIELDS.items() if not isinstance(doc.get(k), kind)]
        missing += [f"dataset.{k}" for k in DATASET_FIELDS if isinstance(doc.get("dataset"), dict) and k not in doc["dataset"]]
        if missing:
            raise PssError(f"run file {self.run_file} lacks {', '.join(missing)}: it is damaged or was not written by "
                           "`pss train`; train the run again")
        return doc

    def write_run(self, doc: dict[str, Any]) -> None:
        atomic_write_json(self.run_file, doc)

    def read_config(self, run_json: dict[str, Any] | None = None) -> TrainConfig:
        """The config the run was trained with."""
        run_json = self.read_run() if run_json is None else run_json
        return TrainConfig.from_stored(run_json["config"], f"{self.run_file}")

    def read_problem(self, run_json: dict[str, Any] | None = None) -> tuple[TrainConfig, Problem]:
        """The config and the problem (spec, S, C, Theta) the run was trained with, rebuilt from run.json.

        A latency run finds its LUT at config.latency_lut or, when that path is
        gone, in the run directory (:data:`~pss.io.lut.RUN_LUT_FILE`).
        """
        run_json = self.read_run() if run_json is None else run_json
        cfg = self.read_config(run_json)
        try:
            ds = run_json["dataset"]
            num_classes, in_channels = int(ds["num_classes"]), int(ds["in_channels"])
        except (KeyError, TypeError, ValueError):
            raise PssError(f"{self.run_file} lacks the dataset's num_classes and in_channels; it was not written by pss train") from None
        if not (1 <= num_classes <= 100_000 and in_channels in (1, 3)):
            raise PssError(f"{self.run_file} describes {num_classes} classes of {in_channels}-channel images; it is damaged")
        latency = load_lut(resolve_lut_path(cfg.latency_lut, self.path)) if cfg.latency_lut else None
        return cfg, Problem.build(cfg, num_classes, in_channels, latency)

    # ------------------------------------------------------------------ snapshots
    def read_snapshot(self, path: Path) -> dict[str, Any]:
        return read_document(path, "snapshot", SNAPSHOT_DOC)

    def read_snapshots(self, skip_damaged: bool = True) -> list[dict[str, Any]]:
        """Every snapshot, oldest first; damaged ones are skipped (as the dashboard does) unless told otherwise."""
        out = []
        for path in self.snapshot_paths():
            try:
                out.append(self.read_snapshot(path))
            except PssError:
                if not skip_damaged:
                    raise
        return out

    def latest_snapshot(self) -> dict[str, Any] | None:
        paths = self.snapshot_paths()
        return self.read_snapshot(paths[-1]) if paths else None

    def write_snapshot(self, doc: dict[str, Any]) -> None:
        atomic_write_json(self.snapshot_path(int(doc["epoch"])), doc)

    # ------------------------------------------------------------------ calibrated front
    def read_front(self) -> dict[str, Any]:
        if not self.has_front():
            raise PssError(f"run {self.path} has no calibrated front; run `pss calibrate {self.path}` first")
        return read_document(self.front_file, "calibrated front", FRONT_DOC)

    def write_front(self, doc: dict[str, Any]) -> None:
        atomic_write_json(self.front_file, doc)


def open_run(path: str | Path) -> RunDir:
    """A :class:`RunDir` that exists and holds a run.json (one-line PssError otherwise)."""
    run = RunDir(path)
    if not run.path.exists():
        raise PssError(f"run directory {run.path} does not exist")
    if not run.is_run():
        raise PssError(f"{run.path} is not a pss run directory (no {RUN_FILE}); train one with `pss train PRESET --out DIR`")
    return run


# ---------------------------------------------------------------------- documents
def run_document(
    cfg: TrainConfig, dataset: dict[str, Any], problem: Problem, bucket_sizes: Sequence[int], batches_per_epoch: int, device: str,
    processes: int = 1,
) -> dict[str, Any]:
    """run.json (kind ``pss-run``): what was trained, on what, with which space and budgets."""
    space, costs = problem.space, problem.cost_model
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": RUN_DOC,
        "pss_version": __version__,
        "created": utc_timestamp(),
        "config": cfg.to_json(),
        "dataset": dataset,
        "model": problem.spec.to_json(),
        "space": space.to_json(),
        "constraint": cfg.constraint,
        "budgets": [b.to_json() for b in problem.budgets],
        "reference_subnets": {
            "max": {"structure": space.max_structure.to_json(), "costs": costs.costs(space.max_structure)},
            "min": {"structure": space.min_structure.to_json(), "costs": costs.costs(space.min_structure)},
        },
        "structure_set": {"size": cfg.structure_set_size, "bucket_sizes": list(bucket_sizes)},
        "batches_per_epoch": batches_per_epoch,
        "device": device,
        "processes": processes,
    }


def pool_document(t: int, pool: SubnetPool, progress: float, p_end: float, eta_end: float) -> dict[str, Any]:
    """One pool of a snapshot: its entries with m, the Eq. 3 p and Eq. 6 eta and q at ``progress``, and its counters."""
    p = space_sampling_probability(p_end, progress, pool.is_full)
    eta = pool_temperature(eta_end, progress, pool.is_full)
    return {
        "index": t,
        "budget": pool.budget.to_json(),
        "capacity": pool.capacity,
        "size": len(pool),
        "full": pool.is_full,
        "p": p,
        "eta": eta,
        "q": prioritized_probs(pool.metrics(), eta).tolist(),
        **pool.counters.to_json(),
        "entries": [e.to_json() for e in pool.entries],
    }


def snapshot_document(
    *,
    epoch: int,
    epochs: int,
    step: int,
    lr: float,
    progress: float,
    p_end: float,
    eta_end: float,
    losses: dict[str, float | None],
    val_acc: dict[str, float],
    seconds: float,
    images_per_second: float,
    sampler_fallbacks: int,
    pools: Iterable[SubnetPool],
    samples: dict[str, list] | None = None,
) -> dict[str, Any]:
    """snapshots/epoch_NNNN.json (kind ``pss-snapshot``): the state of training after one epoch."""
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": SNAPSHOT_DOC,
        "epoch": epoch,
        "epochs": epochs,
        "step": step,
        "lr": lr,
        "progress": progress,
        "p_schedule": p_end ** progress,
        "eta_schedule": eta_end ** progress,
        "losses": losses,
        "val_acc": val_acc,
        "seconds": seconds,
        "images_per_second": images_per_second,
        "sampler_fallbacks": sampler_fallbacks,
        "pools": [pool_document(t, p, progress, p_end, eta_end) for t, p in enumerate(pools)],
        **({"samples": samples} if samples is not None else {}),
    }


def front_document(
    epoch: int,
    constraint: str,
    top_k: int,
    calibration_images: int,
    validation_images: int,
    budgets: Sequence[Budget],
    per_pool: Sequence[Sequence[CalibratedSubnet]],
    references: dict[str, dict],
    test_images: int = 0,
    test_split: str = "none",
    selection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """calibration/front.json (kind ``pss-front``): per pool (or searched budget) its candidates and the Eq. 5 best.

    Candidates carry their validation accuracy (``accuracy``: what chose them) and, when the run has a
    test split (``test_images`` > 0), their ``test`` accuracy with its 95% interval.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": FRONT_DOC,
        "pss_version": __version__,
        "epoch": int(epoch),
        "constraint": constraint,
        "top_k": int(top_k),
        "calibration_images": int(calibration_images),
        "validation_images": int(validation_images),
        "test_images": int(test_images),
        "test_split": test_split,
        "selection": selection or {"metric": "m"},
        "pools": [
            {
                "index": t,
                "budget": budget.to_json(),
                "candidates": [c.to_json() for c in cands],
                "best": select_best(cands) if cands else None,
            }
            for t, (budget, cands) in enumerate(zip(budgets, per_pool))
        ],
        "references": references,
    }


def front_kinds(front: dict[str, Any]) -> list[str]:
    """The budget kinds of a front's pools, in order (one kind unless trained with extra_constraints)."""
    return list(dict.fromkeys(p["budget"]["kind"] for p in front["pools"])) or [front.get("constraint", "macs")]


def front_candidates(front: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(pool, candidate) for every calibrated candidate of a front, pool by pool."""
    return [(pool, c) for pool in front["pools"] for c in pool["candidates"]]


def front_subnets(front: dict[str, Any]) -> list[tuple[dict[str, Any] | None, dict[str, Any]]]:
    """(pool or None, candidate) for every calibrated subnet a budget can choose: the pools' candidates, then
    the max and min references (pool None); each structure once (a pool's copy wins over a reference)."""
    out, seen = [], set()
    pairs = front_candidates(front) + [(None, c) for c in (front.get("references") or {}).values()]
    for pool, c in pairs:
        if c["key"] not in seen:
            seen.add(c["key"])
            out.append((pool, c))
    return out


def front_points(front: dict[str, Any]) -> list[FrontPoint]:
    """Every subnet of :func:`front_subnets` as a :class:`FrontPoint` (key, validation accuracy, costs)."""
    return [FrontPoint(c["key"], float(c["accuracy"]), dict(c["costs"])) for _, c in front_subnets(front)]


def subnet_for_budget(front: dict[str, Any], budget: float, kind: str | None = None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(pool or None, candidate): the subnet a budget exports, the dashboard shows and `pss compare` reports.

    A budget is a ceiling: the most accurate calibrated subnet (validation accuracy, Eq. 5) among all
    pools' candidates and the min and max references whose ``kind`` cost is <= ``budget``; ties go to the
    cheaper, so the choice is never dominated. ``kind`` defaults to the front's constraint. When nothing
    fits, a one-line :class:`PssError` names the cheapest subnet and its cost.
    """
    kind = kind or front.get("constraint", "macs")
    points = [p for p in front_points(front) if p.costs.get(kind) is not None]
    if not points:
        raise PssError(f"the calibrated front has no subnets with a {kind} cost; choose another --constraint "
                       f"(this front has {', '.join(front_kinds(front))})")
    best = best_within(points, budget, kind)
    if best is None:
        cheapest = min(points, key=lambda p: (p.costs[kind], -p.accuracy))
        raise PssError(f"no calibrated subnet costs at most {format_cost(budget, kind)}; the cheapest is "
                       f"{cheapest.key} at {format_cost(cheapest.costs[kind], kind)} (validation {cheapest.accuracy:.1%}): "
                       f"raise the budget to at least {format_quantity(cheapest.costs[kind])}")
    return find_candidate(front, best.key)


def reference_name(front: dict[str, Any], key: str) -> str | None:
    """"max" or "min" when ``key`` is that reference subnet of the front, else None."""
    return next((name for name, c in (front.get("references") or {}).items() if c["key"] == key), None)


def candidate_test(candidate: dict[str, Any]) -> Accuracy | None:
    """A candidate's test accuracy, or None (no test split, or a front written before test splits)."""
    doc = candidate.get("test")
    return Accuracy.from_json(doc) if doc else None


def candidate_validation(candidate: dict[str, Any], front: dict[str, Any]) -> Accuracy | None:
    """A candidate's validation accuracy as counts (fronts before test splits store only the fraction: rebuilt)."""
    doc = candidate.get("validation")
    if doc:
        return Accuracy.from_json(doc)
    n = int(front.get("validation_images") or 0)
    return Accuracy(round(float(candidate["accuracy"]) * n), n) if n else None


def find_candidate(front: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(pool, candidate) of the calibrated subnet with structure ``key`` in a front; pool None for a reference."""
    for pool, candidate in front_subnets(front):
        if candidate["key"] == key:
            return pool, candidate
    raise PssError(f"subnet {key} is not in the calibrated front; pick one listed by `pss info RUN` or rerun `pss calibrate`")
