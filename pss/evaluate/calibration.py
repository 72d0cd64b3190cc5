"""BN calibration (PSS-Net Alg. 1 lines 11-17): re-estimated statistics, then validation accuracy.

The running statistics a supernet accumulates during training mix every
subnet it trained, so they fit none of them. Before evaluating a subnet we
reset its BN statistics and re-estimate them on N training images with exact
(cumulative) averaging, on a *copy* of the supernet: the supernet's own
buffers are never touched. Choosing among the calibrated subnets is
:mod:`pss.evaluate.selection`.

Many subnets at once (:meth:`BNCalibrator.calibrate_many`, :meth:`~BNCalibrator.measure_many`):
a block's output depends only on its input and the output channels of its
convs, so subnets with the same resolution and the same channels in blocks
1..b compute the same activations (and, in training mode, the same BN
statistics) up to block b. The subnets are arranged in a prefix tree of
blocks and each tree node runs once per batch; every node runs the very
block forward of the one-at-a-time path on the very same input, so the
statistics and accuracies are bit-identical to :meth:`~BNCalibrator.calibrate`
and :meth:`~BNCalibrator.measure`, with a fraction of the work.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from ..inputs import resize
from ..nn.ops import SlimBatchNorm2d
from ..problem.space import Structure
from ..problem.spec import NetSpec
from .selection import CalibratedSubnet
from .statistics import Accuracy

BatchFn = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


def bn_channels(spec: NetSpec, structure: Structure) -> dict[str, int]:
    """Channels each BN layer uses under ``structure``, keyed by module path."""
    return {f"{path}.bn": int(conv.out_channels(structure.widths)) for _, path, conv in spec.convs()}


def block_channels(spec: NetSpec, structure: Structure) -> list[tuple[int, ...]]:
    """Per block, the output channels of its convs under ``structure``: all a block uses of a structure.

    A block's forward reads nothing of the structure but these counts (its input
    channels follow its input), so two structures with equal counts in a block
    compute the same output from the same input.
    """
    out: list[list[int]] = [[] for _ in spec.blocks]
    for block, _, conv in spec.convs():
        out[block].append(int(conv.out_channels(structure.widths)))
    return [tuple(c) for c in out]


@dataclass
class _Node:
    """One block run for every structure below it: they share the resolution and the channels of blocks 0..``block``.

    ``stats`` are the running (mean, var) of the block's BN layers, sized to
    their channels: being accumulated during calibration, read when measuring.
    ``members`` are the indices of the structures whose last block this is.
    """

    block: int
    widths: tuple[int, ...]
    stats: list[tuple[torch.Tensor, torch.Tensor]]
    children: dict[tuple, _Node] = field(default_factory=dict)
    members: list[int] = field(default_factory=list)


class BNCalibrator:
    """Re-estimates BN statistics for one structure at a time on a private copy of a supernet."""

    def __init__(self, supernet: nn.Module) -> None:
        self.model = copy.deepcopy(supernet)
        self.spec: NetSpec = supernet.spec
        self._bns = [(n, m) for n, m in self.model.named_modules() if isinstance(m, SlimBatchNorm2d)]
        for _, m in self._bns:
            m.momentum = None  # cumulative average: exact mean over the calibration batches
        # the BN layers of each block, in the order spec.convs() lists their convs (that of bn_channels)
        modules = dict(self._bns)
        self._block_bns: list[list[tuple[str, SlimBatchNorm2d]]] = [[] for _ in self.spec.blocks]
        for block, path, _ in self.spec.convs():
            self._block_bns[block].append((f"{path}.bn", modules[f"{path}.bn"]))

    @torch.no_grad()
    def calibrate(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Reset and re-estimate BN statistics; returns them sliced to the structure's channels."""
        for _, m in self._bns:
            m.reset_running_stats()
        self.model.train()
        seen = 0
        for x, _ in batches:
            self.model(x, structure)
            seen += x.shape[0]
        if seen == 0:
            raise ValueError("no calibration images")
        self.model.eval()
        return self.bn_state(structure)

    def bn_state(self, structure: Structure) -> dict[str, torch.Tensor]:
        channels = bn_channels(self.spec, structure)
        out = {}
        for name, m in self._bns:
            c = channels[name]
            out[f"{name}.running_mean"] = m.running_mean[:c].detach().cpu().clone()
            out[f"{name}.running_var"] = m.running_var[:c].detach().cpu().clone()
        return out

    @torch.no_grad()
    def load(self, stats: dict[str, torch.Tensor]) -> None:
        """Put statistics from :meth:`bn_state` back (the channels they cover), as if just calibrated."""
        for name, m in self._bns:
            mean, var = stats[f"{name}.running_mean"], stats[f"{name}.running_var"]
            m.running_mean[: mean.shape[0]] = mean.to(m.running_mean.device)
            m.running_var[: var.shape[0]] = var.to(m.running_var.device)

    @torch.no_grad()
    def accuracy(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """Top-1 accuracy with the statistics of the last :meth:`calibrate` call."""
        return evaluate_accuracy(self.model, structure, batches)

    @torch.no_grad()
    def measure(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Accuracy:
        """Top-1 correct of how many images, with the statistics of the last :meth:`calibrate` or :meth:`load`."""
        return Accuracy(*count_correct(self.model, structure, batches))

    @torch.no_grad()
    def negative_loss(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """-CE of ``structure`` on ``batches`` with the current weights: the pool metric m of Alg. 3, measured now.

        In training mode (each batch's own BN statistics), as training observed m; image-weighted mean over
        the batches. Touches only this private copy's BN buffers, which :meth:`calibrate` resets anyway.
        """
        self.model.train()
        total, seen = 0.0, 0
        for x, y in batches:
            total += float(torch.nn.functional.cross_entropy(self.model(x, structure), y, reduction="sum"))
            seen += y.numel()
        self.model.eval()
        if seen == 0:
            raise ValueError("no images to measure the metric on")
        return -total / seen

    @torch.no_grad()
    def calibrate_many(self, structures: Sequence[Structure], batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
        """:meth:`calibrate` of every structure, in one pass over ``batches``: the same statistics, bit for bit.

        The structures share the work of their common prefixes (module docstring):
        per batch, every node of their prefix tree runs its block once, with its
        own running statistics loaded into the block's BN layers (reset, then
        averaged cumulatively over the batches exactly as :meth:`calibrate` does).
        Memory: the activations of one root-to-leaf path plus the statistics of
        every node, so callers bound the number of structures per call. Leaves
        this copy's BN buffers undefined: :meth:`load` statistics before :meth:`measure`.
        """
        uniq, index = _unique(structures)
        roots = self._tree(uniq, None)
        self.model.train()
        seen = 0
        for n, (x, _) in enumerate(batches, start=1):
            for resolution, root in roots.items():
                self._run(root, resize(x, resolution), n, None)
            seen += x.shape[0]
        self.model.eval()
        if seen == 0:
            raise ValueError("no calibration images")
        stats = [self._stats_of(roots, s) for s in uniq]
        # independent tensors per structure, as calibrate() returns them
        return [{k: v.clone() for k, v in stats[i].items()} for i in index]

    @torch.no_grad()
    def measure_many(self, structures: Sequence[Structure], stats: Sequence[dict[str, torch.Tensor]],
                     batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> list[Accuracy]:
        """:meth:`load` then :meth:`measure` of every structure with its ``stats``, in one pass over ``batches``.

        Structures share a block's forward only when they also share its input
        and the statistics of its BN layers (equal bits), so the counts are those
        of the one-at-a-time path. Leaves this copy's BN buffers undefined.
        """
        if len(stats) != len(structures):
            raise ValueError(f"{len(structures)} structures but {len(stats)} sets of statistics")
        roots = self._tree(list(structures), list(stats))
        correct, images = [0] * len(structures), 0
        self.model.eval()
        for x, y in batches:
            def count(node: _Node, out: torch.Tensor, y: torch.Tensor = y) -> None:
                hits = int((self.model.head(out).argmax(1) == y).sum().item())
                for i in node.members:
                    correct[i] += hits

            for resolution, root in roots.items():
                self._run(root, resize(x, resolution), None, count)
            images += y.numel()
        return [Accuracy(c, images) for c in correct]

    def _tree(self, structures: Sequence[Structure], stats: Sequence[dict[str, torch.Tensor]] | None) -> dict[int, _Node]:
        """The prefix tree of ``structures``: a root per resolution, a level per block.

        Without ``stats`` (calibration) a node is keyed by its block's channels
        and starts from reset statistics (mean 0, var 1); with ``stats`` also by
        the bits of the block's statistics, which its node then carries.
        """
        roots: dict[int, _Node] = {}
        for i, s in enumerate(structures):
            node = roots.setdefault(s.resolution, _Node(-1, s.widths, []))
            for b, channels in enumerate(block_channels(self.spec, s)):
                given = None if stats is None else [(stats[i][f"{n}.running_mean"], stats[i][f"{n}.running_var"])
                                                    for n, _ in self._block_bns[b]]
                key = channels if given is None else (channels, tuple(_bits(t) for pair in given for t in pair))
                if key not in node.children:
                    node.children[key] = _Node(b, s.widths, self._node_stats(b, channels, given))
                node = node.children[key]
            node.members.append(i)
        return roots

    def _node_stats(self, block: int, channels: tuple[int, ...],
                    given: list[tuple[torch.Tensor, torch.Tensor]] | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A new node's BN statistics on the model's device: ``given``, or reset ones (mean 0, var 1) to calibrate."""
        out = []
        for i, (c, (_, m)) in enumerate(zip(channels, self._block_bns[block])):
            dev = m.running_mean.device
            if given is None:
                out.append((torch.zeros(c, device=dev), torch.ones(c, device=dev)))
            else:
                out.append((given[i][0].to(dev), given[i][1].to(dev)))
        return out

    def _run(self, node: _Node, x: torch.Tensor, batch: int | None, at_leaf: Callable[[_Node, torch.Tensor], None] | None) -> None:
        """Depth first below ``node`` on its output ``x``: each child's block with the child's statistics.

        ``batch`` (1-based) calibrates: the BN layers update the child's statistics
        as the ``batch``-th cumulative average. ``None`` measures with them.
        """
        for child in node.children.values():
            bns = self._block_bns[child.block]
            for (_, m), (mean, var) in zip(bns, child.stats):
                m.running_mean[: mean.shape[0]].copy_(mean)
                m.running_var[: var.shape[0]].copy_(var)
                if batch is not None:
                    m.num_batches_tracked.fill_(batch - 1)  # the forward counts this batch: factor 1/batch
            out = self.model.blocks[child.block](x, child.widths)
            if batch is not None:
                for (_, m), (mean, var) in zip(bns, child.stats):
                    mean.copy_(m.running_mean[: mean.shape[0]])
                    var.copy_(m.running_var[: var.shape[0]])
            if child.members and at_leaf is not None:
                at_leaf(child, out)
            self._run(child, out, batch, at_leaf)

    def _stats_of(self, roots: dict[int, _Node], structure: Structure) -> dict[str, torch.Tensor]:
        """The calibrated statistics along ``structure``'s path, keyed and ordered as :meth:`bn_state`."""
        found: dict[str, torch.Tensor] = {}
        node = roots[structure.resolution]
        for channels, names in zip(block_channels(self.spec, structure), self._block_bns):
            node = node.children[channels]
            for (name, _), (mean, var) in zip(names, node.stats):
                found[f"{name}.running_mean"] = mean.detach().cpu()
                found[f"{name}.running_var"] = var.detach().cpu()
        return {k: found[k] for name, _ in self._bns for k in (f"{name}.running_mean", f"{name}.running_var")}

    def statistics(self) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
        """(running mean, running var, batches averaged) of every BN layer after :meth:`calibrate`.

        Distributed evaluation averages these over the ranks, weighted by the batches each rank saw.
        """
        return [(m.running_mean, m.running_var, int(m.num_batches_tracked)) for _, m in self._bns]


@torch.no_grad()
def count_correct(model: nn.Module, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[int, int]:
    """(top-1 correct, images) of ``structure`` on ``batches``, in eval mode."""
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in batches:
        correct += (model(x, structure).argmax(1) == y).sum().item()
        total += y.numel()
    model.train(was_training)
    return correct, total


def evaluate_accuracy(model: nn.Module, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    correct, total = count_correct(model, structure, batches)
    return correct / max(1, total)


def calibrate_and_evaluate(
    calibrator: BNCalibrator,
    structure: Structure,
    calib_batches: BatchFn,
    val_batches: BatchFn,
    costs: dict[str, float],
    m: float | None = None,
) -> tuple[CalibratedSubnet, dict[str, torch.Tensor]]:
    """Calibrate ``structure``'s BN statistics, then measure its validation accuracy; (result, statistics)."""
    t0 = time.perf_counter()
    stats = calibrator.calibrate(structure, calib_batches())
    val = calibrator.measure(structure, val_batches())
    return CalibratedSubnet(structure, m, val.value, costs, time.perf_counter() - t0, validation=val), stats


def calibrate_and_evaluate_many(
    calibrator: BNCalibrator,
    structures: Sequence[Structure],
    calib_batches: BatchFn,
    val_batches: BatchFn,
    costs: Sequence[dict[str, float]],
    ms: Sequence[float | None],
) -> list[tuple[CalibratedSubnet, dict[str, torch.Tensor]]]:
    """:func:`calibrate_and_evaluate` of every structure, sharing common prefixes; the same results.

    ``seconds`` of each result is the shared time divided by the number of structures.
    """
    if not structures:
        return []
    t0 = time.perf_counter()
    stats = calibrator.calibrate_many(structures, calib_batches())
    vals = calibrator.measure_many(structures, stats, val_batches())
    seconds = (time.perf_counter() - t0) / len(structures)
    return [(CalibratedSubnet(s, m, val.value, c, seconds, validation=val), st)
            for s, m, val, c, st in zip(structures, ms, vals, costs, stats)]


def _unique(structures: Sequence[Structure]) -> tuple[list[Structure], list[int]]:
    """The distinct structures (first occurrences, in order) and, per input, the index of its distinct one."""
    first: dict[str, int] = {}
    uniq: list[Structure] = []
    for s in structures:
        if s.key not in first:
            first[s.key] = len(uniq)
            uniq.append(s)
    return uniq, [first[s.key] for s in structures]


def _bits(t: torch.Tensor) -> bytes:
    """A tensor's exact contents, to key tree nodes by equal statistics."""
    return t.detach().cpu().contiguous().numpy().tobytes()
