"""The problem a config describes: block spec, structure space S, cost model C(.), budgets Theta.

Torch-free, so the dashboard computes costs without loading a model. A latency
problem needs its measured lookup table; whoever reads the table file
(:mod:`pss.io.lut`) passes it in, so this layer never opens files.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..config import TrainConfig
from ..errors import PssError
from ..units import LATENCY
from .budgets import Budget, make_budgets
from .costs import CostModel
from .latency_table import LatencyTable
from .models import build_spec
from .space import StructureSpace, resolution_range
from .spec import NetSpec


def spec_and_space(cfg: TrainConfig, num_classes: int, in_channels: int) -> tuple[NetSpec, StructureSpace]:
    """The block spec and structure space S a config describes (no costs, no budgets).

    ``dropout`` overrides the family's classifier dropout; ``width_rule`` picks
    the free space or the reference implementation's MobileNetV2 space (tied
    expansions, fixed tail, make_divisible rounding).
    """
    spec = build_spec(cfg.model, num_classes=num_classes, in_channels=in_channels, width_mult=cfg.width_mult, stem=cfg.stem,
                      dropout=cfg.dropout, width_rule=cfg.width_rule)
    space = StructureSpace.for_spec(
        spec,
        resolution_range(cfg.resolution_min, cfg.resolution_max, cfg.resolution_step),
        lower_bound=cfg.lower_bound,
        divisor=cfg.divisor,
    )
    return spec, space


@dataclass
class Problem:
    """Spec, S, C(.) and Theta of one supernet problem."""

    spec: NetSpec
    space: StructureSpace
    cost_model: CostModel
    budgets: list[Budget]

    @classmethod
    def build(cls, cfg: TrainConfig, num_classes: int, in_channels: int, latency: LatencyTable | None = None) -> "Problem":
        """Spec, S, C(.) and Theta of a config.

        Theta holds the primary ``constraint``'s budgets, then those of each
        ``extra_constraints`` kind (PSS-Net_M), grouped by kind and ascending
        within a kind; every kind gets ``budget_count`` budgets.

        ``latency`` (required when the config uses latency budgets) is checked
        against the spec and S (one-line PssError when it was built for another
        model or space) and attached to the cost model, so every cost dict also
        carries the predicted latency in ms.
        """
        spec, space = spec_and_space(cfg, num_classes, in_channels)
        kinds = cfg.constraint_kinds()
        if latency is not None:
            latency.check_matches(spec, space)
        elif LATENCY in kinds:
            raise PssError("bad config: constraint 'latency' needs latency_lut (a LUT JSON from `pss lut build`)")
        costs = CostModel(spec, space, latency=latency)
        budgets: list[Budget] = []
        for i, kind in enumerate(kinds):
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

    def cost_fn(self, kind: str):
        """The vectorised C(.) of one kind: ``(widths (n, L), resolutions (n,)) -> (n,) costs``."""
        return functools.partial(self.cost_model.cost_array, kind)

    def cost_array_fns(self) -> dict:
        """kind -> vectorised cost function for every kind of Theta."""
        return {k: self.cost_fn(k) for k in self.kinds}

    def cost_range(self, kind: str) -> tuple[float, float]:
        """(C(phi_min), C(phi_max)) of one kind."""
        return self.cost_model.cost(kind, self.space.min_structure), self.cost_model.cost(kind, self.space.max_structure)
