"""BN calibration and subnet selection (PSS-Net Alg. 1 lines 11-17, Table 8).

The running statistics a supernet accumulates during training mix every
subnet it trained, so they fit none of them. Before evaluating a subnet we
reset its BN statistics and re-estimate them on N training images with exact
(cumulative) averaging, on a *copy* of the supernet: the supernet's own
buffers are never touched. Per pool, the top-k entries by m are calibrated and
evaluated on the validation split; the most accurate is the pool's
deployable subnet.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from .ops import SlimBatchNorm2d
from .space import Structure
from .spec import NetSpec

BatchFn = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


def bn_channels(spec: NetSpec, structure: Structure) -> dict[str, int]:
    """Channels each BN layer uses under ``structure``, keyed by module path."""
    return {f"{path}.bn": int(structure.widths[conv.cout]) for _, path, conv in spec.convs()}


class BNCalibrator:
    """Re-estimates BN statistics for one structure at a time on a private copy of a supernet."""

    def __init__(self, supernet: nn.Module) -> None:
        self.model = copy.deepcopy(supernet)
        self.spec: NetSpec = supernet.spec
        self._bns = [(n, m) for n, m in self.model.named_modules() if isinstance(m, SlimBatchNorm2d)]
        for _, m in self._bns:
            m.momentum = None  # cumulative average: exact mean over the calibration batches

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
    def accuracy(self, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """Top-1 accuracy with the statistics of the last :meth:`calibrate` call."""
        return evaluate_accuracy(self.model, structure, batches)


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, structure: Structure, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    was_training = model.training
    model.eval()
    correct = total = 0
    for x, y in batches:
        correct += (model(x, structure).argmax(1) == y).sum().item()
        total += y.numel()
    model.train(was_training)
    return correct / max(1, total)


@dataclass
class CalibratedSubnet:
    structure: Structure
    m: float | None
    accuracy: float
    costs: dict[str, float]
    seconds: float

    def to_json(self) -> dict:
        return {
            "structure": self.structure.to_json(),
            "key": self.structure.key,
            "m": self.m,
            "accuracy": self.accuracy,
            "costs": dict(self.costs),
            "calibration_seconds": round(self.seconds, 3),
        }


def calibrate_and_evaluate(
    calibrator: BNCalibrator,
    structure: Structure,
    calib_batches: BatchFn,
    val_batches: BatchFn,
    costs: dict[str, float],
    m: float | None = None,
) -> tuple[CalibratedSubnet, dict[str, torch.Tensor]]:
    t0 = time.perf_counter()
    stats = calibrator.calibrate(structure, calib_batches())
    acc = calibrator.accuracy(structure, val_batches())
    return CalibratedSubnet(structure, m, acc, costs, time.perf_counter() - t0), stats


def select_best(candidates: list[CalibratedSubnet]) -> int:
    """Eq. 5: index of the most accurate calibrated subnet (ties: the higher m, then the first)."""
    return max(range(len(candidates)), key=lambda i: (candidates[i].accuracy, candidates[i].m if candidates[i].m is not None else float("-inf"), -i))


def front_record(
    epoch: int,
    constraint: str,
    top_k: int,
    calibration_images: int,
    validation_images: int,
    budgets: list,
    per_pool: list[list["CalibratedSubnet"]],
    references: dict[str, dict],
) -> dict:
    """The ``calibration/front.json`` document (kind ``pss-front``): per pool its candidates and the Eq. 5 best."""
    from . import __version__
    from .runs import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "pss-front",
        "pss_version": __version__,
        "epoch": int(epoch),
        "constraint": constraint,
        "top_k": int(top_k),
        "calibration_images": int(calibration_images),
        "validation_images": int(validation_images),
        "pools": [
            {
                "index": t,
                "budget": budget.to_json(),
                "candidates": [c.to_json() for c in cands],
                "best": select_best(cands) if cands else None,
            }
            for t, (budget, cands) in enumerate(zip(budgets, per_pool))
        ],
        "references": references,
    }


def calibrate_run(
    run_dir,
    top_k: int | None = None,
    images: int | None = None,
    device: str = "auto",
    progress: bool = True,
    on_progress=None,
) -> dict:
    """`pss calibrate`: per pool, calibrate the top-k entries and keep the best (Alg. 1 lines 11-17).

    Writes ``calibration/front.json`` and ``calibration/bn_stats.pt`` and
    returns the front. The min and max subnets are calibrated too, as
    references for plots. ``on_progress(done, total, message)``, when given, is
    called after each subnet (the dashboard's progress bar).
    """
    from .context import load_trained_supernet, resolve_device
    from .data import load_data
    from .runs import atomic_torch_save, atomic_write_json, open_run
    from .trainer import data_config

    run = open_run(run_dir)
    dev = resolve_device(device)
    cfg, ctx, model, state = load_trained_supernet(run, dev)
    top_k = cfg.calib_top_k if top_k is None else int(top_k)
    images = cfg.calib_images if images is None else int(images)
    if top_k < 1 or images < 1:
        raise_bad = "--top-k" if top_k < 1 else "--images"
        from .errors import PssError

        raise PssError(f"{raise_bad} must be at least 1")
    data = load_data(data_config(cfg))
    pools = state["pools"]
    calibrator = BNCalibrator(model)
    seed = cfg.seed + 8192
    bs = cfg.eval_batch_size

    def calib_batches():
        return data.calibration_batches(images, bs, torch.Generator().manual_seed(seed), dev)

    def val_batches():
        return data.val_batches(bs, dev)

    jobs = [("pool", t, e) for t, p in enumerate(pools) for e in p.top(top_k)]
    refs = {"max": ctx.space.max_structure, "min": ctx.space.min_structure}
    total = len(jobs) + len(refs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="calibrating", unit="subnet", dynamic_ncols=True)
    bn_stats: dict[str, dict[str, torch.Tensor]] = {}
    per_pool: list[list[CalibratedSubnet]] = [[] for _ in pools]
    for _, t, entry in jobs:
        result, stats = calibrate_and_evaluate(calibrator, entry.structure, calib_batches, val_batches, entry.costs, entry.m)
        per_pool[t].append(result)
        bn_stats[entry.structure.key] = stats
        if bar is not None:
            bar.set_postfix_str(f"pool {t + 1}/{len(pools)} acc {result.accuracy:.3f}", refresh=False)
            bar.update(1)
        if on_progress is not None:
            done = sum(len(c) for c in per_pool)
            on_progress(done, total, f"pool {t + 1}/{len(pools)}: accuracy {result.accuracy:.3f}")
    references = {}
    for name, s in refs.items():
        result, stats = calibrate_and_evaluate(calibrator, s, calib_batches, val_batches, ctx.cost_model.costs(s))
        references[name] = result.to_json()
        bn_stats[s.key] = stats
        if bar is not None:
            bar.update(1)
        if on_progress is not None:
            on_progress(len(jobs) + len(references), total, f"reference {name}: accuracy {result.accuracy:.3f}")
    if bar is not None:
        bar.close()
    front = front_record(
        int(state["epoch"]), cfg.constraint, top_k, min(images, data.num_train), data.num_val,
        [p.budget for p in pools], per_pool, references,
    )
    atomic_torch_save(bn_stats, run.bn_stats_file)
    atomic_write_json(run.front_file, front)
    return front
