"""Trials per valid sample: PSE-Net's prior vs naive uniform sampling (PSE-Net Fig. 4a).

    python bench/search_trials.py [RUN_DIR] [--valid N] [--seed S]

For a few budgets of a real run (default: the bundled sample run, a PSS run
without per-step ``samples``, so its pool entries give the loss records), the
mean number of draws each sampler needs per structure whose cost lies in
theta +/- delta:

* uniform     naive uniform sampling from S (PSS-Net Sec. 3.1)
* set (Eq.4)  per-gene marginals counted over the band's members of a generated
              structure set G (PSS-Net Eq. 4; the smoothing base of the prior)
* Eq. 16      the prior from the loss records' counts in the band, no quality weights
* Eq. 20      the prior with quality weights (what `pss search --method evolution` samples)

Budgets: the run's own Theta (delta as trained), the same centres with delta/4
(narrow bands), and two off-range bands near C(min) and C(max) where uniform
sampling hits the long tail. No model is loaded; runs in seconds.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pss.problem.budgets import Budget  # noqa: E402
from pss.units import format_quantity  # noqa: E402
from pss.io.run import open_run  # noqa: E402
from pss.sampling.marginals import Marginals, generate_structure_set, marginals_draw, trials_per_valid_sample, uniform_draw  # noqa: E402
from pss.evolution.prior import prior_marginals  # noqa: E402
from pss.evolution.records import band_records  # noqa: E402
from pss.workflows.search import load_loss_records  # noqa: E402

SAMPLE_RUN = REPO / "sample_checkpoints" / "cifar10-subset-mbv1"


def bands_of(ctx, kind: str, run_budgets: list[Budget]) -> list[tuple[str, Budget]]:
    delta = run_budgets[0].tolerance
    c_min = ctx.cost_model.cost(kind, ctx.space.min_structure)
    c_max = ctx.cost_model.cost(kind, ctx.space.max_structure)
    picks = sorted({0, len(run_budgets) // 2, len(run_budgets) - 1})
    out = [(f"pool {t}", run_budgets[t]) for t in range(len(run_budgets))]
    out += [(f"pool {t}, delta/4", Budget(kind, run_budgets[t].value, delta / 4)) for t in picks]
    out += [("near C(min)", Budget(kind, c_min + 1.5 * delta / 4, delta / 4)),
            ("near C(max)", Budget(kind, c_max - 1.5 * delta / 4, delta / 4))]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", default=str(SAMPLE_RUN))
    ap.add_argument("--valid", type=int, default=500, help="valid samples per measurement")
    ap.add_argument("--max-trials", type=int, default=5_000_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    run = open_run(args.run)
    run_json = run.read_run()
    cfg, ctx = run.read_problem(run_json)
    kind = run_json["constraint"]
    cost_fn = functools.partial(ctx.cost_model.cost_array, kind)
    records = load_loss_records(run)
    gw, gr = generate_structure_set(ctx.space, int(cfg.structure_set_size), np.random.default_rng([args.seed, 1]))
    gc = cost_fn(gw, gr)
    run_budgets = [Budget.from_json(b) for b in run_json["budgets"]]
    print(f"run {run.path}: {len(ctx.space)} width dims, resolutions {list(ctx.space.resolutions)}, "
          f"{kind} {format_quantity(ctx.cost_model.cost(kind, ctx.space.min_structure))}.."
          f"{format_quantity(ctx.cost_model.cost(kind, ctx.space.max_structure))}")
    print(f"loss records: source={records.source}, {len(records)} rows, {len(records.keys)} structures; "
          f"structure set |G|={len(gr)}; {args.valid} valid samples per cell, mean trials per valid sample")
    header = f"{'band':<18} {'theta':>8} {'delta':>7} {'records':>7} {'uniform':>9} {'set(Eq.4)':>9} {'Eq. 16':>8} {'Eq. 20':>8}"
    print(header)
    print("-" * len(header))

    def fmt(r):
        v = r["trials_per_valid"]
        if v is None:
            return f">{format_quantity(r['trials'])}"
        return f"{v:.3g}"

    for i, (name, band) in enumerate(bands_of(ctx, kind, run_budgets)):
        base = Marginals.count(ctx.space, gw[band.contains_array(gc)], gr[band.contains_array(gc)])
        br = band_records(records, ctx.space, cost_fn, band)
        samplers = {
            "uniform": uniform_draw(ctx.space),
            "set": marginals_draw(base),
            "eq16": marginals_draw(prior_marginals(records, ctx.space, cost_fn, band, quality=False, base=base, pseudo_count=16)),
            "eq20": marginals_draw(prior_marginals(records, ctx.space, cost_fn, band, quality=True, base=base, pseudo_count=16)),
        }
        cells = {k: trials_per_valid_sample(s, band, cost_fn, np.random.default_rng([args.seed, i, j]), valid=args.valid,
                                            max_trials=args.max_trials)
                 for j, (k, s) in enumerate(samplers.items())}
        print(f"{name:<18} {format_quantity(band.value):>8} {format_quantity(band.tolerance):>7} {len(br):>7} "
              f"{fmt(cells['uniform']):>9} {fmt(cells['set']):>9} {fmt(cells['eq16']):>8} {fmt(cells['eq20']):>8}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
