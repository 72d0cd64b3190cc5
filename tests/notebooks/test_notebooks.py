"""The tutorial notebooks in ``notebooks/``: each runs top to bottom, and each is committed clean.

Every ``notebooks/*.ipynb`` is executed with nbclient in the ``python3`` kernel of this
environment, from ``notebooks/`` (the notebooks use paths relative to it), with
``PSS_SMOKE=1`` so each shrinks its work to seconds. A new notebook is picked up by
the glob; nothing executed is written back to the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import NoSuchKernel
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "python3"
CELL_TIMEOUT_S = 300  # per cell; in smoke mode a whole notebook takes well under a minute


def _kernel_prefix() -> str | None:
    """sys.prefix of the Python the ``python3`` kernel starts (None without such a kernel)."""
    try:
        cmd = KernelManager(kernel_name=KERNEL).format_kernel_cmd()
    except NoSuchKernel:
        return None
    out = subprocess.run([cmd[0], "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True, timeout=60)
    return out.stdout.strip() if out.returncode == 0 else None


@pytest.fixture(scope="session")
def kernel_of_this_env() -> str:
    """The kernel name, once it is known to run this environment's Python (installing its spec if needed)."""
    if _kernel_prefix() != sys.prefix:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL],
                       check=True, capture_output=True, timeout=120)
    prefix = _kernel_prefix()
    assert prefix == sys.prefix, (f"kernel {KERNEL!r} runs the Python of {prefix}, not of this environment ({sys.prefix}); "
                                  "remove the other kernelspec (`jupyter kernelspec list`)")
    return KERNEL


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path: Path, kernel_of_this_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment.
    monkeypatch.setenv("PSS_SMOKE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(path, as_version=4)  # executed in memory only: the file stays as committed
    client = NotebookClient(nb, kernel_name=kernel_of_this_env, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # a failing cell raises CellExecutionError with its traceback


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean(path: Path) -> None:
    """No outputs, no execution counts (clean diffs); a first markdown cell with a title."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells, f"{path.name} is empty"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), \
        f"{path.name}: the first cell must be markdown starting with a '# Title'"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs or execution counts; clear them before committing"
