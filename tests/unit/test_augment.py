"""ImageNet training augmentation (pss.data.augment): the reference recipe and the basic one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from pss.data.augment import (
    IMAGENET_PCA_EIGVAL,
    IMAGENET_PCA_EIGVEC,
    IMAGENET_STATS,
    Lighting,
    imagenet_train_transform,
)
from pss.errors import PssError

MEAN = torch.tensor(IMAGENET_STATS[0]).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STATS[1]).view(3, 1, 1)


def _image(seed: int = 0, size: tuple[int, int] = (96, 80)) -> Image.Image:
    """A random RGB image with some structure (a gradient plus noise), so crops and jitter change pixels."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = np.linspace(0, 255, w)[None, :, None] * np.array([1.0, 0.6, 0.3])[None, None, :]
    pixels = np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _run(tf, seed: int, img: Image.Image) -> torch.Tensor:
    torch.manual_seed(seed)
    return tf(img)


@pytest.mark.parametrize("augmentation", ["reference", "basic"])
def test_shape_dtype_and_normalised_range(augmentation):
    tf = imagenet_train_transform(48, augmentation)
    for seed in range(5):
        x = _run(tf, seed, _image(seed))
        assert x.shape == (3, 48, 48) and x.dtype == torch.float32
        pixels = x * STD + MEAN  # back to [0, 1] pixels
        margin = 0.0 if augmentation == "basic" else 0.15  # lighting may push a pixel slightly past [0, 1]
        assert pixels.min() >= -margin - 1e-5 and pixels.max() <= 1 + margin + 1e-5
        assert pixels.std() > 0.05


def test_same_seed_same_output_and_reference_differs_from_basic():
    img = _image(1)
    ref, basic = imagenet_train_transform(48, "reference"), imagenet_train_transform(48, "basic")
    torch.testing.assert_close(_run(ref, 7, img), _run(ref, 7, img), rtol=0, atol=0)
    torch.testing.assert_close(_run(basic, 7, img), _run(basic, 7, img), rtol=0, atol=0)
    assert not torch.allclose(_run(ref, 7, img), _run(basic, 7, img), atol=1e-3)
    assert not torch.allclose(_run(ref, 7, img), _run(ref, 8, img), atol=1e-3)


def test_pipelines_are_the_documented_steps():
    ref = imagenet_train_transform(64, "reference").transforms
    assert [type(t).__name__ for t in ref] == ["RandomResizedCrop", "RandomHorizontalFlip", "ColorJitter", "ToTensor", "Lighting", "Normalize"]
    assert ref[0].size == (64, 64) and tuple(ref[0].scale) == (0.25, 1.0)
    assert ref[2].brightness == (0.6, 1.4) and ref[2].contrast == (0.6, 1.4) and ref[2].saturation == (0.6, 1.4) and ref[2].hue is None
    assert ref[4].alphastd == 0.1
    assert tuple(ref[5].mean) == IMAGENET_STATS[0] and tuple(ref[5].std) == IMAGENET_STATS[1]
    basic = imagenet_train_transform(64, "basic").transforms
    assert [type(t).__name__ for t in basic] == ["RandomResizedCrop", "RandomHorizontalFlip", "ToTensor", "Normalize"]
    assert tuple(basic[0].scale) == (0.08, 1.0)  # torchvision's default: what runs before the option used
    with pytest.raises(PssError, match="imagenet_augmentation"):
        imagenet_train_transform(64, "autoaugment")


def test_basic_equals_the_pipeline_of_runs_before_the_option():
    mean, std = IMAGENET_STATS
    old = T.Compose([T.RandomResizedCrop(40), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    img = _image(2)
    torch.testing.assert_close(_run(imagenet_train_transform(40, "basic"), 3, img), _run(old, 3, img), rtol=0, atol=0)


def test_lighting_adds_one_rgb_shift_along_the_eigenvectors():
    light = Lighting(0.1)
    x = torch.rand(3, 17, 13)
    torch.manual_seed(11)
    y = light(x)
    shift = (y - x).reshape(3, -1)
    # the same shift at every pixel of the image
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), rtol=0, atol=1e-6)
    # ... equal to eigvec @ (alpha * eigval) with alpha the torch draw N(0, 0.1^2)
    torch.manual_seed(11)
    alpha = torch.randn(3) * 0.1
    eigvec, eigval = torch.tensor(IMAGENET_PCA_EIGVEC), torch.tensor(IMAGENET_PCA_EIGVAL)
    torch.testing.assert_close(shift[:, 0], eigvec @ (alpha * eigval), rtol=0, atol=1e-6)
    # recovering alpha from the shift: coordinates in the eigenvector basis, divided by the eigenvalues
    recovered = torch.linalg.solve(eigvec, shift[:, 0]) / eigval
    torch.testing.assert_close(recovered, alpha, rtol=1e-3, atol=1e-4)
    # a different draw per image; the principal component dominates (eigenvalue 0.2175 vs 0.0188, 0.0045)
    shifts = torch.stack([(light(x) - x)[:, 0, 0] for _ in range(2000)])
    assert shifts.std(0).min() > 0
    coords = shifts @ torch.linalg.inv(eigvec).T  # rows: alpha * eigval
    np.testing.assert_allclose(coords.std(0).numpy(), (0.1 * eigval).numpy(), rtol=0.1)
    assert Lighting(0.0)(x) is x


def test_lighting_is_the_only_difference_between_a_jitter_free_reference_and_its_tensor():
    """Lighting sits after ToTensor and before Normalize: the normalised output moves by shift / std per channel."""
    light = Lighting(0.1)
    x = torch.rand(3, 8, 8)
    norm = T.Normalize(*IMAGENET_STATS)
    torch.manual_seed(5)
    out = norm(light(x))
    torch.manual_seed(5)
    shift = light.shift(torch.randn(3) * 0.1)
    torch.testing.assert_close(out - norm(x), (shift.view(3, 1, 1) / STD).expand(3, 8, 8), rtol=0, atol=1e-5)
