"""The run directory: run.json, per-epoch snapshots, checkpoint, calibrated front.

Layout (documented with its JSON schemas in ``docs/run-format.md``)::

    RUN_DIR/
      run.json                    config, space, budgets, dataset, versions
      snapshots/epoch_0001.json   one per finished epoch
      checkpoint.pt               weights, optimizer, pools, RNG states (last epoch)
      calibration/front.json      calibrated top-k per pool and each pool's best
      calibration/bn_stats.pt     the calibrated BN statistics of those subnets

Every file is written atomically (temp file in the same folder + rename), so
a reader (the dashboard, possibly while training runs) never sees half a
file. Tensors are loaded with ``weights_only=True``; metadata is JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import PssError

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
SNAPSHOT_DIR = "snapshots"
CHECKPOINT_FILE = "checkpoint.pt"
CALIBRATION_DIR = "calibration"
FRONT_FILE = "front.json"
BN_STATS_FILE = "bn_stats.pt"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def utc_timestamp() -> str:
    """RFC 3339 UTC time, e.g. 2026-11-21T05:41:00+00:00."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; run files are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    _atomic(path, lambda fh: fh.write(json.dumps(data, indent=1, allow_nan=False).encode()))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, lambda fh: fh.write(data))


def atomic_torch_save(obj: Any, path: Path) -> None:
    _atomic(path, lambda fh: torch.save(obj, fh))


def check_checkpoint_version(state: Any, path: Path) -> None:
    version = state.get("schema_version") if isinstance(state, dict) else None
    if version != SCHEMA_VERSION:
        raise PssError(f"checkpoint {path} has schema version {version!r}; this pss reads version {SCHEMA_VERSION}")


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PssError(f"{what} {path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PssError(f"{what} {path} is not valid JSON ({exc.__class__.__name__}); the file is damaged") from None
    if not isinstance(data, dict):
        raise PssError(f"{what} {path} does not hold a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise PssError(f"{what} {path} has schema version {version!r}; this pss reads version {SCHEMA_VERSION} (upgrade pss-explorer)")
    return data


def load_tensors(path: Path, what: str) -> Any:
    """torch.load with weights_only=True: nothing from user files is unpickled."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PssError(f"{what} {path} is missing") from None
    except Exception as exc:  # corrupt archive, or a pickle that weights_only refuses
        raise PssError(f"cannot read {what} {path}: {str(exc).splitlines()[0][:160]}") from None


class RunDir:
    """Paths and readers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

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
        return self.path / CALIBRATION_DIR / FRONT_FILE

    @property
    def bn_stats_file(self) -> Path:
        return self.path / CALIBRATION_DIR / BN_STATS_FILE

    def is_run(self) -> bool:
        return self.run_file.is_file()

    def snapshot_path(self, epoch: int) -> Path:
        return self.snapshot_dir / f"epoch_{epoch:04d}.json"

    def snapshot_paths(self) -> list[Path]:
        if not self.snapshot_dir.is_dir():
            return []
        return sorted(p for p in self.snapshot_dir.glob("epoch_*.json"))

    def read_run(self) -> dict[str, Any]:
        return read_json(self.run_file, "run file")

    def read_snapshot(self, path: Path) -> dict[str, Any]:
        return read_json(path, "snapshot")

    def latest_snapshot(self) -> dict[str, Any] | None:
        paths = self.snapshot_paths()
        return self.read_snapshot(paths[-1]) if paths else None

    def read_front(self) -> dict[str, Any]:
        if not self.front_file.is_file():
            raise PssError(f"run {self.path} has no calibrated front; run `pss calibrate {self.path}` first")
        return read_json(self.front_file, "calibrated front")


def pack_checkpoint(run_dir: str | Path) -> tuple[int, int]:
    """Shrink a run's checkpoint for sharing: fp16 weights, no optimizer state.

    Floating-point tensors of the model are stored as float16 (loading casts
    them back into the float32 supernet); the optimizer and AMP scaler states
    are dropped and ``"packed": "float16"`` marks the file, so ``pss train
    --resume`` refuses it with a clear message. Viewing, calibrating and
    exporting work as before. Calibrate *after* packing so the front's
    accuracies are those of the shipped weights. Returns (bytes before, after).
    """
    run = open_run(run_dir)
    if not run.checkpoint.is_file():
        raise PssError(f"run {run.path} has no checkpoint.pt to pack; wait for its first epoch to finish")
    before = run.checkpoint.stat().st_size
    state = load_tensors(run.checkpoint, "checkpoint")
    check_checkpoint_version(state, run.checkpoint)
    if state.get("packed"):
        return before, before
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    state["optimizer"] = {}
    state["scaler"] = {}
    state["packed"] = "float16"
    atomic_torch_save(state, run.checkpoint)
    return before, run.checkpoint.stat().st_size


def open_run(path: str | Path) -> RunDir:
    run = RunDir(path)
    if not run.path.exists():
        raise PssError(f"run directory {run.path} does not exist")
    if not run.is_run():
        raise PssError(f"{run.path} is not a pss run directory (no {RUN_FILE}); train one with `pss train PRESET --out DIR`")
    return run
