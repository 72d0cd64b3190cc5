"""Slicing equivalence and invariants of the model families, the structure and its space.

The central property: for any structure s, the dense model ``extract_subnet``
builds is the same function as ``supernet(x, s)`` (same weights W_i[1:o_i], same
BN statistics), with physically smaller tensors that share nothing with the
supernet, and training s only ever touches the first o_i channels.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from pss.errors import PssError
from pss.nn.ops import SlimBatchNorm2d
from pss.nn.supernet import DenseNet, Supernet, extract_subnet, resize_batch
from pss.problem.models import MODELS, build_spec
from pss.problem.space import Structure, StructureSpace, round_to_divisor
from pss.problem.spec import IMAGE, BlockSpec, ConvSpec, NetSpec

CIFAR_RES = (24, 28, 32)
IMAGENET_RES = (48, 56, 64)

# (model, width_mult, stem) -- small enough for CPU, one entry per family and
# both stems where cheap.
FAMILIES = [
    ("mobilenet_v1", 0.25, "cifar"),
    ("mobilenet_v1", 0.25, "imagenet"),
    ("mobilenet_v2", 0.25, "cifar"),
    ("mobilenet_v2", 0.25, "imagenet"),
    ("resnet20", 0.5, "cifar"),
    ("resnet20", 0.5, "imagenet"),
    ("resnet56", 0.5, "cifar"),
    ("resnet50", 0.25, "imagenet"),
]
FAMILY_IDS = [f"{m}-x{w}-{s}" for m, w, s in FAMILIES]


def make_space(spec: NetSpec, stem: str, lower_bound: float = 0.75, divisor: int = 8) -> StructureSpace:
    res = CIFAR_RES if stem == "cifar" else IMAGENET_RES
    return StructureSpace(spec.dim_names, spec.dim_max, res, lower_bound=lower_bound, divisor=divisor)


def randomise(model: nn.Module, seed: int) -> None:
    """Random BN running statistics and affine parameters, and an O(1) classifier.

    The default init (BN mean 0 / var 1 / weight 1 / bias 0, classifier std
    0.01) would make logits tiny and any BN slicing mistake invisible.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=gen) * 0.6 + 0.7)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / math.sqrt(m.in_features))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)


def structures(space: StructureSpace, n: int, seed: int) -> list[Structure]:
    rng = np.random.default_rng(seed)
    out = [space.max_structure, space.min_structure]
    out += [space.sample_uniform(rng) for _ in range(n)]
    return out


@pytest.fixture(scope="module", params=FAMILIES, ids=FAMILY_IDS)
def family(request):
    """(spec, space, supernet in eval mode with randomised BN) for one family."""
    model, width, stem = request.param
    torch.manual_seed(0)
    spec = build_spec(model, 10, width_mult=width, stem=stem)
    space = make_space(spec, stem)
    net = Supernet(spec)
    randomise(net, seed=1)
    return spec, space, net.eval()


# --------------------------------------------------------------------- slicing
def test_extract_subnet_matches_supernet_slice(family):
    spec, space, net = family
    torch.manual_seed(2)
    r_max = space.resolutions[-1]
    x = torch.randn(2, spec.in_channels, r_max, r_max)
    outs = {}
    with torch.no_grad():
        for s in structures(space, 4, seed=3):
            assert space.contains(s)
            ref = net(x, s)
            dense = extract_subnet(net, s)
            assert not dense.training, "extract_subnet must return an eval-mode model"
            got = dense(resize_batch(x, s.resolution))
            assert got.shape == (2, spec.num_classes)
            scale = max(1.0, ref.abs().max().item())
            diff = (got - ref).abs().max().item()
            assert diff <= 1e-5 * scale, f"{s.key}: dense differs from the supernet slice by {diff}"
            outs[s.key] = ref
    # The comparison is not vacuous: logits are O(1) and depend on the structure.
    max_out, min_out = outs[space.max_structure.key], outs[space.min_structure.key]
    assert max_out.abs().max() > 0.1
    assert (max_out - min_out).abs().max() > 1e-2


def test_supernet_without_structure_is_max_subnet(family):
    spec, space, net = family
    r = space.resolutions[-1]
    x = torch.randn(2, spec.in_channels, r, r)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x, space.max_structure), rtol=0, atol=0)


def test_dense_weights_are_physically_smaller_and_not_shared(family):
    spec, space, net = family
    super_ptrs = {t.untyped_storage().data_ptr() for t in list(net.parameters()) + list(net.buffers())}
    super_total = sum(p.numel() for p in net.parameters())
    for s in structures(space, 2, seed=4):
        dense = extract_subnet(net, s)
        for _, path, conv in spec.convs():
            cin = spec.channels(conv.cin, s.widths)
            cout = s.widths[conv.cout]
            weight = dense.get_submodule(path).conv.weight
            expected = (cout, 1 if conv.depthwise else cin, conv.kernel, conv.kernel)
            assert tuple(weight.shape) == expected, f"{path}: {tuple(weight.shape)} != {expected} for {s.key}"
            assert weight.numel() == math.prod(expected)
            bn = dense.get_submodule(path).bn
            assert bn.weight.numel() == bn.running_mean.numel() == cout
        assert tuple(dense.classifier.weight.shape) == (spec.num_classes, s.widths[spec.head_in])
        total = sum(p.numel() for p in dense.parameters())
        if s == space.max_structure:
            assert total == super_total
        else:
            assert total < super_total, f"{s.key}: dense has {total} parameters, supernet {super_total}"
        for name, t in list(dense.named_parameters()) + list(dense.named_buffers()):
            if t.numel():
                assert t.untyped_storage().data_ptr() not in super_ptrs, f"{name} shares storage with the supernet"


def test_dense_copy_is_independent_of_later_supernet_changes(family):
    spec, space, net = family
    s = structures(space, 1, seed=5)[-1]
    r = s.resolution
    x = torch.randn(1, spec.in_channels, r, r)
    dense = extract_subnet(net, s)
    with torch.no_grad():
        before = dense(x).clone()
        saved = {k: v.clone() for k, v in net.state_dict().items()}
        for p in net.parameters():
            p.mul_(-1.0)
        after = dense(x)
        net.load_state_dict(saved)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def _grad_checks(spec: NetSpec, net: Supernet, s: Structure) -> None:
    """Gradients live exactly in W_i[1:o_i]: zero outside the widths, non-zero inside."""
    for _, path, conv in spec.convs():
        mod = net.get_submodule(path)
        cin = spec.channels(conv.cin, s.widths)
        cout = s.widths[conv.cout]
        g = mod.conv.weight.grad
        assert g is not None, f"{path}: no gradient"
        if conv.depthwise:
            assert torch.count_nonzero(g[cout:]) == 0, f"{path}: gradient beyond {cout} filters"
            inside = g[:cout]
        else:
            assert torch.count_nonzero(g[cout:]) == 0, f"{path}: gradient beyond {cout} output channels"
            assert torch.count_nonzero(g[:, cin:]) == 0, f"{path}: gradient beyond {cin} input channels"
            inside = g[:cout, :cin]
        # every used output filter receives gradient
        per_filter = inside.reshape(cout, -1).abs().sum(1)
        assert bool((per_filter > 0).all()), f"{path}: some of the first {cout} filters got no gradient"
        for p in (mod.bn.weight, mod.bn.bias):
            assert torch.count_nonzero(p.grad[cout:]) == 0, f"{path}.bn: gradient beyond {cout} channels"
            assert torch.count_nonzero(p.grad[:cout]) > 0, f"{path}.bn: no gradient inside"
    head = s.widths[spec.head_in]
    gw = net.classifier.weight.grad
    assert torch.count_nonzero(gw[:, head:]) == 0
    assert bool((gw[:, :head].abs().sum(0) > 0).all())
    assert torch.count_nonzero(net.classifier.bias.grad) > 0


def test_train_step_touches_only_the_slice(family):
    spec, space, net = family
    net = Supernet(spec)  # fresh model: this test mutates running stats and grads
    randomise(net, seed=6)
    net.train()
    # Dropout (0.2 in the ImageNet MobileNetV2) can drop a feature for the whole
    # small batch, which legitimately zeroes that filter's gradient; keep it off.
    net.dropout.eval()
    rng = np.random.default_rng(7)
    # a random structure and the min structure (both strictly below max somewhere)
    for s in (space.sample_uniform(rng), space.min_structure):
        if s == space.max_structure:
            continue
        net.zero_grad(set_to_none=True)
        stats_before = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in net.named_modules() if isinstance(m, SlimBatchNorm2d)}
        x = torch.randn(4, spec.in_channels, s.resolution + 4, s.resolution + 4)
        out = net(x, s)
        (out * torch.randn_like(out)).sum().backward()
        _grad_checks(spec, net, s)
        # running statistics beyond the widths stay untouched, inside they move
        channels = {f"{path}.bn": s.widths[conv.cout] for _, path, conv in spec.convs()}
        for name, m in net.named_modules():
            if isinstance(m, SlimBatchNorm2d):
                c = channels[name]
                mean0, var0 = stats_before[name]
                assert torch.equal(m.running_mean[c:], mean0[c:]), f"{name}: running_mean beyond {c} changed"
                assert torch.equal(m.running_var[c:], var0[c:]), f"{name}: running_var beyond {c} changed"
                assert not torch.equal(m.running_mean[:c], mean0[:c]), f"{name}: running_mean not updated"


# ----------------------------------------------------------------- structures
def test_structure_key_and_json_round_trip():
    s = Structure((8, 16, 24), 28)
    assert s.key == "r28-8.16.24"
    assert Structure.from_key(s.key) == s
    assert Structure.from_json(s.to_json()) == s
    assert Structure.from_json(json.loads(json.dumps(s.to_json()))) == s
    assert s.to_json() == {"widths": [8, 16, 24], "resolution": 28}
    assert len(s.short_id) == 10 and int(s.short_id, 16) >= 0
    assert s.short_id == Structure([8, 16, 24], 28).short_id != Structure((8, 16, 32), 28).short_id


def test_structure_round_trip_over_a_real_space():
    spec = build_spec("mobilenet_v2", 10, width_mult=0.25, stem="cifar")
    space = make_space(spec, "cifar")
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = space.sample_uniform(rng)
        assert Structure.from_key(s.key) == s
        assert Structure.from_json(json.loads(json.dumps(s.to_json()))) == s


@pytest.mark.parametrize("bad", ["", "r32", "32-8.8", "r32-8.x", "rX-8.8", "r32-8..8"])
def test_structure_from_malformed_key(bad):
    with pytest.raises(PssError, match="malformed structure key"):
        Structure.from_key(bad)


def test_structure_is_immutable_hashable_and_canonical():
    a = Structure([8, 16], 32)
    b = Structure((np.int64(8), np.int64(16)), np.int64(32))
    assert a == b and hash(a) == hash(b)
    assert isinstance(a.widths, tuple) and all(type(w) is int for w in b.widths) and type(b.resolution) is int
    assert a.key == b.key == "r32-8.16"
    assert a != Structure((8, 16), 28) and a != Structure((8, 24), 32)
    assert len({a, b, Structure((8, 16), 28)}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.widths = (1, 2)  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.resolution = 1  # type: ignore[misc]


# ------------------------------------------------------------ structure space
O_MAX = (3, 8, 12, 16, 20, 24, 32, 40, 48, 64, 100, 144, 1280)


def _reference_choices(top: int, lower_bound: float, divisor: int) -> list[int]:
    """Sec. 3.1 written out independently: every integer o in [ceil(lb*top), top], rounded
    half-up to a multiple of ``divisor``, clipped into [rounded lower end, top]."""
    low = max(1, math.ceil(lower_bound * top))
    floor_ = min(top, max(divisor, divisor * ((2 * low + divisor) // (2 * divisor))))
    values = set()
    for o in range(low, top + 1):
        r = divisor * ((2 * o + divisor) // (2 * divisor))
        values.add(min(top, max(floor_, r)))
    values.add(top)
    return sorted(values)


@pytest.mark.parametrize("divisor", [4, 8, 16])
@pytest.mark.parametrize("lower_bound", [0.25, 0.7, 0.75, 0.8])
def test_space_choices_respect_divisor_and_lower_bound(divisor, lower_bound):
    names = [f"d{i}" for i in range(len(O_MAX))]
    space = StructureSpace(names, O_MAX, (24, 32), lower_bound=lower_bound, divisor=divisor)
    assert len(space) == len(O_MAX)
    for d, top in zip(space.dimensions, O_MAX):
        choices = list(d.choices)
        assert choices == sorted(set(choices)), f"{d.name}: choices not sorted/unique"
        assert d.o_max == top
        assert d.o_min == choices[0]
        assert all(d.o_min <= c <= d.o_max for c in choices)
        # every choice is a multiple of the divisor, except o_max itself when it is not one
        assert all(c % divisor == 0 or c == top for c in choices), f"{d.name}: {choices} ignore divisor {divisor}"
        # the lower end is lower_bound * o_max rounded to the divisor (never further away)
        expected_min = min(top, round_to_divisor(math.ceil(lower_bound * top), divisor))
        assert d.o_min == expected_min
        assert d.o_min >= min(top, lower_bound * top - divisor / 2)
        assert choices == _reference_choices(top, lower_bound, divisor)


@pytest.mark.parametrize("divisor", [4, 8, 16])
def test_max_and_min_structures_are_members_of_the_space(divisor):
    """phi_max (trained every batch by the sandwich rule) must be a member of S.

    Its widths are the dimensions' o_max, so o_max must be one of the choices,
    also when o_max is not a multiple of the divisor (e.g. 20 or 100 with 16).
    """
    names = [f"d{i}" for i in range(len(O_MAX))]
    space = StructureSpace(names, O_MAX, (24, 32), lower_bound=0.75, divisor=divisor)
    missing = [(d.name, d.o_max, d.choices) for d in space.dimensions if d.o_max not in d.choices]
    assert not missing, f"o_max is not a choice of {missing}"
    assert space.contains(space.max_structure)
    assert space.contains(space.min_structure)


def test_space_choices_known_values():
    space = StructureSpace(["a", "b", "c"], (64, 20, 100), (32,), lower_bound=0.75, divisor=8)
    assert space.dimensions[0].choices == (48, 56, 64)
    assert space.dimensions[1].choices == (16, 20)
    assert space.dimensions[2].choices == (72, 80, 88, 96, 100)
    assert space.max_structure == Structure((64, 20, 100), 32)
    assert space.min_structure == Structure((48, 16, 72), 32)


@pytest.mark.parametrize("lower_bound", [0.0, -0.5, 1.5])
def test_space_rejects_bad_lower_bound(lower_bound):
    with pytest.raises(PssError, match="lower_bound"):
        StructureSpace(["a"], (16,), (32,), lower_bound=lower_bound)


def test_space_rejects_bad_divisor_and_no_resolution():
    with pytest.raises(PssError, match="divisor"):
        StructureSpace(["a"], (16,), (32,), divisor=0)
    with pytest.raises(PssError, match="resolution"):
        StructureSpace(["a"], (16,), ())


@pytest.mark.parametrize("model,width,stem", FAMILIES, ids=FAMILY_IDS)
def test_uniform_sampling_yields_members_and_covers_choices(model, width, stem):
    spec = build_spec(model, 10, width_mult=width, stem=stem)
    space = make_space(spec, stem, lower_bound=0.25, divisor=4)
    rng = np.random.default_rng(11)
    for _ in range(30):
        assert space.contains(space.sample_uniform(rng))
    widths, res = space.sample_uniform_arrays(20000, rng)
    assert widths.shape == (20000, len(space)) and res.shape == (20000,)
    assert set(np.unique(res).tolist()) == set(space.resolutions)
    for i, d in enumerate(space.dimensions):
        seen = set(np.unique(widths[:, i]).tolist())
        assert seen == set(d.choices), f"{d.name}: sampled {sorted(seen)} vs choices {d.choices}"


def test_space_contains_and_validate():
    spec = build_spec("resnet20", 10, width_mult=0.5, stem="cifar")
    space = make_space(spec, "cifar")
    assert space.contains(space.max_structure) and space.contains(space.min_structure)
    assert space.contains(space.uniform_structure(0.8, 28))
    top = space.max_structure
    assert not space.contains(Structure(top.widths, 30)), "resolution outside the space"
    assert not space.contains(Structure(top.widths[:-1], 32)), "too few dimensions"
    assert not space.contains(Structure(top.widths + (8,), 32)), "too many dimensions"
    off = list(top.widths)
    off[0] = top.widths[0] + 1
    assert not space.contains(Structure(tuple(off), 32)), "width above o_max"
    off[0] = space.dimensions[0].o_min - 1
    assert not space.contains(Structure(tuple(off), 32)), "width below o_min"
    assert space.validate(top) is top
    with pytest.raises(PssError, match="not in this structure space"):
        space.validate(Structure(top.widths, 30))


def test_space_json_describes_every_dimension():
    spec = build_spec("mobilenet_v1", 10, width_mult=0.25, stem="cifar")
    space = make_space(spec, "cifar", lower_bound=0.7, divisor=16)
    data = json.loads(json.dumps(space.to_json()))
    assert data["lower_bound"] == 0.7 and data["divisor"] == 16 and data["resolutions"] == list(CIFAR_RES)
    assert [d["name"] for d in data["dimensions"]] == list(spec.dim_names)
    assert [d["o_max"] for d in data["dimensions"]] == list(spec.dim_max)
    assert [tuple(d["choices"]) for d in data["dimensions"]] == [d.choices for d in space.dimensions]


# ---------------------------------------------------------------------- specs
def test_netspec_rejects_depthwise_layer_changing_dimension():
    with pytest.raises(ValueError, match="depthwise"):
        NetSpec(
            family="bad", dim_names=("a", "b"), dim_max=(8, 16),
            blocks=(BlockSpec((ConvSpec(IMAGE, 0), ConvSpec(0, 1, depthwise=True))),),
            head_in=1, num_classes=10,
        )


def test_netspec_rejects_missing_dimension_and_bad_identity():
    with pytest.raises(ValueError, match="missing dimension"):
        NetSpec("bad", ("a",), (8,), (BlockSpec((ConvSpec(IMAGE, 1),)),), head_in=0, num_classes=10)
    with pytest.raises(ValueError, match="identity"):
        NetSpec(
            "bad", ("a", "b"), (8, 16),
            (BlockSpec((ConvSpec(IMAGE, 0),)), BlockSpec((ConvSpec(0, 1),), "identity")),
            head_in=1, num_classes=10,
        )
    with pytest.raises(ValueError, match="differ in length"):
        NetSpec("bad", ("a", "b"), (8,), (BlockSpec((ConvSpec(IMAGE, 0),)),), head_in=0, num_classes=10)


def test_a_valid_handwritten_spec_builds_and_slices():
    spec = NetSpec(
        family="tiny", dim_names=("a", "b"), dim_max=(8, 16),
        blocks=(
            BlockSpec((ConvSpec(IMAGE, 0),)),
            BlockSpec((ConvSpec(0, 0, depthwise=True), ConvSpec(0, 1, 1))),
            BlockSpec((ConvSpec(1, 1, 3, act=None),), "identity", act="relu"),
        ),
        head_in=1, num_classes=3,
    )
    net = Supernet(spec)
    randomise(net, 0)
    net.eval()
    s = Structure((4, 12), 16)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(extract_subnet(net, s)(x), net(x, s), rtol=1e-5, atol=1e-6)
    assert isinstance(DenseNet(spec, s).blocks[1].body[0].conv, nn.Conv2d)
    assert DenseNet(spec, s).blocks[1].body[0].conv.groups == 4


def test_build_spec_rejects_unknown_names():
    with pytest.raises(PssError, match="unknown model"):
        build_spec("resnet18", 10)
    with pytest.raises(PssError, match="unknown stem"):
        build_spec("resnet20", 10, stem="tiny")
    with pytest.raises(PssError, match="width_mult"):
        build_spec("resnet20", 10, width_mult=0)
    assert set(MODELS) == {"mobilenet_v1", "mobilenet_v2", "resnet20", "resnet56", "resnet50"}
