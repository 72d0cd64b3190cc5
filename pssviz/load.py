"""Run directory -> tidy pandas DataFrames.

One function, :func:`load_run`, reads everything the dashboard and the
notebooks show: ``run.json``, every ``snapshots/epoch_NNNN.json`` and, when
present, ``calibration/front.json``. Each table is *tidy* (one row per
observation, one column per variable), so plotly express and ``groupby``
work on it directly:

========== ================================= ==========================================
table      one row per                       columns (besides the keys)
========== ================================= ==========================================
budgets    pool t                            kind, theta, delta, lo, hi, label
dimensions searchable width i                name, group, o_min, o_max
epochs     finished epoch                    step, lr, progress, p_schedule, eta_schedule,
                                             loss_max/medium/min, val_acc_max/min, seconds,
                                             images_per_second, sampler_fallbacks
pools      (epoch, pool)                     kind, label, theta, delta, capacity, size, full, p,
                                             eta, from_space, from_pool, pushes, evictions,
                                             updates, mean_trials, best_m, mean_m,
                                             cost_min/mean/max, sampled
entries    (epoch, pool, rank)               kind, key, resolution, m, q, times_sampled, macs,
                                             params, cost
front      (pool, candidate)                 label, theta, delta, key, resolution, m, fresh_m,
                                             accuracy, val_images, test_acc, test_lo, test_hi,
                                             test_images, macs, params, latency, cost, is_best
references max / min subnet                  key, resolution, accuracy, val_images, test_acc,
                                             test_lo, test_hi, test_images, macs, params,
                                             latency, cost
samples    (step, trained subnet)            epoch, key, loss, max_loss (every strategy)
========== ================================= ==========================================

``cost`` is the cost of the pool's own budget kind (``kind``): for a
single-kind run always the run's constraint (``run.constraint``), so figures
need not know which one was trained for; a multi-constraint run
(``extra_constraints``, PSS-Net_M) also has pools of other kinds, whose
``cost`` is in their own unit (filter by ``kind``). ``front`` and
``references`` keep the run's primary constraint as ``cost``. ``accuracy`` is the validation
accuracy that selected the subnet; ``test_acc`` (NaN without a test split) its test accuracy,
with the 95% Wilson interval ``test_lo``..``test_hi`` on ``test_images`` images. Widths are not stored per
entry (250k rows x 25 layers is heavy); :func:`widths_of` parses them from the
structure keys on demand.

A snapshot that is corrupt, half-written by a foreign tool or of another schema
version is skipped and reported in :attr:`RunData.problems`; the rest of the
run still loads. A broken ``run.json`` is an error (:class:`RunLoadError`):
without it nothing can be interpreted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from pss.io.files import COMPARISON_DOC, FRONT_DOC, RUN_DOC, SNAPSHOT_DOC, DocumentError, read_document
from pss.io.run import CHECKPOINT_FILE, RunDir, candidate_test, candidate_validation

from .discover import _mtime, _snapshot_names, find_runs, run_signature

__all__ = ["RunData", "RunLoadError", "SnapshotCache", "find_runs", "load_run", "run_signature", "width_ratios", "widths_of"]

#: a run whose newest snapshot is younger than this and that has epochs left is "training"
LIVE_SECONDS = 15 * 60


class RunLoadError(Exception):
    """A run directory cannot be read at all; the message is one line for the user."""


@dataclass
class RunData:
    """Everything about one run, as DataFrames (see the module docstring)."""

    path: Path
    name: str
    run: dict[str, Any]
    budgets: pd.DataFrame
    dimensions: pd.DataFrame
    epochs: pd.DataFrame
    pools: pd.DataFrame
    entries: pd.DataFrame
    front: pd.DataFrame | None = None
    references: pd.DataFrame | None = None
    front_epoch: int | None = None
    #: the constraint the front's budgets are in (a search may use another one than training)
    front_constraint: str | None = None
    #: calibration/front.json as read (pss.io.run's functions choose subnets from it)
    front_doc: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    status: str = "empty"
    #: every non-max subnet trained, one row per (step, subnet), from the snapshots' ``samples``
    #: (columns: epoch, step, key, loss, max_loss); empty for runs written before the field existed
    samples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SAMPLE_COLUMNS)))
    #: comparison files (`pss compare`) found in RUN_DIR/comparisons/: file stem -> tidy table
    #: (columns: run, strategy, constraint, budget, accuracy, cost, key; one row per run and budget with a subnet)
    comparisons: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def constraint(self) -> str:
        return str(self.run.get("constraint", "macs"))

    @property
    def kinds(self) -> list[str]:
        """The budget kinds of the run, primary first (more than one with extra_constraints)."""
        kinds = list(dict.fromkeys(self.budgets["kind"])) if len(self.budgets) else []
        return kinds or [self.constraint]

    @property
    def epochs_planned(self) -> int:
        return int(self.run.get("config", {}).get("epochs", 0))

    @property
    def last_epoch(self) -> int | None:
        return int(self.epochs["epoch"].iloc[-1]) if len(self.epochs) else None

    @property
    def files(self) -> RunDir:
        """The run directory's paths (:class:`pss.io.run.RunDir`)."""
        return RunDir(self.path)

    @property
    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT_FILE).is_file()

    @property
    def front_is_current(self) -> bool:
        return self.front is not None and self.front_epoch == self.last_epoch

    def info(self) -> dict[str, Any]:
        """A flat summary for the Overview page and ``pss info``-like listings."""
        cfg = self.run.get("config", {})
        ds = self.run.get("dataset", {})
        return {
            "run": self.name,
            "status": self.status,
            "model": f"{cfg.get('model')} x{cfg.get('width_mult')} ({cfg.get('stem')} stem)",
            "dataset": f"{ds.get('name')} ({ds.get('num_train')} train / {ds.get('num_val')} val / {ds.get('num_test') or 0} test, "
                       f"{ds.get('num_classes')} classes)",
            "test split": ds.get("test_split") or "none (made before pss 0.2): accuracies are validation accuracies",
            "strategy": cfg.get("strategy", "pss"),
            "constraint": self.constraint,
            "pools": len(self.budgets),
            "pool capacity M": cfg.get("pool_size"),
            "epochs": f"{self.last_epoch or 0} / {self.epochs_planned}",
            "calibrated": "yes (epoch %s)" % self.front_epoch if self.front is not None else "no",
            "created": self.run.get("created"),
        }


# ---------------------------------------------------------------------------- discovery
# ---------------------------------------------------------------------------- reading
ENTRY_COLUMNS = ("epoch", "pool", "rank", "kind", "key", "resolution", "m", "q", "times_sampled", "macs", "params", "cost")
POOL_COLUMNS = (
    "epoch", "pool", "kind", "label", "theta", "delta", "capacity", "size", "full", "p", "eta",
    "from_space", "from_pool", "pushes", "evictions", "updates", "mean_trials",
    "best_m", "mean_m", "cost_min", "cost_mean", "cost_max", "sampled",
)
ENTRY_DTYPES = {
    "epoch": np.int64, "pool": np.int64, "rank": np.int64, "resolution": np.int64, "m": np.float64,
    "q": np.float64, "times_sampled": np.int64, "macs": np.float64, "params": np.float64, "cost": np.float64,
}
SAMPLE_COLUMNS = ("epoch", "step", "key", "loss", "max_loss")
SAMPLE_DTYPES = {"epoch": np.int64, "step": np.int64, "loss": np.float64, "max_loss": np.float64}
EPOCH_COLUMNS = (
    "epoch", "step", "lr", "progress", "p_schedule", "eta_schedule", "loss_max", "loss_medium", "loss_min",
    "val_acc_max", "val_acc_min", "seconds", "images_per_second", "sampler_fallbacks",
)


_COSTS, _M, _TIMES, _KEY, _STRUCTURE, _RESOLUTION = (
    itemgetter("costs"), itemgetter("m"), itemgetter("times_sampled"), itemgetter("key"), itemgetter("structure"), itemgetter("resolution"),
)


def _MACS(costs: dict) -> Any:
    return costs.get("macs")


def _PARAMS(costs: dict) -> Any:
    return costs.get("params")


@dataclass
class _SnapshotRows:
    """The rows one snapshot contributes to each table (column lists), cached per file version."""

    epoch: dict[str, Any]
    pools: dict[str, list]
    entries: dict[str, list]
    samples: dict[str, list] | None = None


def _snapshot_rows(data: dict[str, Any], constraint: str) -> _SnapshotRows:
    epoch = int(data["epoch"])
    losses = data.get("losses") or {}
    val = data.get("val_acc") or {}
    erow = {
        "epoch": epoch, "step": data.get("step"), "lr": data.get("lr"), "progress": data.get("progress"),
        "p_schedule": data.get("p_schedule"), "eta_schedule": data.get("eta_schedule"),
        "loss_max": losses.get("max"), "loss_medium": losses.get("medium"), "loss_min": losses.get("min"),
        "val_acc_max": val.get("max"), "val_acc_min": val.get("min"), "seconds": data.get("seconds"),
        "images_per_second": data.get("images_per_second"), "sampler_fallbacks": data.get("sampler_fallbacks"),
    }
    pools: dict[str, list] = {c: [] for c in POOL_COLUMNS}
    entries: dict[str, list] = {c: [] for c in ENTRY_COLUMNS}
    for t, pool in enumerate(data["pools"]):
        index = int(pool.get("index", t))
        budget = pool["budget"]
        kind = str(budget.get("kind", constraint))  # the pool's own kind (several with extra_constraints)
        items = pool["entries"]
        n = len(items)
        q = list(pool.get("q") or [])
        q = q[:n] + [np.nan] * (n - len(q))
        costs = list(map(_COSTS, items))
        ms = list(map(_M, items))
        cs = [c[kind] for c in costs]
        sampled = list(map(_TIMES, items))
        entries["epoch"] += [epoch] * n
        entries["pool"] += [index] * n
        entries["rank"] += range(n)
        entries["kind"] += [kind] * n
        entries["key"] += map(_KEY, items)
        entries["resolution"] += map(_RESOLUTION, map(_STRUCTURE, items))
        entries["m"] += ms
        entries["q"] += q
        entries["times_sampled"] += sampled
        entries["macs"] += map(_MACS, costs)
        entries["params"] += map(_PARAMS, costs)
        entries["cost"] += cs
        row = {
            "epoch": epoch, "pool": index, "kind": kind, "label": budget.get("label"), "theta": budget["value"],
            "delta": budget["tolerance"], "capacity": pool["capacity"], "size": pool["size"], "full": pool["full"],
            "p": pool["p"], "eta": pool["eta"], "from_space": pool["from_space"], "from_pool": pool["from_pool"],
            "pushes": pool["pushes"], "evictions": pool["evictions"], "updates": pool["updates"],
            "mean_trials": pool.get("mean_trials"),
            "best_m": max(ms) if ms else np.nan, "mean_m": sum(ms) / n if n else np.nan,
            "cost_min": min(cs) if cs else np.nan, "cost_mean": sum(cs) / n if n else np.nan,
            "cost_max": max(cs) if cs else np.nan, "sampled": sum(sampled),
        }
        for c in POOL_COLUMNS:
            pools[c].append(row[c])
    samples = None
    rec = data.get("samples")
    if isinstance(rec, dict) and rec.get("keys") is not None:
        keys = rec["keys"]
        n = len(rec["step"])
        samples = {
            "epoch": [epoch] * n, "step": list(rec["step"]), "key": [keys[i] for i in rec["key"]],
            "loss": list(rec["loss"]), "max_loss": list(rec["max_loss"]),
        }
    return _SnapshotRows(erow, pools, entries, samples)


class SnapshotCache:
    """Parsed snapshot rows keyed by (path, mtime, size): a live run re-reads only new epochs.

    The app keeps one in ``st.cache_resource``; notebooks can ignore it.
    """

    def __init__(self, max_files: int = 5000) -> None:
        self._rows: dict[str, tuple[tuple, _SnapshotRows]] = {}
        self.max_files = max_files

    def get(self, path: Path, constraint: str) -> _SnapshotRows:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, constraint)
        hit = self._rows.get(str(path))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        rows = _snapshot_rows(read_document(path, "snapshot", SNAPSHOT_DOC), constraint)
        if len(self._rows) >= self.max_files:
            self._rows.pop(next(iter(self._rows)))
        self._rows[str(path)] = (stamp, rows)
        return rows


def _concat_columns(blocks: Iterable[dict[str, list]], columns: tuple[str, ...], dtypes: dict[str, Any] | None = None) -> pd.DataFrame:
    merged: dict[str, list] = {c: [] for c in columns}
    for block in blocks:
        for c in columns:
            merged[c].extend(block[c])
    dtypes = dtypes or {}
    # Typed numpy arrays first: pandas' per-element inference is the slow part at 250k rows.
    arrays = {
        c: np.asarray(v, dtype=dtypes[c]) if c in dtypes and None not in v else pd.Series(v, dtype=object) if c == "key" else v
        for c, v in merged.items()
    }
    return pd.DataFrame(arrays, columns=list(columns))


def load_run(path: str | Path, cache: SnapshotCache | None = None) -> RunData:
    """Read one run directory (see the module docstring). Raises :class:`RunLoadError`."""
    path = Path(path).expanduser()
    if not path.exists():
        raise RunLoadError(f"run directory {path} does not exist; check the path or pick a run from the list")
    if not path.is_dir():
        raise RunLoadError(f"{path} is a file, not a run directory; point at the folder that holds run.json")
    files = RunDir(path)
    run_file = files.run_file
    if not run_file.is_file():
        raise RunLoadError(f"{path} is not a pss run (no run.json); train one with `pss train PRESET --out DIR`")
    try:
        run = read_document(run_file, "run file", RUN_DOC)
        constraint = str(run["constraint"])
        budgets = _budgets_frame(run["budgets"])
        dimensions = _dimensions_frame(run["space"])
    except DocumentError as exc:
        raise RunLoadError(f"{run_file} cannot be used: {exc.reason}") from None
    except (KeyError, TypeError) as exc:
        raise RunLoadError(f"{run_file} lacks a required field ({exc}); it was not written by pss train") from None

    cache = cache if cache is not None else SnapshotCache()
    problems: list[str] = []
    rows: list[_SnapshotRows] = []
    snap_dir = files.snapshot_dir
    names = _snapshot_names(snap_dir)
    for name in names:
        f = snap_dir / name
        try:
            rows.append(cache.get(f, constraint))
        except DocumentError as exc:
            problems.append(f"skipped snapshot {name}: {exc.reason}")
        except (KeyError, TypeError, IndexError) as exc:
            problems.append(f"skipped snapshot {name}: a required field is missing or malformed ({exc})")
        except OSError as exc:
            problems.append(f"skipped snapshot {name}: {exc.strerror or exc}")
    seen: set[int] = set()
    unique = []
    for r in rows:  # two files claiming one epoch (a copied file): keep the first, say so
        if r.epoch["epoch"] in seen:
            problems.append(f"skipped a second snapshot of epoch {r.epoch['epoch']}")
            continue
        seen.add(r.epoch["epoch"])
        unique.append(r)
    rows = sorted(unique, key=lambda r: r.epoch["epoch"])
    epochs = pd.DataFrame([r.epoch for r in rows], columns=list(EPOCH_COLUMNS))
    pools = _concat_columns((r.pools for r in rows), POOL_COLUMNS)
    entries = _concat_columns((r.entries for r in rows), ENTRY_COLUMNS, ENTRY_DTYPES)
    samples = _concat_columns((r.samples for r in rows if r.samples), SAMPLE_COLUMNS, SAMPLE_DTYPES)
    epochs = _typed(epochs, {"epoch": "int64"})
    pools = _typed(pools, {"epoch": "int64", "pool": "int64", "capacity": "int64", "size": "int64", "full": "bool"})
    entries = _typed(entries, {"epoch": "int64", "pool": "int64", "rank": "int64", "resolution": "int64", "times_sampled": "int64"})

    data = RunData(path, path.name, run, budgets, dimensions, epochs, pools, entries, problems=problems, samples=samples)
    if files.has_front():
        try:
            front = read_document(files.front_file, "calibrated front", FRONT_DOC)
            data.front, data.references = _front_frames(front, constraint)
            data.front_doc = front
            data.front_epoch = int(front["epoch"])
            data.front_constraint = str(front.get("constraint", constraint))
        except DocumentError as exc:
            problems.append(f"ignored calibration/front.json: {exc.reason}; re-run `pss calibrate {path}`")
        except (KeyError, TypeError, IndexError) as exc:
            problems.append(f"ignored calibration/front.json: a required field is missing ({exc}); re-run `pss calibrate {path}`")
    data.comparisons = _comparisons(files.comparison_dir, problems)
    data.status = _status(data, names and snap_dir / names[-1])
    return data


def _comparisons(folder: Path, problems: list[str]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        try:
            doc = read_document(f, "comparison file", COMPARISON_DOC)
            rows = [
                {"run": r["name"], "strategy": r.get("strategy"), "constraint": doc["constraint"], "budget": float(b),
                 "accuracy": float(x["accuracy"]), "cost": float(x["cost"]), "key": x["key"]}
                for r in doc["runs"] for b, x in zip(doc["budgets"], r["results"]) if x is not None
            ]
        except DocumentError as exc:
            problems.append(f"ignored comparison {f.name}: {exc.reason}")
            continue
        except (KeyError, TypeError) as exc:
            problems.append(f"ignored comparison {f.name}: a required field is missing ({exc})")
            continue
        out[f.stem] = pd.DataFrame(rows, columns=["run", "strategy", "constraint", "budget", "accuracy", "cost", "key"])
    return out


def _typed(df: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    if len(df):
        df = df.astype({k: v for k, v in types.items() if k in df.columns})
    return df


def _status(data: RunData, newest: Path | None) -> str:
    if data.last_epoch is None:
        return "empty"
    if data.last_epoch >= data.epochs_planned:
        return "calibrated" if data.front_is_current else "finished"
    if newest and time.time() - _mtime(newest) < LIVE_SECONDS:
        return "training"
    return "stopped"


def _budgets_frame(budgets: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for t, b in enumerate(budgets):
        theta, delta = float(b["value"]), float(b["tolerance"])
        rows.append({"pool": t, "kind": b["kind"], "theta": theta, "delta": delta, "lo": theta - delta, "hi": theta + delta, "label": b.get("label", f"pool {t}")})
    return pd.DataFrame(rows, columns=["pool", "kind", "theta", "delta", "lo", "hi", "label"])


def _dimensions_frame(space: dict[str, Any]) -> pd.DataFrame:
    rows = [
        {"index": i, "name": d["name"], "group": d["name"].split(".")[0], "o_min": int(d["o_min"]), "o_max": int(d["o_max"])}
        for i, d in enumerate(space["dimensions"])
    ]
    return pd.DataFrame(rows, columns=["index", "name", "group", "o_min", "o_max"])


def _accuracy_columns(c: dict[str, Any], front: dict[str, Any]) -> dict[str, Any]:
    """Validation images, and test accuracy with its 95% interval (NaN without a test split)."""
    val = candidate_validation(c, front)
    test = candidate_test(c)
    lo, hi = test.interval if test is not None else (np.nan, np.nan)
    return {"val_images": val.images if val is not None else np.nan, "test_acc": test.value if test is not None else np.nan,
            "test_lo": lo, "test_hi": hi, "test_images": test.images if test is not None else np.nan}


def _front_frames(front: dict[str, Any], constraint: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for pool in front["pools"]:
        budget = pool["budget"]
        best = pool.get("best")
        for i, c in enumerate(pool["candidates"]):
            rows.append({
                "pool": int(pool["index"]), "candidate": i, "label": budget.get("label"), "theta": float(budget["value"]),
                "delta": float(budget["tolerance"]), "key": c["key"], "resolution": int(c["structure"]["resolution"]),
                "m": c.get("m"), "fresh_m": c.get("fresh_m", np.nan), "accuracy": float(c["accuracy"]), **_accuracy_columns(c, front),
                "macs": c["costs"].get("macs"), "params": c["costs"].get("params"), "latency": c["costs"].get("latency"),
                "cost": c["costs"][constraint], "is_best": best == i,
            })
    refs = []
    for name, c in (front.get("references") or {}).items():
        refs.append({
            "name": name, "key": c["key"], "resolution": int(c["structure"]["resolution"]), "accuracy": float(c["accuracy"]),
            **_accuracy_columns(c, front), "macs": c["costs"].get("macs"), "params": c["costs"].get("params"),
            "latency": c["costs"].get("latency"), "cost": c["costs"][constraint],
        })
    accuracy = ["accuracy", "val_images", "test_acc", "test_lo", "test_hi", "test_images"]
    costs = ["macs", "params", "latency", "cost"]
    columns = ["pool", "candidate", "label", "theta", "delta", "key", "resolution", "m", "fresh_m", *accuracy, *costs, "is_best"]
    return (pd.DataFrame(rows, columns=columns),
            pd.DataFrame(refs, columns=["name", "key", "resolution", *accuracy, *costs]))


# ---------------------------------------------------------------------------- widths
def widths_of(keys: Iterable[str]) -> np.ndarray:
    """Integer widths o_i of structure keys ``r<res>-<w1>.<w2>...``: an array (n, L)."""
    keys = list(keys)
    if not keys:
        return np.zeros((0, 0), dtype=np.int64)
    return np.array([[int(w) for w in k.split("-", 1)[1].split(".")] for k in keys], dtype=np.int64)


def width_ratios(keys: Iterable[str], dimensions: pd.DataFrame) -> np.ndarray:
    """o_i / o_max per layer (Sec. 3.1's width ratio), an array (n, L)."""
    return widths_of(keys) / dimensions["o_max"].to_numpy(dtype=float)[None, :]
