"""Everything derived from a config: spec, structure space S, cost model C(.), budgets Theta."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .config import TrainConfig
from .costs import CostModel
from .errors import PssError
from .models import build_spec
from .pools import Budget, make_budgets
from .space import StructureSpace, resolution_range
from .spec import NetSpec


RUN_LUT_FILE = "latency_lut.json"
"""Where a run directory may keep its own copy of the latency LUT (looked up when config.latency_lut is not found)."""


def spec_and_space(cfg: TrainConfig, num_classes: int, in_channels: int) -> tuple[NetSpec, StructureSpace]:
    """The block spec and structure space S a config describes (no costs, no budgets)."""
    spec = build_spec(cfg.model, num_classes=num_classes, in_channels=in_channels, width_mult=cfg.width_mult, stem=cfg.stem)
    space = StructureSpace(
        spec.dim_names,
        spec.dim_max,
        resolution_range(cfg.resolution_min, cfg.resolution_max, cfg.resolution_step),
        lower_bound=cfg.lower_bound,
        divisor=cfg.divisor,
    )
    return spec, space


def resolve_lut_path(path: str, run_dir: str | Path | None = None) -> Path:
    """config.latency_lut as given (``~`` expanded); else, for a run, RUN_DIR/<path> or RUN_DIR/latency_lut.json."""
    given = Path(path).expanduser()
    if given.is_file() or run_dir is None:
        return given
    for candidate in (Path(run_dir) / path, Path(run_dir) / RUN_LUT_FILE):
        if candidate.is_file():
            return candidate
    return given


@dataclass
class SupernetContext:
    spec: NetSpec
    space: StructureSpace
    cost_model: CostModel
    budgets: list[Budget]

    @classmethod
    def build(cls, cfg: TrainConfig, num_classes: int, in_channels: int, run_dir: str | Path | None = None) -> "SupernetContext":
        """Spec, S, C(.) and Theta of a config.

        Theta holds the primary ``constraint``'s budgets, then those of each
        ``extra_constraints`` kind (PSS-Net_M), grouped by kind and ascending
        within a kind; every kind gets ``budget_count`` budgets.

        With ``latency_lut`` set (required for ``constraint: latency``) the LUT
        is loaded, checked against the spec and S (one-line PssError when it
        was built for another model or space) and attached to the cost model,
        so every cost dict also carries the predicted latency in ms.
        """
        spec, space = spec_and_space(cfg, num_classes, in_channels)
        latency = None
        lut_path = getattr(cfg, "latency_lut", None)
        if lut_path:
            from .latency import load_lut

            latency = load_lut(resolve_lut_path(lut_path, run_dir), spec, space)
        elif cfg.constraint == "latency":
            raise PssError("bad config: constraint 'latency' needs latency_lut (a LUT JSON from `pss lut build`)")
        costs = CostModel(spec, space, latency=latency)
        budgets: list[Budget] = []
        for i, kind in enumerate(constraint_kinds(cfg)):
            c_min = costs.cost(kind, space.min_structure)
            c_max = costs.cost(kind, space.max_structure)
            # tolerance is in the primary kind's unit; extra kinds (PSS-Net_M) use delta = step / 2
            tol = cfg.tolerance if i == 0 else None
            budgets += make_budgets(kind, c_min, c_max, step=cfg.budget_step, count=cfg.budget_count, tolerance=tol)
        return cls(spec, space, costs, budgets)

    @property
    def kinds(self) -> list[str]:
        """The cost kinds of Theta in order: the primary constraint first, then the extra ones."""
        return list(dict.fromkeys(b.kind for b in self.budgets))

    def cost_array_fns(self) -> dict:
        """kind -> vectorised cost function ``(widths, resolutions) -> costs`` for every kind of Theta."""
        import functools

        return {k: functools.partial(self.cost_model.cost_array, k) for k in self.kinds}


def constraint_kinds(cfg: TrainConfig) -> list[str]:
    """``cfg.constraint`` followed by ``cfg.extra_constraints`` (configs of older runs have no such key)."""
    kinds = getattr(cfg, "constraint_kinds", None)
    return kinds() if kinds is not None else [cfg.constraint]


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PssError(f"device {name!r} requested but CUDA is not available here; use --set device=cpu or device=auto")
    return torch.device(name)


def context_from_run(run_json: dict, run_dir: str | Path | None = None) -> tuple[TrainConfig, SupernetContext]:
    """Rebuild the config and context a run was trained with, from its run.json.

    ``run_dir`` lets a latency run find its LUT inside the run directory when
    config.latency_lut (a path as given at training time) is not found.
    """
    cfg = TrainConfig.from_mapping(run_json["config"], "run.json")
    ds = run_json["dataset"]
    return cfg, SupernetContext.build(cfg, int(ds["num_classes"]), int(ds["in_channels"]), run_dir=run_dir)


def load_trained_supernet(run, device: torch.device | str = "cpu"):
    """(config, context, supernet with the checkpoint's weights, checkpoint dict) of a run."""
    import json

    from .pools import SubnetPool
    from .runs import check_checkpoint_version, load_tensors
    from .supernet import Supernet

    cfg, ctx = context_from_run(run.read_run(), run.path)
    if not run.checkpoint.is_file():
        if run.snapshot_paths():
            raise PssError(
                f"run {run.path} has snapshots but no checkpoint.pt (a generated or trimmed run?); "
                "without weights it can be viewed but not calibrated or exported"
            )
        raise PssError(f"run {run.path} has no checkpoint.pt yet; wait for its first epoch to finish")
    state = load_tensors(run.checkpoint, "checkpoint")
    check_checkpoint_version(state, run.checkpoint)
    model = Supernet(ctx.spec)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as exc:
        raise PssError(f"checkpoint of {run.path} does not match its run.json: {str(exc).splitlines()[0][:160]}") from None
    state["pools"] = [SubnetPool.from_json(p) for p in json.loads(state["pools"])]
    return cfg, ctx, model.to(device).eval(), state
