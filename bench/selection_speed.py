"""Calibrated evaluations per second: one structure at a time vs together, sharing common prefixes.

    python bench/selection_speed.py [RUN_DIR] [--per-budget 32] [--group 128] [--images N] [--val-images N] [--device cpu]

A calibrated evaluation (what `pss calibrate` and `pss search` do per subnet) is
a reset and exact re-estimation of the subnet's BN statistics on N training
images, then top-1 accuracy on the validation split. This bench times it on a
real trained run (RUN_DIR, else a `smoke` run trained into a temporary folder,
about a minute) for the same structures both ways:

* one at a time  ``SubnetEvaluator.__call__`` per structure (the path before
                 ``evaluate_many``: one full forward per structure and batch)
* together       ``SubnetEvaluator.evaluate_many`` in groups of ``--group``: a
                 prefix tree of blocks, each block of structures that share the
                 resolution and every earlier block's channels run once per batch

The structures are ``--per-budget`` distinct uniform draws in each budget band
of the run (as ``pss search --method random`` evaluates them). The two paths
run interleaved, band by band, alternating which goes first (the first pays
one-time kernel set-up for new shapes), each on a fresh evaluator so nothing is
cached. Printed: evaluations per second of each path, their ratio, and how far
their BN statistics and accuracies differ (the shared path runs the very same
block forwards, so both should be 0). Figures are from one run; this machine
may be noisy, so no threshold is checked.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pss.evaluate.selection import CalibratedSubnet  # noqa: E402
from pss.nn.device import resolve_device  # noqa: E402
from pss.problem.space import Structure  # noqa: E402
from pss.sampling.marginals import draw_in_band, uniform_draw  # noqa: E402
from pss.workflows.evaluation import GROUP_SIZE, SubnetEvaluator, open_evaluator  # noqa: E402
from pss.workflows.loaded import TrainedRun, load_trained  # noqa: E402


def trained_smoke_run(folder: Path) -> Path:
    """`pss train smoke` into ``folder``/smoke (the CIFAR-10 subset when present, generated images otherwise)."""
    out = folder / "smoke"
    subprocess.run([sys.executable, "-m", "pss", "train", "smoke", "--out", str(out), "--quiet"], check=True, cwd=REPO)
    return out


def evaluator_for(trained: TrainedRun, args, device: torch.device) -> SubnetEvaluator:
    """A fresh evaluator (empty cache) with the bench's images, validation images and group size."""
    ev = open_evaluator(trained, args.images, device)
    ev.group_size = args.group
    if args.val_images is not None:
        whole = ev.val_batches
        ev.val_batches = lambda: first_images(whole(), args.val_images)
    return ev


def first_images(batches, n: int):
    """The first ``n`` images of a batch stream, in the same batches."""
    left = n
    for x, y in batches:
        if left <= 0:
            return
        yield x[:left], y[:left]
        left -= x.shape[0]


def one_at_a_time(ev: SubnetEvaluator, structures: list[Structure]) -> tuple[float, list[CalibratedSubnet]]:
    t0 = time.perf_counter()
    results = [ev(s) for s in structures]
    return time.perf_counter() - t0, results


def together(ev: SubnetEvaluator, structures: list[Structure]) -> tuple[float, list[CalibratedSubnet]]:
    t0 = time.perf_counter()
    results = ev.evaluate_many(structures)
    return time.perf_counter() - t0, results


def differences(a: SubnetEvaluator, b: SubnetEvaluator, ra: list[CalibratedSubnet], rb: list[CalibratedSubnet]) -> dict[str, float]:
    """Largest absolute and relative difference of the BN statistics, and of the accuracies, of the same structures."""
    stat_abs = stat_rel = 0.0
    for r in ra:
        sa, sb = a.stats[r.key], b.stats[r.key]
        if list(sa) != list(sb):
            raise SystemExit(f"the two paths keep different BN layers for {r.key}")
        for k in sa:
            d = (sa[k] - sb[k]).abs()
            stat_abs = max(stat_abs, float(d.max()))
            stat_rel = max(stat_rel, float((d / sa[k].abs().clamp_min(1e-12)).max()))
    acc = [abs(x.accuracy - y.accuracy) for x, y in zip(ra, rb)]
    return {"stat_abs": stat_abs, "stat_rel": stat_rel, "acc_abs": max(acc), "acc_differ": sum(d > 0 for d in acc)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", help="a trained run (default: train a smoke run into a temporary folder)")
    ap.add_argument("--per-budget", type=int, default=32, help="distinct in-band structures per budget band")
    ap.add_argument("--group", type=int, default=GROUP_SIZE, help="structures calibrated together (evaluate_many's group size)")
    ap.add_argument("--images", type=int, default=None, help="calibration images (default: the run's calib_images)")
    ap.add_argument("--val-images", type=int, default=None, help="validation images (default: the whole validation split)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = Path(args.run) if args.run else trained_smoke_run(Path(tmp))
        if not args.run:
            print(f"trained a smoke run in {time.perf_counter() - t0:.0f} s")
        dev = resolve_device(args.device)
        trained = load_trained(run, dev)
        problem = trained.problem
        probe = evaluator_for(trained, args, dev)
        val_images = sum(y.numel() for _, y in probe.val_batches())
        print(f"run {run}: {trained.cfg.model} x{trained.cfg.width_mult}, resolutions {list(problem.space.resolutions)}, "
              f"{len(problem.budgets)} budgets; {probe.calibration_images} calibration and {val_images} validation images, "
              f"batch {probe.batch_size}; {args.per_budget} structures per budget, groups of {args.group}; device {dev}, "
              f"{torch.get_num_threads()} threads")

        totals = {"one": 0.0, "together": 0.0}
        worst = {"stat_abs": 0.0, "stat_rel": 0.0, "acc_abs": 0.0, "acc_differ": 0}
        count = 0
        for t, band in enumerate(problem.budgets):
            rng = np.random.default_rng([args.seed, t])
            structures, _ = draw_in_band(uniform_draw(problem.space), band, problem.cost_fn(band.kind), args.per_budget, rng)
            ev_one, ev_many = evaluator_for(trained, args, dev), evaluator_for(trained, args, dev)
            order = [("one", one_at_a_time, ev_one), ("together", together, ev_many)]
            results = {}
            for name, path, ev in (order if t % 2 == 0 else order[::-1]):
                seconds, results[name] = path(ev, structures)
                totals[name] += seconds
            diff = differences(ev_one, ev_many, results["one"], results["together"])
            worst = {k: max(worst[k], diff[k]) for k in worst}
            count += len(structures)
            print(f"budget {t + 1}: {len(structures)} structures, resolutions "
                  f"{sorted({s.resolution for s in structures})}, best accuracy {max(r.accuracy for r in results['one']):.3f}; "
                  f"max |stat diff| {diff['stat_abs']:.2g}, accuracies differing {diff['acc_differ']}")

        one, many = count / totals["one"], count / totals["together"]
        print(f"one at a time: {one:6.2f} calibrated evaluations/s ({totals['one']:.1f} s for {count})")
        print(f"together:      {many:6.2f} calibrated evaluations/s ({totals['together']:.1f} s for {count})")
        print(f"ratio together / one at a time = {many / one:.2f}")
        print(f"same results: max |BN statistic difference| {worst['stat_abs']:.3g} (relative {worst['stat_rel']:.3g}), "
              f"max |accuracy difference| {worst['acc_abs']:.3g} ({worst['acc_differ']} of {count} structures differ)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
