"""Analytic costs (pss.problem.costs.CostModel) against fvcore and the published numbers.

What the MAC count covers: every convolution and the classifier's matrix
multiply, one multiply-add counted once. BatchNorm, activations, pooling and
residual additions are not counted. fvcore counts BatchNorm
(``aten::batch_norm``) and adaptive average pooling by default, so for the
comparison both handles are *replaced* by handles that count nothing.

Note on fvcore 0.1.5: ``set_op_handle("aten::batch_norm", None)`` does NOT
disable the default handle (it only adds the op to the ignore set and the
default handle still runs), hence the explicit empty-Counter handles below.
"""

from __future__ import annotations

import collections
import time

import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis

from pss.nn.supernet import DenseNet
from pss.problem.costs import CostModel
from pss.problem.models import build_spec
from pss.problem.space import Structure, StructureSpace
from pss.problem.spec import conv_output_size
from pss.units import ANALYTIC_KINDS


def _count_nothing(inputs, outputs):
    return collections.Counter()


def fvcore_macs(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, collections.Counter]:
    """fvcore's multiply-adds with BN and adaptive pooling not counted (see module docstring)."""
    fa = FlopCountAnalysis(model, x)
    fa.set_op_handle("aten::batch_norm", _count_nothing, "aten::adaptive_avg_pool2d", _count_nothing)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    return int(fa.total()), fa.by_operator()


# (model, width_mult, stem, resolutions)
FAMILIES = [
    ("mobilenet_v1", 0.25, "cifar", (24, 28, 32)),
    ("mobilenet_v2", 0.25, "cifar", (24, 28, 32)),
    ("resnet20", 0.5, "cifar", (24, 28, 32)),
    ("resnet50", 0.25, "imagenet", (64, 72, 80, 88, 96)),
    ("mobilenet_v2", 0.35, "imagenet", (96, 112, 128)),
]
IDS = [f"{m}-x{w}-{s}" for m, w, s, _ in FAMILIES]


def _space(spec, resolutions, lower_bound=0.75, divisor=8) -> StructureSpace:
    return StructureSpace(spec.dim_names, spec.dim_max, resolutions, lower_bound=lower_bound, divisor=divisor)


def _structures(space: StructureSpace, n: int, seed: int) -> list[Structure]:
    rng = np.random.default_rng(seed)
    return [space.min_structure, space.max_structure] + [space.sample_uniform(rng) for _ in range(n)]


@pytest.mark.parametrize("model,width,stem,resolutions", FAMILIES, ids=IDS)
def test_macs_and_params_match_fvcore_on_the_dense_model(model, width, stem, resolutions):
    spec = build_spec(model, 10, width_mult=width, stem=stem)
    space = _space(spec, resolutions)
    costs = CostModel(spec, space)
    seen = set()
    for s in _structures(space, 5, seed=len(spec.dim_names) * 7 + resolutions[0]):
        dense = DenseNet(spec, s).eval()
        x = torch.zeros(1, spec.in_channels, s.resolution, s.resolution)
        counted, by_op = fvcore_macs(dense, x)
        assert set(by_op) <= {"conv", "linear"}, f"fvcore counted more than convs and the classifier: {by_op}"
        assert costs.macs(s) == counted, f"{s.key}: analytic {costs.macs(s)} vs fvcore {counted} ({by_op})"
        assert costs.params(s) == sum(p.numel() for p in dense.parameters()), s.key
        assert costs.costs(s) == {"macs": costs.macs(s), "params": costs.params(s)}
        seen.add(costs.macs(s))
    assert len(seen) >= 5, "the sampled structures should have different costs"


def test_fvcore_bn_handles_are_really_off():
    """Guard for the helper: with the default handles fvcore counts BN, with ours it does not."""
    spec = build_spec("resnet20", 10, width_mult=0.5, stem="cifar")
    space = _space(spec, (32,))
    dense = DenseNet(spec, space.max_structure).eval()
    x = torch.zeros(1, 3, 32, 32)
    default = FlopCountAnalysis(dense, x)
    default.unsupported_ops_warnings(False)
    default.uncalled_modules_warnings(False)
    ours, _ = fvcore_macs(dense, x)
    assert default.total() > ours == CostModel(spec, space).macs(space.max_structure)


def test_costs_grow_with_widths_and_resolution():
    spec = build_spec("mobilenet_v2", 10, width_mult=0.25, stem="cifar")
    space = _space(spec, (24, 28, 32))
    costs = CostModel(spec, space)
    top = space.max_structure
    small = Structure(top.widths, 24)
    assert costs.macs(small) < costs.macs(top)
    assert costs.params(small) == costs.params(top), "parameters do not depend on the resolution"
    assert costs.macs(space.min_structure) < costs.macs(small)
    assert costs.params(space.min_structure) < costs.params(top)


@pytest.mark.parametrize("model,width,stem,resolutions", FAMILIES, ids=IDS)
def test_vectorised_costs_equal_per_structure_costs(model, width, stem, resolutions):
    spec = build_spec(model, 10, width_mult=width, stem=stem)
    space = _space(spec, resolutions, lower_bound=0.25, divisor=4)
    costs = CostModel(spec, space)
    rng = np.random.default_rng(5)
    widths, res = space.sample_uniform_arrays(400, rng)
    # include the two ends
    widths = np.vstack([widths, [space.min_structure.widths, space.max_structure.widths]])
    res = np.concatenate([res, [space.min_structure.resolution, space.max_structure.resolution]])
    macs = costs.macs_array(widths, res)
    params = costs.params_array(widths, res)
    assert macs.shape == params.shape == (len(res),)
    ss = [Structure(tuple(w), int(r)) for w, r in zip(widths, res)]
    assert macs.tolist() == [costs.macs(s) for s in ss]
    assert params.tolist() == [costs.params(s) for s in ss]
    assert costs.cost_array("macs", widths, res).tolist() == macs.tolist()
    assert costs.cost_array("params", widths, res).tolist() == params.tolist()
    assert [costs.cost("macs", s) for s in ss[:20]] == [float(v) for v in macs[:20]]
    assert [costs.cost("params", s) for s in ss[:20]] == [float(v) for v in params[:20]]


def test_unknown_cost_kind_is_rejected():
    spec = build_spec("resnet20", 10, width_mult=0.5, stem="cifar")
    space = _space(spec, (32,))
    costs = CostModel(spec, space)
    assert ANALYTIC_KINDS == ("macs", "params")
    with pytest.raises(ValueError, match="unknown cost kind"):
        costs.cost("latency", space.max_structure)
    with pytest.raises(ValueError, match="unknown cost kind"):
        costs.cost_array("latency", np.array([space.max_structure.widths]), np.array([32]))


def test_cost_model_rejects_a_mismatched_space():
    spec = build_spec("resnet20", 10, width_mult=0.5, stem="cifar")
    other = build_spec("mobilenet_v1", 10, width_mult=0.25, stem="cifar")
    with pytest.raises(ValueError, match="dimensions"):
        CostModel(spec, _space(other, (32,)))


def test_conv_output_size():
    assert conv_output_size(32, 3, 1, 1) == 32
    assert conv_output_size(32, 3, 2, 1) == 16
    assert conv_output_size(224, 7, 2, 3) == 112
    assert conv_output_size(7, 3, 2, 1) == 4
    assert conv_output_size(7, 1, 2, 0) == 4


# ------------------------------------------------------------- paper numbers
def _full_size(model: str) -> tuple[CostModel, Structure]:
    spec = build_spec(model, 1000, width_mult=1.0, stem="imagenet")
    space = _space(spec, (224,))
    return CostModel(spec, space), space.max_structure


@pytest.mark.parametrize(
    "model,macs,params",
    [
        ("mobilenet_v1", 569e6, 4.23e6),  # Howard et al. 2017, Table 8: 569M mult-adds, 4.2M params
        ("mobilenet_v2", 300e6, 3.50e6),  # Sandler et al. 2018, Table 4: 300M MAdds, 3.4M (torchvision 3.50M)
        ("resnet50", 4.1e9, 25.557032e6),  # torchvision ResNet-50: 4.09G MACs, 25,557,032 params
    ],
)
def test_paper_sized_models_match_published_costs(model, macs, params):
    costs, top = _full_size(model)
    assert costs.macs(top) == pytest.approx(macs, rel=0.01)
    assert costs.params(top) == pytest.approx(params, rel=0.01)


def test_resnet50_params_exact():
    costs, top = _full_size("resnet50")
    assert costs.params(top) == 25_557_032  # torchvision.models.resnet50(), no weights needed to count


def test_single_structure_cost_is_fast():
    """The sampler evaluates C(phi) per candidate: one call must stay far below a millisecond."""
    costs, _ = _full_size("resnet50")
    space = costs.space
    rng = np.random.default_rng(0)
    ss = [space.sample_uniform(rng) for _ in range(200)]
    costs.macs(ss[0])  # warm-up
    t0 = time.perf_counter()
    for s in ss:
        costs.macs(s)
        costs.params(s)
    per_call = (time.perf_counter() - t0) / (2 * len(ss))
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} us per cost call"
