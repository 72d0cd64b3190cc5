"""PSS vs baselines on the CIFAR-10 subset: equal epochs, equal seed, accuracy at 4 budgets.

Trains one run per strategy with the `sample` preset's model, data and budgets
(MobileNetV1 x0.5 on the 5,085-image CIFAR-10 subset), calibrates each the same
way (`pss calibrate` for pss; `pss search --method uniform` for uniform/mutual,
`--method random` for the other strategies without pools, with the same number of calibrated subnets per budget as pss
calibrates), then prints `pss compare` at 4 budgets. One run each; the
validation split is 509 images, so one image is 0.2 points.

    python bench/strategy_comparison.py --out runs/comparison [--epochs 15] [--strategies pss,uniform,random]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def _run(argv: list[str]) -> None:
    from pss.cli import main

    print("$ pss " + " ".join(argv), flush=True)
    rc = main(argv)
    if rc != 0:
        raise SystemExit(f"pss {argv[0]} failed with exit code {rc}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs (one sub-folder per strategy)")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--strategies", default="pss,uniform,random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budgets", default=None, help="4 budgets, e.g. 6M,8M,10M,12M (default: 4 of the pss run's pools)")
    args = parser.parse_args()

    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    runs = []
    for strategy in strategies:
        run = args.out / strategy
        t0 = time.perf_counter()
        if not (run / "run.json").is_file():
            _run(["train", "sample", "--out", str(run), "--epochs", str(args.epochs), "--quiet",
                  "--set", f"strategy={strategy}", "--set", f"seed={args.seed}"])
        if not (run / "calibration" / "front.json").is_file():
            if strategy == "pss":
                _run(["calibrate", str(run), "--quiet"])
            else:
                # as many calibrated subnets per budget as `pss calibrate` evaluates (calib_top_k of the preset)
                # uniform/mutual trained uniform-width subnets only: search those (fair); others: random from S
                method = "uniform" if strategy in ("uniform", "mutual") else "random"
                _run(["search", str(run), "--method", method, "--evaluations", "3", "--quiet"])
        print(f"{strategy}: {time.perf_counter() - t0:.0f} s", flush=True)
        runs.append(str(run))

    import json

    from pss.api import compare_runs, format_comparison, write_comparison

    budgets = args.budgets.split(",") if args.budgets else None
    if budgets is None:
        front = json.loads((Path(runs[0]) / "calibration" / "front.json").read_text())
        edges = [p["budget"]["value"] + p["budget"]["tolerance"] for p in front["pools"]]
        budgets = [edges[i] for i in (1, 3, 5, 7)] if len(edges) >= 8 else edges[-4:]
    comparison = compare_runs(runs, budgets)
    print(format_comparison(comparison))
    print(f"written to {write_comparison(comparison)}")


if __name__ == "__main__":
    sys.exit(main())
