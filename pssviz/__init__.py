"""pssviz: a PSS run directory as pandas DataFrames and plotly figures.

No Streamlit here: the app (``app/``) and the tutorial notebooks both build on
these functions. ``load_run`` reads a run; ``pssviz.figures`` draws it.
"""

from .load import RunData, RunLoadError, SnapshotCache, find_runs, load_run, run_signature, width_ratios, widths_of

__all__ = ["RunData", "RunLoadError", "SnapshotCache", "find_runs", "load_run", "run_signature", "width_ratios", "widths_of"]
