"""Datasets for supernet training (torch), behind one small interface.

Two implementations share the :class:`DataBundle` interface:

* :class:`TensorImageData` keeps a whole split as one uint8 NCHW tensor in
  memory (CIFAR-10/100, Fashion-MNIST, a CIFAR-style ``.npz``, or generated
  synthetic data). At 28-32 px a per-image PIL pipeline costs more than the
  forward pass of a small network on CPU, so augmentation (zero-padded random
  crop + horizontal flip) is done per batch with one vectorised gather, on the
  target device.
* :class:`FolderImageData` streams an ImageNet-style ``train/`` + ``val/``
  ImageFolder tree, restricted to a chosen list of classes, through a
  ``DataLoader`` with worker processes, since such data does not fit in memory.

Shuffling always draws from a caller-supplied ``torch.Generator`` so that a
training run is reproducible and can be resumed mid-way from a saved generator
state. Every user-facing problem raises :class:`pss.errors.PssError` with a
one-line message naming the fix.
"""

from __future__ import annotations

from pathlib import Path

from ..config import DataConfig
from ..errors import PssError
from .base import SPLITS, DataBundle, stratified_holdout, subset_of_classes
from .folder import FolderImageData
from .memory import (
    CIFAR10_CLASSES,
    FASHION_MNIST_SYSTEM_DIR,
    TensorImageData,
    _fallback_or_raise,
    _load_cifar,
    _load_fashion_mnist,
    _load_npz,
    _load_synthetic,
    crop_flip,
    make_synthetic,
    random_crop_flip,
)

DATASETS = ("cifar10", "cifar100", "fashion-mnist", "imagenet-subset", "npz", "synthetic")

__all__ = [
    "CIFAR10_CLASSES", "DATASETS", "FASHION_MNIST_SYSTEM_DIR", "SPLITS", "DataBundle", "DataConfig", "FolderImageData",
    "TensorImageData", "crop_flip", "load_data", "make_synthetic", "random_crop_flip", "stratified_holdout", "subset_of_classes",
]



def load_data(cfg: DataConfig, create: bool = True) -> DataBundle:
    """Build the dataset named by ``cfg.dataset`` (raises :class:`PssError` on bad input).

    ``create=False`` (commands on an existing run, whose run.json may come from
    elsewhere) only reads data already there: no folder is created, nothing is
    unpacked or downloaded.
    """
    name = str(cfg.dataset).strip().lower().replace("_", "-")
    if name in ("fashionmnist", "fmnist"):
        name = "fashion-mnist"
    if name not in DATASETS:
        raise PssError(f"unknown dataset {cfg.dataset!r}; choose one of: {', '.join(DATASETS)}")
    if name == "imagenet-subset":
        if cfg.synthetic_fallback and not (cfg.imagenet_root and Path(cfg.imagenet_root).expanduser().is_dir()):
            return _fallback_or_raise(cfg, f"imagenet_root {cfg.imagenet_root!r} not found; set imagenet_root")
        return FolderImageData(cfg)
    vf = cfg.val_fraction
    if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0.0 < float(vf) < 1.0:
        raise PssError(f"val_fraction must be strictly between 0 and 1, got {vf!r}; set e.g. val_fraction=0.1")
    if name == "synthetic":
        return _load_synthetic(cfg)
    if name == "npz":
        return _load_npz(cfg)
    if name in ("cifar10", "cifar100"):
        return _load_cifar(cfg, hundred=(name == "cifar100"), create=create)
    return _load_fashion_mnist(cfg, create=create)
