"""Shared fixtures: the repository root and one real trained + calibrated run.

``trained_run`` drives the real CLI (``pss train`` then ``pss calibrate``) once
per test session on a tiny budget; tests that need to *modify* a run copy it
first (see :func:`copy_run`), so the shared directory stays pristine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The CIFAR-10 subset shipped next to the checkout; the smoke preset falls back
#: to generated data when it is absent, which the tests accept.
NPZ_PATH = REPO_ROOT.parent / "shared" / "data" / "cifar10-train-subset.npz"

#: Overrides that keep the shared run small (a few batches, 1 epoch).
TRAIN_SMALL = [
    "--set", "epochs=1",
    "--set", "train_limit=256",
    "--set", "val_limit=128",
    "--set", "structure_set_size=5000",
    "--set", "eval_calib_images=64",
    "--set", f"npz_path={NPZ_PATH}",
]

# The test machine has 2 cores shared with other jobs; two OpenMP threads
# spinning against a busy neighbour are several times slower than one thread.
# Respect an explicit OMP_NUM_THREADS, otherwise run torch single-threaded.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)


def subprocess_env() -> dict[str, str]:
    """Environment for child processes: single-threaded torch unless told otherwise."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    return env


def copy_run(src: Path, dst: Path, calibration: bool = True) -> Path:
    """Copy a run directory (optionally without its calibration) so a test may modify it."""
    ignore = None if calibration else shutil.ignore_patterns("calibration")
    shutil.copytree(src, dst, ignore=ignore)
    return dst


def dir_state(path: Path) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every file and folder below ``path``."""
    out = {}
    for p in sorted(Path(path).rglob("*")):
        st = p.stat()
        out[str(p.relative_to(path))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of ``trained_run`` (with its calibration) that a test may modify."""
    return copy_run(trained_run, tmp_path / "run_copy")


@pytest.fixture
def uncalibrated_run_copy(trained_run, tmp_path) -> Path:
    """A private copy of ``trained_run`` without ``calibration/``."""
    return copy_run(trained_run, tmp_path / "run_uncalibrated", calibration=False)


def load_bench(name: str):
    """Import ``bench/<name>.py`` (bench/ holds scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO_ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def make_run_module():
    """``bench/make_run.py``: writes a synthetic run with real structures, costs and pools."""
    return load_bench("make_run")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def npz_path() -> Path:
    return NPZ_PATH


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A real run: `pss train smoke` (1 short epoch) + `pss calibrate` (top-2, 128 images)."""
    from pss.cli import main

    run = tmp_path_factory.mktemp("shared") / "run"
    rc = main(["train", "smoke", "--out", str(run), "--quiet", *TRAIN_SMALL])
    assert rc == 0, "pss train smoke failed"
    rc = main(["calibrate", str(run), "--quiet", "--images", "128", "--top-k", "2"])
    assert rc == 0, "pss calibrate failed"
    assert (run / "calibration" / "front.json").is_file()
    return run


@pytest.fixture(scope="session")
def tree_state():
    """``tree_state(path)``: {relative path: (size, mtime_ns)} to prove a command wrote nothing."""
    return dir_state


@pytest.fixture(scope="session")
def child_env() -> dict[str, str]:
    return subprocess_env()
