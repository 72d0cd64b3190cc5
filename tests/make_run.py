"""Generate a large, schema-valid, *synthetic* run directory (no training).

The dashboard speed benchmark and the tests need a run the size of a real
long one (250 epochs x 20 pools x 50 entries by default) without spending days
of CPU on training. This script writes one in seconds:

* the config, structure space S, cost model C(.), budgets Theta, structure set
  G and its buckets G^t are the REAL ones of a preset (``Problem.build`` and
  ``StructureDistributionSampler`` of ``pss``), with ``budget_count``,
  ``pool_size`` and ``epochs`` overridden;
* the pools are real :class:`pss.sampling.pools.SubnetPool` objects filled by the real
  Alg. 3 bookkeeping (``SubnetPool.record``): medium subnets come from Eq. 4
  (the per-budget marginals of G^t, drawn in bulk, so every entry's cost lies
  in theta_t +/- delta and ``mean_trials`` are real trial counts) with
  probability p of Eq. 3, else from the pool with q of Eq. 6;
* only the numbers a network would produce are made up, deterministically from
  ``seed``: the batch losses behind m, the epoch losses, validation
  accuracies, timings, and the calibrated accuracies of the front;
* run.json, the snapshots and the front are the documents of the run format
  itself (``run_document`` / ``snapshot_document`` / ``pool_document`` /
  ``front_document`` of :mod:`pss.io.run`), written atomically by
  ``RunDir.write_run`` / ``write_snapshot`` / ``write_front``, as training and
  ``pss calibrate`` write them.

There is deliberately no ``checkpoint.pt`` and no ``calibration/bn_stats.pt``:
the run can be viewed but not calibrated or exported. run.json carries a
top-level ``"generated"`` field saying so. Everything except run.json's
``created`` timestamp is a function of the arguments.

    python tests/make_run.py OUT [--epochs 250] [--pools 20] [--entries 50]
                             [--preset cifar10-mbv2] [--seed 0] [--no-front]
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from pss.config import load_config
from pss.data import CIFAR10_CLASSES
from pss.errors import PssError
from pss.evaluate.selection import CalibratedSubnet
from pss.io.run import RunDir, front_document, run_document, snapshot_document
from pss.problem.problem import Problem
from pss.problem.space import Structure
from pss.sampling.marginals import StructureDistributionSampler
from pss.sampling.pools import PoolCounters, SubnetPool, pools_from_budgets
from pss.sampling.prioritized import pool_temperature, prioritized_probs, space_sampling_probability
from pss.training.schedules import cosine_lr

GENERATED = "tests/make_run.py (synthetic values, real structures and costs)"

# A CIFAR-10-like data set: 50k images, val_fraction 0.1 held out.
NUM_TRAIN, NUM_VAL = 45_000, 5_000
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
EPOCH_SECONDS = 600.0  # the cifar10-mbv2 preset's "about 10 min/epoch on 2 CPU cores"


class _SyntheticData:
    """Stands in for a DataBundle: only ``describe()`` (run.json's ``dataset``) is used."""

    def __init__(self, num_classes: int, in_channels: int) -> None:
        names = list(CIFAR10_CLASSES) if num_classes == 10 else [f"class_{i}" for i in range(num_classes)]
        mean = list(CIFAR10_MEAN) if in_channels == 3 else [0.2860]
        std = list(CIFAR10_STD) if in_channels == 3 else [0.3530]
        self.info = {
            "name": "synthetic-bench",
            "num_classes": num_classes,
            "in_channels": in_channels,
            "native_resolution": 32,
            "num_train": NUM_TRAIN,
            "num_val": NUM_VAL,
            "class_names": names,
            "mean": mean,
            "std": std,
            "source": "tests/make_run.py (no images)",
            "augmentation": "random crop (pad 4) + horizontal flip",
        }

    def describe(self) -> dict:
        return dict(self.info)


class _Eq4Stream:
    """Case 1 of Alg. 3 for one budget, drawn in bulk from the bucket marginals of Eq. 4.

    Equivalent to repeated ``StructureDistributionSampler.sample(t)`` calls
    (same marginals, same acceptance test, trial count = candidates drawn
    since the previous accepted one) but thousands of candidates at a time.
    A gap beyond max_trials counts as one sampler fallback with max_trials
    trials, as the real sampler reports it.
    """

    def __init__(self, problem: Problem, sampler: StructureDistributionSampler, t: int, constraint: str,
                 rng: np.random.Generator, chunk: int = 8192) -> None:
        self.marginals = sampler.buckets[t].marginals
        self.budget = problem.budgets[t]
        self.cost_array = problem.cost_fn(constraint)
        self.sampler, self.rng, self.chunk = sampler, rng, chunk
        self.widths = self.res = self.accepted = self.gaps = None
        self.next = 0  # position in accepted
        self.carry = 0  # candidates drawn after the last accepted one

    def _refill(self) -> None:
        while self.accepted is None or self.next >= len(self.accepted):
            widths, res = self.marginals.sample(self.chunk, self.rng)
            costs = self.cost_array(widths, res)
            ok = np.flatnonzero(self.budget.contains_array(costs))
            if ok.size == 0:
                self.carry += self.chunk
                continue
            gaps = np.diff(ok, prepend=-1)
            gaps[0] += self.carry
            self.carry = self.chunk - 1 - int(ok[-1])
            self.widths, self.res = widths[ok].tolist(), res[ok].tolist()
            self.accepted, self.gaps, self.next = ok, gaps.tolist(), 0

    def draw(self) -> tuple[Structure, int]:
        self._refill()
        i = self.next
        self.next += 1
        s, trials = Structure(tuple(self.widths[i]), self.res[i]), self.gaps[i]
        if trials > self.sampler.max_trials:
            self.sampler.fallbacks += 1
            trials = self.sampler.max_trials
        return s, trials


class _Dynamics:
    """Made-up but plausible training curves, all decreasing losses / increasing accuracies."""

    def __init__(self, problem: Problem, constraint: str, rng: np.random.Generator) -> None:
        self.rng = rng
        self.problem, self.constraint = problem, constraint
        self.c_min, self.c_max = problem.cost_range(constraint)
        self.quality: dict[str, float] = {}  # hidden per-structure offset of its loss
        self.costs: dict[str, dict] = {}

    def size(self, cost: float) -> float:
        return min(1.0, max(0.0, (cost - self.c_min) / (self.c_max - self.c_min)))

    @staticmethod
    def loss_max(x: float) -> float:
        """Cross-entropy of phi^max at training progress x in [0, 1]."""
        return 0.08 + 1.75 * math.exp(-4.5 * x)

    @staticmethod
    def acc_max(x: float) -> float:
        return 0.935 - 0.58 * math.exp(-6.0 * x)

    @staticmethod
    def acc_min(x: float) -> float:
        return 0.905 - 0.60 * math.exp(-5.0 * x)

    def structure_costs(self, s: Structure) -> dict:
        c = self.costs.get(s.key)
        if c is None:
            c = self.costs[s.key] = self.problem.cost_model.costs(s)
            self.quality[s.key] = float(self.rng.normal(0.0, 0.06))
        return c

    def batch_metric(self, s: Structure, x: float) -> float:
        """m = -CE of the medium subnet on one batch: larger nets and later epochs do better."""
        level = self.loss_max(x)
        size = self.size(self.structure_costs(s)[self.constraint])
        ce = level * (1.25 + 0.9 * (1.0 - size)) + self.quality[s.key] * (0.3 + level) + self.rng.normal(0.0, 0.08 * (0.2 + level))
        return -max(0.01, ce)

    def quantise(self, acc: float, n: int) -> float:
        return round(min(1.0, max(0.0, acc)) * n) / n


def make_run(out: Path, *, epochs: int = 250, pools: int = 20, entries: int = 50, preset: str = "cifar10-mbv2",
             seed: int = 0, front: bool = True, top_k: int = 3) -> Path:
    """Write a synthetic run directory to ``out`` (which must not hold a run yet); returns its path."""
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PssError(f"{out} exists and is not an empty directory; pick a new path")
    if top_k < 1:
        raise PssError("top_k must be at least 1")
    cfg = load_config(preset, {"budget_count": pools, "budget_step": None, "pool_size": entries, "epochs": epochs, "seed": seed})
    data = _SyntheticData(10, 3)
    problem = Problem.build(cfg, data.info["num_classes"], data.info["in_channels"])
    rng = np.random.default_rng(seed)
    sampler = StructureDistributionSampler(
        problem.space, problem.cost_fn(cfg.constraint), problem.budgets, rng,
        set_size=cfg.structure_set_size, max_trials=cfg.max_trials,
    )
    empty = [b.label for b, n in zip(problem.budgets, sampler.bucket_sizes) if n == 0]
    if empty:
        raise PssError(f"no structure in S meets budget(s) {', '.join(empty)}; use fewer pools")
    T = len(problem.budgets)
    batches = NUM_TRAIN // cfg.batch_size
    warmup = int(round(cfg.warmup_epochs * batches))
    total_steps = batches * cfg.epochs
    pool_list: list[SubnetPool] = pools_from_budgets(problem.budgets, cfg.pool_size)
    streams = [_Eq4Stream(problem, sampler, t, cfg.constraint, rng) for t in range(T)]
    dyn = _Dynamics(problem, cfg.constraint, rng)
    run = RunDir(out)
    run.path.mkdir(parents=True, exist_ok=True)
    run_json = run_document(cfg, data.describe(), problem, sampler.bucket_sizes, batches, "cpu")
    run_json["generated"] = GENERATED
    run.write_run(run_json)

    lam = cfg.metric_lambda
    val_acc = {"max": 0.0, "min": 0.0}
    for epoch in range(cfg.epochs):
        x_mid = (epoch + 0.5) / cfg.epochs
        draws = rng.multinomial(batches, np.full(T, 1.0 / T))  # Alg. 2: one budget drawn uniformly per batch
        for t, pool in enumerate(pool_list):
            pool.counters = PoolCounters()
            c = pool.counters
            n = int(draws[t])
            while n and not pool.is_full:  # p = 1 until the pool is full: every draw from S
                s, trials = streams[t].draw()
                c.from_space += 1
                c.trials.append(trials)
                pool.record(s, dyn.batch_metric(s, x_mid), dyn.structure_costs(s), lam)
                n -= 1
            if not n:
                continue
            p = space_sampling_probability(cfg.p_end, x_mid, pool.is_full)
            eta = pool_temperature(cfg.eta_end, x_mid, pool.is_full)
            n_space = int(rng.binomial(n, p))
            held = pool.entries
            q = prioritized_probs([e.m for e in held], eta)
            for j in rng.choice(len(held), size=n - n_space, p=q):  # Case 2, Eq. 6
                s = held[int(j)].structure
                c.from_pool += 1
                pool.record(s, dyn.batch_metric(s, x_mid), dyn.structure_costs(s), lam)
            for _ in range(n_space):  # Case 1, Eq. 4
                s, trials = streams[t].draw()
                c.from_space += 1
                c.trials.append(trials)
                pool.record(s, dyn.batch_metric(s, x_mid), dyn.structure_costs(s), lam)

        x_end = (epoch + 1) / cfg.epochs
        level = dyn.loss_max(x_mid)
        step = (epoch + 1) * batches
        seconds = float(EPOCH_SECONDS * rng.lognormal(0.0, 0.03))
        val_acc = {
            "max": dyn.quantise(dyn.acc_max(x_end) + rng.normal(0.0, 0.006), NUM_VAL),
            "min": dyn.quantise(dyn.acc_min(x_end) + rng.normal(0.0, 0.008), NUM_VAL),
        }
        losses = {
            "max": level * float(rng.lognormal(0.0, 0.02)),
            "medium": 0.30 * level * float(rng.lognormal(0.0, 0.05)),
            "min": 0.45 * level * float(rng.lognormal(0.0, 0.05)),
        }
        run.write_snapshot(snapshot_document(
            epoch=epoch + 1, epochs=cfg.epochs, step=step, lr=cosine_lr(step - 1, total_steps, warmup, cfg.lr),
            progress=x_end, p_end=cfg.p_end, eta_end=cfg.eta_end, losses=losses, val_acc=val_acc, seconds=seconds,
            images_per_second=batches * cfg.batch_size / seconds, sampler_fallbacks=sampler.fallbacks, pools=pool_list,
        ))

    if front:
        _write_front(run, cfg, problem, dyn, pool_list, val_acc, top_k, rng)
    return run.path


def _write_front(run: RunDir, cfg, problem: Problem, dyn: _Dynamics, pool_list: list[SubnetPool],
                 val_acc: dict, top_k: int, rng: np.random.Generator) -> None:
    """calibration/front.json as `pss calibrate` writes it, with made-up calibrated accuracies."""
    acc_hi = val_acc["max"] + 0.004  # calibrating on more images helps a little
    acc_lo = val_acc["min"] + 0.006

    def accuracy(s: Structure, quality: float) -> float:
        size = dyn.size(problem.cost_model.cost(cfg.constraint, s))
        acc = acc_lo + (acc_hi - acc_lo) * size**0.6 - 0.05 * quality + rng.normal(0.0, 0.004)
        return dyn.quantise(acc, NUM_VAL)

    def calibrated(s: Structure, m, quality: float, costs: dict) -> CalibratedSubnet:
        return CalibratedSubnet(s, m, accuracy(s, quality), dict(costs), float(rng.uniform(9.0, 15.0)))

    per_pool = [[calibrated(e.structure, e.m, dyn.quality.get(e.structure.key, 0.0), e.costs) for e in p.top(top_k)]
                for p in pool_list]
    references = {}
    for name, s, acc in (("max", problem.space.max_structure, acc_hi), ("min", problem.space.min_structure, acc_lo)):
        references[name] = CalibratedSubnet(s, None, dyn.quantise(acc, NUM_VAL), problem.cost_model.costs(s), float(rng.uniform(9.0, 15.0))).to_json()
    doc = front_document(cfg.epochs, cfg.constraint, top_k, min(cfg.calib_images, NUM_TRAIN), NUM_VAL,
                         [p.budget for p in pool_list], per_pool, references)
    run.write_front(doc)


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main() -> None:
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="run directory to create (must not exist or be empty)")
    ap.add_argument("--epochs", type=int, default=250)
    ap.add_argument("--pools", type=int, default=20, help="budget_count T")
    ap.add_argument("--entries", type=int, default=50, help="pool_size M")
    ap.add_argument("--preset", default="cifar10-mbv2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--no-front", action="store_true", help="do not write calibration/front.json")
    args = ap.parse_args()
    print(f"generating {args.epochs} epochs x {args.pools} pools x {args.entries} entries ({args.preset}) in {args.out} ...", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        path = make_run(args.out, epochs=args.epochs, pools=args.pools, entries=args.entries, preset=args.preset,
                        seed=args.seed, front=not args.no_front, top_k=args.top_k)
    except PssError as exc:
        sys.exit(f"error: {exc}")
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s, {_tree_bytes(path) / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
