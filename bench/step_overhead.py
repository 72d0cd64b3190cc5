"""Bench (a): PSS training step time / summed step times of the same three subnets as dense models.

One PSS step (Alg. 2) trains the max, a prioritized medium and the min subnet
through the slimmable supernet. The ideal is the cost of training those three
subnets as separate dense models (``pss.nn.supernet.extract_subnet``) on the same
batch. The ratio measures what slicing, sampling, resizing and distillation
add. Target: <= 1.15.

Both sides are measured interleaved, step by step, in one process, and the
ratio of medians is printed (this machine is noisy). Dense models get one
warm-up step each, so one-time kernel set-up is excluded from them; the
supernet is measured in steady state, where every medium subnet is new.

    python bench/step_overhead.py [--preset cifar10-mbv2] [--steps 30] [--batch-size 128] [--device auto]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from pss.config import load_config
from pss.config import DataConfig
from pss.data import load_data
from pss.nn.supernet import extract_subnet, resize_batch
from pss.training.schedules import param_groups
from pss.training.trainer import Trainer


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def dense_step_time(model, x, y, device, teacher=None) -> float:
    """Time of one forward/backward/SGD step of a dense model (after one warm-up)."""
    opt = torch.optim.SGD(param_groups(model, 1e-4), lr=1e-3, momentum=0.9, nesterov=True)
    model.train()
    times = []
    for _ in range(2):
        _sync(device)
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out, y) if teacher is None else F.kl_div(F.log_softmax(out, 1), teacher, reduction="batchmean")
        loss.backward()
        opt.step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cifar10-mbv2")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    cfg = load_config(args.preset, {"dataset": "synthetic", "batch_size": args.batch_size, "progress": False, "device": args.device,
                                    "structure_set_size": 20000, "pool_size": 10})
    data = load_data(DataConfig(dataset="synthetic", seed=0))

    trainer = Trainer.build(cfg, data)
    dev = trainer.device
    gen = torch.Generator().manual_seed(0)
    batches = iter(data.train_batches(args.batch_size, gen, dev))

    def next_batch():
        nonlocal batches
        try:
            return next(batches)
        except StopIteration:
            batches = iter(data.train_batches(args.batch_size, gen, dev))
            return next(batches)

    for i in range(args.warmup):
        x, y = next_batch()
        trainer.train_step(x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x, y, 0.5)
    pss_times, dense_times = [], []
    for i in range(args.steps):
        x, y = next_batch()
        xin = x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x
        _sync(dev)
        t0 = time.perf_counter()
        r = trainer.train_step(xin, y, 0.5 + 0.5 * i / args.steps)
        _sync(dev)
        pss_times.append(time.perf_counter() - t0)
        total = 0.0
        with torch.no_grad():
            teacher = F.softmax(trainer.model(xin, trainer.max_structure), 1)
        for k, s in enumerate((trainer.max_structure, r.medium, trainer.min_structure)):
            dense = extract_subnet(trainer.model, s).to(dev)
            xs = resize_batch(x, s.resolution)
            if cfg.channels_last:
                dense = dense.to(memory_format=torch.channels_last)
                xs = xs.contiguous(memory_format=torch.channels_last)
            total += dense_step_time(dense, xs, y, dev, None if k == 0 else teacher)
        dense_times.append(total)
    pss_med, dense_med = statistics.median(pss_times), statistics.median(dense_times)
    print(f"preset {args.preset} ({cfg.model} x{cfg.width_mult}), batch {args.batch_size}, device {dev}, {args.steps} steps")
    print(f"PSS step (max + medium + min, sliced):  median {pss_med * 1e3:8.1f} ms")
    print(f"dense max + medium + min steps, summed: median {dense_med * 1e3:8.1f} ms")
    print(f"ratio PSS / dense = {pss_med / dense_med:.3f}   (target <= 1.15)")


if __name__ == "__main__":
    main()
