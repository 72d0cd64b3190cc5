"""EAS on a dataset with superclasses: the generator's speed, EAS against its baselines with equal effort, the
generator against uniform draws within the budget, and the superclass drop rate.

For each run given (supernets trained alike but for ``superclass_dropout``), the
architecture generators of seeds 0..S-1 are trained where missing (``--seeds``,
``--epochs``; generator/ and generator-s1/, generator-s2/, ...), then every
superclass gets an architecture at three ceilings (25/50/75% of the way from
C(min) to C(max)) from each seed's generator. On the first run the baselines run on
the same scenarios with the matching search seed: ``random`` (uniform draws from
S within the ceiling), ``ofa-t`` (an evolutionary search per superclass) and
``ofa-v`` (one search over all classes per ceiling, used for every superclass).

Equal effort: every method gets ``--evaluations`` N calibrated evaluations per
scenario -- EAS and random calibrate N distinct candidates drawn within the
ceiling, OFA-T's search makes N, OFA-V's one search per ceiling makes N per
superclass sharing it. The records say what was made; the bench prints it.

``random`` is exactly "N uniform draws within the budget": the same number of
distinct candidates, the same rejection at the same ceiling, the same calibration
and choice on validation as EAS; only the distribution the candidates are drawn
from differs. So EAS minus random is the comparison that isolates the generator,
printed with both samplers' in-budget rates and draws per resolution.

Means over superclasses leave out superclasses of one class (100% for any model,
reported apart) and pool the test images of the others (each image judged by its
superclass's architecture). Every chosen architecture is measured image by image
on its superclass's test images, so differences are paired: per ceiling, the
(seeds x images) correctness of EAS against each baseline
(:func:`pss.evaluate.statistics.paired_difference`: 95% interval over seeds and
images, p, equivalence within ±``--margin`` by TOST, the minimum detectable
difference at 80% power), Holm-adjusted over the family of EAS-vs-baseline tests
(baselines x ceilings), each with a verdict: different, equivalent or inconclusive.

Prints (nothing is checked):
  1. the generator's time for 50 scenarios (EAS Table 3: 0.1 s), one batched forward and with drawing;
  2. the effort each method was given and made (calibrated evaluations per scenario);
  3. the generator's draws: in-budget rate and draws per resolution, against uniform draws;
  4. test accuracy per ceiling and method: the mean over the multi-class superclasses with its 95% interval, per
     superclass, and the one-class superclasses apart;
  5. EAS minus each baseline (Holm over the family), and the generator against uniform draws within the budget;
  6. EAS at each drop rate (the runs given) minus the first run (its own Holm family).

    python bench/eas.py RUN_DROP0.6 [RUN_DROP0.3 RUN_DROP0] [--seeds 3] [--evaluations 10] [--epochs 20]

    python bench/eas.py RUN [--seeds 3] --draws-only [--draws 20000]

``--draws-only`` measures only the draws (section 3 with ``--draws`` draws per scenario, nothing kept or
calibrated; seconds): each existing seed's generator against uniform draws from S, at the same ceilings.

Writes the records into each run's generator*/scenarios.json (the dashboard's EAS page reads seed 0's). Records
already there with the same N are reused (their architectures are calibrated again to measure them image by
image); ``--fresh`` finds them again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import pss
from pss.eas.baselines import uniform_tally
from pss.eas.comparison import (
    Comparison,
    compare_family,
    draw_summary,
    effort_summary,
    pooled_correct,
    split_one_class,
    stack_seeds,
)
from pss.evaluate.statistics import EQUIVALENCE_MARGIN, arm_accuracy
from pss.io.generator import has_generator, read_scenarios
from pss.eas.draws import DrawTally
from pss.eas.search import draw_tallies
from pss.workflows.generate import METHODS, chosen_test_correct, generate_scenarios, open_generator

Cells = dict[str, dict[float, dict[str, dict[int, np.ndarray | None]]]]
"""method -> budget -> superclass -> seed -> per-image correctness on the superclass's test images."""


def _same_budget(a: float, b: float) -> bool:
    return round(float(a), 6) == round(float(b), 6)


def _reusable(run: str, seed: int, method: str, scenarios: list[tuple[str, float]], n: int) -> list[dict] | None:
    """The recorded records of ``method`` for every scenario, when all were made with N = ``n``; else None."""
    by = {(r["superclass"], round(float(r["budget"]), 6)): r for r in read_scenarios(run, seed) if r.get("method") == method}
    out = []
    for name, b in scenarios:
        r = by.get((name, round(float(b), 6)))
        if r is None or r.get("evaluations_requested") != n:
            return None
        out.append(r)
    return out


def _measure(loaded, scenarios, method: str, options, fresh: bool) -> tuple[list[dict], list[np.ndarray | None]]:
    """The records of ``method`` on ``scenarios`` (reused or made now) and each chosen architecture's per-image
    correctness on its superclass's test images."""
    reused = None if fresh else _reusable(str(loaded.trained.path), loaded.seed, method, scenarios, options.effort)
    if reused is not None:
        records, chosen = reused, None
    else:
        chosen = []
        records = generate_scenarios(loaded, scenarios, options, method=method, chosen_out=chosen)
    hits = chosen_test_correct(loaded, records, options, chosen)
    for r, h in zip(records, hits):
        if h is not None and r.get("test") and int(h.sum()) != int(r["test"]["correct"]):
            print(f"  note: {method} {r['superclass']} <= {r['budget']:.0f} seed {loaded.seed}: re-measured {int(h.sum())} "
                  f"correct, recorded {r['test']['correct']} (BN statistics estimated again)", flush=True)
    return records, hits


def _pct(x: float) -> str:
    return f"{100 * x:6.2f}"


def _ci(lo: float, hi: float, signed: bool = False) -> str:
    f = "+.2f" if signed else ".2f"
    return f"[{100 * lo:{f}}, {100 * hi:{f}}]"


def _shares_text(shares: dict[int, float]) -> str:
    return " ".join(f"{r}px {100 * v:3.0f}%" for r, v in sorted(shares.items()))


def _pooled(cells: Cells, method: str, budget: float, names: list[str]) -> np.ndarray | None:
    per = cells.get(method, {}).get(budget, {})
    arrays = {}
    for n in names:
        seeds = per.get(n) or {}
        if not seeds or any(v is None for v in seeds.values()):
            return None  # nothing fitted for some seed: no like-for-like mean
        arrays[n] = stack_seeds(seeds)
    return pooled_correct(arrays, names)


def _mean_cost(records: list[dict], budget: float, kind: str) -> float:
    costs = [r["costs"][kind] for r in records if _same_budget(r["budget"], budget) and r.get("costs")]
    return float(np.mean(costs)) if costs else float("nan")


def _comparison_lines(family: list[Comparison], label: Callable[[Comparison], str]) -> list[str]:
    lines = []
    for c in family:
        r = c.result
        per_seed = ", ".join(f"{100 * s.difference:+.2f}" for s in r.per_seed)
        lines.append(f"  {label(c)} <= {pss.format_cost(c.budget, 'macs'):>13}: {100 * r.difference:+.2f} "
                     f"{_ci(*r.ci95, signed=True)}  p {r.p_value:.3f} (Holm {c.p_holm:.3f}), equivalent within "
                     f"±{100 * r.margin:.1f}: Holm p {c.tost_holm:.3f}, MDD80 {100 * r.mdd80:.2f}  -> {c.verdict}; "
                     f"per seed {per_seed}")
    return lines


def _share_text(counts: dict[int, int]) -> str:
    total = sum(counts.values())
    return " ".join(f"{r}px {100 * n / total:3.0f}%" for r, n in sorted(counts.items())) if total else "-"


def draws_only(run: str, seeds: list[int], fractions: list[float], draws: int) -> None:
    """Section 3 alone, with ``draws`` draws per scenario: each seed's generator against uniform draws from S."""
    for seed in seeds:
        opened = open_generator(run, "cpu", seed)
        cm, kind = opened.trained.problem.cost_model, opened.doc["cost_kind"]
        lo, hi = opened.doc["c_min"], opened.doc["c_max"]
        budgets = [float(round(lo + f * (hi - lo))) for f in fractions]
        names = list(opened.smap.superclasses)
        floors = {r: cm.cost(kind, type(cm.space.min_structure)(cm.space.min_structure.widths, r)) for r in cm.space.resolutions}
        print(f"\n3. draws within the ceiling, run {run}, generator seed {seed}, {draws:,} draws per scenario (nothing "
              f"calibrated); cheapest subnet per resolution: "
              + ", ".join(f"{r}px {pss.format_cost(c, kind)}" for r, c in sorted(floors.items())))
        scenarios = [(k, b) for b in budgets for k in range(len(names))]
        tallies = draw_tallies(opened.generator, cm, scenarios, draws, seed, kind)
        for b in budgets:
            mine = [t for (k, b2), t in zip(scenarios, tallies) if b2 == b]
            pooled = DrawTally()
            for t in mine:
                pooled.draws += t.draws
                pooled.in_budget += t.in_budget
                pooled.resolutions.update(t.resolutions)
                pooled.in_budget_resolutions.update(t.in_budget_resolutions)
            uniform = uniform_tally(cm, b, draws, np.random.default_rng(seed), kind)
            rates = [t.in_budget_rate for t in mine]
            print(f"  <= {pss.format_cost(b, kind):>13} generator {100 * pooled.in_budget_rate:5.1f}% within the budget "
                  f"({100 * min(rates):.0f}-{100 * max(rates):.0f}% over the {len(names)} superclasses); drawn at "
                  f"{_share_text(pooled.resolutions)}; within the budget at {_share_text(pooled.in_budget_resolutions)}")
            print(f"  {'':>16} uniform   {100 * uniform.in_budget_rate:5.1f}% within the budget; within the budget at "
                  f"{_share_text(uniform.in_budget_resolutions)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="runs trained alike but for superclass_dropout; the first gets the baselines")
    ap.add_argument("--seeds", type=int, default=3, help="generator seeds 0..S-1 (and matching search seeds), default 3")
    ap.add_argument("--epochs", type=int, default=20, help="generator epochs for a seed without a generator")
    ap.add_argument("--evaluations", type=int, default=10, help="N: calibrated evaluations per scenario, every method")
    ap.add_argument("--methods", default=",".join(METHODS), help="methods on the first run (default: all)")
    ap.add_argument("--ceilings", default="0.25,0.5,0.75",
                    help="ceilings as fractions of the way from C(min) to C(max) (default 0.25,0.5,0.75)")
    ap.add_argument("--margin", type=float, default=EQUIVALENCE_MARGIN, help="equivalence margin (proportion, default 0.005)")
    ap.add_argument("--superclasses", default=None, help="map for a run trained without one (e.g. builtin)")
    ap.add_argument("--fresh", action="store_true", help="find every architecture again (default: reuse records with the same N)")
    ap.add_argument("--timing-only", action="store_true", help="only section 1 (the generator's time), on the first run")
    ap.add_argument("--draws-only", action="store_true", help="only the draws (section 3) of the existing generators of "
                    "the first run, with --draws draws per scenario; nothing trained or calibrated")
    ap.add_argument("--draws", type=int, default=20000, help="draws per scenario with --draws-only (default 20000)")
    args = ap.parse_args(argv)
    if args.seeds < 1 or args.evaluations < 1:
        ap.error("--seeds and --evaluations must be at least 1")
    methods = [m for m in args.methods.split(",") if m]
    if "eas" not in methods or any(m not in METHODS for m in methods):
        ap.error(f"--methods: eas and any of {', '.join(METHODS)}")
    fractions = [float(f) for f in args.ceilings.split(",") if f]
    if args.draws_only:
        draws_only(args.runs[0], [s for s in range(args.seeds) if has_generator(args.runs[0], s)] or [0], fractions,
                   args.draws)
        return 0
    torch.manual_seed(0)
    options = pss.GenerateOptions(evaluations=args.evaluations)
    seeds = list(range(args.seeds))
    main_run = args.runs[0]
    cells: dict[str, Cells] = {}
    records: dict[str, dict[str, list[dict]]] = {}
    rates: dict[str, float] = {}
    budgets: list[float] = []
    names: list[str] = []
    class_counts: dict[str, int] = {}
    for i, run in enumerate(args.runs):
        cells[run], records[run] = {}, {}
        for seed in seeds:
            if not has_generator(run, seed):
                print(f"training the generator of {run}, seed {seed} ({args.epochs} epochs) ...", flush=True)
                doc = pss.train_generator(run, superclasses=args.superclasses,
                                          settings=pss.settings_from(epochs=args.epochs, seed=seed), device="cpu")
                print(f"  {doc['training']['seconds']:.0f} s", flush=True)
            loaded = pss.load_generator(run, "cpu", seed)
            if i == 0 and seed == 0:
                lo, hi = loaded.doc["c_min"], loaded.doc["c_max"]
                budgets = [float(round(lo + f * (hi - lo))) for f in fractions]
                names = list(loaded.smap.superclasses)
                class_counts = {n: len(loaded.smap.classes_of(k)) for k, n in enumerate(names)}
                t = pss.generator_seconds(loaded, n=50, repeats=5, samples=args.evaluations)
                print(f"\n1. generator time, 50 scenarios, CPU ({torch.get_num_threads()} threads), median of 5: one "
                      f"batched forward {1000 * t['forward_s']:.1f} ms; with drawing {args.evaluations} architectures "
                      f"within budget each {1000 * t['with_drawing_s']:.0f} ms (EAS Table 3: 0.1 s)\n", flush=True)
                if args.timing_only:
                    return 0
            rates[run] = float(loaded.doc.get("superclass_dropout", 0.0))
            scenarios = [(name, b) for b in budgets for name in names]
            for m in (methods if i == 0 else ["eas"]):
                print(f"{Path(run).name}: {m}, seed {seed}, {len(scenarios)} scenarios ...", flush=True)
                recs, hits = _measure(loaded, scenarios, m, options, args.fresh)
                records[run].setdefault(m, []).extend(recs)
                for r, h in zip(recs, hits):
                    b = next(x for x in budgets if _same_budget(x, r["budget"]))
                    cells[run].setdefault(m, {}).setdefault(b, {}).setdefault(r["superclass"], {})[seed] = h
    print_report(main_run, args.runs, cells, records, rates, budgets, names, class_counts, seeds, args.evaluations, args.margin)
    return 0


def print_report(main_run: str, runs: list[str], cells: dict[str, Cells], records: dict[str, dict[str, list[dict]]],
                 rates: dict[str, float], budgets: list[float], names: list[str], class_counts: dict[str, int],
                 seeds: list[int], n: int, margin: float) -> None:
    """Sections 2-6 of the module docstring, from the measured cells and the records."""
    counted, single = split_one_class({s: class_counts[s] for s in names})
    base, recs = cells[main_run], records[main_run]
    methods = list(base)
    print(f"\n2. effort: N = {n} calibrated evaluations per scenario for every method, {len(seeds)} seed(s) "
          f"({', '.join(map(str, seeds))}); run {main_run} (superclass dropout {rates[main_run]})")
    for m in methods:
        e = effort_summary(recs[m])
        shared = [r["shared_search"] for r in recs[m] if r.get("shared_search")]
        extra = (f"; one search per ceiling over all classes, {min(s['evaluations'] for s in shared)}-"
                 f"{max(s['evaluations'] for s in shared)} evaluations shared by {shared[0]['scenarios']} superclasses"
                 if shared else "")
        print(f"  {m:7} asked {', '.join(map(str, e.requested)) or '?'}; made per scenario {e.made_min:g}-{e.made_max:g} "
              f"(mean {e.made_mean:.2f}) over {e.scenarios} scenario records, {e.short} with fewer{extra}")

    print("\n3. draws within the ceiling (all seeds and superclasses of a ceiling pooled; range over scenarios): "
          "the generator (eas) against uniform draws from S (random)")
    for b in budgets:
        for m in [m for m in ("eas", "random") if m in recs]:
            d = draw_summary([r for r in recs[m] if _same_budget(r["budget"], b)])
            if d is None:
                continue
            print(f"  <= {pss.format_cost(b, 'macs'):>13} {m:7} {d.draws:6d} draws, {d.in_budget:6d} within the budget: "
                  f"{100 * d.in_budget_rate:5.1f}% ({100 * d.rate_min:.0f}-{100 * d.rate_max:.0f}%); drawn at "
                  f"{_shares_text(d.resolution_share)}; within the budget at {_shares_text(d.in_budget_resolution_share)}")

    images = {s: max((h.size for m in methods for b in budgets for h in base[m][b][s].values() if h is not None), default=0)
              for s in names}
    print(f"\n4. test accuracy (%), mean over seeds; the mean pools the test images of the superclasses with more than "
          f"one class ({', '.join(f'{s} {images[s]:,}' for s in counted)} images), 95% interval over seeds and images")
    for b in budgets:
        print(f"\n  ceiling <= {pss.format_cost(b, 'macs')}")
        print("  " + "method".ljust(8) + "mean".rjust(8) + "  95% interval".ljust(20) + "mean MACs".rjust(11)
              + "".join(s[:20].rjust(22) for s in counted))
        for m in methods:
            pooled = _pooled(base, m, b, counted)
            if pooled is None:
                print(f"  {m:8}  nothing fitted for some superclass and seed: no like-for-like mean")
                continue
            a = arm_accuracy(pooled)
            per = []
            for s in counted:
                sa = arm_accuracy(stack_seeds(base[m][b][s]))
                per.append(f"{100 * sa.mean:5.1f} {_ci(*sa.ci95)}")
            print(f"  {m:8}{_pct(a.mean):>8}  {_ci(*a.ci95):18}{pss.format_quantity(_mean_cost(recs[m], b, 'macs')):>11}"
                  + "".join(p.rjust(22) for p in per))
    for s in single:
        values = sorted({float(h.mean()) for m in methods for b in budgets for h in base[m][b][s].values() if h is not None})
        said = f"{100 * values[0]:.1f}% for every method, seed and ceiling" if len(values) == 1 else \
            f"{', '.join(f'{100 * v:.1f}%' for v in values)} across methods, seeds and ceilings"
        print(f"  {s} (one class, {images[s]:,} test images): {said}; excluded from the means")

    pairs = []
    for m in [m for m in methods if m != "eas"]:
        for b in budgets:
            a, o = _pooled(base, "eas", b, counted), _pooled(base, m, b, counted)
            if a is not None and o is not None:
                pairs.append(("eas", m, b, a, o))
    family = compare_family(pairs, margin)
    print(f"\n5. EAS minus each baseline, paired on the same test images (points, 95% interval over seeds and images); "
          f"Holm over the family of {len(family)} tests (baselines x ceilings), difference and equivalence alike")
    print("\n".join(_comparison_lines(family, lambda c: f"eas - {c.other:6}")))
    uniform = [c for c in family if c.other == "random"]
    if uniform:
        print(f"\n   The generator against {n} uniform draws within the budget (eas - random above: the same N distinct "
              "candidates, rejection at the same ceiling, calibration and choice on validation; only the distribution "
              "drawn from differs):")
        for c in uniform:
            de = draw_summary([r for r in recs["eas"] if _same_budget(r["budget"], c.budget)])
            du = draw_summary([r for r in recs["random"] if _same_budget(r["budget"], c.budget)])
            rate = (f"in-budget rate {100 * de.in_budget_rate:.0f}% vs {100 * du.in_budget_rate:.0f}%"
                    if de is not None and du is not None else "")
            print(f"  <= {pss.format_cost(c.budget, 'macs'):>13}: {100 * c.result.difference:+.2f} "
                  f"{_ci(*c.result.ci95, signed=True)} -> {c.verdict}; chosen mean MACs "
                  f"{pss.format_quantity(_mean_cost(recs['eas'], c.budget, 'macs'))} vs "
                  f"{pss.format_quantity(_mean_cost(recs['random'], c.budget, 'macs'))}; {rate}")

    if len(runs) > 1:
        drop_pairs = []
        for run in runs[1:]:
            for b in budgets:
                a, o = _pooled(cells[run], "eas", b, counted), _pooled(base, "eas", b, counted)
                if a is not None and o is not None:
                    drop_pairs.append((run, main_run, b, a, o))
        drops = compare_family(drop_pairs, margin)
        print(f"\n6. EAS at each superclass drop rate minus drop {rates[main_run]:g} (Holm over these {len(drops)} tests)")
        for run in runs:
            for b in budgets:
                pooled = _pooled(cells[run], "eas", b, counted)
                if pooled is not None:
                    a = arm_accuracy(pooled)
                    print(f"  drop {rates[run]:.2f} <= {pss.format_cost(b, 'macs'):>13}: {_pct(a.mean)} {_ci(*a.ci95)}")
        print("\n".join(_comparison_lines(drops, lambda c: f"drop {rates[c.reference]:.2f} - drop {rates[c.other]:.2f}")))


if __name__ == "__main__":
    sys.exit(main())
