"""Does the stored pool metric m go stale, and does re-measuring it (``calib_rescore``) change what is chosen?

The paper's m is a moving average of -CE observed *when an entry was sampled*; entries sampled long
ago keep old values. On a trained run this script

1. re-measures every pool entry's -CE with the final weights on fixed training images and prints, per
   pool, Spearman's rank correlation between stored m and the fresh value, and how often the entries
   that lead by m were sampled compared with the rest;
2. calibrates two copies of the run, one choosing each pool's top-k by stored m (the paper), one by
   the fresh metric (``--rescore``), and prints which pool bests differ and their test accuracy (the
   test split never chooses), plus the subnet a budget ceiling at each pool's upper edge buys.

    python bench/stale_metric.py RUN_DIR [--top-k K] [--images N]

The run is read only; the two calibrations happen in temporary copies.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pss
from pss.io.run import candidate_test, open_run, subnet_for_budget


def _calibrate_copy(run: Path, root: Path, name: str, rescore: bool, top_k: int | None, images: int | None) -> dict:
    copy = root / name
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("calibration", "comparisons"))
    t0 = time.perf_counter()
    front = pss.calibrate(copy, top_k=top_k, images=images, progress=False, rescore=rescore)
    print(f"calibrated by {'fresh -CE' if rescore else 'stored m'} in {time.perf_counter() - t0:.0f} s")
    return front


def _test(c: dict) -> str:
    t = candidate_test(c)
    if t is None:
        return "no test split"
    lo, hi = t.interval
    return f"{100 * t.value:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--top-k", type=int, default=None, help="default: the run's calib_top_k")
    ap.add_argument("--images", type=int, default=None, help="calibration images (default: the run's calib_images)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        by_m = _calibrate_copy(args.run, root, "by-m", False, args.top_k, args.images)
        fresh = _calibrate_copy(args.run, root, "fresh", True, args.top_k, args.images)

    snapshot = open_run(args.run).latest_snapshot()
    print(f"\nrank correlation (Spearman) of stored m and fresh -CE inside each pool, on "
          f"{fresh['selection']['images']:,} training images:")
    rhos = fresh["selection"]["rank_correlation"]
    k = by_m["top_k"]
    for t, (pool, rho) in enumerate(zip(snapshot["pools"], rhos)):
        entries = pool["entries"]
        top = [e["times_sampled"] for e in entries[:k]]
        rest = [e["times_sampled"] for e in entries[k:]]
        rest_text = f"{min(rest)}-{max(rest)}" if rest else "-"
        rho_text = "undefined" if rho is None else f"{rho:+.2f}"
        print(f"  pool {t} ({pool['budget']['label']}): rho {rho_text}; top-{k} by m sampled {min(top)}-{max(top)} times, "
              f"the other {len(rest)} {rest_text} times")
    valid = [r for r in rhos if r is not None]
    if valid:
        print(f"  median rho {statistics.median(valid):+.2f} over {len(valid)} pools")

    print("\neach pool's best (Eq. 5 over its calibrated top-k), test accuracy [95% CI]:")
    changed, diffs = 0, []
    for a, b in zip(by_m["pools"], fresh["pools"]):
        if a["best"] is None or b["best"] is None:
            continue
        ca, cb = a["candidates"][a["best"]], b["candidates"][b["best"]]
        same = ca["key"] == cb["key"]
        changed += not same
        ta, tb = candidate_test(ca), candidate_test(cb)
        if ta is not None and tb is not None:
            diffs.append(100 * (tb.value - ta.value))
        overlap = len({c["key"] for c in a["candidates"]} & {c["key"] for c in b["candidates"]})
        print(f"  pool {a['index']} ({a['budget']['label']}): by m {_test(ca)} val {100 * ca['accuracy']:.1f}% | "
              f"fresh {_test(cb)} val {100 * cb['accuracy']:.1f}%  {'same subnet' if same else 'different subnet'}; "
              f"{overlap} of {len(a['candidates'])} calibrated candidates shared")
    print(f"  {changed} of {len(by_m['pools'])} pool bests differ")
    if diffs:
        print(f"  test accuracy, fresh minus stored m: mean {statistics.mean(diffs):+.2f} points "
              f"(min {min(diffs):+.2f}, max {max(diffs):+.2f}) over {len(diffs)} pools")

    print("\nwhat a budget ceiling at each pool's upper edge buys (min/max subnets included), test accuracy:")
    kind = by_m["constraint"]
    for p in by_m["pools"]:
        ceiling = float(p["budget"]["value"]) + float(p["budget"]["tolerance"])
        _, ca = subnet_for_budget(by_m, ceiling, kind)
        _, cb = subnet_for_budget(fresh, ceiling, kind)
        print(f"  <= {pss.format_cost(ceiling, kind)}: by m {_test(ca)} | fresh {_test(cb)}"
              f"{'' if ca['key'] == cb['key'] else '  (different subnets)'}")


if __name__ == "__main__":
    main()
