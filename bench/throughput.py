"""Bench (c): PSS training throughput (images/s) of the CPU presets.

Runs real PSS steps (max + prioritized medium + min, one optimizer step) on
generated 32-px data with each preset's model and batch size and prints
images per second and the implied minutes per CIFAR-10 epoch (45,000 images
after the validation holdout).

    python bench/throughput.py [--steps 20] [--presets smoke cifar10-mbv1 cifar10-mbv2 cifar10-resnet20]
"""

from __future__ import annotations

import argparse
import time

import torch

from pss.config import load_config
from pss.config import DataConfig
from pss.data import load_data
from pss.training.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--presets", nargs="+", default=["smoke", "cifar10-mbv1", "cifar10-mbv2", "cifar10-resnet20"])
    args = ap.parse_args()
    data = load_data(DataConfig(dataset="synthetic"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'preset':<18} {'model':<22} {'max MACs':>9} {'batch':>6} {'img/s':>7} {'min/epoch (45k)':>16}")
    for name in args.presets:
        cfg = load_config(name, {"dataset": "synthetic", "progress": False, "device": args.device, "structure_set_size": 20000})
        trainer = Trainer.build(cfg, data)
        gen = torch.Generator().manual_seed(0)
        batches = list(data.train_batches(cfg.batch_size, gen, trainer.device))
        cl = cfg.channels_last
        for i in range(args.warmup):
            x, y = batches[i % len(batches)]
            trainer.train_step(x.contiguous(memory_format=torch.channels_last) if cl else x, y, 0.5)
        t0 = time.perf_counter()
        for i in range(args.steps):
            x, y = batches[i % len(batches)]
            trainer.train_step(x.contiguous(memory_format=torch.channels_last) if cl else x, y, 0.5)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        ips = args.steps * cfg.batch_size / (time.perf_counter() - t0)
        macs = trainer.costs.macs(trainer.max_structure) / 1e6
        print(f"{name:<18} {cfg.model + ' x' + str(cfg.width_mult):<22} {macs:8.1f}M {cfg.batch_size:>6} {ips:7.0f} {45000 / ips / 60:16.1f}")


if __name__ == "__main__":
    main()
