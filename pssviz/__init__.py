"""pssviz: a PSS run directory as pandas DataFrames and plotly figures.

No Streamlit here: the app (``app/``) and the tutorial notebooks both build on
these functions. ``load_run`` reads a run; ``pssviz.figures`` draws it.

The names below load on first use (PEP 562), so ``import pssviz`` costs nothing: finding runs and
their signatures (``pssviz.discover``) needs no pandas, and the dashboard's first page is drawn before
pandas and plotly are imported.
"""

from __future__ import annotations

import importlib

_HOME = {"RunData": "load", "RunLoadError": "load", "SnapshotCache": "load", "load_run": "load", "width_ratios": "load",
         "widths_of": "load", "find_runs": "discover", "run_signature": "discover"}
__all__ = ["RunData", "RunLoadError", "SnapshotCache", "find_runs", "load_run", "run_signature", "width_ratios", "widths_of"]


def __getattr__(name: str):
    if name in _HOME:
        return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
    raise AttributeError(f"module 'pssviz' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
