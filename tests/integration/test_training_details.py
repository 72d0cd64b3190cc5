"""The reference implementation's training details as options: depthwise weight decay, the PSS-Net_M kind draw,
classifier dropout."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from pss.config import TrainConfig
from pss.data import load_data
from pss.nn.supernet import Supernet
from pss.problem.budgets import Budget
from pss.problem.models import build_spec
from pss.problem.space import StructureSpace
from pss.sampling.strategies import PssStrategy, make_strategy
from pss.training.schedules import param_groups
from pss.training.trainer import Trainer


def _conv_weights(spec, model: nn.Module) -> tuple[set[int], set[int]]:
    """ids of (depthwise, other) conv weights of a supernet, told apart by the spec (not by tensor shapes)."""
    depthwise, other = set(), set()
    for _, path, conv in spec.convs():
        (depthwise if conv.depthwise else other).add(id(model.get_submodule(path).conv.weight))
    return depthwise, other


@pytest.fixture(scope="module")
def data():
    return load_data(TrainConfig.from_mapping({"dataset": "synthetic", "train_limit": 128, "val_limit": 32}))


def _trainer(data, **over) -> Trainer:
    cfg = TrainConfig.from_mapping(dict(model="mobilenet_v2", width_mult=0.25, dataset="synthetic", epochs=1, batch_size=32,
                                        budget_count=2, pool_size=2, structure_set_size=2000, progress=False,
                                        train_limit=128, val_limit=32, weight_decay=5e-4, **over))
    return Trainer.build(cfg, data, device="cpu")


# ---------------------------------------------------------------------- depthwise weight decay
@pytest.mark.parametrize("depthwise_decay", [False, True])
def test_trainer_optimizer_decays_depthwise_weights_only_when_asked(data, depthwise_decay):
    trainer = _trainer(data, depthwise_weight_decay=depthwise_decay)
    decay, no_decay = trainer.optimizer.param_groups
    assert decay["weight_decay"] == 5e-4 and no_decay["weight_decay"] == 0.0
    decayed, exempt = {id(p) for p in decay["params"]}, {id(p) for p in no_decay["params"]}
    depthwise, other = _conv_weights(trainer.problem.spec, trainer.model)
    assert depthwise and other
    assert other <= decayed and id(trainer.model.classifier.weight) in decayed  # normal convs and the classifier always
    assert (depthwise <= decayed) if depthwise_decay else (depthwise <= exempt)
    assert all(p.dim() == 1 for p in no_decay["params"] if id(p) not in depthwise)  # BN affine and biases never
    assert len(decayed) + len(exempt) == len(list(trainer.model.parameters()))


def test_default_and_stored_configs():
    assert TrainConfig().depthwise_weight_decay is False  # new runs: the reference's choice
    stored = TrainConfig.from_stored({k: v for k, v in TrainConfig().to_json().items() if k != "depthwise_weight_decay"})
    assert stored.depthwise_weight_decay is True  # a run written before the key decayed them


@pytest.mark.parametrize("depthwise_decay", [False, True])
def test_one_sgd_step_with_zero_gradients_shrinks_exactly_the_decayed_weights(depthwise_decay):
    """SGD with weight decay wd and zero gradients: w <- w * (1 - lr * wd) for decayed weights, unchanged otherwise."""
    spec = build_spec("mobilenet_v2", 10, width_mult=0.25, stem="cifar")
    model = Supernet(spec)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    lr, wd = 0.5, 0.1
    opt = torch.optim.SGD(param_groups(model, wd, depthwise_decay), lr=lr, momentum=0.0)
    before = {id(p): p.detach().clone() for p in model.parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    depthwise, other = _conv_weights(spec, model)
    for p in model.parameters():
        old = before[id(p)]
        shrunk = id(p) in other or p is model.classifier.weight or (depthwise_decay and id(p) in depthwise)
        torch.testing.assert_close(p.detach(), old * (1 - lr * wd) if shrunk else old, rtol=1e-6, atol=0)
        if not shrunk:
            assert torch.equal(p.detach(), old)


# ---------------------------------------------------------------------- PSS-Net_M: which kind a batch trains
def _strategy(kind_draw: str, kinds_counts) -> PssStrategy:
    spec = build_spec("mobilenet_v2", 10, width_mult=0.25, stem="cifar")
    space = StructureSpace.for_spec(spec, (32,))
    budgets = [Budget(kind, float(i + 1), 0.5) for kind, n in kinds_counts for i in range(n)]
    return make_strategy("pss", space, 3, sampler=SimpleNamespace(budgets=budgets), costs=lambda s: {}, pool_size=4,
                         kind_draw=kind_draw)


@pytest.mark.parametrize("kind_draw,p_params", [("proportional", 1 / 4), ("uniform", 1 / 2)])
def test_kind_frequencies_follow_the_rule(kind_draw, p_params):
    strat = _strategy(kind_draw, [("macs", 3), ("params", 1)])
    assert strat.kind_draw == kind_draw
    rng, n = np.random.default_rng(0), 40_000
    freq = np.bincount([strat.draw_pool(rng) for _ in range(n)], minlength=4) / n
    kinds = np.array([p.budget.kind for p in strat.pools])
    assert freq[kinds == "params"].sum() == pytest.approx(p_params, abs=0.015)
    # within a kind every budget alike: proportional makes every pool 1/4; uniform gives macs pools 1/6 each
    np.testing.assert_allclose(freq[:3], [(1 - p_params) / 3] * 3, atol=0.012)


def test_proportional_draw_is_one_uniform_pool_index():
    """The reference's rule is a uniform draw over all pools: one rng.integers call per batch, as a single-kind run."""
    strat = _strategy("proportional", [("macs", 3), ("params", 1), ("latency", 2)])
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    assert [strat.draw_pool(r1) for _ in range(200)] == [int(r2.integers(6)) for _ in range(200)]


@pytest.mark.parametrize("kind_draw", ["proportional", "uniform"])
def test_single_kind_draws_are_unchanged(kind_draw):
    strat = _strategy(kind_draw, [("macs", 5)])
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    assert [strat.draw_pool(r1) for _ in range(100)] == [int(r2.integers(5)) for _ in range(100)]


def test_unknown_kind_draw_is_rejected():
    with pytest.raises(ValueError, match="kind_draw"):
        _strategy("weighted", [("macs", 2)])


# ---------------------------------------------------------------------- classifier dropout
@pytest.mark.parametrize("dropout,expected", [(None, 0.2), (0.0, 0.0), (0.3, 0.3)])
def test_dropout_overrides_the_family_default(data, dropout, expected):
    trainer = _trainer(data, stem="imagenet", resolution_min=32, resolution_max=32, dropout=dropout)
    assert trainer.problem.spec.dropout == expected
    layer = trainer.model.dropout
    assert (isinstance(layer, nn.Dropout) and layer.p == expected) if expected else isinstance(layer, nn.Identity)
    assert ("dropout" in trainer.problem.spec.to_json()) == (dropout not in (None, 0.2))
