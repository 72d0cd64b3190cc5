"""Everything derived from a config: spec, structure space S, cost model C(.), budgets Theta."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import TrainConfig
from .costs import CostModel
from .errors import PssError
from .models import build_spec
from .pools import Budget, make_budgets
from .space import StructureSpace, resolution_range
from .spec import NetSpec


@dataclass
class SupernetContext:
    spec: NetSpec
    space: StructureSpace
    cost_model: CostModel
    budgets: list[Budget]

    @classmethod
    def build(cls, cfg: TrainConfig, num_classes: int, in_channels: int) -> "SupernetContext":
        spec = build_spec(cfg.model, num_classes=num_classes, in_channels=in_channels, width_mult=cfg.width_mult, stem=cfg.stem)
        space = StructureSpace(
            spec.dim_names,
            spec.dim_max,
            resolution_range(cfg.resolution_min, cfg.resolution_max, cfg.resolution_step),
            lower_bound=cfg.lower_bound,
            divisor=cfg.divisor,
        )
        costs = CostModel(spec, space)
        c_min = costs.cost(cfg.constraint, space.min_structure)
        c_max = costs.cost(cfg.constraint, space.max_structure)
        budgets = make_budgets(cfg.constraint, c_min, c_max, step=cfg.budget_step, count=cfg.budget_count, tolerance=cfg.tolerance)
        return cls(spec, space, costs, budgets)


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PssError(f"device {name!r} requested but CUDA is not available here; use --set device=cpu or device=auto")
    return torch.device(name)


def context_from_run(run_json: dict) -> tuple[TrainConfig, SupernetContext]:
    """Rebuild the config and context a run was trained with, from its run.json."""
    cfg = TrainConfig.from_mapping(run_json["config"], "run.json")
    ds = run_json["dataset"]
    return cfg, SupernetContext.build(cfg, int(ds["num_classes"]), int(ds["in_channels"]))


def load_trained_supernet(run, device: torch.device | str = "cpu"):
    """(config, context, supernet with the checkpoint's weights, checkpoint dict) of a run."""
    import json

    from .pools import SubnetPool
    from .runs import check_checkpoint_version, load_tensors
    from .supernet import Supernet

    cfg, ctx = context_from_run(run.read_run())
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
