"""Finding runs and studies on disk and fingerprinting their files: pathlib only, no pandas.

The dashboard's first page draws its sidebar and heading from these before the tables' libraries (pandas,
plotly) are imported, and its caches are keyed by the signatures. ``pssviz.load`` and ``pssviz.study``
re-export them, so ``pssviz.find_runs`` and ``pssviz.study.find_study`` keep working.
"""

from __future__ import annotations

import os
from pathlib import Path

from pss.io.run import RUN_FILE, SNAPSHOT_NAME, RunDir
from pss.io.study import REPORT_FILE, STUDY_JSON

__all__ = ["find_runs", "run_signature", "find_study", "study_signature"]


def find_runs(root: str | Path, max_depth: int = 3) -> list[Path]:
    """Run directories (folders holding a run.json) under ``root``, newest first.

    ``root`` itself may be a run. Hidden folders and virtual environments are
    skipped; the search stops ``max_depth`` levels down.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / RUN_FILE).is_file():
            found.append(folder)
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))
        except OSError:
            return
        for child in children:
            if child.name in ("node_modules", "site-packages"):
                continue
            walk(child, depth + 1)

    walk(root, 0)
    return sorted(found, key=lambda p: _mtime(p / RUN_FILE), reverse=True)


def _snapshot_names(folder: Path) -> list[str]:
    """``epoch_NNNN.json`` names in epoch order (copies such as ``epoch_0003 (1).json`` are ignored)."""
    if not folder.is_dir():
        return []
    names = [e.name for e in os.scandir(folder) if SNAPSHOT_NAME.match(e.name)]
    return sorted(names, key=lambda n: int(SNAPSHOT_NAME.match(n).group(1)))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def run_signature(path: str | Path) -> tuple:
    """A cheap fingerprint of a run's files: changes whenever training or calibration writes.

    Used as a cache key (``st.cache_data``) and by the live view to notice new
    epochs without reading them.
    """
    files = RunDir(path)
    parts: list[tuple] = []
    for f in (files.run_file, files.front_file, files.checkpoint, files.comparison_dir):
        try:
            st = f.stat()
            parts.append((f.name, st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((f.name, None, None))
    snap = files.snapshot_dir
    try:
        names = _snapshot_names(snap)
        newest = snap / names[-1] if names else None
        parts.append(("snapshots", len(names), names[-1] if names else None, _mtime(newest) if newest else None))
    except OSError:
        parts.append(("snapshots", 0, None, None))
    return tuple(parts)


def find_study(root: str | Path) -> Path | None:
    """The study directory at ``root`` or directly below it (a folder holding study.json), else None.

    A runs root holding several studies gives the one written last, so a fresh ``pss study --out``
    shows first.
    """
    root = Path(root).expanduser()
    if (root / STUDY_JSON).is_file():
        return root
    try:
        found = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / STUDY_JSON).is_file()]
    except OSError:
        return None
    return max(found, key=lambda p: ((p / STUDY_JSON).stat().st_mtime_ns, p.name), default=None)


def study_signature(path: str | Path) -> tuple:
    """A cheap fingerprint of a study's files (study.json, report.md, the runs' fronts): a cache key."""
    path = Path(path)
    parts = []
    for f in [path / STUDY_JSON, path / REPORT_FILE, *sorted(path.glob("runs/*/calibration/front.json"))]:
        try:
            st = f.stat()
            parts.append((str(f.relative_to(path)), st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((str(f.relative_to(path)), None, None))
    return tuple(parts)
