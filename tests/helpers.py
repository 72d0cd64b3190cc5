"""What the tests share: paths, the small-run settings and small file-system helpers.

Import it as ``import helpers`` (``tests/`` is on ``sys.path``: pytest puts the
folder of ``tests/conftest.py`` there). Fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from pss.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = REPO_ROOT / "docs" / "schema"
SAMPLE_RUN = REPO_ROOT / "sample_checkpoints" / "cifar10-subset-mbv1"
APP = REPO_ROOT / "app" / "main.py"
#: The CIFAR-10 subset shipped next to the checkout; the smoke preset falls back
#: to generated data when it is absent, which the tests accept.
NPZ_PATH = REPO_ROOT.parent / "shared" / "data" / "cifar10-train-subset.npz"

#: Overrides that keep a trained test run small (a few batches, 1 epoch).
SMALL_RUN = {
    "epochs": 1,
    "train_limit": 256,
    "val_limit": 128,
    "test_limit": 128,
    "structure_set_size": 5000,
    "eval_calib_images": 64,
    "npz_path": str(NPZ_PATH),
}


def set_args(overrides: dict) -> list[str]:
    """``--set key=value`` arguments for the CLI."""
    return [a for k, v in overrides.items() for a in ("--set", f"{k}={v}")]


#: SMALL_RUN as `pss train` arguments.
TRAIN_SMALL = set_args(SMALL_RUN)


def schema(name: str) -> dict:
    """The JSON schema docs/schema/<name>.schema.json."""
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text())


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


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``pss ARGV`` in-process: (exit code, stdout, stderr); argparse exits are caught."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help, usage errors
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    """The single stderr line of a failed command (no traceback, no second line)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def assert_user_error(capsys, *argv, code: int = 2) -> str:
    """Run ``pss ARGV``, expect exit ``code`` (2: bad input) and one error line; return that line."""
    got, out, err = run_cli(capsys, *argv)
    assert got == code, f"exit code {got}; stderr: {err}"
    return one_line_error(err)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def wait_healthy(proc, port: int, log: Path, seconds: float = 90) -> None:
    """Wait until the Streamlit server of ``proc`` answers its health check on localhost:``port``."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the dashboard exited early: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the dashboard did not become healthy within {seconds:.0f} s")


def require(condition: bool, reason: str) -> None:
    """Skip when ``condition`` fails, except in CI (PSS_REQUIRE_ALL=1), where a missing capability is a failure."""
    if not condition:
        if os.environ.get("PSS_REQUIRE_ALL") == "1":
            pytest.fail(f"{reason} (PSS_REQUIRE_ALL=1: CI must run this test)")
        pytest.skip(reason)
