"""EAS on a dataset with superclasses: the generator's speed, EAS against its baselines, and the superclass drop rate.

For each run given (supernets trained alike but for ``superclass_dropout``), the
architecture generator is trained if the run has none (``--epochs``), then every
superclass gets an architecture at three budgets (25/50/75% of the way from
C(min) to C(max), ceilings). On the first run the baselines run on the same
scenarios: ``random`` (as many uniform draws within the budget as EAS gets
candidates), ``ofa-t`` (an evolutionary search per superclass) and ``ofa-v``
(one search over all classes per budget), each with ``--evaluations``
calibrated evaluations. Every chosen architecture is then re-measured image by
image on its superclass's test images, so differences are paired: per scenario
McNemar's exact test, and for the mean over superclasses a bootstrap over the
test images (95% interval; significant when it excludes 0).

Prints (one run, noisy machine; nothing is checked):
  1. the generator's time for 50 scenarios (EAS Table 3: 0.1 s), one batched forward and with drawing;
  2. per-superclass test accuracy per budget and method, with 95% intervals, and the mean over superclasses;
  3. EAS minus each baseline, paired;
  4. EAS at each drop rate (the runs given), paired against the first run.

    python bench/eas.py RUN_DROP0.6 RUN_DROP0.3 RUN_DROP0 [--epochs 20] [--samples 10] [--evaluations 40]

Writes the records into each run's generator/scenarios.json (the dashboard's EAS page reads them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import pss
from pss.eas.search import restricted_predictions
from pss.evaluate.statistics import mcnemar_exact, wilson_interval
from pss.io.generator import has_generator
from pss.workflows.generate import class_batches, generate_scenarios

METHODS = ("eas", "random", "ofa-t", "ofa-v")


def _fmt_acc(hits: np.ndarray) -> str:
    lo, hi = wilson_interval(int(hits.sum()), int(hits.size))
    return f"{100 * hits.mean():5.1f} [{100 * lo:4.1f}, {100 * hi:4.1f}]"


def _boot_mean_diff(a: list[np.ndarray], b: list[np.ndarray], reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over superclasses of (acc_a - acc_b), paired per image; bootstrap over each superclass's images."""
    rng = np.random.default_rng(seed)
    point = float(np.mean([x.mean() - y.mean() for x, y in zip(a, b)]))
    reps_out = np.zeros(reps)
    for x, y in zip(a, b):
        d = x.astype(np.float64) - y.astype(np.float64)
        idx = rng.integers(0, d.size, size=(reps, d.size))
        reps_out += d[idx].mean(axis=1)
    reps_out /= len(a)
    lo, hi = np.percentile(reps_out, [2.5, 97.5])
    return point, float(lo), float(hi)


def _measure(loaded, scenarios, method, options) -> dict[tuple[str, float], tuple[dict, np.ndarray]]:
    chosen: list = []
    records = generate_scenarios(loaded, scenarios, options, method=method, chosen_out=chosen)
    bs = loaded.trained.cfg.eval_batch_size
    out = {}
    for r, c in zip(records, chosen):
        target = loaded.target(r["superclass"])
        hits = restricted_predictions(loaded.calibrator, c.structure, c.stats,
                                      class_batches(loaded.data, "test", target.classes, bs, loaded.device), target.classes)
        out[(r["superclass"], r["budget"])] = (r, hits.numpy())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="runs trained alike but for superclass_dropout; the first gets the baselines")
    ap.add_argument("--epochs", type=int, default=20, help="generator epochs for a run without a generator")
    ap.add_argument("--samples", type=int, default=10, help="EAS candidates (and random draws) per scenario")
    ap.add_argument("--evaluations", type=int, default=40, help="calibrated evaluations of each OFA-T / OFA-V search")
    ap.add_argument("--methods", default=",".join(METHODS), help="methods on the first run (default: all)")
    ap.add_argument("--superclasses", default=None, help="map for a run trained without one (e.g. builtin)")
    ap.add_argument("--timing-only", action="store_true", help="only section 1 (the generator's time), on the first run")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    options = pss.GenerateOptions(samples=args.samples, evaluations=args.evaluations)
    results: dict[str, dict] = {}
    rates: dict[str, float] = {}
    for i, run in enumerate(args.runs):
        if not has_generator(run):
            print(f"training the generator of {run} ({args.epochs} epochs) ...", flush=True)
            doc = pss.train_generator(run, superclasses=args.superclasses, settings=pss.settings_from(epochs=args.epochs),
                                      device="cpu")
            print(f"  {doc['training']['seconds']:.0f} s", flush=True)
        loaded = pss.load_generator(run, "cpu")
        rates[run] = float(loaded.doc.get("superclass_dropout", 0.0))
        lo, hi = loaded.doc["c_min"], loaded.doc["c_max"]
        budgets = [round(lo + f * (hi - lo)) for f in (0.25, 0.5, 0.75)]
        scenarios = [(name, b) for b in budgets for name in loaded.smap.superclasses]
        if i == 0:
            t = pss.generator_seconds(loaded, n=50, repeats=5, samples=args.samples)
            print(f"\n1. generator time, 50 scenarios, CPU ({torch.get_num_threads()} threads), median of 5: "
                  f"one batched forward {1000 * t['forward_s']:.1f} ms; with drawing {args.samples} architectures within "
                  f"budget each {1000 * t['with_drawing_s']:.0f} ms (EAS Table 3: 0.1 s)", flush=True)
            if args.timing_only:
                return 0
        methods = [m for m in args.methods.split(",") if m] if i == 0 else ["eas"]
        results[run] = {}
        for m in methods:
            print(f"{Path(run).name}: {m} on {len(scenarios)} scenarios ...", flush=True)
            results[run][m] = _measure(loaded, scenarios, m, options)
        names = list(loaded.smap.superclasses)
        if i == 0:
            first_names, first_budgets = names, budgets
    main_run = args.runs[0]
    print(f"\n2. per-superclass test accuracy (%) [95% Wilson], run {main_run} (superclass dropout {rates[main_run]})")
    for b in first_budgets:
        print(f"\n  budget <= {pss.format_cost(b, 'macs')}")
        print("  " + "method".ljust(7) + "".join(n[:22].rjust(24) for n in first_names) + "   mean acc   mean MACs   evals/scenario")
        for m, res in results[main_run].items():
            cells = [res[(n, b)] for n in first_names]
            accs = [h for _, h in cells]
            macs = np.mean([r["costs"]["macs"] for r, _ in cells])
            evals = np.mean([r["candidates"] for r, _ in cells])
            print("  " + m.ljust(7) + "".join(_fmt_acc(h).rjust(24) for h in accs)
                  + f"   {100 * np.mean([h.mean() for h in accs]):6.2f}   {pss.format_quantity(macs):>9}   {evals:.0f}")
    print("\n3. EAS minus baseline, paired on the same test images (points; mean over superclasses with a bootstrap 95% "
          "interval; per superclass McNemar's exact p)")
    base = results[main_run]
    for m in [m for m in base if m != "eas"]:
        for b in first_budgets:
            a = [base["eas"][(n, b)][1] for n in first_names]
            o = [base[m][(n, b)][1] for n in first_names]
            d, lo, hi = _boot_mean_diff(a, o)
            ps = []
            for x, y in zip(a, o):
                ps.append(mcnemar_exact(int((x & ~y).sum()), int((~x & y).sum())))
            sig = "significant" if lo > 0 or hi < 0 else "not significant"
            print(f"  eas - {m:6} <= {pss.format_cost(b, 'macs'):>12}: {100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] "
                  f"({sig}); McNemar p per superclass: {', '.join(f'{p:.2g}' for p in ps)}")
    if len(args.runs) > 1:
        print("\n4. EAS at each superclass drop rate (mean test accuracy over superclasses, %), and minus the first run, paired")
        for run in args.runs:
            for b in first_budgets:
                res = results[run]["eas"]
                accs = [res[(n, b)][1] for n in first_names]
                line = f"  drop {rates[run]:.2f} <= {pss.format_cost(b, 'macs'):>12}: {100 * np.mean([h.mean() for h in accs]):6.2f}"
                if run != main_run:
                    d, lo, hi = _boot_mean_diff(accs, [results[main_run]["eas"][(n, b)][1] for n in first_names])
                    sig = "significant" if lo > 0 or hi < 0 else "not significant"
                    line += f"   vs drop {rates[main_run]:.2f}: {100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] ({sig})"
                print(line)
    print("\nNote: a superclass of one class (e.g. Fashion-MNIST's bags) is 100% for any model: its cell says nothing.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
