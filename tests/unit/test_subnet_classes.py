"""A dense subnet whose classifier keeps only some classes (a superclass's): the supernet's logits of those
classes, with a physically smaller classifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pss.nn.supernet import CLASSIFIER_KEYS, Supernet, extract_subnet, resize_batch, slice_state_dict, spec_for_classes
from pss.problem.models import build_spec
from pss.problem.space import StructureSpace

CLASSES = (0, 1, 8, 9)  # CIFAR-10's vehicles


@pytest.fixture(scope="module", params=[("mobilenet_v1", 0.25), ("resnet20", 0.5)], ids=["mbv1", "r20"])
def net(request):
    """(spec, space, supernet) with random BN statistics and classifier, in eval mode."""
    model, width = request.param
    torch.manual_seed(0)
    spec = build_spec(model, 10, width_mult=width, stem="cifar")
    space = StructureSpace.for_spec(spec, (24, 28, 32), lower_bound=0.5, divisor=8)
    supernet = Supernet(spec)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in supernet.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / math.sqrt(m.in_features))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return spec, space, supernet.eval()


def _structures(space):
    rng = np.random.default_rng(3)
    return [space.max_structure, space.min_structure, space.sample_uniform(rng)]


def test_restricted_logits_are_the_supernet_slice_of_those_classes(net):
    spec, space, supernet = net
    x = torch.randn(5, spec.in_channels, 32, 32, generator=torch.Generator().manual_seed(2))
    for s in _structures(space):
        with torch.no_grad():
            ref = supernet(x, s)
            dense = extract_subnet(supernet, s, classes=CLASSES)
            got = dense(resize_batch(x, s.resolution))
        assert not dense.training
        assert got.shape == (5, len(CLASSES))
        torch.testing.assert_close(got, ref[:, list(CLASSES)], rtol=0, atol=1e-5)
        assert ref.abs().max() > 0.1  # not vacuous


def test_calibrated_statistics_are_used_with_classes(net):
    """bn_stats replace the supernet's statistics for the restricted model as for the full one."""
    spec, space, supernet = net
    s = space.min_structure
    full = extract_subnet(supernet, s)
    stats = {k: v * 0.5 + 0.25 for k, v in full.state_dict().items() if k.endswith(("running_mean", "running_var"))}
    x = torch.randn(3, spec.in_channels, s.resolution, s.resolution, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = extract_subnet(supernet, s, stats)(x)[:, list(CLASSES)]
        got = extract_subnet(supernet, s, stats, classes=CLASSES)(x)
        stale = extract_subnet(supernet, s, classes=CLASSES)(x)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert (stale - want).abs().max() > 1e-3


def test_classifier_is_physically_smaller(net):
    spec, space, supernet = net
    for s in _structures(space):
        full = extract_subnet(supernet, s)
        dense = extract_subnet(supernet, s, classes=CLASSES)
        head_in = s.widths[spec.head_in]
        assert tuple(dense.classifier.weight.shape) == (len(CLASSES), head_in)
        assert tuple(dense.classifier.bias.shape) == (len(CLASSES),)
        n_full = sum(p.numel() for p in full.parameters())
        n = sum(p.numel() for p in dense.parameters())
        assert n_full - n == (spec.num_classes - len(CLASSES)) * (head_in + 1)
        # rows are copies of the supernet's rows classes[j], sharing no storage
        torch.testing.assert_close(dense.classifier.weight, supernet.classifier.weight[list(CLASSES), :head_in], rtol=0, atol=0)
        torch.testing.assert_close(dense.classifier.bias, supernet.classifier.bias[list(CLASSES)], rtol=0, atol=0)
        assert dense.classifier.weight.untyped_storage().data_ptr() != supernet.classifier.weight.untyped_storage().data_ptr()


def test_spec_for_classes(net):
    spec, space, supernet = net
    assert spec_for_classes(spec, None) is spec
    small = spec_for_classes(spec, CLASSES)
    assert small.num_classes == len(CLASSES) and small.blocks == spec.blocks and spec.num_classes == 10
    for bad in ((), (1, 0), (2, 2), (-1, 3), (3, 10)):
        with pytest.raises(ValueError, match="distinct class indices"):
            spec_for_classes(spec, bad)
    state = slice_state_dict(supernet.state_dict(), extract_subnet(supernet, space.max_structure, classes=(5,)), classes=(5,))
    assert {k: tuple(state[k].shape)[0] for k in CLASSIFIER_KEYS} == {"classifier.weight": 1, "classifier.bias": 1}
