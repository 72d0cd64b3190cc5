"""Datasets held in memory as uint8 tensors: CIFAR-10/100, Fashion-MNIST, a CIFAR-style npz, synthetic.

At 28-32 px a per-image PIL pipeline costs more than the forward pass of a
small network on CPU, so augmentation (zero-padded random crop + horizontal
flip) is done per batch with one vectorised gather, on the target device.
"""

from __future__ import annotations

import gzip
import math
import shutil
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import DataConfig
from ..errors import PssError, one_line
from ..inputs import normalise
from .base import (
    _DEVICE_CACHE_BYTES, TEST_SEED_OFFSET, DataBundle, Shard, _check_batch_size, _check_indices, _draw_perm, _limit, check_image_data,
    check_split, shard_part, shard_rows, stratified_holdout,
)

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]
_CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
_CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
_FASHION_STATS = ((0.2860,), (0.3530,))

#: Where the Debian package ``dataset-fashion-mnist`` puts the official idx files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
)
SYNTHETIC_IMAGES = 2000



def crop_flip(x: Tensor, pad: int, dy: Tensor, dx: Tensor, flip: Tensor) -> Tensor:
    """Zero-pad each image by ``pad`` and crop it back to its size at its own offset.

    ``x`` is (B, C, H, W); ``dy``/``dx`` are per-image offsets in ``[0, 2*pad]``
    into the padded image and ``flip`` a per-image bool for a horizontal flip.
    Both happen in one fancy-indexing gather, so there is no Python loop over
    images. ``dy = dx = pad`` with no flip returns ``x`` unchanged.
    """
    b, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad)) if pad else x
    dy, dx, flip = dy.to(dev), dx.to(dev), flip.to(dev)
    ar_h = torch.arange(h, device=dev)
    ar_w = torch.arange(w, device=dev)
    rows = dy.view(b, 1) + ar_h.view(1, h)  # (B, H)
    cols = dx.view(b, 1) + torch.where(flip.view(b, 1), (w - 1 - ar_w).view(1, w), ar_w.view(1, w))
    bi = torch.arange(b, device=dev).view(b, 1, 1, 1)
    ci = torch.arange(c, device=dev).view(1, c, 1, 1)
    return padded[bi, ci, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]


def random_crop_flip(x: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """Random ``pad``-px zero-padded crop + horizontal flip (p=0.5) for a batch.

    Randomness is drawn on the generator's device and moved, so results depend
    only on the generator state, not on where the images live.
    """
    return crop_flip(x, pad, *crop_flip_params(x.shape[0], pad, generator))


def crop_flip_params(b: int, pad: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """(dy, dx, flip) for ``b`` images, drawn from ``generator`` in a fixed order."""
    gdev = generator.device
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev)
    flip = torch.rand(b, generator=generator, device=gdev) < 0.5
    return dy, dx, flip


def make_synthetic(
    n: int = SYNTHETIC_IMAGES, seed: int = 0, size: int = 32, num_classes: int = 10
) -> tuple[Tensor, Tensor]:
    """Deterministic, learnable toy images: uint8 (n, 3, size, size) and int64 labels.

    Each class is a stripe pattern of its own orientation in its own hue (with a
    random per-image tint, phase, frequency, background and pixel noise), so a
    tiny CNN learns it within an epoch or two yet it is not solved by one pixel.
    Used for smoke runs and tests when no real dataset is at hand.
    """
    gen = torch.Generator().manual_seed(int(seed) + 12345)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=gen)]
    hues = torch.arange(num_classes, dtype=torch.float32) / num_classes
    k = torch.arange(3, dtype=torch.float32)  # hue -> saturated RGB
    palette = (0.5 + 0.5 * torch.cos(2 * math.pi * (hues.view(-1, 1) - k.view(1, 3) / 3))).clamp(0, 1)
    angles = math.pi * torch.arange(num_classes, dtype=torch.float32) / num_classes
    coords = torch.linspace(-1.0, 1.0, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    a = angles[y].view(n, 1, 1)
    freq = (2.5 + 1.5 * torch.rand(n, 1, 1, generator=gen)) * math.pi
    phase = 2 * math.pi * torch.rand(n, 1, 1, generator=gen)
    stripes = 0.5 + 0.5 * torch.sin(freq * (xx * torch.cos(a) + yy * torch.sin(a)) + phase)
    colour = 0.7 * palette[y] + 0.3 * torch.rand(n, 3, generator=gen)
    background = 0.35 * torch.rand(n, 1, generator=gen).expand(n, 3)
    s = stripes.unsqueeze(1)
    img = s * colour.view(n, 3, 1, 1) + (1 - s) * background.view(n, 3, 1, 1)
    img = img + 0.08 * torch.randn(n, 3, size, size, generator=gen)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), y.long()


def _channel_stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 NCHW images on the [0, 1] scale (chunked to bound memory)."""
    c = x.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for start in range(0, x.shape[0], 4096):
        chunk = x[start:start + 4096].to(torch.float64) / 255.0
        total += chunk.sum(dim=(0, 2, 3))
        total_sq += (chunk * chunk).sum(dim=(0, 2, 3))
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    mean = total / max(count, 1)
    std = (total_sq / max(count, 1) - mean * mean).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())




class TensorImageData(DataBundle):
    """A dataset held in memory as uint8 NCHW tensors, augmented batch-wise on the device.

    ``pad`` is the zero padding of the random crop (4 px for 32-px data, 2 px
    for 28-px Fashion-MNIST). ``stats`` is ``(mean, std)``; ``None`` computes
    them from the training split. ``test`` is the test split's (images, labels),
    described by ``test_source``; None: no test split.
    """

    def __init__(
        self,
        name: str,
        x_train: Tensor,
        y_train: Tensor,
        x_val: Tensor,
        y_val: Tensor,
        class_names: Sequence[str],
        pad: int,
        stats: tuple[Sequence[float], Sequence[float]] | None = None,
        source: str = "",
        test: tuple[Tensor, Tensor] | None = None,
        test_source: str = "none",
    ) -> None:
        if x_train.dtype != torch.uint8 or x_train.dim() != 4:
            raise ValueError("x_train must be a uint8 NCHW tensor")  # programming error, not user input
        self.name = name
        self.x_train, self.y_train = x_train.contiguous(), y_train.long()
        self.x_val, self.y_val = x_val.contiguous(), y_val.long()
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.in_channels = int(x_train.shape[1])
        self.native_resolution = int(x_train.shape[2])
        self.pad = int(pad)
        mean, std = stats if stats is not None else _channel_stats(self.x_train)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.num_train, self.num_val = int(x_train.shape[0]), int(x_val.shape[0])
        if test is None:
            test = (x_train[:0], y_train[:0])
        self.x_test, self.y_test = test[0].contiguous(), test[1].long()
        self.num_test = int(self.x_test.shape[0])
        self.test_source = test_source if self.num_test else "none"
        self.source = source
        self._device_copies: dict[tuple[str, str], Tensor] = {}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["augmentation"] = f"random crop (pad {self.pad}) + horizontal flip"
        return info

    # -- internals
    def _split(self, split: str) -> tuple[Tensor, Tensor]:
        return {"train": (self.x_train, self.y_train), "val": (self.x_val, self.y_val), "test": (self.x_test, self.y_test)}[split]

    def _resident(self, split: str, device: torch.device) -> Tensor:
        """The split's uint8 images on ``device``; cached there when small so batches skip the copy."""
        x = self._split(split)[0]
        if device.type == "cpu":
            return x
        key = (split, str(device))
        if key not in self._device_copies and x.numel() <= _DEVICE_CACHE_BYTES:
            self._device_copies[key] = x.to(device)
        return self._device_copies.get(key, x)

    def _normalise(self, x: Tensor) -> Tensor:
        """A batch of uint8 images as the subnets see them at the native size: the input pipeline's first half."""
        return normalise(x, self.mean, self.std)

    def _batches(
        self, split: str, order: Tensor, batch_size: int, device: torch.device,
        drop_last: bool, generator: torch.Generator | None, shard: Shard = (0, 1),
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches of ``batch_size`` (the global batch); with ``shard=(rank, world)`` this rank's rows of each.

        Augmentation is drawn for the whole global batch, so the generator moves
        the same on every rank and as in a single process.
        """
        x_all = self._resident(split, device)
        y_all = self._split(split)[1]
        rows = shard_rows(batch_size, shard)
        stop = (order.numel() // batch_size) * batch_size if drop_last else order.numel()
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            params = crop_flip_params(idx.numel(), self.pad, generator) if generator is not None else None
            idx = idx[rows]
            if idx.numel() == 0:
                continue
            xb = x_all[idx.to(x_all.device)].to(device, non_blocking=True)
            if params is not None:
                xb = crop_flip(xb, self.pad, *(p[rows] for p in params))
            yield self._normalise(xb), y_all[idx].to(device, non_blocking=True)

    # -- interface
    def train_batches(self, batch_size, generator, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        order = _draw_perm(self.num_train, generator)
        return self._batches("train", order, batch_size, torch.device(device), True, generator, shard)

    def val_batches(self, batch_size, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        order = shard_part(torch.arange(self.num_val), shard)
        return self._batches("val", order, batch_size, torch.device(device), False, None)

    def test_batches(self, batch_size, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        self._require_test()
        order = shard_part(torch.arange(self.num_test), shard)
        return self._batches("test", order, batch_size, torch.device(device), False, None)

    def calibration_batches(self, n_images, batch_size, generator, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        order = shard_part(_draw_perm(self.num_train, generator)[: max(int(n_images), 0)], shard)
        return self._batches("train", order, batch_size, torch.device(device), False, None)

    def split_labels(self, split: str) -> Tensor:
        return self._split(check_split(split))[1]

    def subset_batches(self, split, indices, batch_size, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        order = shard_part(_check_indices(indices, self.split_labels(split).numel(), split), shard)
        return self._batches(split, order, batch_size, torch.device(device), False, None)


MAX_CLASSES = 100_000
"""More classes than any dataset this tool is for (ImageNet-21k has about 21,000)."""


def _split_and_wrap(
    name: str, x: Tensor, y: Tensor, cfg: DataConfig, class_names: Sequence[str], pad: int,
    stats: tuple[Sequence[float], Sequence[float]] | None, source: str,
    official_test: tuple[Tensor, Tensor] | None = None,
) -> TensorImageData:
    """The three splits, the limits, and the bundle.

    With ``cfg.test_split`` the test split is ``official_test`` (a dataset's own test set) or, for data
    without one, a stratified ``test_fraction`` of ``x`` held out first (its own seed); the validation
    split is then ``val_fraction`` of the images left. Without it (runs made before test splits
    existed), validation is held out of all of ``x`` exactly as those runs did.
    """
    test, test_source = None, "none"
    keep = torch.arange(y.numel())
    if cfg.test_split and official_test is not None:
        test, test_source = official_test, f"the official {name} test set"
    elif cfg.test_split:
        keep, test_idx = stratified_holdout(y, cfg.test_fraction, cfg.seed + TEST_SEED_OFFSET)
        if test_idx.numel() == 0:
            raise PssError(f"{name} has too few images ({y.numel()}) to hold out a test split; use a larger dataset or test_split=false")
        test, test_source = (x[test_idx], y[test_idx]), f"held-out {cfg.test_fraction:.0%} of {name} (stratified, seed {cfg.seed})"
    train_idx, val_idx = stratified_holdout(y[keep], cfg.val_fraction, cfg.seed)
    train_idx, val_idx = keep[train_idx], keep[val_idx]
    train_idx = _limit(train_idx, cfg.train_limit, cfg.seed + 1, "train_limit")
    val_idx = _limit(val_idx, cfg.val_limit, cfg.seed + 2, "val_limit")
    if test is not None and cfg.test_limit is not None:
        chosen = _limit(torch.arange(test[1].numel()), cfg.test_limit, cfg.seed + 3, "test_limit")
        test = (test[0][chosen], test[1][chosen])
    if train_idx.numel() == 0 or val_idx.numel() == 0:
        raise PssError(
            f"{name} has too few images ({y.numel()}) to hold out a validation split; "
            "use a larger dataset or adjust val_fraction"
        )
    return TensorImageData(
        name, x[train_idx], y[train_idx], x[val_idx], y[val_idx], class_names, pad, stats, source, test, test_source
    )


def _load_synthetic(cfg: DataConfig, source: str = "generated") -> TensorImageData:
    x, y = make_synthetic(SYNTHETIC_IMAGES, seed=cfg.seed)
    names = [f"class {i}" for i in range(10)]
    return _split_and_wrap("synthetic", x, y, cfg, names, 4, None, source)


def _fallback_or_raise(cfg: DataConfig, message: str) -> TensorImageData:
    """Use synthetic data when the config allows it, otherwise raise ``message``."""
    if not cfg.synthetic_fallback:
        raise PssError(message)
    warnings.warn(f"{message.split(';')[0]}; using synthetic data instead (synthetic_fallback=true)", stacklevel=3)
    return _load_synthetic(cfg, source=f"generated (fallback for {cfg.dataset})")


def _load_npz(cfg: DataConfig) -> TensorImageData:
    if not cfg.npz_path:
        return _fallback_or_raise(cfg, "dataset=npz needs npz_path; set npz_path to a CIFAR-style .npz with x and y arrays")
    path = Path(cfg.npz_path).expanduser()
    if not path.is_file():
        return _fallback_or_raise(
            cfg, f"npz file not found: {path}; fix npz_path or set synthetic_fallback=true to use generated data"
        )
    fix = "save it with np.savez(path, x=uint8 (N,H,W,C) images, y=(N,) int labels[, class_names=str array])"
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise PssError(f"{path} lacks an 'x' or 'y' array (has {sorted(arrays.files)}); {fix}")
            x_np, y_np = arrays["x"], arrays["y"]
            names_np = arrays["class_names"] if "class_names" in arrays else None
    except PssError:
        raise
    except Exception as exc:
        raise PssError(f"cannot read {path} as an npz file ({one_line(exc)}); {fix}") from exc
    if x_np.ndim == 3:
        x_np = x_np[..., None]  # (N,H,W) grayscale
    if x_np.ndim != 4 or x_np.shape[3] not in (1, 3) or x_np.shape[1] != x_np.shape[2]:
        raise PssError(f"{path}: x has shape {x_np.shape}, expected (N,H,W,C) square images with C=1 or 3; {fix}")
    if x_np.dtype != np.uint8:
        raise PssError(f"{path}: x has dtype {x_np.dtype}, expected uint8 (0-255); {fix}")
    if y_np.ndim != 1 or y_np.shape[0] != x_np.shape[0] or not np.issubdtype(y_np.dtype, np.integer):
        raise PssError(f"{path}: y has shape {y_np.shape} and dtype {y_np.dtype}, expected ({x_np.shape[0]},) integers; {fix}")
    if y_np.size and y_np.min() < 0:
        raise PssError(f"{path}: y has negative labels; labels must be 0..K-1; {fix}")
    if y_np.size == 0:
        raise PssError(f"{path}: x and y hold no images; {fix}")
    num_classes = int(y_np.max()) + 1
    present = int(np.unique(y_np).size)
    if names_np is not None:
        names = [str(s) for s in names_np.reshape(-1).tolist()]
        if len(names) < num_classes:
            raise PssError(f"{path}: class_names has {len(names)} entries but labels go up to {num_classes - 1}; {fix}")
        if len(names) > MAX_CLASSES:
            raise PssError(f"{path}: class_names has {len(names):,} entries; at most {MAX_CLASSES:,} classes are supported")
    elif present < num_classes:
        # a stray label such as 10**7 would ask for a classifier of 10**7 outputs
        raise PssError(
            f"{path}: labels go up to {num_classes - 1} but only {present} of the classes 0..{num_classes - 1} have images; "
            f"number the classes 0..K-1 without gaps, or add a class_names array naming all K classes; {fix}"
        )
    check_image_data(str(path), present, int(x_np.shape[1]))
    if names_np is None:
        names = list(CIFAR10_CLASSES) if num_classes == 10 else [f"class {i}" for i in range(num_classes)]
    x = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(y_np.astype(np.int64))
    pad = 4 if x.shape[2] >= 32 else 2
    return _split_and_wrap("npz", x, y, cfg, names, pad, None, str(path))


def _why_missing(cfg: DataConfig, create: bool) -> str:
    if not create:
        return "is missing (commands on an existing run read data, never download them)"
    return "could not be downloaded" if cfg.download else "is missing and download=false"


def _load_cifar(cfg: DataConfig, hundred: bool, create: bool = True) -> TensorImageData:
    name = "cifar100" if hundred else "cifar10"
    import torchvision  # deferred: importing torchvision costs ~1 s

    root = Path(cfg.data_root).expanduser()
    label, folder = ("CIFAR-100", "cifar-100-python") if hundred else ("CIFAR-10", "cifar-10-batches-py")
    cls = torchvision.datasets.CIFAR100 if hundred else torchvision.datasets.CIFAR10
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        ds = cls(str(root), train=True, download=cfg.download and create)
        test_ds = cls(str(root), train=False, download=cfg.download and create) if cfg.test_split else None
    except Exception as exc:
        how = _why_missing(cfg, create)
        return _fallback_or_raise(
            cfg,
            f"{label} not found under {root} and {how} ({one_line(exc)}); pass --set download=true on a machine "
            f"with internet, or point data_root at a folder containing {folder}",
        )
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    y = torch.as_tensor(ds.targets, dtype=torch.long)
    stats = _CIFAR100_STATS if hundred else _CIFAR10_STATS
    test = None if test_ds is None else (torch.from_numpy(np.ascontiguousarray(test_ds.data.transpose(0, 3, 1, 2))),
                                         torch.as_tensor(test_ds.targets, dtype=torch.long))
    return _split_and_wrap(name, x, y, cfg, list(ds.classes), 4, stats, str(root / folder), test)


def _seed_fashion_mnist(root: Path) -> None:
    """Unpack the Debian package's idx files into torchvision's raw folder so no download is needed.

    The packaged ``.gz`` files are recompressed (their MD5s differ from the ones
    torchvision checks), so copying them would make torchvision try to download;
    torchvision only checks that the unpacked files exist, so unpack them here.
    """
    raw = root / "FashionMNIST" / "raw"
    if not FASHION_MNIST_SYSTEM_DIR.is_dir():
        return
    for fname in _FASHION_FILES:
        src, dst = FASHION_MNIST_SYSTEM_DIR / fname, raw / fname[:-3]
        if src.is_file() and not dst.exists():
            raw.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".part")
            with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
            tmp.replace(dst)  # atomic: a crash never leaves a truncated file torchvision would accept


def read_idx_gz(path: Path) -> np.ndarray:
    """An idx file (the MNIST format: big-endian magic with the dtype and rank, then the sizes) from its ``.gz``."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:  # 0x08: unsigned bytes
        raise PssError(f"{path} is not an idx file of unsigned bytes")
    rank = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank)
    if body.size != math.prod(shape):
        raise PssError(f"{path} is cut short: {body.size} values for shape {shape}")
    return body.reshape(shape)


def _fashion_mnist_from_system(test_split: bool) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
    """The Debian package's files read in place (nothing written): train images and labels, and the test set."""
    d = FASHION_MNIST_SYSTEM_DIR
    x = torch.from_numpy(read_idx_gz(d / _FASHION_FILES[0]).copy()).unsqueeze(1).contiguous()
    y = torch.from_numpy(read_idx_gz(d / _FASHION_FILES[1]).astype(np.int64))
    if not test_split:
        return x, y, None
    tx = torch.from_numpy(read_idx_gz(d / _FASHION_FILES[2]).copy()).unsqueeze(1).contiguous()
    ty = torch.from_numpy(read_idx_gz(d / _FASHION_FILES[3]).astype(np.int64))
    return x, y, (tx, ty)


def _load_fashion_mnist(cfg: DataConfig, create: bool = True) -> TensorImageData:
    """Fashion-MNIST from torchvision's folder under ``data_root``, else straight from the Debian package.

    The package fallback reads the same official files in place, so a run trained on
    one machine (its run.json names that machine's data_root) calibrates, exports and
    is tested on another that has only the package, with ``create=False`` too.
    """
    import torchvision

    root = Path(cfg.data_root).expanduser()
    classes = list(torchvision.datasets.FashionMNIST.classes)
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
            _seed_fashion_mnist(root)
        ds = torchvision.datasets.FashionMNIST(str(root), train=True, download=cfg.download and create)
        test_ds = torchvision.datasets.FashionMNIST(str(root), train=False, download=cfg.download and create) if cfg.test_split else None
    except Exception as exc:
        if all((FASHION_MNIST_SYSTEM_DIR / f).is_file() for f in _FASHION_FILES):
            x, y, test = _fashion_mnist_from_system(cfg.test_split)
            return _split_and_wrap("fashion-mnist", x, y, cfg, classes, 2, _FASHION_STATS, str(FASHION_MNIST_SYSTEM_DIR), test)
        how = _why_missing(cfg, create)
        return _fallback_or_raise(
            cfg,
            f"Fashion-MNIST not found under {root} and {how} ({one_line(exc)}); run 'apt-get install "
            "dataset-fashion-mnist', or pass --set download=true on a machine with internet, "
            "or point data_root at a folder containing FashionMNIST/raw",
        )
    x = ds.data.unsqueeze(1).contiguous()  # (N,1,28,28) uint8
    y = ds.targets.long()
    test = None if test_ds is None else (test_ds.data.unsqueeze(1).contiguous(), test_ds.targets.long())
    return _split_and_wrap(
        "fashion-mnist", x, y, cfg, classes, 2, _FASHION_STATS, str(root / "FashionMNIST"), test
    )
