"""Training strategies: which subnets one batch trains, and how their losses are formed.

A strategy turns (rng, training progress) into a list of :class:`Subnet` to
train on the next batch, max subnet first. It knows nothing of tensors: the
trainer (:mod:`pss.training.trainer`) runs the forwards and hands each subnet's
cross-entropy back through :meth:`Strategy.observe`; how a layer is sliced is
the business of :mod:`pss.nn`.

=========  ==================================================  ================  =========
strategy   subnets per batch (n = ``num_subnets``)              non-max loss      forwards
=========  ==================================================  ================  =========
pss        max, 1 medium by Alg. 3 for a random budget          KL to max         3, serial
           (kind by ``kind_draw``, then budget), min
uniform    max, n-2 uniform widths (US-Net), min; r = r^max     KL to max         n, serial
mutual     max, n-2 (uniform width, resolution) (MutualNet),    KL to max         n, serial
           min
random     max, n-2 uniform draws from S (BigNAS/OFA), min      KL to max         n, serial
pse        max, n-1 uniform draws from S at r^max (PSE-Net)     CE on labels      1, parallel
=========  ==================================================  ================  =========

"Serial" strategies follow Alg. 2 (sandwich rule + inplace distillation):
every subnet sees the whole batch, one forward/backward each. PSE-Net trains
all its subnets in one forward/backward of the max network on disjoint chunks
of the batch (:meth:`pss.nn.supernet.Supernet.forward_parallel`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from ..config import KIND_DRAWS, STRATEGIES
from ..problem.space import Structure, StructureSpace
from .family import TrainedFamily
from .marginals import StructureDistributionSampler
from .pools import SubnetPool, pools_from_budgets
from .prioritized import prioritized_sample


@dataclass(frozen=True)
class Subnet:
    """One subnet to train on this batch.

    ``role`` is "max", "medium" or "min"; ``pool_index``, ``source`` and
    ``trials`` are only set by :class:`PssStrategy` (budget index t, "space" or
    "pool", and the Eq. 4 trial count).
    """

    structure: Structure
    role: str
    pool_index: int | None = None
    source: str | None = None
    trials: int = 0


class Strategy(ABC):
    """Chooses the subnets of each batch. Subclasses set the class attributes and :meth:`plan`."""

    name: ClassVar[str]
    #: all subnets in one forward of the max network on batch chunks (PSE-Net) instead of one forward each
    parallel: ClassVar[bool] = False
    #: non-max subnets learn from the max subnet's soft labels (KL); otherwise from the labels (CE)
    distill: ClassVar[bool] = True

    def __init__(self, space: StructureSpace, num_subnets: int) -> None:
        if num_subnets < 2:
            raise ValueError(f"num_subnets must be at least 2, got {num_subnets}")
        self.space = space
        self.num_subnets = int(num_subnets)
        self.max = Subnet(space.max_structure, "max")
        self.pools: list[SubnetPool] = []

    @abstractmethod
    def plan(self, rng: np.random.Generator, progress: float) -> list[Subnet]:
        """The subnets of the next batch, max first."""

    @classmethod
    def family(cls, space: StructureSpace) -> TrainedFamily:
        """The configurations this strategy's :meth:`plan` draws (default: all of S, layer-wise widths)."""
        return TrainedFamily(cls.name, space.resolutions, "layer-wise")

    def observe(self, subnets: list[Subnet], ce_losses: list[float]) -> None:
        """Called after the optimizer step with each subnet's cross-entropy on its images."""


class PssStrategy(Strategy):
    """PSS-Net (Alg. 1-3): max, one prioritized medium for a budget drawn uniformly from Theta, min.

    ``num_subnets`` is ignored: Alg. 1 trains exactly three subnets per batch.
    :meth:`observe` records the medium's metric m = -CE in its pool (Alg. 3
    lines 8-17).

    Multi-constraint training (PSS-Net_M, ``extra_constraints``): Theta holds
    pools of several kinds (macs, params, latency); :meth:`draw_pool` picks a
    batch's (kind, budget) by ``kind_draw``. ``proportional`` draws the kind in
    proportion to its number of pools, i.e. the pool uniformly over all pools
    (the reference implementation: ``random.choices(kinds, weights=[pools
    per kind])``, then a budget of that kind uniformly). ``uniform`` draws the
    kind uniformly over the kinds, then the budget uniformly among that kind's
    pools (what runs made before ``kind_draw`` existed did). With the same
    number of pools per kind (what the config builds) both have the same
    distribution, not the same rng stream. A single-kind run draws the budget
    directly under either rule (one rng call, as before).
    """

    name = "pss"

    def __init__(
        self,
        space: StructureSpace,
        sampler: StructureDistributionSampler,
        pool_size: int,
        costs: Callable[[Structure], dict[str, float]],
        p_end: float,
        eta_end: float,
        metric_lambda: float,
        kind_draw: str = "uniform",
    ) -> None:
        if kind_draw not in KIND_DRAWS:
            raise ValueError(f"unknown kind_draw {kind_draw!r}; choose one of {', '.join(KIND_DRAWS)}")
        super().__init__(space, 3)
        self.kind_draw = kind_draw
        self.sampler = sampler
        self.costs = costs
        self.p_end, self.eta_end, self.metric_lambda = p_end, eta_end, metric_lambda
        self.pools = pools_from_budgets(sampler.budgets, pool_size)
        self.min = Subnet(space.min_structure, "min")
        #: kind -> indices of its pools, kinds in order of first appearance (primary first)
        self.pools_by_kind: dict[str, list[int]] = {}
        for t, pool in enumerate(self.pools):
            self.pools_by_kind.setdefault(pool.budget.kind, []).append(t)

    def draw_pool(self, rng: np.random.Generator) -> int:
        """Index t of this batch's pool.

        ``proportional``: P(kind) = pools of the kind / all pools, then t ~ U(pools of the kind),
        i.e. t ~ U(all pools); ``uniform``: kind ~ U(kinds), then t ~ U(pools of that kind).
        """
        if len(self.pools_by_kind) <= 1 or self.kind_draw == "proportional":
            return int(rng.integers(len(self.pools)))
        kinds = list(self.pools_by_kind)
        group = self.pools_by_kind[kinds[int(rng.integers(len(kinds)))]]
        return group[int(rng.integers(len(group)))]

    def plan(self, rng: np.random.Generator, progress: float) -> list[Subnet]:
        t = self.draw_pool(rng)
        medium, source, trials = prioritized_sample(self.pools[t], self.sampler, t, progress, self.p_end, self.eta_end, rng)
        return [self.max, Subnet(medium, "medium", t, source, trials), self.min]

    def observe(self, subnets: list[Subnet], ce_losses: list[float]) -> None:
        for s, ce in zip(subnets, ce_losses):
            if s.pool_index is None:
                continue
            pool = self.pools[s.pool_index]
            if s.source == "space":
                pool.counters.from_space += 1
                pool.counters.trials.append(s.trials)
            else:
                pool.counters.from_pool += 1
            pool.record(s.structure, -ce, self.costs(s.structure), self.metric_lambda, check=True)


class UniformStrategy(Strategy):
    """US-Net (Yu & Huang 2019): sandwich rule with uniform width multipliers.

    Each medium uses one multiplier for every layer, drawn uniformly from
    [lower_bound, 1] (:meth:`StructureSpace.uniform_structure`). US-Net has a
    single input resolution, so every subnet, the min one included (the
    smallest widths of S), runs at r^max.
    """

    name = "uniform"

    def __init__(self, space: StructureSpace, num_subnets: int) -> None:
        super().__init__(space, num_subnets)
        r_max = space.resolutions[-1]
        self.min = Subnet(Structure(space.min_structure.widths, r_max), "min")

    @classmethod
    def family(cls, space: StructureSpace) -> TrainedFamily:
        r_max = space.resolutions[-1]
        ends = (space.max_structure.key, Structure(space.min_structure.widths, r_max).key)
        return TrainedFamily(cls.name, (r_max,), "uniform", ends)

    def plan(self, rng: np.random.Generator, progress: float) -> list[Subnet]:
        lb, r_max = self.space.lower_bound, self.space.resolutions[-1]
        mediums = [Subnet(self.space.uniform_structure(float(rng.uniform(lb, 1.0)), r_max), "medium") for _ in range(self.num_subnets - 2)]
        return [self.max, *mediums, self.min]


class MutualStrategy(Strategy):
    """MutualNet (Yang et al. 2020): uniform widths, each with its own input resolution.

    Each medium draws a multiplier uniformly from [lower_bound, 1] and,
    together with it, a resolution uniformly from S's resolutions. The max
    subnet runs at r^max and the min subnet is phi^min of S (smallest widths at
    r^min). MutualNet's reference code gives the min width a random resolution
    as well; we pin it to r^min so the sandwich's lower end is the smallest
    subnet of S, the same phi^min that the other strategies train and that
    calibration reports as the min reference.
    """

    name = "mutual"

    def __init__(self, space: StructureSpace, num_subnets: int) -> None:
        super().__init__(space, num_subnets)
        self.min = Subnet(space.min_structure, "min")

    @classmethod
    def family(cls, space: StructureSpace) -> TrainedFamily:
        return TrainedFamily(cls.name, space.resolutions, "uniform", (space.max_structure.key, space.min_structure.key))

    def plan(self, rng: np.random.Generator, progress: float) -> list[Subnet]:
        lb, res = self.space.lower_bound, self.space.resolutions
        mediums = []
        for _ in range(self.num_subnets - 2):
            mult = float(rng.uniform(lb, 1.0))
            r = int(res[int(rng.integers(len(res)))])
            mediums.append(Subnet(self.space.uniform_structure(mult, r), "medium"))
        return [self.max, *mediums, self.min]


class RandomStrategy(Strategy):
    """BigNAS / OFA-style sandwich: max, n-2 structures drawn uniformly from S (Sec. 3.1), min."""

    name = "random"

    def __init__(self, space: StructureSpace, num_subnets: int) -> None:
        super().__init__(space, num_subnets)
        self.min = Subnet(space.min_structure, "min")

    def plan(self, rng: np.random.Generator, progress: float) -> list[Subnet]:
        mediums = [Subnet(self.space.sample_uniform(rng), "medium") for _ in range(self.num_subnets - 2)]
        return [self.max, *mediums, self.min]


class PseStrategy(Strategy):
    """PSE-Net parallel-subnets training (Sec. 3.2, Eq. 8-14): max + n-1 uniform draws from S.

    The batch is split into n chunks, chunk i trained by subnet i, all in one
    forward/backward of the max network
    (:meth:`pss.nn.supernet.Supernet.forward_parallel`). As in the paper's
    default (Sec. 4.1: "one largest subnet and three random middle subnets")
    there is no min subnet.

    Loss: every chunk, the max one included, is trained by cross-entropy on its
    own labels (Eq. 5 and Eq. 17: L_trn per subnet); the paper uses no
    distillation, and it could not: the max subnet never sees the other
    chunks' images. The step's loss is the *sum* of the per-chunk mean
    cross-entropies, so each subnet weighs as much as a subnet of the serial
    strategies (which sum n per-batch losses).

    Resolution: one forward has one input size, so every chunk runs at r^max;
    the resolutions of S are not trained (the paper searches widths only).
    Widths are drawn as :meth:`StructureSpace.sample_uniform` does; their
    resolution is replaced by r^max.
    """

    name = "pse"
    parallel = True
    distill = False

    @classmethod
    def family(cls, space: StructureSpace) -> TrainedFamily:
        return TrainedFamily(cls.name, (space.resolutions[-1],), "layer-wise")

    def plan(self, rng: np.random.Generator, progress: float) -> list[Subnet]:
        r_max = self.space.resolutions[-1]
        mediums = [Subnet(Structure(self.space.sample_uniform(rng).widths, r_max), "medium") for _ in range(self.num_subnets - 1)]
        return [self.max, *mediums]


def make_strategy(
    name: str,
    space: StructureSpace,
    num_subnets: int,
    *,
    sampler: StructureDistributionSampler | None = None,
    costs: Callable[[Structure], dict[str, float]] | None = None,
    pool_size: int = 50,
    p_end: float = 0.01,
    eta_end: float = 0.01,
    metric_lambda: float = 0.9,
    kind_draw: str = "uniform",
) -> Strategy:
    """The strategy called ``name`` (one of :data:`STRATEGIES`); pss needs ``sampler`` and ``costs``.

    ``kind_draw`` (pss, several constraint kinds; config ``kind_draw``): see
    :class:`PssStrategy`; the default is the draw of runs made before the option.
    """
    if name == "pss":
        if sampler is None or costs is None:
            raise ValueError("the pss strategy needs the Eq. 4 sampler and a cost function")
        return PssStrategy(space, sampler, pool_size, costs, p_end, eta_end, metric_lambda, kind_draw)
    classes = {c.name: c for c in STRATEGY_CLASSES if c is not PssStrategy}
    if name not in classes:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return classes[name](space, num_subnets)


#: One class per name of :data:`pss.config.STRATEGIES` (a test keeps the two in step).
STRATEGY_CLASSES: tuple[type[Strategy], ...] = (PssStrategy, UniformStrategy, MutualStrategy, RandomStrategy, PseStrategy)


def trained_family(name: str, space: StructureSpace) -> TrainedFamily:
    """The :class:`TrainedFamily` of strategy ``name`` in ``space``: what its runs may be searched and compared in."""
    classes = {c.name: c for c in STRATEGY_CLASSES}
    if name not in classes:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    return classes[name].family(space)
