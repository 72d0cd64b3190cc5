"""The reference implementation's MobileNetV2 structure space (config ``width_rule: official``).

chenbong/PSS-Net searches 9 width multipliers in [0.75, 1] (stem, 7 stages,
a tail multiplier its code never reads) and realises each width with
``make_divisible`` (nearest multiple of 8, never more than 10% down); every
block's expansion is ``make_divisible(6 x realised input width)`` and the last
conv keeps 1280 channels. Here the spec ties the expansion (``cin_mult`` /
``cout_mult`` 6), so a structure holds only the stem, the stages and the fixed
tail: every draw, mutation or crossover of it is a member of S.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_models import randomise
from torch import nn

from pss.config import load_config
from pss.evolution.operators import crossover, mutate
from pss.nn.supernet import DenseNet, Supernet, extract_subnet, resize_batch
from pss.problem.budgets import make_budgets
from pss.problem.costs import CostModel
from pss.problem.latency_table import lut_layout
from pss.problem.models import build_spec
from pss.problem.problem import Problem, spec_and_space
from pss.problem.space import (
    Structure,
    StructureSpace,
    make_divisible,
    resolution_range,
)
from pss.sampling.marginals import (
    Marginals,
    StructureDistributionSampler,
    generate_structure_set,
    uniform_width_draw,
)
from pss.sampling.strategies import make_strategy

PAPER_RES = resolution_range(128, 224, 8)
STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))

# Multiply-adds (conv + classifier, 1000 classes) of structures of the reference space, from the reference's
# own code: chenbong/PSS-Net utils/comm.py calc_subnet_flops({'model_name': 'mobilenet_v2', 'resolution': r,
# 'stage_cout_mults': m}) * 1e6 minus its average-pool term (final H*W*1280: 4*4*1280 = 20,480 at 128 px,
# 5*5*1280 = 32,000 at 160 px, 7*7*1280 = 62,720 at 224 px), with widths make_divisible(base * m) for the bases
# (32, 16, 24, 32, 64, 96, 160, 320) and the 1280 tail. The first two are the published ends of PSS-Net's
# MobileNetV2 curve (reference scripts/plot_main_result.py: 69.15M and 300.84M FLOPs with the pool term).
REFERENCE_MACS = [
    # (stage_cout_mults, resolution, our widths, calc_subnet_flops in MFLOPs, MACs without the pool)
    ((0.75,) * 9, 128, (24, 16, 24, 24, 48, 72, 120, 240, 1280), 69.150208, 69_129_728),
    ((1.0,) * 9, 224, (32, 16, 24, 32, 64, 96, 160, 320, 1280), 300.836992, 300_774_272),
    ((0.8, 0.9, 1.0, 0.8, 0.85, 0.9, 0.95, 0.8, 1.0), 160, (24, 16, 24, 24, 56, 88, 152, 256, 1280), 129.264, 129_232_000),
    ((1.0, 0.75, 0.8, 1.0, 0.78, 0.82, 0.76, 0.97, 0.9), 224, (32, 16, 24, 32, 48, 80, 120, 312, 1280), 242.134992, 242_072_272),
    ((1.0,) * 9, 128, (32, 16, 24, 32, 64, 96, 160, 320, 1280), 99.094528, 99_074_048),
    ((0.75,) * 9, 224, (24, 16, 24, 24, 48, 72, 120, 240, 1280), 209.132512, 209_069_792),
]


def hand_macs(widths: tuple[int, ...], resolution: int, classes: int = 1000) -> int:
    """The reference's MobileNetV2 multiply-adds written out (no cost model): conv k*k*cin*cout per output pixel
    (k*k*c for depthwise), expansion 6 x the block's input width, then 1280 x classes."""
    size = (resolution + 2 - 3) // 2 + 1  # stem: 3x3 stride 2
    macs = size * size * 9 * 3 * widths[0]
    cin = widths[0]
    for (t, _, n, s), cout in zip(STAGES, widths[1:8]):
        for i in range(n):
            hidden = t * cin
            if t != 1:
                macs += size * size * cin * hidden  # 1x1 expand
            size = (size + 2 - 3) // (s if i == 0 else 1) + 1
            macs += size * size * 9 * hidden  # 3x3 depthwise
            macs += size * size * hidden * cout  # 1x1 project
            cin = cout
    return macs + size * size * cin * widths[8] + widths[8] * classes


def pool_macs(resolution: int) -> int:
    size = resolution
    for _ in range(5):
        size = (size + 2 - 3) // 2 + 1
    return size * size * 1280


def hook_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one image counted by forward hooks on every conv and linear layer of a dense model."""
    total = 0

    def conv(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m: nn.Linear, _inp, _out) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    handles = [m.register_forward_hook(conv if isinstance(m, nn.Conv2d) else linear)
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def official(classes: int = 1000, resolutions=PAPER_RES, width: float = 1.0, stem: str = "imagenet", lower_bound: float = 0.75,
             divisor: int = 8):
    spec = build_spec("mobilenet_v2", classes, width_mult=width, stem=stem, width_rule="official")
    return spec, StructureSpace.for_spec(spec, resolutions, lower_bound=lower_bound, divisor=divisor)


@pytest.fixture(scope="module")
def paper():
    spec, space = official()
    return spec, space, CostModel(spec, space)


# ---------------------------------------------------------------------- the space
def test_dimensions_and_choices_of_the_reference_space(paper):
    _, space, _ = paper
    assert space.names == ("stem", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "last")
    choices = {d.name: d.choices for d in space.dimensions}
    # make_divisible(base * m) for m in [0.75, 1]: 16 and 24 can only round back up (the 10% rule), the tail is fixed
    assert choices["stem"] == (24, 32) and choices["s1"] == (16,) and choices["s2"] == (24,) and choices["s3"] == (24, 32)
    assert choices["s4"] == (48, 56, 64) and choices["s5"] == (72, 80, 88, 96)
    assert choices["s6"] == tuple(range(120, 161, 8)) and choices["s7"] == tuple(range(240, 321, 8))
    assert choices["last"] == (1280,)
    for d in space.dimensions:
        assert d.choices[0] >= math.ceil(0.75 * d.o_max), f"{d.name}: {d.choices[0]} below the lower bound"
        assert all(c % 8 == 0 for c in d.choices)
    # every realised multiplier of the reference is a choice, and nothing else is
    for base, d in zip((32, 16, 24, 32, 64, 96, 160, 320), space.dimensions):
        assert {make_divisible(base * m, 8) for m in np.linspace(0.75, 1.0, 251)} == set(d.choices), d.name
    assert space.min_structure.widths == REFERENCE_MACS[0][2] and space.max_structure.widths == REFERENCE_MACS[1][2]


def test_free_rule_is_unchanged():
    """width_rule free: the spec, its rebuild block and S are what they were (no fixed dimension, nearest rounding)."""
    spec = build_spec("mobilenet_v2", 1000, width_mult=1.0, stem="imagenet")
    space = StructureSpace.for_spec(spec, PAPER_RES)
    assert spec.to_json() == {"model": "mobilenet_v2", "num_classes": 1000, "in_channels": 3, "width_mult": 1.0,
                              "stem": "imagenet", "family": "mobilenet_v2"}
    assert len(space) == 25 and spec.fixed_dims == () and space.rounding == "nearest"
    assert space.to_json() == StructureSpace(spec.dim_names, spec.dim_max, PAPER_RES).to_json()
    # the US-Net / MutualNet draw of a free space: the nearest multiple of 8, clipped into S (the formula before width rules)
    o_max = np.array(spec.dim_max, dtype=np.float64)
    low = np.array([d.choices[0] for d in space.dimensions])
    w, _ = uniform_width_draw(space)(200, np.random.default_rng(3))
    m = np.random.default_rng(3).uniform(0.75, 1.0, size=200)
    expect = np.minimum(o_max.astype(np.int64), np.maximum(low, np.maximum(8, np.floor(m[:, None] * o_max / 8 + 0.5).astype(np.int64) * 8)))
    np.testing.assert_array_equal(w, expect)
    nearest = [min(int(o), max(int(lo), max(8, math.floor(0.8 * o / 8 + 0.5) * 8))) for o, lo in zip(o_max, low)]
    assert space.uniform_structure(0.8, 128) == Structure(tuple(nearest), 128)


# ---------------------------------------------------------------------- costs
@pytest.mark.parametrize("mults,resolution,widths,flops,macs", REFERENCE_MACS, ids=[f"{r}px-{i}" for i, (_, r, *_) in enumerate(REFERENCE_MACS)])
def test_macs_equal_the_reference_formula(paper, mults, resolution, widths, flops, macs):
    _, space, costs = paper
    assert tuple(make_divisible(b * m, 8) for b, m in zip((32, 16, 24, 32, 64, 96, 160, 320), mults)) + (1280,) == widths
    assert macs == round(flops * 1e6) - pool_macs(resolution)  # the constants agree with each other
    assert hand_macs(widths, resolution) == macs  # and with the formula written out above
    s = Structure(widths, resolution)
    assert space.contains(s)
    assert costs.macs(s) == macs
    assert costs.macs_array(np.array([widths]), np.array([resolution])).tolist() == [macs]


def test_published_ends_of_the_curve(paper):
    _, space, costs = paper
    assert costs.macs(space.min_structure) + pool_macs(128) == pytest.approx(69.15e6, abs=0.005e6)
    assert costs.macs(space.max_structure) + pool_macs(224) == pytest.approx(300.84e6, abs=0.005e6)


def test_cost_model_equals_the_formula_on_random_structures(paper):
    _, space, costs = paper
    widths, res = space.sample_uniform_arrays(300, np.random.default_rng(0))
    expected = [hand_macs(tuple(int(v) for v in w), int(r)) for w, r in zip(widths, res)]
    assert costs.macs_array(widths, res).tolist() == expected
    assert len(set(expected)) > 100


@pytest.mark.parametrize("i", [0, 2, 1])
def test_macs_and_params_equal_a_hook_count_of_the_dense_model(paper, i):
    spec, _, costs = paper
    _, r, widths, _, macs = REFERENCE_MACS[i]
    s = Structure(widths, r)
    dense = DenseNet(spec, s).eval()
    assert hook_macs(dense, torch.zeros(1, 3, r, r)) == costs.macs(s) == macs
    assert sum(p.numel() for p in dense.parameters()) == costs.params(s)


# ---------------------------------------------------------------------- the tie in the networks
def test_dense_model_has_expansions_tied_to_the_block_input(paper):
    spec, _, _ = paper
    s = Structure(REFERENCE_MACS[3][2], 224)
    dense = DenseNet(spec, s)
    stem, stages, last = s.widths[0], s.widths[1:8], s.widths[8]
    blocks = list(dense.blocks)
    assert blocks[0].body[0].conv.out_channels == stem
    cin, k = stem, 1
    for (t, _, n, _), cout in zip(STAGES, stages):
        for _ in range(n):
            convs = [layer.conv for layer in blocks[k].body]
            if t == 1:
                assert [c.out_channels for c in convs] == [cin, cout]
            else:
                expand, dw, project = convs
                assert (expand.in_channels, expand.out_channels) == (cin, 6 * cin)
                assert dw.groups == dw.in_channels == dw.out_channels == 6 * cin
                assert (project.in_channels, project.out_channels) == (6 * cin, cout)
            cin, k = cout, k + 1
    assert blocks[k].body[0].conv.out_channels == last == 1280
    assert dense.classifier.in_features == 1280 and k + 1 == len(blocks)


@pytest.fixture(scope="module")
def small_official():
    """An official space at test resolutions with a randomised supernet (eval mode)."""
    torch.manual_seed(0)
    spec, space = official(classes=10, resolutions=(48, 64))
    net = Supernet(spec)
    randomise(net, seed=1)
    return spec, space, net.eval()


def test_extract_subnet_equals_the_supernet_slice(small_official):
    _, space, net = small_official
    rng = np.random.default_rng(4)
    x = torch.randn(2, 3, 64, 64)
    outs = {}
    with torch.no_grad():
        for s in [space.max_structure, space.min_structure] + [space.sample_uniform(rng) for _ in range(3)]:
            ref = net(x, s)
            got = extract_subnet(net, s)(resize_batch(x, s.resolution))
            assert got.shape == (2, 10)
            assert (got - ref).abs().max().item() <= 1e-5 * max(1.0, ref.abs().max().item()), s.key
            outs[s.key] = ref
    assert (outs[space.max_structure.key] - outs[space.min_structure.key]).abs().max() > 1e-2


def test_training_an_official_subnet_touches_only_its_tied_slice(small_official):
    spec, space, _ = small_official
    net = Supernet(spec)
    net.train()
    s = space.min_structure
    net(torch.randn(4, 3, 48, 48), s).sum().backward()
    for _, path, conv in spec.convs():
        cin, cout = spec.conv_channels(conv, s.widths)
        g = net.get_submodule(path).conv.weight.grad
        assert torch.count_nonzero(g[cout:]) == 0 and g[:cout].abs().sum() > 0, path
        if not conv.depthwise:
            assert torch.count_nonzero(g[:, cin:]) == 0, path
        if conv.cout_mult != 1:  # an expansion or its depthwise conv: 6 x the block's input width, not all of it
            assert cout == 6 * s.widths[conv.cout] and (cout < g.shape[0] or s.widths[conv.cout] == spec.dim_max[conv.cout]), path


def test_parallel_chunks_of_official_subnets_equal_their_own_forwards():
    """PSE-Net's masked forward (Eq. 8-14) masks a tied expansion at 6 x each chunk's input width."""
    spec = build_spec("mobilenet_v2", 10, width_mult=0.35, stem="imagenet", width_rule="official", dropout=0.0)
    space = StructureSpace.for_spec(spec, (32,), lower_bound=0.5)
    torch.manual_seed(0)
    net = Supernet(spec).train()
    nn.init.normal_(net.classifier.weight, 0, net.classifier.in_features ** -0.5)
    structures = [space.max_structure, space.min_structure, space.sample_uniform(np.random.default_rng(2))]
    x = torch.randn(12, 3, 32, 32)
    with torch.no_grad():
        parallel = net.forward_parallel(x, structures)
        separate = torch.cat([net(chunk, s) for chunk, s in zip(x.split(4), structures)])
    torch.testing.assert_close(parallel, separate, rtol=1e-4, atol=1e-4)


def test_spec_rebuilds_from_its_model_block():
    """An export's card stores spec.to_json(); load_subnet calls build_spec(**card['model'])."""
    for kwargs in ({"width_rule": "official"}, {"width_rule": "official", "dropout": 0.0}, {"dropout": 0.1}, {}):
        spec = build_spec("mobilenet_v2", 100, width_mult=1.0, stem="imagenet", **kwargs)
        again = build_spec(**spec.to_json())
        assert again == spec and again.to_json() == spec.to_json()
        assert (again.dim_names, again.fixed_dims, again.width_rule, again.dropout) == (spec.dim_names, spec.fixed_dims, spec.width_rule, spec.dropout)
    assert build_spec("mobilenet_v2", 10, stem="imagenet").dropout == 0.2
    assert build_spec("mobilenet_v2", 10, stem="imagenet", dropout=0.0).dropout == 0.0
    assert build_spec("mobilenet_v2", 10, stem="imagenet", dropout=0.2).to_json() == build_spec("mobilenet_v2", 10, stem="imagenet").to_json()
    assert build_spec("resnet20", 10, dropout=0.3).dropout == 0.3


def test_lut_layout_keys_blocks_by_whole_dimensions(paper):
    spec, space, _ = paper
    layout = lut_layout(spec, space)
    assert all(0 <= d < len(space) for blk in layout for d in blk.dims)
    assert layout[2].dims == (1, 2)  # s2.b1: reads s1 (its expansion is 6 x s1), writes s2


# ---------------------------------------------------------------------- every way of drawing stays in S
def test_every_draw_of_structures_stays_in_the_official_space(paper):
    _, space, costs = paper
    rng = np.random.default_rng(1)
    w, r = space.sample_uniform_arrays(2000, rng)
    drawn = [Structure(tuple(a), int(b)) for a, b in zip(w, r)]
    w, r = generate_structure_set(space, 2000, rng)
    drawn += [Structure(tuple(a), int(b)) for a, b in zip(w, r)]
    w, r = uniform_width_draw(space)(500, rng)
    drawn += [Structure(tuple(a), int(b)) for a, b in zip(w, r)]
    w, r = Marginals.uniform(space).sample(500, rng)
    drawn += [Structure(tuple(a), int(b)) for a, b in zip(w, r)]
    drawn += [space.uniform_structure(m, 160) for m in np.linspace(0.7, 1.0, 31)]
    marg = Marginals.uniform(space)
    drawn += [mutate(drawn[i], marg, 0.5, rng) for i in range(200)]
    drawn += [crossover(drawn[i], drawn[i + 1], rng) for i in range(200)]
    budgets = make_budgets("macs", costs.macs(space.min_structure), costs.macs(space.max_structure), count=4)
    sampler = StructureDistributionSampler(space, costs.macs_array, budgets, rng, set_size=4000, max_trials=200)
    drawn += [sampler.sample(t, rng)[0] for t in range(4) for _ in range(10)]
    for name in ("uniform", "mutual", "random", "pse"):
        drawn += [sub.structure for _ in range(10) for sub in make_strategy(name, space, 4).plan(rng, 0.5)]
    bad = [s.key for s in drawn if not space.contains(s)]
    assert not bad, bad[:5]
    assert {s.widths[-1] for s in drawn} == {1280}


def test_the_imagenet_preset_uses_the_official_space_without_dropout():
    cfg = load_config("imagenet100-mbv2")
    assert cfg.width_rule == "official" and cfg.dropout == 0.0
    spec, space = spec_and_space(cfg, 100, 3)
    assert spec.width_rule == "official" and spec.dropout == 0.0 and len(space) == 9
    problem = Problem.build(cfg, 100, 3)
    lo, hi = problem.cost_range("macs")
    # 1000 -> 100 classes takes 1280 * 900 multiply-adds off both ends of the reference's curve
    assert (lo, hi) == (69_129_728 - 1280 * 900, 300_774_272 - 1280 * 900)
    for name in ("cifar10-mbv2", "cifar100-mbv2"):
        cfg = load_config(name)
        assert cfg.dropout == 0.0 and cfg.width_rule == "free" and spec_and_space(cfg, 10, 3)[0].dropout == 0.0
