"""Alg. 1-2 training step, schedules and the per-epoch snapshot."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from pss.config import DataConfig, TrainConfig
from pss.data import load_data
from pss.sampling.prioritized import prioritized_sample
from pss.training.schedules import cosine_lr, distillation_loss, param_groups
from pss.training.trainer import Trainer
from pss.workflows.train import fit


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = TrainConfig.from_mapping(
        dict(model="resnet20", width_mult=0.5, dataset="synthetic", epochs=1, batch_size=32, budget_count=4,
             pool_size=3, structure_set_size=3000, eval_calib_images=64, progress=False, train_limit=256, val_limit=64)
    )
    data = load_data(DataConfig(dataset="synthetic", train_limit=256, val_limit=64))
    return cfg, data, tmp_path_factory


def test_step_metric_is_minus_ce_of_the_medium_forward(setup):
    cfg, data, tmp = setup
    trainer = Trainer.build(cfg, data)
    x, y = next(iter(data.train_batches(32, torch.Generator().manual_seed(0), "cpu")))
    x = x.contiguous(memory_format=torch.channels_last)
    # Predict the step's draws from a copy of its RNG, then the medium's CE before the update.
    rng = copy.deepcopy(trainer.rng)
    t = int(rng.integers(len(trainer.pools)))
    medium, source, _ = prioritized_sample(trainer.pools[t], trainer.sampler, t, 0.0, cfg.p_end, cfg.eta_end, rng)
    model = copy.deepcopy(trainer.model).train()
    model(x, trainer.max_structure)  # BN batch statistics do not depend on earlier forwards
    expected = -F.cross_entropy(model(x, medium), y).item()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    r = trainer.train_step(x, y, 0.0)
    assert r.medium == medium and r.pool_index == t and r.source == source == "space"
    assert r.metric == pytest.approx(expected, abs=1e-5)
    assert trainer.pools[t].get(medium).m == pytest.approx(expected, abs=1e-5)  # Alg. 3 line 10
    assert all(math.isfinite(v) for v in (r.loss_max, r.loss_medium, r.loss_min))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


def test_min_subnet_alone_gets_the_low_channels(setup):
    """After a step, weights beyond the max widths are impossible; check the min/max sandwich touched W."""
    cfg, data, tmp = setup
    trainer = Trainer.build(cfg, data)
    x, y = next(iter(data.train_batches(32, torch.Generator().manual_seed(1), "cpu")))
    trainer.optimizer.zero_grad()
    out = trainer.model(x, trainer.min_structure)
    distillation_loss(out, F.softmax(torch.randn_like(out), 1)).backward()
    w = trainer.model.blocks[0].body[0].conv.weight.grad
    c = trainer.min_structure.widths[0]
    assert w[:c].abs().sum() > 0 and w[c:].abs().sum() == 0


def test_schedules_and_weight_decay_groups(setup):
    assert cosine_lr(0, 100, 10, 0.1) == pytest.approx(0.01)
    assert cosine_lr(9, 100, 10, 0.1) == pytest.approx(0.1)
    assert cosine_lr(10, 100, 10, 0.1) == pytest.approx(0.1)
    assert cosine_lr(55, 100, 10, 0.1) == pytest.approx(0.05)
    assert cosine_lr(100, 100, 10, 0.1) == pytest.approx(0.0, abs=1e-12)
    cfg, data, tmp = setup
    trainer = Trainer.build(cfg, data)
    decay, no_decay = param_groups(trainer.model, 1e-4)
    assert all(p.dim() > 1 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0 and decay["weight_decay"] == 1e-4
    opt = trainer.optimizer.param_groups[0]
    assert opt["nesterov"] and opt["momentum"] == 0.9
    z = torch.randn(4, 10)
    assert distillation_loss(z, F.softmax(z, 1)).item() == pytest.approx(0.0, abs=1e-6)


def test_fit_writes_snapshot_and_checkpoint(setup):
    cfg, data, tmp = setup
    out = tmp.mktemp("d")
    trainer = Trainer.build(cfg, data)
    fit(trainer, out)
    snap = json.loads((out / "snapshots" / "epoch_0001.json").read_text())
    assert snap["epoch"] == 1 and snap["step"] == trainer.batches_per_epoch
    assert set(snap["losses"]) == {"max", "medium", "min"} and set(snap["val_acc"]) == {"max", "min"}
    assert len(snap["pools"]) == 4
    total = sum(p["from_space"] + p["from_pool"] for p in snap["pools"])
    assert total == trainer.batches_per_epoch
    for p in snap["pools"]:
        assert p["size"] == len(p["entries"]) <= p["capacity"] == 3
        assert len(p["q"]) == p["size"] and (not p["q"] or abs(sum(p["q"]) - 1) < 1e-9)
        ms = [e["m"] for e in p["entries"]]
        assert ms == sorted(ms, reverse=True)
        for e in p["entries"]:
            b = p["budget"]
            assert abs(e["costs"]["macs"] - b["value"]) <= b["tolerance"]
        assert p["p"] == (1.0 if not p["full"] else pytest.approx(cfg.p_end ** snap["progress"]))
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 1 and state["step"] == trainer.batches_per_epoch
    run = json.loads((out / "run.json").read_text())
    assert run["schema_version"] == 1 and len(run["budgets"]) == 4 and run["dataset"]["name"] == "synthetic"
