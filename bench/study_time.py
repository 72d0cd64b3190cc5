"""Bench: how long a study takes on this machine, from one real epoch of each of its strategies.

    python bench/study_time.py [STUDY] [--study-dir DIR] [--train-limit N] [--threads T]

For each strategy of the study (default: the built-in ``fashion-mnist``) one
epoch of the study's very run config is trained into a temporary folder (the
full training split unless ``--train-limit``), and its wall time, including the
end-of-epoch validation, is read from the snapshot. The projection is

    training = sum over strategies of seeds x epochs x (seconds of one epoch)

scaled by ``train_limit`` when given. With ``--study-dir`` (a finished study),
the selection seconds its runs measured are added, and the study's own measured
training time is printed beside the projection: a study trained next to other
work takes longer than the idle machine's projection, and this shows by how much.
Figures are from one run on a noisy machine; nothing is checked.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from pss.config import load_study
from pss.data import load_data
from pss.io.run import RunDir
from pss.io.study import read_study
from pss.workflows.study import format_duration, study_seconds
from pss.workflows.train import train


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", nargs="?", default="fashion-mnist", help="a study file or built-in study name")
    ap.add_argument("--study-dir", help="a finished study directory: add its measured selection time, show its training time")
    ap.add_argument("--train-limit", type=int, default=None, help="train on the first N images only (projection scaled)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice, the cores)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    study = load_study(args.study)
    print(f"study {args.study}: {', '.join(f'{s} x {len(study.seeds_of(s))} seeds' for s in study.strategies)}; "
          f"{torch.get_num_threads()} threads")
    total = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in study.strategies:
            seeds = study.seeds_of(strategy)
            cfg = study.run_config(strategy, seeds[0])
            full = load_data(cfg, create=False).num_train  # the whole training split, before any --train-limit
            epochs = cfg.epochs
            cfg.epochs, cfg.progress = 1, False
            if args.train_limit:
                cfg.train_limit = args.train_limit
            t0 = time.perf_counter()
            run = train(cfg, Path(tmp) / strategy)
            wall = time.perf_counter() - t0
            snap = RunDir(run.path).read_snapshots()[-1]
            scale = 1.0 if not args.train_limit else full / min(args.train_limit, full)
            epoch = float(snap["seconds"]) * scale
            projected = epoch * epochs * len(seeds)
            total += projected
            print(f"{strategy:8s} one epoch {epoch:7.1f} s ({snap['images_per_second']:.0f} images/s; process {wall:.0f} s "
                  f"with start-up) -> {len(seeds)} runs x {epochs} epochs: {format_duration(projected)}")
    print(f"projected training, idle machine: {format_duration(total)}")
    if args.study_dir:
        doc = read_study(args.study_dir)
        spent = study_seconds(doc)
        print(f"the study in {args.study_dir} measured: training {format_duration(spent['train'])}, "
              f"selection {format_duration(spent['selection'])}")
        print(f"projected study, idle machine: {format_duration(total + spent['selection'])} "
              "(projected training + the measured selection)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
