"""Training strategies (pss, uniform, mutual, random, pse) and PSE-Net parallel subnets.

* what each strategy plans (samplers know nothing of tensors),
* a real train step per strategy: the subnets actually run, finite losses, samples,
* PSE parallel subnets: each chunk equals its subnet's own forward, gradients the sum of theirs,
* ``pss train smoke --set strategy=X`` end to end, snapshots valid against the schema,
  ``pss calibrate`` on the result, and ``--resume`` continuing exactly.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import helpers
from pss.cli import main
from pss.config import STRATEGIES, DataConfig, TrainConfig
from pss.data import load_data
from pss.errors import PssError
from pss.nn.supernet import Supernet, chunk_sizes
from pss.problem.models import build_spec
from pss.problem.space import Structure, StructureSpace
from pss.sampling.strategies import make_strategy
from pss.training.trainer import Trainer
from pss.workflows.train import fit

from helpers import NPZ_PATH

N = 4  # num_subnets


# ---------------------------------------------------------------------- plans
@pytest.fixture(scope="module")
def space() -> StructureSpace:
    spec = build_spec("mobilenet_v2", 10, 3, 0.5, "cifar")
    return StructureSpace(spec.dim_names, spec.dim_max, (24, 28, 32), lower_bound=0.5, divisor=8)


def _plans(strategy, seed=0, count=40):
    rng = np.random.default_rng(seed)
    return [strategy.plan(rng, 0.0) for _ in range(count)]


def _is_uniform_width(space: StructureSpace, s: Structure) -> bool:
    """One multiplier for every layer: some multiplier reproduces all widths."""
    if not hasattr(space, "_test_uniform_widths"):  # every uniform-width structure of S, once
        space._test_uniform_widths = {space.uniform_structure(m).widths for m in np.linspace(space.lower_bound, 1.0, 4001)}
    return s.widths in space._test_uniform_widths


@pytest.mark.parametrize("name", ["uniform", "mutual", "random"])
def test_sandwich_plans(space, name):
    strategy = make_strategy(name, space, N)
    assert strategy.distill and not strategy.parallel and strategy.pools == []
    plans = _plans(strategy)
    r_max, r_min = space.resolutions[-1], space.resolutions[0]
    mediums = [s.structure for p in plans for s in p[1:-1]]
    for p in plans:
        assert [s.role for s in p] == ["max"] + ["medium"] * (N - 2) + ["min"]
        assert p[0].structure == space.max_structure
        assert all(space.contains(s.structure) for s in p)
    assert len({m.key for m in mediums}) > len(mediums) // 2  # drawn afresh
    mins = {p[-1].structure for p in plans}
    assert len(mins) == 1
    if name == "uniform":  # US-Net: one multiplier for all layers, one resolution
        assert mins == {Structure(space.min_structure.widths, r_max)}
        assert all(m.resolution == r_max and _is_uniform_width(space, m) for m in mediums)
    elif name == "mutual":  # MutualNet: uniform widths, each with a resolution of S
        assert mins == {space.min_structure} and space.min_structure.resolution == r_min
        assert all(_is_uniform_width(space, m) for m in mediums)
        assert {m.resolution for m in mediums} == set(space.resolutions)
    else:  # random: anything in S, layer-wise widths
        assert mins == {space.min_structure}
        assert {m.resolution for m in mediums} == set(space.resolutions)
        assert sum(not _is_uniform_width(space, m) for m in mediums) > len(mediums) * 0.9


def test_random_and_uniform_plans_reproduce_their_draws(space):
    rng = np.random.default_rng(3)
    plan = make_strategy("random", space, 5).plan(copy.deepcopy(rng), 0.0)
    assert [s.structure for s in plan[1:-1]] == [space.sample_uniform(rng) for _ in range(3)]
    rng = np.random.default_rng(4)
    plan = make_strategy("uniform", space, 3).plan(copy.deepcopy(rng), 0.0)
    assert plan[1].structure == space.uniform_structure(float(rng.uniform(space.lower_bound, 1.0)), space.resolutions[-1])


def test_pse_plan(space):
    strategy = make_strategy("pse", space, N)
    assert strategy.parallel and not strategy.distill
    for p in _plans(strategy):
        assert [s.role for s in p] == ["max"] + ["medium"] * (N - 1)  # max + n-1 random, no min (Sec. 4.1)
        assert p[0].structure == space.max_structure
        assert all(s.structure.resolution == space.resolutions[-1] for s in p)
        assert all(space.contains(s.structure) for s in p)


def test_num_subnets_two_has_no_medium(space):
    assert [s.role for s in make_strategy("random", space, 2).plan(np.random.default_rng(0), 0.0)] == ["max", "min"]
    assert [s.role for s in make_strategy("pse", space, 2).plan(np.random.default_rng(0), 0.0)] == ["max", "medium"]
    with pytest.raises(ValueError):
        make_strategy("pse", space, 1)
    with pytest.raises(ValueError):
        make_strategy("nope", space, 4)


def test_config_checks():
    assert TrainConfig.from_mapping({"strategy": "pse", "num_subnets": 3}).num_subnets == 3
    for bad in ({"strategy": "autoslim"}, {"num_subnets": 1}):
        with pytest.raises(PssError):
            TrainConfig.from_mapping(bad)
    assert set(STRATEGIES) == {"pss", "uniform", "mutual", "random", "pse"}


# ---------------------------------------------------------------------- PSE: parallel == separate
def _net(model: str):
    spec = build_spec(model, 10, 3, 0.5 if model == "resnet20" else 0.25, "cifar")
    space = StructureSpace(spec.dim_names, spec.dim_max, (32,), lower_bound=0.5, divisor=8)
    torch.manual_seed(0)
    net = Supernet(spec).train()
    # Logits of order 1 (the default init gives ~0.01), so the tolerance means something.
    torch.nn.init.normal_(net.classifier.weight, 0, net.classifier.in_features ** -0.5)
    return net, space


def _parallel_and_separate(net, structures, x, y, sizes):
    """(parallel output, its gradients, separate outputs, summed separate gradients)."""
    params = list(net.parameters())
    net.zero_grad()
    out = net.forward_parallel(x, structures, sizes)
    sum(F.cross_entropy(o, t) for o, t in zip(out.split(sizes), y.split(sizes))).backward()
    grad_parallel = [p.grad.clone() for p in params]
    net.zero_grad()
    separate = []
    for s, xc, yc in zip(structures, x.split(sizes), y.split(sizes)):
        o = net(xc, s)  # training mode: BN with the chunk's own batch statistics
        F.cross_entropy(o, yc).backward()
        separate.append(o.detach())
    return out.detach(), grad_parallel, torch.cat(separate), [p.grad.clone() for p in params]


@pytest.mark.parametrize("model", ["mobilenet_v2", "mobilenet_v1", "resnet20"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_parallel_chunks_equal_separate_subnets(model, channels_last):
    """PSE-Net Eq. 8-14: chunk i of one masked max-width forward == subnet i's own forward on chunk i.

    Outputs are compared in float32, as trained. Gradients are compared in
    float64: the convs feeding a BN over 5-6 images have gradients that
    float32 rounding alone moves by ~1% (both paths drift equally far from
    the float64 value), while in float64 the two agree to ~1e-13.
    """
    net, space = _net(model)
    rng = np.random.default_rng(1)
    structures = [space.max_structure, space.min_structure] + [space.sample_uniform(rng) for _ in range(2)]
    assert len({s.key for s in structures}) == 4
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(22, 3, 32, 32, generator=g), torch.randint(0, 10, (22,), generator=g)
    sizes = chunk_sizes(22, 4)
    assert sizes == [6, 6, 5, 5]  # the first batch % n chunks are one larger
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net, x = net.to(memory_format=fmt), x.contiguous(memory_format=fmt)
    bn_before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    net.zero_grad()
    net.forward_parallel(x, structures)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in bn_before.items())  # no running statistics

    out, _, separate, _ = _parallel_and_separate(net, structures, x, y, sizes)
    assert out.abs().max() > 0.5
    torch.testing.assert_close(out, separate, rtol=1e-4, atol=1e-5)

    net64 = copy.deepcopy(net).double()
    out, grad_parallel, separate, grad_separate = _parallel_and_separate(net64, structures, x.double(), y, sizes)
    torch.testing.assert_close(out, separate, rtol=1e-10, atol=1e-10)
    for (name, p), gp, gs in zip(net64.named_parameters(), grad_parallel, grad_separate):
        assert gs.abs().max() > 0, name  # every parameter gets a gradient here
        torch.testing.assert_close(gp, gs, rtol=1e-8, atol=1e-10 * max(1.0, gs.abs().max().item()), msg=lambda m: f"{name}: {m}")


def test_parallel_masks_zero_the_unused_channels():
    net, space = _net("mobilenet_v2")
    block = net.blocks[0]
    x = torch.randn(8, 3, 32, 32)
    widths = [space.max_structure.widths, space.min_structure.widths]
    out = block.forward_parallel(x, [4, 4], widths)
    c_min = space.min_structure.widths[0]
    if c_min < out.shape[1]:
        assert out[4:, c_min:].abs().max() == 0 and out[:4, c_min:].abs().max() > 0
    with pytest.raises(ValueError, match="resolution"):
        net.forward_parallel(x, [space.max_structure, Structure(space.max_structure.widths, 28)])
    with pytest.raises(ValueError):
        net.forward_parallel(x, [space.max_structure] * 2, sizes=[5, 4])


# ---------------------------------------------------------------------- real train steps
def _cfg(strategy: str, **kw) -> TrainConfig:
    base = dict(model="resnet20", width_mult=0.5, dataset="synthetic", epochs=1, batch_size=16, budget_count=3, pool_size=3,
                structure_set_size=2000, eval_calib_images=0, progress=False, train_limit=64, val_limit=32,
                strategy=strategy, num_subnets=N, channels_last=True, lower_bound=0.5, resolution_min=24)
    base.update(kw)
    return TrainConfig.from_mapping(base)


@pytest.fixture(scope="module")
def data():
    return load_data(DataConfig(dataset="synthetic", train_limit=64, val_limit=32))


def _record_calls(trainer):
    """Wrap the supernet's forwards so a test sees which structures (and batch sizes) the step ran."""
    calls = []
    forward, parallel = trainer.model.forward, trainer.model.forward_parallel

    def rec_forward(x, structure=None):
        calls.append(("serial", x.shape[0], structure))
        return forward(x, structure)

    def rec_parallel(x, structures, sizes=None):
        calls.append(("parallel", x.shape[0], list(structures)))
        return parallel(x, structures, sizes)

    trainer.model.forward, trainer.model.forward_parallel = rec_forward, rec_parallel
    return calls


@pytest.mark.parametrize("name", STRATEGIES)
def test_train_step_trains_the_planned_subnets(data, name):
    trainer = Trainer.build(_cfg(name), data)
    x, y = next(iter(data.train_batches(16, torch.Generator().manual_seed(0), "cpu")))
    x = x.contiguous(memory_format=torch.channels_last)
    expected = trainer.strategy.plan(copy.deepcopy(trainer.rng), 0.0)
    calls = _record_calls(trainer)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    r = trainer.train_step(x, y, 0.0)

    assert [s.structure for s in r.subnets] == [s.structure for s in expected]
    if name == "pse":
        assert calls == [("parallel", 16, [s.structure for s in expected])]
        assert len(r.subnets) == N and r.loss_min is None
        assert r.losses == r.ce  # every chunk by CE on its labels
    else:
        assert [c[0] for c in calls] == ["serial"] * len(expected)
        assert [c[2] for c in calls] == [s.structure for s in expected] and all(c[1] == 16 for c in calls)
        assert len(r.subnets) == (3 if name == "pss" else N)
        assert r.losses[0] == pytest.approx(r.ce[0])  # max: CE; the rest: KL (small at init)
        assert all(kl < ce for kl, ce in zip(r.losses[1:], r.ce[1:]))
    assert all(math.isfinite(v) for v in [*r.losses, *r.ce])
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    # Samples: one row per non-max subnet, at step 1, with the max subnet's CE.
    log = trainer.samples.to_json()
    assert log["step"] == [1] * (len(r.subnets) - 1)
    assert [log["keys"][k] for k in log["key"]] == [s.structure.key for s in r.subnets[1:]]
    assert log["loss"] == r.ce[1:] and log["max_loss"] == [r.ce[0]] * (len(r.subnets) - 1)
    if name == "pss":
        t = r.pool_index
        assert trainer.pools[t].get(r.medium).m == pytest.approx(-r.ce[1])
        assert r.metric == pytest.approx(-r.ce[1])
    else:
        assert trainer.pools == []


def test_pse_step_equals_its_chunks(data):
    """The trainer's PSE step: chunk CEs equal separate forwards of each subnet on its chunk."""
    trainer = Trainer.build(_cfg("pse"), data)
    x, y = next(iter(data.train_batches(16, torch.Generator().manual_seed(5), "cpu")))
    model = copy.deepcopy(trainer.model).train()
    plan = trainer.strategy.plan(copy.deepcopy(trainer.rng), 0.0)
    sizes = chunk_sizes(16, N)
    with torch.no_grad():
        expected = [F.cross_entropy(model(xc, s.structure), yc).item() for s, xc, yc in zip(plan, x.split(sizes), y.split(sizes))]
    r = trainer.train_step(x, y, 0.0)
    assert r.ce == pytest.approx(expected, abs=1e-5)


def test_pse_needs_two_images_per_chunk(data):
    with pytest.raises(PssError, match="batch_size"):
        Trainer.build(_cfg("pse", batch_size=6), data)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mutual", "pse"])
def test_resume_continues_exactly(tmp_path, data, name):
    straight = Trainer.build(_cfg(name, epochs=2), data)
    fit(straight, tmp_path / "a")
    first = Trainer.build(_cfg(name, epochs=1), data)
    fit(first, tmp_path / "b")
    resumed = Trainer.build(_cfg(name, epochs=2), data)
    started = []  # the epochs fit trains: resuming starts at epoch 1 (0-based), the one after the checkpoint's
    train_epoch = resumed.train_epoch
    resumed.train_epoch = lambda epoch: (started.append(epoch), train_epoch(epoch))[1]
    fit(resumed, tmp_path / "b", resume_run=True)
    assert started == [1]
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    snap_a = json.loads((tmp_path / "a" / "snapshots" / "epoch_0002.json").read_text())
    snap_b = json.loads((tmp_path / "b" / "snapshots" / "epoch_0002.json").read_text())
    assert snap_a["samples"] == snap_b["samples"] and snap_a["losses"] == snap_b["losses"]
    assert snap_b["samples"]["step"][0] == resumed.batches_per_epoch + 1


def test_resume_refuses_another_strategy(tmp_path, data):
    fit(Trainer.build(_cfg("random"), data), tmp_path)
    with pytest.raises(PssError, match="strategy"):
        fit(Trainer.build(_cfg("uniform", epochs=2), data), tmp_path, resume_run=True)


# ---------------------------------------------------------------------- end to end through the CLI
SMALL = [
    "--set", "epochs=1",
    "--set", "train_limit=128",
    "--set", "val_limit=64",
    "--set", "structure_set_size=3000",
    "--set", "eval_calib_images=32",
    "--set", f"npz_path={NPZ_PATH}",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", STRATEGIES)
def test_cli_train_and_calibrate(tmp_path, name):
    jsonschema = pytest.importorskip("jsonschema")
    run = tmp_path / name
    assert main(["train", "smoke", "--out", str(run), "--quiet", "--set", f"strategy={name}", *SMALL]) == 0
    meta = json.loads((run / "run.json").read_text())
    assert meta["config"]["strategy"] == name and meta["config"]["num_subnets"] == N
    snap = json.loads((run / "snapshots" / "epoch_0001.json").read_text())
    schema = helpers.schema("snapshot")
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(snap)) == []
    batches = meta["batches_per_epoch"]
    per_step = 2 if name == "pss" else N - 1  # non-max subnets per batch
    samples = snap["samples"]
    assert len(samples["step"]) == len(samples["key"]) == len(samples["loss"]) == len(samples["max_loss"]) == batches * per_step
    assert sorted(set(samples["step"])) == list(range(1, batches + 1))
    assert sorted(set(samples["key"])) == list(range(len(samples["keys"])))
    assert all(math.isfinite(v) for v in samples["loss"] + samples["max_loss"])
    assert math.isfinite(snap["losses"]["max"]) and math.isfinite(snap["losses"]["medium"])
    assert (snap["losses"]["min"] is None) == (name == "pse")
    if name == "pss":
        assert len(snap["pools"]) == len(meta["budgets"])
    else:
        assert snap["pools"] == []
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["strategy"] == name and (json.loads(ckpt["pools"]) == []) == (name != "pss")

    assert main(["calibrate", str(run), "--quiet", "--images", "32", "--top-k", "1"]) == 0
    front = json.loads((run / "calibration" / "front.json").read_text())
    schema = helpers.schema("front")
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(front)) == []
    assert set(front["references"]) == {"max", "min"}
    assert (front["pools"] == []) == (name != "pss")
    assert main(["info", str(run)]) == 0
