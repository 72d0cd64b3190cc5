"""Bench (e): accuracy of the latency lookup table (PSS-Net Sec. 4.2, Fig. 3).

Builds a block-latency LUT for a preset's supernet (default cifar10-mbv1, the
fastest CPU preset) on this machine's CPU, times n = 200 random structures end
to end (dense models, the same protocol), and prints the RMSE (ms) and the
mean / median relative error of predicted vs measured latency, the PSS-Net
Fig. 3 comparison. Each batch size is measured ONCE; every statistic of
``--statistics`` (median of the per-pass medians, min of the per-pass medians,
min of all calls) is then evaluated on the same timed calls, for table and
whole models alike, so the statistics are compared under identical load.

Timing runs on ``--threads`` intra-op threads (default 1, like the paper's
single CPU core). On a machine shared with other jobs the numbers are noisy:
the script prints the load average before and after, and each result line
reports how much a structure's pass medians disagree (the measurement
spread), next to the error of the best constant prediction (a flat baseline:
small models at batch 1 are dominated by per-call overhead, which a LUT and a
constant both predict).

    python bench/lut_check.py [--preset cifar10-mbv1] [--batch-sizes 1] [--n 200]
        [--statistics median min-median min] [--html lut_check.html] [--json result.json] [--lut-out lut.json]

``--html`` gets one figure per (batch size, statistic), suffixed -b<B>-<statistic>
when there is more than one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from pss.config import load_config
from pss.io.lut import write_lut
from pss.problem.problem import spec_and_space
from pss.latency.build import lut_from_samples, measure_lut_samples
from pss.latency.check import compare_with_lut, sample_check_structures
from pss.latency.timing import STATISTICS, TimingProtocol, measure_structures


def _progress(label: str):
    last = [0.0]

    def report(done: int, total: int, what: str) -> None:
        now = time.perf_counter()
        if now - last[0] > 10 or done == total:
            last[0] = now
            print(f"  [{label}] {done}/{total} {what}", file=sys.stderr, flush=True)

    return report


def _with_suffix(path: Path, suffix: str, many: bool) -> Path:
    return path.with_name(f"{path.stem}-{suffix}{path.suffix}") if many else path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cifar10-mbv1")
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    ap.add_argument("--n", type=int, default=200, help="structures timed end to end")
    ap.add_argument("--seed", type=int, default=0, help="seed of the checked structures")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--statistics", nargs="+", default=list(STATISTICS), choices=list(STATISTICS))
    ap.add_argument("--html", type=Path, help="write the Fig. 3 scatter(s) here")
    ap.add_argument("--json", type=Path, help="write every LutCheck (to_json) here, as a list")
    ap.add_argument("--lut-out", type=Path, help="write the LUT of the first statistic here (suffixed per batch size when several)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = load_config(args.preset)
    spec, space = spec_and_space(cfg, args.num_classes, 3)
    print(f"preset {args.preset}: {cfg.model} x{cfg.width_mult}, resolutions {list(space.resolutions)}, "
          f"{len(space)} width dimensions; torch {torch.__version__}, {args.threads} thread(s), "
          f"channels_last={cfg.channels_last}; load average {os.getloadavg()[0]:.2f}")
    print(f"protocol: warmup {args.warmup}, repeats {args.repeats}, passes {args.passes}; n = {args.n} structures (seed {args.seed})")
    structures = sample_check_structures(space, args.n, args.seed)
    results = []
    many = len(args.batch_sizes) * len(args.statistics) > 1
    for b in args.batch_sizes:
        t0 = time.perf_counter()
        protocol = TimingProtocol(batch_size=b, warmup=args.warmup, repeats=args.repeats, passes=args.passes,
                                  threads=args.threads, channels_last=cfg.channels_last)
        lut_samples = measure_lut_samples(spec, space, protocol, progress=_progress(f"LUT b={b}"))
        t_lut = time.perf_counter() - t0
        checked = measure_structures(spec, structures, protocol, _progress(f"check b={b}"))
        print(f"\nbatch {b}: {len(lut_samples.runs)} block variants timed in {t_lut:.0f} s, "
              f"{len(structures)} whole models in {checked.seconds:.0f} s; load average {os.getloadavg()[0]:.2f}")
        print(f"  {'statistic':>10} {'RMSE ms':>9} {'mean rel':>9} {'median rel':>10} {'max rel':>8} {'<=5%':>5} "
              f"{'r':>6} {'const':>6} {'spread':>7} {'overhead':>9} {'measured ms':>16}")
        for i, stat in enumerate(args.statistics):
            lut = lut_from_samples(spec, space, lut_samples, stat)
            res = compare_with_lut(lut, checked, stat, seed=args.seed)
            results.append(res)
            print(f"  {stat:>10} {res.rmse_ms:9.4f} {100 * res.mean_rel_error:8.2f}% {100 * res.median_rel_error:9.2f}% "
                  f"{100 * res.max_rel_error:7.1f}% {100 * res.within_5pct:4.0f}% {res.pearson_r:6.3f} "
                  f"{100 * res.baseline_mean_rel_error:5.1f}% {100 * res.noise_rel:6.1f}% {res.overhead_ms:9.4f} "
                  f"{res.measured_min_ms:7.3f}..{res.measured_max_ms:7.3f}")
            if args.lut_out and i == 0:
                out = _with_suffix(args.lut_out, f"b{b}", len(args.batch_sizes) > 1)
                write_lut(out, lut)
                print(f"  LUT ({stat}) written to {out}")
            if args.html:
                from pssviz.latency import lut_check_figure

                out = _with_suffix(args.html, f"b{b}-{stat}", many)
                lut_check_figure(res).write_html(out, include_plotlyjs="cdn")
                print(f"  figure written to {out}")
    print("\ncolumns: relative errors |pred - meas| / meas; <=5%: share of structures within 5%; r: Pearson r of "
          "predicted vs measured; const: mean relative error of the best constant prediction (median measured); "
          "spread: median over structures of (max - min of its pass medians) / measured (measurement noise)")
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in results], indent=1, allow_nan=False))
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()
