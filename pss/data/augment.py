"""Training augmentation of ImageNet-style images (config ``imagenet_augmentation``).

``reference`` is the recipe of the PSS-Net reference implementation
(chenbong/PSS-Net ``utils/datasets.py``), itself the usual MobileNet ImageNet
recipe: a random resized crop of 25-100% of the image, a horizontal flip,
colour jitter 0.4 and AlexNet's PCA lighting noise with std 0.1. ``basic`` is a
random resized crop (torchvision's default 8-100%) and a flip, what runs made
before the option existed used.

Lighting is applied to the [0, 1] tensor (after ``ToTensor``, before
normalising), as in fb.resnet.torch and the PyTorch ImageNet recipes: the
eigenvalues belong to [0, 1] pixels, so the reference's application to 0-255
PIL pixels moves them by about 0.01 grey levels (before truncating back to
uint8), i.e. hardly at all.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import PssError

IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
"""ImageNet per-channel mean and std of [0, 1] RGB pixels (the values of ``pss.data.folder``)."""

IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
"""Eigenvalues of the ImageNet RGB pixel covariance ([0, 1] pixels; Krizhevsky et al. 2012, Sec. 4.1)."""

IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
"""Eigenvectors of that covariance, one per *column* (row i is the R, G or B component)."""

AUGMENTATIONS = ("reference", "basic")
REFERENCE_CROP_SCALE = (0.25, 1.0)
REFERENCE_JITTER = 0.4
REFERENCE_LIGHTING = 0.1


class Lighting:
    """AlexNet-style PCA lighting noise on a CHW RGB tensor (Krizhevsky et al. 2012, Sec. 4.1).

    Adds one RGB shift to every pixel of the image: ``eigvec @ (alpha *
    eigval)`` with ``alpha ~ N(0, alphastd^2)`` per eigenvector, drawn from
    torch's global generator as torchvision's random transforms are, so a
    seeded torch (and each DataLoader worker's torch seed) makes it
    reproducible.
    """

    def __init__(self, alphastd: float = REFERENCE_LIGHTING,
                 eigval: tuple[float, ...] = IMAGENET_PCA_EIGVAL,
                 eigvec: tuple[tuple[float, ...], ...] = IMAGENET_PCA_EIGVEC) -> None:
        self.alphastd = float(alphastd)
        self.eigval = torch.tensor(eigval, dtype=torch.float32)
        self.eigvec = torch.tensor(eigvec, dtype=torch.float32)
        if self.eigval.shape != (3,) or self.eigvec.shape != (3, 3):
            raise ValueError("Lighting needs 3 eigenvalues and a 3x3 eigenvector matrix")

    def shift(self, alpha: Tensor) -> Tensor:
        """The RGB shift for per-eigenvector weights ``alpha`` (3,): ``eigvec @ (alpha * eigval)``."""
        return self.eigvec @ (alpha.to(torch.float32) * self.eigval)

    def __call__(self, img: Tensor) -> Tensor:
        if self.alphastd == 0.0:
            return img
        alpha = torch.randn(3) * self.alphastd
        return img + self.shift(alpha).to(img.dtype).view(3, 1, 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alphastd={self.alphastd})"


def imagenet_train_transform(resolution: int, augmentation: str) -> Callable:
    """The training pipeline PIL image -> normalised float tensor (3, resolution, resolution).

    ``reference``: RandomResizedCrop(scale 0.25-1), flip, ColorJitter(0.4, 0.4,
    0.4), ToTensor, Lighting(0.1), Normalize; ``basic``: RandomResizedCrop,
    flip, ToTensor, Normalize.
    """
    from torchvision import transforms as T

    if augmentation not in AUGMENTATIONS:
        raise PssError(f"unknown imagenet_augmentation {augmentation!r}; choose one of {', '.join(AUGMENTATIONS)}")
    mean, std = IMAGENET_STATS
    if augmentation == "basic":
        return T.Compose([T.RandomResizedCrop(resolution), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(mean, std)])
    jitter = REFERENCE_JITTER
    return T.Compose([
        T.RandomResizedCrop(resolution, scale=REFERENCE_CROP_SCALE),
        T.RandomHorizontalFlip(),
        T.ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter),
        T.ToTensor(),
        Lighting(REFERENCE_LIGHTING),
        T.Normalize(mean, std),
    ])
