"""Bench: time of one training step per strategy, relative to training the max subnet alone.

For one preset (default cifar10-mbv2, batch 128) every strategy gets its own
trainer (same config, ``--set strategy=X``, n = ``--num-subnets``) and one
training step on a fresh batch is timed per repeat: the plan, the forwards and
backwards, the optimizer step and the bookkeeping (pss: the pool update). The
reference is one step of the max subnet alone: forward, cross-entropy,
backward and the same SGD step, on the same batch size. Strategies are
measured interleaved, repeat by repeat, after a warm-up, and the median is
reported (this machine is noisy) as ms per image and as a ratio to the
reference.

PSE-Net (Table 4, ResNet-50 on an A100) reports 221 ms per iteration for its
parallel training of four subnets vs 169 ms for one subnet (1.31x) and 555 ms
for four serial subnets (AutoSlim's sandwich, 3.3x).

Note that uniform and pse run every subnet at r^max, while pss, mutual and
random train some subnets at smaller resolutions (cheaper).

    python bench/strategy_step.py [--preset cifar10-mbv2] [--batch-size 128] [--repeats 10] [--num-subnets 4]
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
from pss.training.schedules import param_groups
from pss.training.trainer import Trainer

DEFAULT_STRATEGIES = ("pss", "uniform", "mutual", "random", "pse")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cifar10-mbv2")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--num-subnets", type=int, default=4)
    ap.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    names = [s for s in args.strategies.split(",") if s]
    data = load_data(DataConfig(dataset="synthetic", seed=0))
    trainers = {}
    for name in names:
        cfg = load_config(args.preset, {
            "dataset": "synthetic", "batch_size": args.batch_size, "progress": False, "device": args.device,
            "structure_set_size": 20000, "pool_size": 10, "strategy": name, "num_subnets": args.num_subnets,
        })
        trainers[name] = Trainer.build(cfg, data)
    ref = trainers[names[0]]
    cfg, dev = ref.cfg, ref.device
    # The reference: the max subnet alone, on its own copy of the supernet and optimizer.
    ref_model = type(ref.model)(ref.problem.spec).to(dev)
    if cfg.channels_last:
        ref_model = ref_model.to(memory_format=torch.channels_last)
    ref_opt = torch.optim.SGD(param_groups(ref_model, cfg.weight_decay), lr=1e-3, momentum=cfg.momentum, nesterov=cfg.nesterov)
    max_structure = ref.max_structure

    def max_alone(x, y):
        ref_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(ref_model(x, max_structure), y)
        loss.backward()
        ref_opt.step()
        return loss.item()

    gen = torch.Generator().manual_seed(0)
    batches = iter(())

    def next_batch():
        nonlocal batches
        for _ in range(2):
            try:
                x, y = next(batches)
                return (x.contiguous(memory_format=torch.channels_last) if cfg.channels_last else x), y
            except StopIteration:
                batches = iter(data.train_batches(args.batch_size, gen, dev))
        raise RuntimeError("no batches")

    steps = {"max alone": lambda x, y: max_alone(x, y)}
    for name, tr in trainers.items():
        steps[name] = (lambda tr: lambda x, y: tr.train_step(x, y, 0.5))(tr)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for rep in range(args.warmup + args.repeats):
        for key, fn in steps.items():
            x, y = next_batch()
            _sync(dev)
            t0 = time.perf_counter()
            fn(x, y)
            _sync(dev)
            if rep >= args.warmup:
                times[key].append(time.perf_counter() - t0)

    base = statistics.median(times["max alone"])
    threads = torch.get_num_threads() if dev.type == "cpu" else None
    print(f"preset {args.preset} ({cfg.model} x{cfg.width_mult}, {cfg.resolution_min}-{cfg.resolution_max} px), batch {args.batch_size}, "
          f"device {dev}" + (f" ({threads} threads)" if threads else "") + f", n = {args.num_subnets}, "
          f"median of {args.repeats} interleaved steps after {args.warmup} warm-up")
    print(f"{'strategy':<10} {'subnets':>7} {'fw-bw':>5} {'ms/step':>9} {'ms/image':>9} {'vs max alone':>13}")
    for key, ts in times.items():
        med = statistics.median(ts)
        if key == "max alone":
            subnets, passes = 1, 1
        else:
            tr = trainers[key]
            subnets = 3 if key == "pss" else args.num_subnets
            passes = 1 if tr.strategy.parallel else subnets
        print(f"{key:<10} {subnets:>7} {passes:>5} {med * 1e3:>9.1f} {med * 1e3 / args.batch_size:>9.3f} {med / base:>12.2f}x")
    print("PSE-Net Table 4 (ResNet-50, A100): parallel 4 subnets 1.31x, serial 4 subnets (sandwich) 3.3x one subnet")


if __name__ == "__main__":
    main()
