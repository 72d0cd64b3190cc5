"""EAS single-path gates (pss.eas.gates) and the masked supernet forward they drive.

Pinned: the nested encoding round-trips every structure of S and any gate vector
decodes into S; hard gates reproduce the structure's channels in the supernet
(equal logits) and its cost (the differentiable cost equals the cost model's);
the straight-through estimator passes gradients from the loss and from the cost
to the generator's parameters; the generator's budget interpolation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pss.eas.gates import (
    GateLayout,
    channel_masks,
    decode,
    decode_arrays,
    encode,
    gumbel_sigmoid,
    resolution_weights,
    soft_cost,
    soft_widths,
)
from pss.eas.generator import ArchitectureGenerator, budget_position
from pss.eas.search import constraint_loss, gated_logits
from pss.eas.similarity import mean_pairwise_cosine
from pss.nn.supernet import Supernet
from pss.problem.costs import CostModel
from pss.problem.models import build_spec
from pss.problem.space import Structure, StructureSpace

FAMILIES = [("mobilenet_v1", 0.25, (20, 24, 28), 1), ("mobilenet_v2", 0.35, (24, 32), 3), ("resnet20", 1.0, (24, 32), 3)]


def _problem(model: str, width: float, resolutions, in_channels: int):
    spec = build_spec(model, num_classes=10, in_channels=in_channels, width_mult=width)
    space = StructureSpace.for_spec(spec, resolutions)
    return spec, space, CostModel(spec, space)


def _structures(space: StructureSpace, n: int, seed: int = 0) -> list[Structure]:
    rng = np.random.default_rng(seed)
    return [space.min_structure, space.max_structure] + [space.sample_uniform(rng) for _ in range(n)]


@pytest.mark.parametrize("model,width,resolutions,cin", FAMILIES)
def test_encoding_round_trips_and_hard_gates_give_the_exact_cost(model, width, resolutions, cin):
    _, space, costs = _problem(model, width, resolutions, cin)
    layout = GateLayout.of(space)
    for s in _structures(space, 30):
        gates = encode(layout, s)
        assert decode(layout, gates) == s
        assert float(soft_cost(costs, layout, gates, "macs")) == pytest.approx(costs.macs(s), rel=1e-9)
        assert float(soft_cost(costs, layout, gates, "params")) == pytest.approx(costs.params(s), rel=1e-9)
        widths = [float(w) for w in soft_widths(layout, gates)]
        assert widths == list(s.widths)
        w = resolution_weights(layout, gates)
        assert w.tolist() == [1.0 if r == s.resolution else 0.0 for r in space.resolutions]


def test_any_gate_vector_decodes_into_the_space_by_leading_ones():
    _, space, costs = _problem("mobilenet_v1", 0.25, (20, 24, 28), 1)
    layout = GateLayout.of(space)
    rng = np.random.default_rng(1)
    for _ in range(50):
        bits = rng.random(layout.size) < 0.5
        s = decode(layout, bits)
        assert space.contains(s)
        # a gate after the first off gate changes nothing (nesting)
        assert decode(layout, encode(layout, s)) == s
        assert float(soft_cost(costs, layout, torch.tensor(bits, dtype=torch.float64), "macs")) == pytest.approx(costs.macs(s))
        widths, res = decode_arrays(layout, bits[None, :])
        assert Structure(tuple(widths[0]), int(res[0])) == s
    d, off = layout.dims[0], layout.offsets[0]
    bits = np.zeros(layout.size)
    bits[off + 1] = 1  # second gate on, first off: still the smallest width
    assert decode(layout, bits).widths[d] == space.dimensions[d].choices[0]


@pytest.mark.parametrize("model,width,resolutions,cin", FAMILIES)
def test_hard_gate_masks_give_the_subnets_logits(model, width, resolutions, cin):
    """forward_masked with a structure's hard gates equals forward(x, structure) in training mode (batch statistics)."""
    spec, space, _ = _problem(model, width, resolutions, cin)
    torch.manual_seed(0)
    net = Supernet(spec)
    layout = GateLayout.of(space)
    x = torch.randn(6, cin, max(resolutions), max(resolutions))
    for s in _structures(space, 4, seed=2):
        net.train()
        want = net(x, s)
        net.eval()
        got = gated_logits(net, layout, encode(layout, s), x)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_masked_forward_leaves_bn_buffers_alone():
    spec, space, _ = _problem("mobilenet_v1", 0.25, (28,), 1)
    net = Supernet(spec).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    gated_logits(net, GateLayout.of(space), encode(GateLayout.of(space), space.min_structure), torch.randn(4, 1, 28, 28))
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_gumbel_sigmoid_is_hard_forward_bernoulli_and_soft_backward():
    logits = torch.full((20000,), 0.8, requires_grad=True)
    g = gumbel_sigmoid(logits, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert set(g.detach().unique().tolist()) <= {0.0, 1.0}
    # P(gate = 1) = sigmoid(logit), whatever the temperature (binomial 5-sigma band)
    p = float(torch.sigmoid(torch.tensor(0.8)))
    assert abs(float(g.detach().mean()) - p) < 5 * (p * (1 - p) / 20000) ** 0.5
    g.sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_gradients_reach_the_generator_through_the_straight_through_estimator():
    spec, space, costs = _problem("mobilenet_v1", 0.25, (20, 24, 28), 1)
    torch.manual_seed(0)
    net = Supernet(spec).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    layout = GateLayout.of(space)
    c_min, c_max = costs.macs(space.min_structure), costs.macs(space.max_structure)
    gen = ArchitectureGenerator(layout, superclasses=3, c_min=c_min, c_max=c_max)
    budget = torch.tensor([0.5 * (c_min + c_max)], dtype=torch.float64)
    logits = gen.logits(torch.tensor([1]), budget)
    gates = gumbel_sigmoid(logits, 1.0, torch.Generator().manual_seed(3))[0]
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    ce = torch.nn.functional.cross_entropy(gated_logits(net, layout, gates, x), y)
    ce.backward()
    ce_grads = {n: p.grad.clone() for n, p in gen.named_parameters() if p.grad is not None}
    assert float(ce_grads["width_head.bias"].abs().sum()) > 0
    assert float(ce_grads["resolution_head.bias"].abs().sum()) > 0
    assert float(gen.superclass_embedding.weight.grad[1].abs().sum()) > 0
    assert float(gen.superclass_embedding.weight.grad[0].abs().sum()) == 0  # only the scenario's superclass learns
    gen.zero_grad()
    con = constraint_loss(soft_cost(costs, layout, gumbel_sigmoid(gen.logits(torch.tensor([1]), budget), 1.0)[0]), budget[0])
    con.backward()
    assert float(gen.width_head.bias.grad.abs().sum()) > 0


def test_budget_interpolation_between_levels():
    pos = budget_position(torch.tensor([10.0, 55.0, 100.0, 150.0, 0.0]), 10.0, 100.0, 11)
    assert pos.tolist() == pytest.approx([0.0, 5.0, 10.0, 10.0, 0.0])
    _, space, costs = _problem("mobilenet_v1", 0.25, (28,), 1)
    gen = ArchitectureGenerator(GateLayout.of(space), 2, 10.0, 100.0, levels=11)
    k = torch.tensor([0, 0, 0])
    e = gen.embed(k, torch.tensor([10.0, 14.5, 19.0], dtype=torch.float64))
    torch.testing.assert_close(e[1], 0.5 * (e[0] + e[2]))


def test_constraint_loss_and_cosine():
    assert float(constraint_loss(torch.tensor(110.0), torch.tensor(100.0))) == pytest.approx(0.1)
    assert float(constraint_loss(torch.tensor(90.0), torch.tensor(100.0))) == pytest.approx(0.1)
    assert mean_pairwise_cosine([[1, 0, 1], [1, 0, 1], [0, 1, 1]]) == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_channel_masks_follow_the_structure():
    _, space, _ = _problem("mobilenet_v1", 0.25, (28,), 1)
    layout = GateLayout.of(space)
    s = _structures(space, 1, seed=5)[-1]
    masks = channel_masks(layout, encode(layout, s))
    for d, (m, w) in enumerate(zip(masks, s.widths)):
        if m is None:
            assert w == space.dimensions[d].o_max
        else:
            assert m.tolist() == [1.0] * w + [0.0] * (space.dimensions[d].o_max - w)


def test_the_cost_loss_teaches_the_generator_budgets():
    """Trained on a frozen tiny supernet, the expected cost C(alpha) follows the asked budget.

    Untrained, every budget gets about the same architecture (gates start likely on); after training, a larger
    budget gives a larger expected cost and the costs sit nearer their budgets. Synthetic images: the
    cross-entropy is noise here, the cost term is what is tested.
    """
    import pss
    from pss.eas.search import gate_probabilities, train_generator

    spec = build_spec("mobilenet_v1", num_classes=4, in_channels=1, width_mult=0.25)
    space = StructureSpace.for_spec(spec, (20, 24, 28))
    cm = CostModel(spec, space)
    torch.manual_seed(0)
    net = Supernet(spec)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28, generator=g), torch.arange(64) % 4
    lo, hi = cm.macs(space.min_structure), cm.macs(space.max_structure)
    budgets = [lo + f * (hi - lo) for f in (0.2, 0.5, 0.8)]

    def expected_costs(epochs: int) -> list[float]:
        settings = pss.settings_from(epochs=epochs, batch_size=64, lr=0.02, constraint_weight=5.0, scenarios_per_batch=2)
        gen, _ = train_generator(net, cm, [0, 0, 1, 1], lambda b: iter([(x, y)]), settings)
        return [float(soft_cost(cm, gen.layout, p.double(), "macs")) for p in gate_probabilities(gen, [0, 0, 0], budgets)]

    def error(costs: list[float]) -> float:
        return sum(abs(c - b) / b for c, b in zip(costs, budgets)) / len(budgets)

    before, after = expected_costs(0), expected_costs(80)
    assert max(before) - min(before) < 0.02 * hi  # the untrained generator ignores the budget
    assert after[0] < after[1] < after[2]
    assert error(after) < 0.5 * error(before)
