"""Datasets for supernet training, behind one small interface.

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

import gzip
import math
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from pss.errors import PssError

DATASETS = ("cifar10", "cifar100", "fashion-mnist", "imagenet-subset", "npz", "synthetic")

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]
_CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
_CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
_FASHION_STATS = ((0.2860,), (0.3530,))
_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

#: Where the Debian package ``dataset-fashion-mnist`` puts the official idx files.
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
)
SYNTHETIC_IMAGES = 2000
_DEVICE_CACHE_BYTES = 2 << 30  # keep splits up to 2 GiB resident on an accelerator


@dataclass
class DataConfig:
    """Which data to train on and how to split it (see module docstring)."""

    dataset: str = "cifar10"
    data_root: str = "~/.cache/pss/data"
    download: bool = True
    npz_path: str | None = None
    synthetic_fallback: bool = False
    imagenet_root: str | None = None
    imagenet_classes: str | int | None = None
    imagenet_resolution: int = 224
    val_fraction: float = 0.1
    train_limit: int | None = None
    val_limit: int | None = None
    seed: int = 0
    num_workers: int = 2


# --------------------------------------------------------------------------- interface


class DataBundle:
    """A train/val split with batch iterators; what the trainer sees.

    Batches are float32 NCHW, normalised with :attr:`mean`/:attr:`std`, at
    :attr:`native_resolution`, on the requested device; labels are int64.
    """

    name: str
    num_classes: int
    in_channels: int
    native_resolution: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: list[str]
    num_train: int
    num_val: int
    source: str

    def train_batches(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """One augmented epoch in an order drawn from ``generator``; drops the last partial batch."""
        raise NotImplementedError

    def len_train_batches(self, batch_size: int) -> int:
        """Number of batches :meth:`train_batches` yields (drop_last)."""
        _check_batch_size(batch_size)
        return self.num_train // batch_size

    def val_batches(
        self, batch_size: int, device: torch.device | str = "cpu"
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The validation split, un-augmented, in a fixed order, last partial batch kept."""
        raise NotImplementedError

    def calibration_batches(
        self,
        n_images: int,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """``n_images`` un-augmented training images (a random subset) for BatchNorm re-estimation."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """JSON-able summary, written next to checkpoints so a run records its data."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "native_resolution": self.native_resolution,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "class_names": list(self.class_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "source": self.source,
        }


# --------------------------------------------------------------------------- helpers


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise PssError(f"batch size must be a positive integer, got {batch_size!r}; set batch_size to e.g. 128")


def _one_line(exc: BaseException) -> str:
    """Exception text squeezed onto one line (PssError messages must be one line)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _draw_perm(n: int, generator: torch.Generator) -> Tensor:
    """A CPU permutation of range(n) from ``generator`` (which may live on any device)."""
    return torch.randperm(n, generator=generator, device=generator.device).cpu()


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
    b = x.shape[0]
    gdev = generator.device
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=gdev)
    flip = torch.rand(b, generator=generator, device=gdev) < 0.5
    return crop_flip(x, pad, dy, dx, flip)


def stratified_holdout(labels: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Split indices into (train, val), holding out ``val_fraction`` of every class.

    Stratified so that small subsets still validate on every class; seeded so
    the same seed always gives the same split. Classes with one image stay in
    train. Both index tensors come back sorted.
    """
    n = labels.numel()
    gen = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=gen)
    permuted_labels = labels[perm]
    val_parts = []
    for c in torch.unique(labels).tolist():
        members = perm[permuted_labels == c]
        if members.numel() < 2:
            continue
        k = min(max(int(round(val_fraction * members.numel())), 1), members.numel() - 1)
        val_parts.append(members[:k])
    val_idx = torch.cat(val_parts) if val_parts else torch.empty(0, dtype=torch.long)
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[val_idx] = True
    return torch.nonzero(~is_val).flatten(), torch.sort(val_idx).values


def _limit(indices: Tensor, limit: int | None, seed: int, what: str) -> Tensor:
    """At most ``limit`` of ``indices``: a seeded random subset (sorted) so classes stay mixed."""
    if limit is None:
        return indices
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise PssError(f"{what} must be a positive integer or null, got {limit!r}; fix {what} in the config")
    if limit >= indices.numel():
        return indices
    gen = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(indices.numel(), generator=gen)[:limit]
    return torch.sort(indices[chosen]).values


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


# --------------------------------------------------------------------------- in-memory data


class TensorImageData(DataBundle):
    """A dataset held in memory as uint8 NCHW tensors, augmented batch-wise on the device.

    ``pad`` is the zero padding of the random crop (4 px for 32-px data, 2 px
    for 28-px Fashion-MNIST). ``stats`` is ``(mean, std)``; ``None`` computes
    them from the training split.
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
        self.source = source
        self._device_copies: dict[tuple[str, str], Tensor] = {}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["augmentation"] = f"random crop (pad {self.pad}) + horizontal flip"
        return info

    # -- internals
    def _resident(self, split: str, device: torch.device) -> Tensor:
        """The split's uint8 images on ``device``; cached there when small so batches skip the copy."""
        x = self.x_train if split == "train" else self.x_val
        if device.type == "cpu":
            return x
        key = (split, str(device))
        if key not in self._device_copies and x.numel() <= _DEVICE_CACHE_BYTES:
            self._device_copies[key] = x.to(device)
        return self._device_copies.get(key, x)

    def _normalise(self, x: Tensor) -> Tensor:
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x.float().div_(255.0) - mean) / std

    def _batches(
        self, split: str, order: Tensor, batch_size: int, device: torch.device,
        drop_last: bool, generator: torch.Generator | None,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        x_all = self._resident(split, device)
        y_all = self.y_train if split == "train" else self.y_val
        stop = (order.numel() // batch_size) * batch_size if drop_last else order.numel()
        for start in range(0, stop, batch_size):
            idx = order[start:start + batch_size]
            xb = x_all[idx.to(x_all.device)].to(device, non_blocking=True)
            if generator is not None:
                xb = random_crop_flip(xb, self.pad, generator)
            yield self._normalise(xb), y_all[idx].to(device, non_blocking=True)

    # -- interface
    def train_batches(self, batch_size, generator, device="cpu"):
        _check_batch_size(batch_size)
        order = _draw_perm(self.num_train, generator)
        return self._batches("train", order, batch_size, torch.device(device), True, generator)

    def val_batches(self, batch_size, device="cpu"):
        _check_batch_size(batch_size)
        order = torch.arange(self.num_val)
        return self._batches("val", order, batch_size, torch.device(device), False, None)

    def calibration_batches(self, n_images, batch_size, generator, device="cpu"):
        _check_batch_size(batch_size)
        order = _draw_perm(self.num_train, generator)[: max(int(n_images), 0)]
        return self._batches("train", order, batch_size, torch.device(device), False, None)


def _split_and_wrap(
    name: str, x: Tensor, y: Tensor, cfg: DataConfig, class_names: Sequence[str], pad: int,
    stats: tuple[Sequence[float], Sequence[float]] | None, source: str,
) -> TensorImageData:
    """Hold out the validation split, apply the limits and build the bundle."""
    train_idx, val_idx = stratified_holdout(y, cfg.val_fraction, cfg.seed)
    train_idx = _limit(train_idx, cfg.train_limit, cfg.seed + 1, "train_limit")
    val_idx = _limit(val_idx, cfg.val_limit, cfg.seed + 2, "val_limit")
    if train_idx.numel() == 0 or val_idx.numel() == 0:
        raise PssError(
            f"{name} has too few images ({y.numel()}) to hold out a validation split; "
            "use a larger dataset or adjust val_fraction"
        )
    return TensorImageData(
        name, x[train_idx], y[train_idx], x[val_idx], y[val_idx], class_names, pad, stats, source
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
        raise PssError(f"cannot read {path} as an npz file ({_one_line(exc)}); {fix}") from exc
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
    num_classes = int(y_np.max()) + 1 if y_np.size else 0
    if names_np is not None:
        names = [str(s) for s in names_np.reshape(-1).tolist()]
        if len(names) < num_classes:
            raise PssError(f"{path}: class_names has {len(names)} entries but labels go up to {num_classes - 1}; {fix}")
    elif num_classes == 10:
        names = list(CIFAR10_CLASSES)
    else:
        names = [f"class {i}" for i in range(num_classes)]
    x = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 3, 1, 2)))
    y = torch.from_numpy(y_np.astype(np.int64))
    pad = 4 if x.shape[2] >= 32 else 2
    return _split_and_wrap("npz", x, y, cfg, names, pad, None, str(path))


def _load_cifar(cfg: DataConfig, hundred: bool) -> TensorImageData:
    name = "cifar100" if hundred else "cifar10"
    import torchvision  # deferred: importing torchvision costs ~1 s

    root = Path(cfg.data_root).expanduser()
    label, folder = ("CIFAR-100", "cifar-100-python") if hundred else ("CIFAR-10", "cifar-10-batches-py")
    cls = torchvision.datasets.CIFAR100 if hundred else torchvision.datasets.CIFAR10
    try:
        root.mkdir(parents=True, exist_ok=True)
        ds = cls(str(root), train=True, download=cfg.download)
    except Exception as exc:
        how = "could not be downloaded" if cfg.download else "is missing and download=false"
        return _fallback_or_raise(
            cfg,
            f"{label} not found under {root} and {how} ({_one_line(exc)}); pass --set download=true on a machine "
            f"with internet, or point data_root at a folder containing {folder}",
        )
    x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
    y = torch.as_tensor(ds.targets, dtype=torch.long)
    stats = _CIFAR100_STATS if hundred else _CIFAR10_STATS
    return _split_and_wrap(name, x, y, cfg, list(ds.classes), 4, stats, str(root / folder))


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


def _load_fashion_mnist(cfg: DataConfig) -> TensorImageData:
    import torchvision

    root = Path(cfg.data_root).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
        _seed_fashion_mnist(root)
        ds = torchvision.datasets.FashionMNIST(str(root), train=True, download=cfg.download)
    except Exception as exc:
        how = "could not be downloaded" if cfg.download else "is missing and download=false"
        return _fallback_or_raise(
            cfg,
            f"Fashion-MNIST not found under {root} and {how} ({_one_line(exc)}); run 'apt-get install "
            "dataset-fashion-mnist', or pass --set download=true on a machine with internet, "
            "or point data_root at a folder containing FashionMNIST/raw",
        )
    x = ds.data.unsqueeze(1).contiguous()  # (N,1,28,28) uint8
    y = ds.targets.long()
    return _split_and_wrap(
        "fashion-mnist", x, y, cfg, list(ds.classes), 2, _FASHION_STATS, str(root / "FashionMNIST")
    )


# --------------------------------------------------------------------------- ImageFolder data


class _SampleDataset(torch.utils.data.Dataset):
    """(path, label) samples read with PIL and transformed; lets train/eval share one file scan."""

    def __init__(self, samples: list[tuple[str, int]], transform: Any) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from torchvision.datasets.folder import default_loader

        path, label = self.samples[i]
        return self.transform(default_loader(path)), label


def _resolve_imagenet_classes(spec: str | int | None, available: list[str], train_dir: Path) -> list[str]:
    """The class list: all, the first N sorted, or the wnids listed in a text file (in file order)."""
    if spec is None:
        return list(available)
    if isinstance(spec, str) and spec.strip().isdigit():
        spec = int(spec.strip())
    if isinstance(spec, bool):
        raise PssError(f"imagenet_classes={spec!r} is not valid; set it to a class count or a path to a wnid list file")
    if isinstance(spec, int):
        if spec < 1 or spec > len(available):
            raise PssError(
                f"imagenet_classes={spec} but {train_dir} has {len(available)} class folders; "
                f"set imagenet_classes to a count between 1 and {len(available)}"
            )
        return available[:spec]
    path = Path(spec).expanduser()
    if not path.is_file():
        raise PssError(f"imagenet_classes file not found: {path}; set it to a text file with one wnid per line, or to a class count")
    wanted = []
    for line in path.read_text().splitlines():
        token = line.split("#", 1)[0].strip().split()
        if token and token[0] not in wanted:
            wanted.append(token[0])
    if not wanted:
        raise PssError(f"imagenet_classes file {path} lists no wnids; write one class folder name per line")
    known = set(available)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise PssError(
            f"imagenet_classes file {path} names {len(unknown)} class(es) with no folder in {train_dir}: {shown}; "
            "fix the list or the imagenet_root"
        )
    return wanted


def _scan(directory: Path, classes: list[str], split: str) -> list[tuple[str, int]]:
    """Image files of the chosen classes only (never walks the other folders), labelled by list position."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    class_to_idx = {c: i for i, c in enumerate(classes)}
    samples = make_dataset(str(directory), class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
    counts = np.bincount([t for _, t in samples], minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        shown = ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else "")
        raise PssError(
            f"no images for {len(empty)} selected class(es) in {directory}: {shown}; "
            f"add them to {split}/ or drop them from imagenet_classes"
        )
    return samples


class FolderImageData(DataBundle):
    """ImageNet-style ``train/``/``val/`` folders of a chosen class subset, read via a DataLoader.

    Labels are remapped to ``0..K-1`` in the order of the class list so a
    subset's logits line up with the list file. ``val/`` is the validation
    split (no holdout from train).
    """

    def __init__(self, cfg: DataConfig) -> None:
        from torchvision import transforms as T

        if not cfg.imagenet_root:
            raise PssError("dataset=imagenet-subset needs imagenet_root; set it to a folder with train/ and val/ class folders")
        root = Path(cfg.imagenet_root).expanduser()
        train_dir, val_dir = root / "train", root / "val"
        for d in (train_dir, val_dir):
            if not d.is_dir():
                raise PssError(
                    f"{d} not found; imagenet_root must contain train/ and val/ ImageFolder trees (one folder per wnid)"
                )
        res = int(cfg.imagenet_resolution)
        if res < 8:
            raise PssError(f"imagenet_resolution={res} is too small; use e.g. 224 or 128")
        available = sorted(e.name for e in train_dir.iterdir() if e.is_dir() and not e.name.startswith("."))
        if not available:
            raise PssError(f"{train_dir} has no class folders; put one folder of images per wnid there")
        classes = _resolve_imagenet_classes(cfg.imagenet_classes, available, train_dir)

        train_samples = _scan(train_dir, classes, "train")
        val_samples = _scan(val_dir, classes, "val")
        train_samples = [train_samples[i] for i in _limit(torch.arange(len(train_samples)), cfg.train_limit, cfg.seed + 1, "train_limit").tolist()]
        val_samples = [val_samples[i] for i in _limit(torch.arange(len(val_samples)), cfg.val_limit, cfg.seed + 2, "val_limit").tolist()]

        mean, std = _IMAGENET_STATS
        normalise = [T.ToTensor(), T.Normalize(mean, std)]
        self._train_tf = T.Compose([T.RandomResizedCrop(res), T.RandomHorizontalFlip(), *normalise])
        self._eval_tf = T.Compose([T.Resize(int(res / 0.875)), T.CenterCrop(res), *normalise])
        self._train = _SampleDataset(train_samples, self._train_tf)
        self._train_eval = _SampleDataset(train_samples, self._eval_tf)
        self._val = _SampleDataset(val_samples, self._eval_tf)

        self.name = "imagenet-subset"
        self.class_names = list(classes)
        self.num_classes = len(classes)
        self.in_channels = 3
        self.native_resolution = res
        self.mean, self.std = mean, std
        self.num_train, self.num_val = len(train_samples), len(val_samples)
        self.source = str(root)
        self.num_workers = max(int(cfg.num_workers), 0)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["augmentation"] = "RandomResizedCrop + horizontal flip"
        return info

    def _loader(
        self, ds: torch.utils.data.Dataset, order: list[int], batch_size: int, device: torch.device,
        drop_last: bool, seed: int,
    ) -> Iterator[tuple[Tensor, Tensor]]:
        pin = device.type == "cuda"
        loader = torch.utils.data.DataLoader(
            ds,
            batch_size=batch_size,
            sampler=order,  # a fixed index order: shuffling is decided by the caller's generator
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=pin,
            generator=torch.Generator().manual_seed(seed),  # seeds the workers' augmentation RNG
        )
        for xb, yb in loader:
            yield xb.to(device, non_blocking=pin), yb.to(device, non_blocking=pin).long()

    def train_batches(self, batch_size, generator, device="cpu"):
        _check_batch_size(batch_size)
        order = _draw_perm(self.num_train, generator).tolist()
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        return self._loader(self._train, order, batch_size, torch.device(device), True, seed)

    def val_batches(self, batch_size, device="cpu"):
        _check_batch_size(batch_size)
        return self._loader(self._val, list(range(self.num_val)), batch_size, torch.device(device), False, 0)

    def calibration_batches(self, n_images, batch_size, generator, device="cpu"):
        _check_batch_size(batch_size)
        order = _draw_perm(self.num_train, generator)[: max(int(n_images), 0)].tolist()
        return self._loader(self._train_eval, order, batch_size, torch.device(device), False, 0)


# --------------------------------------------------------------------------- entry point


def load_data(cfg: DataConfig) -> DataBundle:
    """Build the dataset named by ``cfg.dataset`` (raises :class:`PssError` on bad input)."""
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
        return _load_cifar(cfg, hundred=(name == "cifar100"))
    return _load_fashion_mnist(cfg)
