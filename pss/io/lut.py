"""Latency lookup table files (``pss lut build`` writes them, training and ``pss lut check`` read them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PssError
from ..problem.latency_table import LUT_KIND, LatencyTable
from ..problem.space import StructureSpace
from ..problem.spec import NetSpec
from .files import atomic_write_json, read_document

RUN_LUT_FILE = "latency_lut.json"
"""Where a run directory keeps its own copy of the latency LUT it was trained with."""


def write_lut(path: str | Path, lut: dict[str, Any] | LatencyTable) -> Path:
    """Write a LUT document atomically; returns the path."""
    if isinstance(lut, LatencyTable):
        lut = lut.data
    path = Path(path).expanduser()
    atomic_write_json(path, lut)
    return path


def read_lut(path: str | Path) -> dict[str, Any]:
    """The LUT document at ``path`` after checking its kind and schema version (one-line PssError)."""
    data = read_document(Path(path).expanduser(), "latency LUT")
    if data.get("kind") != LUT_KIND:
        raise PssError(f"latency LUT {path} has kind {data.get('kind')!r}, not {LUT_KIND!r}; build one with `pss lut build`")
    return data


def load_lut(path: str | Path, spec: NetSpec | None = None, space: StructureSpace | None = None) -> LatencyTable:
    """Read, validate and compile a LUT; with ``spec`` and ``space`` also check it was built for them."""
    table = LatencyTable(read_lut(path))
    if spec is not None and space is not None:
        table.check_matches(spec, space, f"latency LUT {path}")
    return table


def resolve_lut_path(path: str, run_dir: str | Path | None = None) -> Path:
    """config.latency_lut as given (``~`` expanded); else, for a run, RUN_DIR/<path> or RUN_DIR/latency_lut.json."""
    given = Path(path).expanduser()
    if given.is_file() or run_dir is None:
        return given
    for candidate in (Path(run_dir) / path, Path(run_dir) / RUN_LUT_FILE):
        if candidate.is_file():
            return candidate
    return given
