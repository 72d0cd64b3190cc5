"""Behaviour pinned through the real code paths (issue 10, item 6): not only the pure functions.

1. `pss calibrate` calibrates each pool's top-k entries by the stored metric m and keeps the most
   accurate of them (Alg. 1 lines 11-17, Eq. 5);
2. inside training, the medium subnet comes from S while its pool is not full, and p (Eq. 3) and the
   temperature eta (Eq. 6) anneal as training goes (Alg. 3);
3. inplace distillation is KL(teacher || student) with the max subnet's detached prediction as the
   teacher (Alg. 2);
4. BN calibration re-estimates running mean *and* variance as the exact average over the calibration
   batches, on the sliced channels of a narrow structure.

Every test trains, calibrates or steps for real on tiny data; none replaces library code. Each
docstring names the wrong change it catches (each was checked by breaking a scratch copy).
"""

from __future__ import annotations

import copy

import helpers
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pss.config import TrainConfig
from pss.data import load_data
from pss.evaluate.calibration import BNCalibrator, bn_channels
from pss.io.checkpoint import read_checkpoint, write_checkpoint
from pss.io.run import open_run
from pss.nn.ops import SlimBatchNorm2d
from pss.nn.supernet import Supernet
from pss.problem.problem import Problem
from pss.sampling.pools import SubnetPool
from pss.sampling.prioritized import prioritized_probs, training_progress
from pss.training.schedules import distillation_loss
from pss.training.trainer import Trainer
from pss.workflows.calibrate import calibrate_run
from pss.workflows.train import fit

#: A tiny MobileNetV1 on generated images: a training step takes ~0.1 s on one core.
TINY = {
    "model": "mobilenet_v1", "width_mult": 0.25, "dataset": "synthetic", "batch_size": 16, "lr": 0.01,
    "warmup_epochs": 0.25, "budget_count": 1, "structure_set_size": 2000, "eval_calib_images": 0, "progress": False,
    "train_limit": 64, "val_limit": 32, "calib_rescore": False,
}


def tiny_config(**overrides) -> TrainConfig:
    return TrainConfig.from_mapping({**TINY, **overrides})


@pytest.fixture(scope="module")
def tiny_data():
    return load_data(tiny_config())


# =========================================================================== 1. calibration picks by Eq. 5 among the top-k by m
def _in_band(problem: Problem, t: int, n: int, seed: int = 0) -> list:
    """``n`` distinct structures of S whose cost lies in pool t's band (rejection from uniform draws)."""
    budget = problem.budgets[t]
    rng = np.random.default_rng(seed)
    found: dict = {}
    for _ in range(20_000):
        s = problem.space.sample_uniform(rng)
        if s.key not in found and budget.contains(problem.cost_model.costs(s)[budget.kind]):
            found[s.key] = s
            if len(found) == n:
                return list(found.values())
    raise AssertionError(f"fewer than {n} structures of S fit {budget.label}")


def _with_pool(run, state, t: int, pool: SubnetPool, others: bool) -> None:
    """Write the checkpoint with pool t replaced by ``pool`` (the other pools as trained, or emptied)."""
    pools = [pool if i == t else (p if others else SubnetPool(p.budget, p.capacity)) for i, p in enumerate(state["pools"])]
    write_checkpoint(run.checkpoint, {**state, "pools": pools})


def test_calibration_keeps_the_most_accurate_of_the_top_k_by_m(small_run, tmp_path):
    """The front's candidates of a pool are its top-k entries by the stored m, and its best is the most accurate.

    Catches: the best chosen by m (or the first candidate) instead of calibrated accuracy (Eq. 5);
    candidates taken in insertion order, as the worst k, or from every entry instead of the top k;
    a pool that stops keeping its entries sorted by m when it is built or read back; ranking by
    freshly measured metrics although the run says calib_rescore=false.

    A real trained run (calib_rescore=false: the paper's stored m) gets, in one pool, structures of
    that pool's band whose calibrated accuracies are known from a first calibration: A < B < C. They
    are inserted worst first, D, C, B, A, with m(A) > m(B) > m(C) > m(D), and top_k = 2. The right
    answer is candidates {A, B} and best B; best-by-m gives A, all-entries gives C, the first two
    inserted (or the worst two) give {D, C}.
    """
    run = open_run(helpers.copy_run(small_run(model="mobilenet_v1", calib_rescore="false"), tmp_path / "run"))
    cfg, problem = run.read_problem()
    assert cfg.calib_rescore is False
    state = read_checkpoint(run.checkpoint)
    t = 1
    budget, costs = problem.budgets[t], problem.cost_model.costs

    # Probe: calibrate six in-band structures to learn their accuracies (order of m irrelevant here).
    probe = _in_band(problem, t, 6)
    pool = SubnetPool(budget, cfg.pool_size)
    for i, s in enumerate(probe):
        pool.insert(s, -2.0 - 0.01 * i, costs(s))
    _with_pool(run, state, t, pool, others=False)
    front = calibrate_run(run, top_k=len(probe), images=64, device="cpu", progress=False)
    acc = {c["key"]: c["accuracy"] for c in front["pools"][t]["candidates"]}
    assert set(acc) == {s.key for s in probe}
    levels = sorted(set(acc.values()))
    assert len(levels) >= 3, f"precondition: the probe needs three distinct calibrated accuracies, got {acc}"
    by_key = {s.key: s for s in probe}
    pick = {name: next(k for k in acc if acc[k] == lvl) for name, lvl in (("A", levels[0]), ("B", levels[1]), ("C", levels[-1]))}
    pick["D"] = next(k for k in acc if k not in pick.values())

    # The pool under test: inserted worst m first.
    m = {"A": -2.0, "B": -2.1, "C": -2.2, "D": -2.3}
    pool = SubnetPool(budget, cfg.pool_size)
    for name in ("D", "C", "B", "A"):
        pool.insert(by_key[pick[name]], m[name], costs(by_key[pick[name]]))
    _with_pool(run, state, t, pool, others=True)
    front = calibrate_run(run, top_k=2, images=64, device="cpu", progress=False)
    assert run.read_front() == front

    assert front.get("selection", {"metric": "m"})["metric"] == "m"
    got = front["pools"][t]
    cands = got["candidates"]
    assert {c["key"] for c in cands} == {pick["A"], pick["B"]}
    assert {c["key"]: c["m"] for c in cands} == {pick["A"]: m["A"], pick["B"]: m["B"]}
    best = cands[got["best"]]
    assert best["key"] == pick["B"]
    # The calibrated accuracies of this run still order A < B (and an excluded C is better still).
    by_cand = {c["key"]: c["accuracy"] for c in cands}
    assert by_cand[pick["A"]] < by_cand[pick["B"]] < acc[pick["C"]]

    # Every pool (the others as trained): candidates = its 2 largest m, best = the most accurate (ties: higher m).
    pools = read_checkpoint(run.checkpoint)["pools"]
    for p, doc in zip(pools, front["pools"]):
        assert {c["key"] for c in doc["candidates"]} == {e.structure.key for e in sorted(p, key=lambda e: -e.m)[:2]}
        if doc["candidates"]:
            ranked = sorted(doc["candidates"], key=lambda c: (-c["accuracy"], -c["m"]))
            assert doc["candidates"][doc["best"]]["key"] == ranked[0]["key"]


# =========================================================================== 2. Alg. 3 inside training: S until full, then annealing
def test_training_samples_from_s_until_the_pool_is_full_then_anneals(tiny_data, tmp_path):
    """Inside real training, the medium comes from S while its pool is not full; p and eta anneal.

    Catches: drawing from a pool before it is full (e.g. the printed Eq. 3, which anneals p while
    |pi| < M and gives p = 1 once full); p not annealing once full (no pool draws ever);
    eta fixed (at 1 or at eta_end) or annealed the wrong way; the trainer not handing the fractional
    training progress (e - 1) / E to the strategy.

    A spy around the trainer's own ``strategy.plan`` (it calls the real one) records, per training
    batch, the progress the trainer passes, whether the pool was full and where the medium came from.
    After training, the same strategy object is asked for plans at an early and a late progress of
    that run: the share of pool draws must follow 1 - p and, inside the pool, the best entry's share
    must follow q of Eq. 6 with eta = eta_end ** progress.
    """
    cfg = tiny_config(epochs=4, pool_size=3, p_end=0.01, eta_end=0.01)
    trainer = Trainer.build(cfg, tiny_data)
    strategy = trainer.strategy
    plan, seen = strategy.plan, []

    def spy(rng, progress):
        full = [p.is_full for p in strategy.pools]
        subnets = plan(rng, progress)
        medium = next(s for s in subnets if s.role == "medium")
        seen.append((progress, full[medium.pool_index], medium.source, medium.structure))
        return subnets

    strategy.plan = spy
    fit(trainer, tmp_path / "run")
    del strategy.plan

    batches = trainer.batches_per_epoch
    assert len(seen) == trainer.step == batches * cfg.epochs
    progress = [s[0] for s in seen]
    assert progress == [training_progress(e, b, batches, cfg.epochs) for e in range(cfg.epochs) for b in range(batches)]
    before_full = [s for s in seen if not s[1]]
    after_full = [s for s in seen if s[1]]
    assert len(before_full) >= cfg.pool_size and after_full, "the pool must fill during the run"
    assert all(src == "space" for _, _, src, _ in before_full), [(round(p, 3), src) for p, _, src, _ in before_full]
    assert any(src == "pool" for _, _, src, _ in after_full), "p anneals once the pool is full: some batches train pool entries"

    # The snapshots record the schedule at each epoch's end: p and eta fall from epoch 1 to the last.
    snaps = open_run(tmp_path / "run").read_snapshots()
    first, last = snaps[0]["pools"][0], snaps[-1]["pools"][0]
    assert first["full"] and last["full"]
    assert first["eta"] == pytest.approx(cfg.eta_end ** (1 / cfg.epochs)) and last["eta"] == pytest.approx(cfg.eta_end)
    assert first["p"] == pytest.approx(cfg.p_end ** (1 / cfg.epochs)) and last["p"] == pytest.approx(cfg.p_end)

    # The strategy as training uses it, on its (full) pool with a known spread of m.
    pool = strategy.pools[0]
    assert pool.is_full
    for entry, target in zip(pool.entries, (-2.0, -2.1, -2.2)):
        pool.update(entry.structure, target, 0.0)  # lambda = 0: m <- target
    ms = pool.metrics()
    best = pool.entries[0].structure
    early, late = progress[batches], progress[-1]  # first batch of epoch 2, last batch of the run
    rng = np.random.default_rng(123)
    for at, n in ((early, 1500), (late, 400)):
        plans = [strategy.plan(rng, at)[1] for _ in range(n)]
        from_pool = [s for s in plans if s.source == "pool"]
        p = cfg.p_end ** at
        eta = cfg.eta_end ** at
        q_best = prioritized_probs(ms, eta)[0]
        assert len(from_pool) / n == pytest.approx(1 - p, abs=0.06), (at, len(from_pool) / n, 1 - p)
        share = sum(s.structure == best for s in from_pool) / len(from_pool)
        assert share == pytest.approx(q_best, abs=0.07), (at, share, q_best)
    # The two ends really differ: near-uniform q early (about 0.45 for the best of 3), one-hot late.
    assert prioritized_probs(ms, cfg.eta_end ** early)[0] < 0.55 and prioritized_probs(ms, cfg.eta_end ** late)[0] > 0.99


# =========================================================================== 3. inplace distillation KL(teacher || student)
def test_distillation_loss_is_kl_teacher_to_student():
    """``distillation_loss(student_logits, teacher_probs)`` = KL(teacher || student), batch mean.

    Catches: the reverse KL(student || teacher); a per-element mean (reduction "mean") instead of the
    batch mean; cross-entropy to the teacher's argmax; a softmax temperature.
    """
    student = torch.tensor([[2.0, 0.0, -1.0, 0.5], [-1.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 4.0]], requires_grad=True)
    teacher = torch.tensor([[0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    log_s = F.log_softmax(student, dim=1)
    # KL(t || s) = sum_c t_c (log t_c - log s_c), averaged over the batch
    forward = (teacher * (teacher.log() - log_s)).sum(dim=1).mean()
    reverse = (log_s.exp() * (log_s - teacher.log())).sum(dim=1).mean()
    assert abs(forward.item() - reverse.item()) > 0.3  # the distributions are asymmetric enough to tell
    loss = distillation_loss(student, teacher)
    assert loss.item() == pytest.approx(forward.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, student)
    # d KL(t || softmax(z)) / dz = (softmax(z) - t) / B
    torch.testing.assert_close(grad, (F.softmax(student, 1) - teacher).detach() / student.shape[0])


def test_training_step_distills_from_the_detached_max_subnet(tiny_data):
    """The trainer's step: CE for the max subnet, KL(max's detached softmax || subnet) for medium and min.

    Catches: a reversed KL; the wrong teacher (the labels, the previous subnet instead of the max,
    a teacher from another forward); a teacher that is not detached (gradient flowing back into the
    max subnet through the soft labels); losses that are not summed into one optimizer step.

    The step's draws are predicted from copies of the trainer's strategy and RNG; the gradient the
    step leaves in the weights must equal the gradient of the hand-written loss on a copy of the
    model, and differ from the gradient with an undetached teacher.
    """
    cfg = tiny_config(epochs=1, pool_size=3)
    trainer = Trainer.build(cfg, tiny_data)
    x, y = next(iter(tiny_data.train_batches(cfg.batch_size, torch.Generator().manual_seed(0), "cpu")))
    subnets = copy.deepcopy(trainer.strategy).plan(copy.deepcopy(trainer.rng), 0.0)
    assert [s.role for s in subnets] == ["max", "medium", "min"]
    model = copy.deepcopy(trainer.model).train()

    def hand_gradients(detach: bool) -> tuple[list[torch.Tensor], list[float]]:
        model.zero_grad(set_to_none=True)
        outs = [model(x, s.structure) for s in subnets]
        log_t = F.log_softmax(outs[0], dim=1)
        log_t = log_t.detach() if detach else log_t
        losses = [F.cross_entropy(outs[0], y)]
        losses += [(log_t.exp() * (log_t - F.log_softmax(o, dim=1))).sum(dim=1).mean() for o in outs[1:]]  # KL(t || s)
        torch.stack(losses).sum().backward()
        return [p.grad.clone() for p in model.parameters()], [v.item() for v in losses]

    expected, expected_losses = hand_gradients(detach=True)
    undetached, _ = hand_gradients(detach=False)
    got: list[torch.Tensor] = []  # the gradients as the optimizer step receives them (it may change them in place)
    trainer.optimizer.register_step_pre_hook(lambda opt, args, kwargs: got.extend(p.grad.clone() for p in trainer.model.parameters()))
    r = trainer.train_step(x, y, 0.0)
    assert [s.structure for s in r.subnets] == [s.structure for s in subnets]
    assert r.losses == pytest.approx(expected_losses, rel=1e-4, abs=1e-6)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-6)
    # the check can tell a teacher that lets gradient through
    assert any(not torch.allclose(g, u, rtol=1e-4, atol=1e-6) for g, u in zip(got, undetached))


# =========================================================================== 4. exact BN averaging on a sliced structure
def test_bn_calibration_averages_mean_and_variance_exactly_on_sliced_channels(tiny_data):
    """BNCalibrator: running mean and var become the plain average over the calibration batches.

    Catches: momentum left at its default 0.1 (an exponential average, biased to the last batches
    and to the reset values); statistics not reset before each calibration, or only the running mean
    reset (the stale variance and batch counter leak in); statistics not restricted to, or not
    sliced to, the structure's channels.

    The supernet's own statistics are set to absurd values first, and the max structure is
    calibrated before the narrow one, so anything left over shows.
    """
    cfg = tiny_config(epochs=1)
    problem = Problem.build(cfg, tiny_data.num_classes, tiny_data.in_channels)
    torch.manual_seed(0)
    supernet = Supernet(problem.spec)
    with torch.no_grad():  # stale statistics far from any real ones
        for m in supernet.modules():
            if isinstance(m, SlimBatchNorm2d):
                m.running_mean.fill_(3.0)
                m.running_var.fill_(25.0)
                m.num_batches_tracked.fill_(7)
    space = problem.space
    s = space.sample_uniform(np.random.default_rng(5))
    channels = bn_channels(problem.spec, s)
    assert s.resolution < space.resolutions[-1] or s.widths != space.max_structure.widths
    assert any(c < m.num_features for n, m in supernet.named_modules() if n in channels for c in [channels[n]])
    batches = list(tiny_data.calibration_batches(64, 16, torch.Generator().manual_seed(1), "cpu"))
    assert len(batches) == 4 and all(b[0].shape[0] == 16 for b in batches)  # equal sizes: batch average = image average

    calibrator = BNCalibrator(supernet)
    calibrator.calibrate(space.max_structure, batches)  # leaves max-structure statistics (and a counter) behind
    stats = calibrator.calibrate(s, batches)

    # Hand computation on an independent copy: the input of every BN layer in training mode (each layer
    # normalises with its batch's statistics, so these inputs do not depend on any running statistic).
    # Expected running_mean = mean over batches of the per-batch channel means; expected running_var =
    # mean over batches of the per-batch *unbiased* channel variances (what PyTorch's cumulative
    # average, momentum=None, accumulates). Batches of equal size make this the exact average.
    reference = copy.deepcopy(supernet).train()
    inputs: dict[str, list[torch.Tensor]] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args, name=n: inputs.setdefault(name, []).append(args[0].detach().clone()))
             for n, m in reference.named_modules() if isinstance(m, SlimBatchNorm2d)]
    with torch.no_grad():
        for xb, _ in batches:
            reference(xb, s)
    for h in hooks:
        h.remove()
    assert set(inputs) == set(channels)
    bns = dict(calibrator.model.named_modules())
    for name, xs in inputs.items():
        c = channels[name]
        assert all(x.shape[1] == c for x in xs) and len(xs) == len(batches)
        mean = torch.stack([x.mean(dim=(0, 2, 3)) for x in xs]).mean(0)
        var = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in xs]).mean(0)
        assert stats[f"{name}.running_mean"].shape == (c,) and stats[f"{name}.running_var"].shape == (c,)
        torch.testing.assert_close(stats[f"{name}.running_mean"], mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(stats[f"{name}.running_var"], var, rtol=1e-4, atol=1e-5)
        bn = bns[name]  # the calibrated copy uses these (sliced) buffers when it evaluates
        torch.testing.assert_close(bn.running_mean[:c], mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_var[:c], var, rtol=1e-4, atol=1e-5)
    # the supernet's own statistics are untouched
    assert all(torch.all(m.running_var == 25.0) for m in supernet.modules() if isinstance(m, SlimBatchNorm2d))
