"""The Python API: the functions the ``pss`` command calls, for notebooks and the dashboard.

Everything here is also reachable as ``pss.<name>`` (loaded on first use, so
``import pss`` stays light and torch is imported only when a function that
needs it is called)::

    import pss
    cfg = pss.load_config("smoke", {"epochs": 2})
    run = pss.train(cfg, "runs/smoke")            # pss train
    front = pss.calibrate("runs/smoke")           # pss calibrate
    card = pss.export_subnet("runs/smoke", "5M", "runs/smoke-5M")
    card = pss.export_subnet("runs/smoke", "5M", "runs/vehicles", superclass="vehicles", superclasses="builtin")
    model = pss.load_subnet("runs/smoke-5M")      # a dense torch.nn.Module
"""

from __future__ import annotations

from .config import TrainConfig, list_presets, load_config
from .errors import PssError
from .io.comparison import read_comparison, write_comparison
from .io.run import RunDir, open_run
from .problem.space import Structure
from .units import format_cost, format_quantity, parse_quantity
from .version import __version__
from .workflows.calibrate import calibrate_run as calibrate
from .workflows.compare import compare_runs, format_comparison
from .workflows.dashboard import ALLOW_REMOTE_ENV, ANY_FOLDER_ENV, RUNS_ENV, run_dashboard
from .workflows.export import export_candidate, export_name, export_structure, export_subnet, export_superclass, load_subnet
from .workflows.generate import GenerateOptions, format_generated, generate, generator_seconds, load_generator, settings_from
from .workflows.generate import train_run_generator as train_generator
from .workflows.info import format_export, format_front, format_summary, run_summary
from .workflows.loaded import TrainedRun, load_trained
from .workflows.lut import build_lut_file, check_lut_file
from .workflows.pack import pack_checkpoint
from .workflows.search import search_run as search
from .workflows.study import format_report, run_study
from .workflows.train import train

__all__ = [
    "ALLOW_REMOTE_ENV", "ANY_FOLDER_ENV", "RUNS_ENV", "run_dashboard",
    "PssError", "RunDir", "Structure", "TrainConfig", "TrainedRun", "__version__", "build_lut_file", "calibrate",
    "check_lut_file", "compare_runs", "export_candidate", "export_name", "export_structure", "export_subnet", "export_superclass", "format_comparison",
    "format_cost", "format_export", "format_front", "format_quantity", "format_report", "run_study", "format_summary", "list_presets", "load_config", "load_subnet",
    "load_trained", "open_run", "pack_checkpoint", "parse_quantity", "read_comparison", "run_summary", "search", "train",
    "write_comparison", "GenerateOptions", "format_generated", "generate", "generator_seconds", "load_generator",
    "settings_from", "train_generator",
]
