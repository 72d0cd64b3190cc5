"""pss-explorer: train, inspect and export resource-adaptive supernets (PSS-Net).

The public API is :mod:`pss.api` (``pss.training``, ``pss.calibrate``,
``pss.export_subnet``, ``pss.load_subnet``, ...). Its names are loaded on first
use, so that ``import pss.io.run`` (what the dashboard's ``pssviz`` does) does
not import torch.
"""

import importlib
import importlib.util

from .version import __version__


#: API names that need no torch, served from their own modules: the dashboard reads runs and
#: formats numbers through them without paying torch's import (seconds) before its first page.
TORCH_FREE = {
    "PssError": "errors", "RunDir": "io.run", "open_run": "io.run",
    "format_cost": "units", "format_quantity": "units", "parse_quantity": "units",
    "RUNS_ENV": "workflows.dashboard", "ANY_FOLDER_ENV": "workflows.dashboard", "ALLOW_REMOTE_ENV": "workflows.dashboard",
}


def __getattr__(name: str):
    # PEP 562: the API pulls in torch; load it only when one of its names is used.
    if name.startswith("__") or importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(f"module 'pss' has no attribute {name!r}")  # a submodule is imported, never the API for it
    if name in TORCH_FREE:
        return getattr(importlib.import_module(f"{__name__}.{TORCH_FREE[name]}"), name)
    from . import api

    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'pss' has no attribute {name!r}")


def __dir__() -> list[str]:
    from . import api

    return sorted(set(globals()) | set(api.__all__))


__all__ = ["__version__"]
