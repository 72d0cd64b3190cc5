"""Shared fixtures: one cached factory of small real runs, the synthetic-run generator, helpers.

``small_run(...)`` drives the real CLI (``pss train`` and, when asked,
``pss calibrate``) once per test session for each distinct set of arguments;
tests that *modify* a run copy it first (``run_copy``, :func:`helpers.copy_run`),
so the shared directories stay pristine. Constants live in ``helpers.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import helpers
import make_run

# The test machine has 2 cores shared with other jobs; two OpenMP threads
# spinning against a busy neighbour are several times slower than one thread.
# Respect an explicit OMP_NUM_THREADS, otherwise run torch single-threaded.
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """``small_run(calibrate=None, **overrides) -> Path``: a real `pss train smoke` run, trained once per session.

    The run uses :data:`helpers.SMALL_RUN` plus ``overrides`` (config keys);
    ``calibrate=(images, top_k)`` also runs `pss calibrate` on it. The same
    arguments give the same directory, so several modules share one training.
    """
    from pss.cli import main

    made: dict[tuple, Path] = {}

    def make(calibrate: tuple[int, int] | None = None, **overrides) -> Path:
        key = (calibrate, tuple(sorted((k, str(v)) for k, v in overrides.items())))
        if key not in made:
            run = tmp_path_factory.mktemp("small_run") / "run"
            args = helpers.set_args({**helpers.SMALL_RUN, **overrides})
            assert main(["train", "smoke", "--out", str(run), "--quiet", *args]) == 0, f"pss train smoke {args} failed"
            if calibrate is not None:
                images, top_k = calibrate
                assert main(["calibrate", str(run), "--quiet", "--images", str(images), "--top-k", str(top_k)]) == 0
                assert (run / "calibration" / "front.json").is_file()
            made[key] = run
        return made[key]

    return make


@pytest.fixture(scope="session")
def trained_run(small_run) -> Path:
    """The shared PSS run: `pss train smoke` (1 short epoch) + `pss calibrate` (top-2, 128 images)."""
    return small_run(calibrate=(128, 2))


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of ``trained_run`` (with its calibration) that a test may modify."""
    return helpers.copy_run(trained_run, tmp_path / "run_copy")


@pytest.fixture
def uncalibrated_run_copy(trained_run, tmp_path) -> Path:
    """A private copy of ``trained_run`` without ``calibration/``."""
    return helpers.copy_run(trained_run, tmp_path / "run_uncalibrated", calibration=False)


@pytest.fixture(scope="session")
def make_run_module():
    """``tests/make_run.py``: writes a synthetic run with real structures, costs and pools."""
    return make_run


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return helpers.REPO_ROOT


@pytest.fixture(scope="session")
def npz_path() -> Path:
    return helpers.NPZ_PATH


@pytest.fixture(scope="session")
def tree_state():
    """``tree_state(path)``: {relative path: (size, mtime_ns)} to prove a command wrote nothing."""
    return helpers.dir_state


@pytest.fixture(scope="session")
def child_env() -> dict[str, str]:
    return helpers.subprocess_env()
