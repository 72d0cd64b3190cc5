"""Bench (b): mean Eq. 4 trials per accepted sample vs naive uniform sampling.

For the lowest, middle and highest pools of two spaces -- the paper's own
(MobileNetV1 on ImageNet, 128-224 px, budgets every 10M MACs) and the
cifar10-mbv2 preset -- print the mean number of candidates drawn until one
lands in theta +/- delta: with the per-budget marginals of Eq. 4, and with
naive uniform sampling from S (capped at 1e7 draws). The paper reports about
10 versus about 1e6.

    python bench/sampling_trials.py [--draws 200] [--naive-repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np

from pss.config import load_config
from pss.problem.problem import Problem
from pss.sampling.marginals import StructureDistributionSampler, naive_trials

CAP = 10_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--naive-repeats", type=int, default=3)
    args = ap.parse_args()
    cases = [
        ("paper: MobileNetV1 ImageNet, 10M steps", dict(model="mobilenet_v1", stem="imagenet", width_mult=1.0,
                                                       resolution_min=128, resolution_max=224, resolution_step=8,
                                                       budget_count=None, budget_step=10e6), 1000),
        ("preset cifar10-mbv2", {}, 10),
    ]
    for title, overrides, classes in cases:
        cfg = load_config("cifar10-mbv2", overrides)
        ctx = Problem.build(cfg, classes, 3)
        rng = np.random.default_rng(0)
        fn = ctx.cost_model.macs_array
        sampler = StructureDistributionSampler(ctx.space, fn, ctx.budgets, rng, set_size=cfg.structure_set_size, max_trials=10**6)
        print(f"{title}: {len(ctx.budgets)} pools, |G| = {cfg.structure_set_size}")
        print(f"  {'pool':>6} {'budget':>14} {'Eq. 4 trials':>13} {'naive trials':>14}")
        for name, t in (("lowest", 0), ("middle", len(ctx.budgets) // 2), ("highest", len(ctx.budgets) - 1)):
            eq4 = np.mean([sampler.sample(t, rng)[1] for _ in range(args.draws)])
            naive = [naive_trials(ctx.space, fn, ctx.budgets[t], rng, cap=CAP) for _ in range(args.naive_repeats)]
            capped = " (cap)" if max(naive) >= CAP else ""
            print(f"  {name:>6} {ctx.budgets[t].label:>14} {eq4:13.1f} {np.mean(naive):14.3g}{capped}")


if __name__ == "__main__":
    main()
