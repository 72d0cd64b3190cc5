"""The layers of docs/architecture.md hold: an import that points up, torch in the dashboard's readers,
or an app page reaching past the API fails here."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import helpers
import pss

REPO = helpers.REPO_ROOT


def test_import_contracts_are_kept():
    """`lint-imports` with the contracts in pyproject.toml (layers; no pssviz/plotly in pss; no torch below)."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.is_file():
        pytest.fail(f"lint-imports is not installed next to {sys.executable}; pip install -e '.[dev]'")
    proc = subprocess.run([str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_contracts_can_fail(tmp_path):
    """The same tool reports an arrow pointing up: with two layers swapped, the layers contract breaks."""
    exe = Path(sys.executable).with_name("lint-imports")
    config = tmp_path / "swapped.toml"
    config.write_text(
        '[tool.importlinter]\nroot_packages = ["pss"]\n\n[[tool.importlinter.contracts]]\nname = "swapped"\n'
        'type = "layers"\ncontainers = ["pss"]\nlayers = ["problem", "workflows"]\n'
    )
    proc = subprocess.run([str(exe), "--no-cache", "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "BROKEN" in proc.stdout.upper(), proc.stdout[-2000:]
    assert "pss.workflows" in proc.stdout and "pss.problem" in proc.stdout


@pytest.mark.parametrize("module", ["pssviz", "pssviz.analysis", "pssviz.figures", "pssviz.latency", "pssviz.study", "pss.io.study", "pss", "pss.io.run", "pss.problem.problem"])
def test_torch_free_modules_do_not_import_torch(module, child_env):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch was imported'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=child_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_the_lazy_api_loads_on_first_use(child_env):
    code = "import sys, pss; assert 'pss.api' not in sys.modules; pss.load_config; assert 'pss.api' in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=child_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _imports(path: Path) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.append((node.module or "", node.lineno))
    return out


def test_the_app_uses_only_pssviz_and_the_pss_api():
    local = {p.stem for p in (REPO / "app").glob("*.py")}
    for path in sorted((REPO / "app").glob("*.py")):
        for name, line in _imports(path):
            root = name.split(".")[0]
            assert not (root == "pss" and name != "pss"), f"{path.name}:{line} imports {name}; use the API (`import pss`, pss.<name>)"
            assert root in local | {"pss", "pssviz", "streamlit", "pandas", "numpy", "__future__"} or root in sys.stdlib_module_names, \
                f"{path.name}:{line} imports {name}"


#: torchvision: a heavy optional dependency; None: relative imports (the lazy API, pssviz's plotly figures);
#: plotly.graph_objects: pssviz.study's plotly figures, so the Study page's first tab (SVG) goes out without it
ALLOWED_LATE_IMPORTS = {"torchvision", "torchvision.datasets.folder", "plotly.graph_objects", None}


def test_function_level_imports_only_guard_heavy_dependencies():
    """Imports live at the top of a module unless they defer a heavy dependency (docs/architecture.md)."""
    for path in sorted([*(REPO / "pss").rglob("*.py"), *(REPO / "pssviz").rglob("*.py")]):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module if node.level == 0 else None]
                else:
                    continue
                bad = [n for n in names if n not in ALLOWED_LATE_IMPORTS]
                assert not bad, f"{path.relative_to(REPO)}:{node.lineno} imports {bad} inside {fn.name}(); move it to the top"


def test_every_strategy_name_has_one_class():
    from pss.config import STRATEGIES
    from pss.sampling.strategies import STRATEGY_CLASSES

    assert [c.name for c in STRATEGY_CLASSES] == list(STRATEGIES)


def test_torch_free_api_names_are_the_api_objects_and_leave_torch_unloaded():
    """`pss.format_quantity`, `pss.RunDir`, ... are the API's very objects, served without importing torch
    (the dashboard's first page must not wait seconds for torch)."""
    code = ("import sys, pss\n"
            f"names = {sorted(pss.TORCH_FREE)!r}\n"
            "got = {n: getattr(pss, n) for n in names}\n"
            "assert 'torch' not in sys.modules, 'a torch-free name imported torch'\n"
            "from pss import api\n"
            "assert all(got[n] is getattr(api, n) for n in names)\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
