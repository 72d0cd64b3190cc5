"""What `pss calibrate` and `pss search` share: calibrating and validating subnets of a trained run,
and writing the calibrated front (``calibration/front.json`` + ``bn_stats.pt``) that export,
compare and the dashboard read.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Sequence

import torch

from ..data import DataBundle, load_data
from ..errors import PssError
from ..evaluate.calibration import BNCalibrator, calibrate_and_evaluate, calibrate_and_evaluate_many
from ..evaluate.selection import CalibratedSubnet
from ..evaluate.statistics import Accuracy
from ..io.checkpoint import write_bn_stats
from ..io.run import front_document
from ..problem.budgets import Budget
from ..problem.space import Structure
from ..sampling.strategies import trained_family
from .loaded import TrainedRun
from .progress import Progress

#: Offset of the seed that picks calibration images from the run's seed (calibrate and search use the same images).
CALIBRATION_SEED_OFFSET = 8192

#: Most structures calibrated together (:meth:`SubnetEvaluator.evaluate_many`). Sharing grows with the group (in a
#: smoke-preset band the prefix tree computes about 0.6 of the activations of separate forwards for 8 structures,
#: 0.3 for 128); memory holds the activations of one forward plus a few BN vectors per structure and block, and
#: progress is reported once per group.
GROUP_SIZE = 128


class SubnetEvaluator:
    """BN calibration on ``images`` training images, then validation accuracy (Eq. 5), cached by structure key.

    Keeps the BN statistics of the subnets still wanted (:meth:`keep_only`);
    calibration is deterministic, so a dropped subnet's statistics are simply
    recomputed when asked for again.
    """

    def __init__(self, trained: TrainedRun, data: DataBundle, images: int, device: torch.device, group_size: int = GROUP_SIZE) -> None:
        self.trained, self.data, self.images, self.device = trained, data, int(images), device
        self.group_size = max(1, int(group_size))
        self.calibrator = BNCalibrator(trained.supernet)
        self.batch_size = trained.cfg.eval_batch_size
        self.seed = trained.cfg.seed + CALIBRATION_SEED_OFFSET
        self.pool_m = {e.structure.key: e.m for p in trained.pools for e in p.entries}
        self.results: dict[str, CalibratedSubnet] = {}
        self.tests: dict[str, Accuracy] = {}
        self.stats: dict[str, dict[str, torch.Tensor]] = {}
        self.calibrations = 0

    def calib_batches(self):
        return self.data.calibration_batches(self.images, self.batch_size, torch.Generator().manual_seed(self.seed), self.device)

    def val_batches(self):
        return self.data.val_batches(self.batch_size, self.device)

    def test_batches(self):
        return self.data.test_batches(self.batch_size, self.device)

    def with_test(self, r: CalibratedSubnet) -> CalibratedSubnet:
        """``r`` with its test accuracy (measured once, with its calibrated statistics); unchanged without a test split.

        Only subnets already chosen get here: the test split reports, it never selects.
        """
        if not self.data.has_test:
            return r
        test = self.tests.get(r.key)
        if test is None:
            self.calibrator.load(self.stats_of(r.structure))
            test = self.tests[r.key] = self.calibrator.measure(r.structure, self.test_batches())
        return dataclasses.replace(r, test=test)

    def __call__(self, s: Structure, m: float | None = None) -> CalibratedSubnet:
        """The calibrated subnet ``s``; its m is ``m`` when given, else its pool metric if a pool holds it."""
        r = self.results.get(s.key)
        if r is None:
            costs = self.trained.problem.cost_model.costs(s)
            r, stats = calibrate_and_evaluate(self.calibrator, s, self.calib_batches, self.val_batches, costs, self.pool_m.get(s.key))
            self.results[s.key] = r
            self.stats[s.key] = stats
            self.calibrations += 1
        return r if m is None or m == r.m else dataclasses.replace(r, m=m)

    def evaluate_many(self, structures: Sequence[Structure], ms: Sequence[float | None] | None = None,
                      on_result: Callable[[CalibratedSubnet], None] | None = None) -> list[CalibratedSubnet]:
        """``[self(s, m) for s, m in zip(structures, ms)]``: the same results and cache, computed together.

        The structures not yet calibrated are calibrated and validated in groups of
        :attr:`group_size` that share their common prefixes
        (:func:`~pss.evaluate.calibration.calibrate_and_evaluate_many`, bit-identical
        to one at a time). ``on_result(r)`` is called for every structure, in order,
        as soon as its group is done (a progress bar).
        """
        ms = [None] * len(structures) if ms is None else list(ms)
        if len(ms) != len(structures):
            raise ValueError(f"{len(structures)} structures but {len(ms)} metrics")
        out: list[CalibratedSubnet] = []
        for start in range(0, len(structures), self.group_size):
            group = structures[start:start + self.group_size]
            self._calibrate_new(group)
            for s, m in zip(group, ms[start:start + self.group_size]):
                out.append(self(s, m))
                if on_result is not None:
                    on_result(out[-1])
        return out

    def _calibrate_new(self, structures: Iterable[Structure]) -> None:
        """Calibrate and validate, together, those of ``structures`` without a result yet; cache results and statistics."""
        todo = list({s.key: s for s in structures if s.key not in self.results}.values())
        costs = [self.trained.problem.cost_model.costs(s) for s in todo]
        done = calibrate_and_evaluate_many(self.calibrator, todo, self.calib_batches, self.val_batches, costs,
                                           [self.pool_m.get(s.key) for s in todo])
        for s, (r, stats) in zip(todo, done):
            self.results[s.key] = r
            self.stats[s.key] = stats
        self.calibrations += len(todo)

    def measure_tests(self, structures: Sequence[Structure]) -> None:
        """Test accuracy of those of ``structures`` not yet tested, measured together (:meth:`with_test` then reads it)."""
        if not self.data.has_test:
            return
        todo = list({s.key: s for s in structures if s.key not in self.tests}.values())
        if not todo:
            return
        accs = self.calibrator.measure_many(todo, [self.stats_of(s) for s in todo], self.test_batches())
        self.tests.update({s.key: a for s, a in zip(todo, accs)})

    def keep_only(self, keys: set[str]) -> None:
        for k in [k for k in self.stats if k not in keys]:
            del self.stats[k]

    def stats_of(self, s: Structure) -> dict[str, torch.Tensor]:
        if s.key not in self.stats:
            self.stats[s.key] = self.calibrator.calibrate(s, self.calib_batches())
        return self.stats[s.key]

    @property
    def calibration_images(self) -> int:
        return min(self.images, self.data.num_train)


def open_evaluator(trained: TrainedRun, images: int | None, device: torch.device) -> SubnetEvaluator:
    """The run's data and a :class:`SubnetEvaluator` on it (``images`` default: the run's calib_images)."""
    images = trained.cfg.calib_images if images is None else int(images)
    if images < 1:  # before the data are loaded: a typo fails at once
        raise PssError("--images must be at least 1")
    # the run's own data, read as they are: a run.json from elsewhere must not make us create folders or download
    return SubnetEvaluator(trained, load_data(trained.cfg, create=False), images, device)


def write_calibrated_front(
    trained: TrainedRun,
    evaluator: SubnetEvaluator,
    kind: str,
    top_k: int,
    budgets: Sequence[Budget],
    per_pool: Sequence[Sequence[CalibratedSubnet]],
    progress: Progress,
    extra: Callable[[], dict[str, Any]] | None = None,
    selection: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Calibrate phi_max and phi_min as references, then write the front and its BN statistics; returns the front.

    ``per_pool[t]`` are the candidates kept for ``budgets[t]``; ``extra()``, called
    once the references are done, gives fields to add to the front document (a
    search's ``method`` and ``search``); ``selection`` says how the candidates were
    chosen (calibrate's metric). With a test split, every kept candidate and both
    references get their test accuracy here, after selection is over.
    """
    space = trained.problem.space
    family = trained_family(trained.cfg.strategy, space)
    # the run's own ends: a US-Net run's smallest subnet is S's smallest widths at r^max, the one it trained
    refs = {"max": family.max_structure(space), "min": family.min_structure(space)}
    evaluator.evaluate_many(list(refs.values()))  # usually done already, with the candidates
    bn_stats = {c.structure.key: evaluator.stats_of(c.structure) for cands in per_pool for c in cands}
    evaluator.measure_tests([c.structure for cands in per_pool for c in cands] + list(refs.values()))
    if evaluator.data.has_test:
        progress.extend(len(bn_stats))
        tested = []
        for cands in per_pool:
            tested.append([])
            for c in cands:
                new = c.key not in evaluator.tests
                tested[-1].append(evaluator.with_test(c))
                if new:
                    progress.tick(f"test accuracy {tested[-1][-1].test.value:.3f}")
        per_pool = tested
    references = {}
    for name, s in refs.items():
        r = evaluator.with_test(dataclasses.replace(evaluator(s), m=None))  # a reference, not a pool entry
        references[name] = r.to_json()
        bn_stats[s.key] = evaluator.stats_of(s)
        progress.tick(f"reference {name}: accuracy {r.accuracy:.3f}")
    data = evaluator.data
    front = front_document(trained.epoch, kind, top_k, evaluator.calibration_images, data.num_val,
                           budgets, per_pool, references, test_images=data.num_test, test_split=data.test_source,
                           selection=selection)
    front["trained_family"] = family.to_json()
    if extra is not None:
        front.update(extra())
    write_bn_stats(trained.run, bn_stats)
    trained.run.write_front(front)
    return front
