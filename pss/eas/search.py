"""Training the architecture generator (EAS Alg. 1, Eq. 3-4) and generating architectures with it.

Training, on the validation split with the supernet frozen: each validation
batch serves ``scenarios_per_batch`` scenarios, each a superclass present in the
batch with a budget B drawn uniformly from [C(min), C(max)]. The generator gives
gate probabilities, the gates are drawn hard with the straight-through Gumbel
estimator (Eq. 9-10), the whole batch runs through the supernet with those gates
as channel masks at every resolution (weighted by the resolution gates), and the
loss (Eq. 4), on the batch's images of that superclass, is

    L = CE(logits restricted to the superclass's classes) + lambda * L_c,
    L_c = |C(alpha) - B| / B                                            (Eq. 3)

EAS's Eq. 3 was lost in the text extraction; the prose asks for "a
computational constraint loss" that keeps the cost "close to" B. We use the
absolute deviation relative to B: relative, so a scenario at 1.5M MACs and one
at 3M pull equally hard; absolute rather than squared, so its gradient does not
vanish near B (a squared loss lets the accuracy term push every architecture
just over its budget). The budget is a ceiling at inference, where architectures
over it are discarded and redrawn.

Only the generator learns; the supernet's weights and BN buffers are never
changed. BN normalises with the whole (all-class) batch's statistics: what
calibration estimates for that subnet. Statistics of one superclass's images
alone would shift every layer's input away from what the weights were trained
on (measured: a footwear subnet falls from 95% to 79-82% with footwear-only
statistics). The classifier's logits are restricted to the scenario's
superclass, as the exported model's are.

Generating (Sec. 3.2, "Inferring architectures"): one batched forward gives
every scenario's gate probabilities; per scenario, ``samples`` architectures
are drawn from them, those over the budget are redrawn (up to a limit), and the
survivors are calibrated on training images of all classes (as `pss calibrate`
does) and measured on the superclass's validation images; the best is the
scenario's architecture.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F

from ..evaluate.calibration import BNCalibrator
from ..evaluate.statistics import Accuracy
from ..nn.supernet import Supernet, resize_batch
from ..problem.costs import CostModel
from ..problem.space import Structure
from .draws import DrawTally
from .gates import GateLayout, channel_masks, decode_arrays, gumbel_sigmoid, resolution_weights, soft_cost
from .generator import ArchitectureGenerator, scenario_tensors

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GeneratorSettings:
    """How the generator is built and trained (EAS Sec. 4 where its values survived the extraction)."""

    epochs: int = 20
    """Passes over the validation split."""
    batch_size: int = 128
    """Validation images per step (all classes: they give BN its statistics)."""
    scenarios_per_batch: int = 1
    """Scenarios trained on each batch, each a different superclass present in it (each costs one gated forward)."""
    steps_per_epoch: int | None = None
    """At most this many batches per epoch (None: the whole validation split); for quick runs."""
    lr: float = 5e-3
    """Adam's learning rate (EAS: Adam; the value was lost)."""
    constraint_weight: float = 2.0
    """lambda of Eq. 4, the weight of the computational-constraint loss."""
    temperature: float = 1.0
    """tau of Eq. 9."""
    expected_cost: bool = True
    """Constrain the expected cost C(alpha) (True) or the sampled gates' cost (False).

    The cost is multilinear in independent gates (a product of a conv's input and output
    widths and the resolution's H*W), so evaluating the same polynomial at the
    probabilities gives the expected cost of the sampled architectures -- exactly, except
    for a conv whose input and output are one dimension. Its gradient has none of the
    sampling noise of the straight-through estimate; the cross-entropy still sees sampled
    hard gates. False constrains each sampled architecture's cost through the STE."""
    levels: int = 10
    """Budget levels with their own embedding, evenly spaced from C(min) to C(max)."""
    embedding: int = 32
    """Embedding size of a superclass and of a budget level (EAS: 32)."""
    hidden: int = 64
    """LSTM hidden size."""
    min_rows: int = 4
    """A superclass with fewer images in a batch is not chosen for it (its loss would rest on a handful)."""
    seed: int = 0

    def to_json(self) -> dict[str, float | int]:
        return dict(self.__dict__)


@dataclass
class TrainingLog:
    """Per epoch: mean CE, mean constraint loss, share of sampled architectures within budget; seconds."""

    ce: list[float] = field(default_factory=list)
    constraint: list[float] = field(default_factory=list)
    within_budget: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"ce": self.ce, "constraint": self.constraint, "within_budget": self.within_budget, "seconds": self.seconds}


def constraint_loss(cost: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
    """EAS Eq. 3 as we read it: ``|C(gates) - B| / B`` (module docstring for why this form)."""
    return (cost - budget).abs() / budget


def gated_logits(supernet: Supernet, layout: GateLayout, gates: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The supernet's logits for one gate vector: sum over resolutions r of weight_r(gates) * f(x at r, channel masks).

    For hard gates exactly one weight is 1, so the value is the gated subnet's
    logits; the other resolutions are still computed so the resolution gates
    get a gradient from the loss (the STE needs every branch's output).
    """
    masks = channel_masks(layout, gates)
    weights = resolution_weights(layout, gates)
    out = 0.0
    for w, r in zip(weights, layout.resolutions):
        out = out + w * supernet.forward_masked(resize_batch(x, r), masks)
    return out


def _frozen(supernet: Supernet) -> Supernet:
    supernet.eval()  # dropout off; forward_masked uses batch statistics for BN by itself
    for p in supernet.parameters():
        p.requires_grad_(False)
    return supernet


def train_generator(
    supernet: Supernet,
    cost_model: CostModel,
    class_superclass: Sequence[int],
    val_batches: Callable[[int], Batches],
    settings: GeneratorSettings = GeneratorSettings(),
    kind: str = "macs",
    c_range: tuple[float, float] | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
) -> tuple[ArchitectureGenerator, TrainingLog]:
    """Alg. 1: train G_theta on the validation split; returns the generator (eval mode) and its log.

    ``val_batches(batch_size)`` yields one pass over the validation split.
    ``c_range`` is (C(min), C(max)) of the cost ``kind`` (default: the space's
    smallest and largest structures). ``progress(epoch, epochs, stats)`` is
    called after each epoch.
    """
    layout = GateLayout.of(cost_model.space)
    groups = torch.as_tensor(list(class_superclass), dtype=torch.long)
    n_super = int(groups.max()) + 1
    classes_of = [torch.nonzero(groups == k).squeeze(1) for k in range(n_super)]
    position = torch.empty_like(groups)  # a class's index among its superclass's classes
    for cls in classes_of:
        position[cls] = torch.arange(cls.numel())
    if c_range is None:
        c_range = (cost_model.cost(kind, cost_model.space.min_structure), cost_model.cost(kind, cost_model.space.max_structure))
    c_min, c_max = map(float, c_range)
    torch.manual_seed(settings.seed)
    gen = ArchitectureGenerator(layout, n_super, c_min, c_max, settings.levels, settings.embedding, settings.hidden)
    opt = torch.optim.Adam(gen.parameters(), lr=settings.lr)
    rng = torch.Generator().manual_seed(settings.seed)
    _frozen(supernet)
    device = next(supernet.parameters()).device
    gen.to(device)
    log, t0 = TrainingLog(), time.perf_counter()
    for epoch in range(1, settings.epochs + 1):
        ce_sum = con_sum = fits = n = 0.0
        for step, (x, y) in enumerate(val_batches(settings.batch_size)):
            if settings.steps_per_epoch is not None and step >= settings.steps_per_epoch:
                break
            y_cpu = y.cpu()
            counts = torch.bincount(groups[y_cpu], minlength=n_super)
            present = [k for k in range(n_super) if int(counts[k]) >= settings.min_rows]
            if not present:
                continue
            ks_list = [present[int(i)] for i in torch.randperm(len(present), generator=rng)[: settings.scenarios_per_batch]]
            budgets = c_min + torch.rand(len(ks_list), generator=rng, dtype=torch.float64) * (c_max - c_min)
            ks, bs = scenario_tensors(ks_list, budgets.tolist())
            logits = gen.logits(ks.to(device), bs.to(device))
            gates = gumbel_sigmoid(logits, settings.temperature, None if device.type != "cpu" else rng)
            probs = torch.sigmoid(logits)
            opt.zero_grad(set_to_none=True)
            total = 0.0
            for i, k in enumerate(ks_list):
                # The whole batch goes through the gated subnet, so BN normalises with statistics of all classes,
                # as the supernet was trained and as calibration estimates them; only the scenario's superclass
                # counts in the loss, its logits restricted to its classes.
                rows = (groups[y_cpu] == k).nonzero().squeeze(1).to(x.device)
                out = gated_logits(supernet, layout, gates[i], x)[rows][:, classes_of[k].to(device)]
                ce = F.cross_entropy(out, position[y_cpu[rows.cpu()]].to(device))
                cost = soft_cost(cost_model, layout, probs[i] if settings.expected_cost else gates[i], kind)
                con = constraint_loss(cost, bs[i].to(cost.dtype).to(device))
                total = total + (ce + settings.constraint_weight * con) / len(ks_list)
                ce_sum += float(ce.detach())
                con_sum += float(con.detach())
                fits += float(soft_cost(cost_model, layout, gates[i].detach(), kind) <= bs[i])
                n += 1
            total.backward()  # one backward: the scenarios share the generator's batched forward
            opt.step()
        if n:
            log.ce.append(ce_sum / n)
            log.constraint.append(con_sum / n)
            log.within_budget.append(fits / n)
        if progress is not None:
            progress(epoch, settings.epochs, {"ce": log.ce[-1] if log.ce else math.nan,
                                              "constraint": log.constraint[-1] if log.constraint else math.nan})
    log.seconds = time.perf_counter() - t0
    gen.eval()
    return gen, log


# ---------------------------------------------------------------------------- inference
@dataclass(frozen=True)
class Candidates:
    """The architectures drawn for one scenario: distinct and within budget, and the tally of every draw it took."""

    superclass: int
    budget: float
    structures: tuple[Structure, ...]
    tally: DrawTally
    fallback: bool = False
    """Nothing drawn fitted, so the cheapest architecture of the space is the one candidate."""

    @property
    def draws(self) -> int:
        return self.tally.draws


@torch.no_grad()
def gate_probabilities(gen: ArchitectureGenerator, superclasses: Sequence[int], budgets: Sequence[float]) -> torch.Tensor:
    """Every scenario's gate probabilities in one batched forward: (n scenarios, layout.size)."""
    ks, bs = scenario_tensors(superclasses, budgets)
    device = next(gen.parameters()).device
    return gen(ks.to(device), bs.to(device)).cpu()


def draw_within_budget(layout: GateLayout, cost_model: CostModel, probs: torch.Tensor, budget: float, samples: int,
                       rng: torch.Generator, kind: str = "macs", max_draws: int | None = None) -> tuple[list[Structure], DrawTally]:
    """Up to ``samples`` distinct architectures from one scenario's probabilities whose cost is <= budget.

    Draws in rounds (decoded and costed as arrays) until enough distinct ones fit
    or ``max_draws`` (default 50 x samples) is spent. The tally counts every
    architecture drawn, the whole last round included (each was drawn and
    costed), so its in-budget rate is the generator's, not the stopping rule's.
    It may return fewer than ``samples`` (none when the distribution never fits).
    """
    max_draws = max_draws or 50 * samples
    found: dict[str, Structure] = {}
    tally = DrawTally()
    while len(found) < samples and tally.draws < max_draws:
        chunk = min(max(64, 4 * samples), max_draws - tally.draws)  # vectorised rounds: one decode and one cost call each
        bits = (torch.rand((chunk, probs.shape[-1]), generator=rng) < probs[None, :]).numpy()
        widths, res = decode_arrays(layout, bits)
        fits = cost_model.cost_array(kind, widths, res) <= budget
        tally.add(res, fits)
        for w, r in zip(widths[fits], res[fits]):
            s = Structure(tuple(w), int(r))
            if s.key not in found:
                found[s.key] = s
                if len(found) == samples:
                    break
    return list(found.values()), tally


def draw_tallies(gen: ArchitectureGenerator, cost_model: CostModel, scenarios: Sequence[tuple[int, float]], draws: int,
                 seed: int = 0, kind: str = "macs") -> list[DrawTally]:
    """Per scenario (superclass index, budget): the tally of ``draws`` architectures drawn from the generator,
    nothing kept or calibrated -- its in-budget rate and resolutions measured with as many draws as wanted."""
    probs = gate_probabilities(gen, [k for k, _ in scenarios], [b for _, b in scenarios])
    rng = torch.Generator().manual_seed(seed)
    out = []
    for (_, b), p in zip(scenarios, probs):
        tally = DrawTally()
        while tally.draws < draws:
            chunk = min(4096, draws - tally.draws)
            bits = (torch.rand((chunk, p.shape[-1]), generator=rng) < p[None, :]).numpy()
            widths, res = decode_arrays(gen.layout, bits)
            tally.add(res, cost_model.cost_array(kind, widths, res) <= b)
        out.append(tally)
    return out


def generate_candidates(gen: ArchitectureGenerator, cost_model: CostModel, scenarios: Sequence[tuple[int, float]],
                        samples: int = 10, seed: int = 0, kind: str = "macs") -> list[Candidates]:
    """Per scenario (superclass index, budget): the generator's architectures within budget (one batched forward).

    When the distribution of a scenario yields none within budget (a budget
    under what it learned), the cheapest architecture of the space is its one
    candidate if it fits (``fallback``); none otherwise.
    """
    probs = gate_probabilities(gen, [k for k, _ in scenarios], [b for _, b in scenarios])
    rng = torch.Generator().manual_seed(seed)
    out = []
    for (k, b), p in zip(scenarios, probs):
        found, tally = draw_within_budget(gen.layout, cost_model, p, b, samples, rng, kind)
        fallback = False
        if not found:
            smallest = cost_model.space.min_structure
            found = [smallest] if cost_model.cost(kind, smallest) <= b else []
            fallback = bool(found)
        out.append(Candidates(int(k), float(b), tuple(found), tally, fallback))
    return out


@torch.no_grad()
def restricted_predictions(calibrator: BNCalibrator, structure: Structure, stats: dict[str, torch.Tensor],
                           batches: Batches, classes: Sequence[int]) -> torch.Tensor:
    """Per image of ``classes`` (in batch order): is the argmax over those classes' logits its class? (bool, CPU)."""
    calibrator.load(stats)
    model = calibrator.model
    model.eval()
    idx = torch.as_tensor(list(classes), dtype=torch.long)
    hits = []
    for x, y in batches:
        keep = torch.isin(y, idx.to(y.device))
        if not bool(keep.any()):
            continue
        logits = model(x[keep], structure)[:, idx.to(x.device)]
        hits.append((idx.to(y.device)[logits.argmax(1)] == y[keep]).cpu())
    return torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)


def restricted_accuracy(calibrator: BNCalibrator, structure: Structure, stats: dict[str, torch.Tensor],
                        batches: Batches, classes: Sequence[int]) -> Accuracy:
    """Per-superclass accuracy: on the images of ``classes``, argmax over those classes' logits only."""
    hits = restricted_predictions(calibrator, structure, stats, batches, classes)
    return Accuracy(int(hits.sum()), int(hits.numel()))


@dataclass(frozen=True)
class Scored:
    """One calibrated candidate of a scenario: its structure, cost, validation accuracy and BN statistics."""

    structure: Structure
    cost: float
    validation: Accuracy
    stats: dict


def best(scored: Sequence[Scored]) -> Scored | None:
    """The highest validation accuracy; ties to the cheaper architecture (then the key, for determinism)."""
    if not scored:
        return None
    return max(scored, key=lambda s: (s.validation.correct, -s.cost, s.structure.key))
