"""ImageNet-style ``train/`` + ``val/`` ImageFolder trees of a chosen class subset, streamed.

Such data does not fit in memory, so it is read through a ``DataLoader`` with
worker processes.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from ..config import DataConfig
from ..errors import PssError, one_line
from ..inputs import normalise
from .augment import IMAGENET_STATS, imagenet_train_transform
from .base import (
    DataBundle, Shard, _check_batch_size, _check_indices, _draw_perm, _limit, check_image_data, check_split, shard_part, shard_rows,
    stratified_holdout,
)



class _SampleDataset(torch.utils.data.Dataset):
    """(path, label) samples read with PIL and transformed; lets train/eval share one file scan."""

    def __init__(self, samples: list[tuple[str, int]], transform: Any) -> None:
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from torchvision.datasets.folder import default_loader

        path, label = self.samples[i]
        try:
            image = default_loader(path)
        except Exception as exc:  # PIL raises several types for truncated or foreign files
            raise PssError(f"cannot decode image {path} ({one_line(exc)}); remove or replace the file and start again") from None
        return self.transform(image), label


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
    if unknown and 2 * len(unknown) > len(wanted):
        # mostly not class folders: some other file; say so without echoing its lines
        raise PssError(
            f"imagenet_classes file {path} does not look like a class list: {len(unknown)} of its {len(wanted)} entries "
            f"are not class folders of {train_dir}; point imagenet_classes at a text file with one wnid per line"
        )
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
    subset's logits line up with the list file. With ``test_split`` (the
    default) ``val/`` is the test split and validation is a stratified
    ``val_fraction`` of ``train/``; without it (runs made before test splits)
    ``val/`` validates.
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
        check_image_data(str(root), len(classes), int(cfg.imagenet_resolution))

        train_samples = _scan(train_dir, classes, "train")
        val_samples = _scan(val_dir, classes, "val")
        test_samples: list[tuple[str, int]] = []
        if cfg.test_split:
            # val/ only reports; selection validates on a stratified part of train/
            test_samples = val_samples
            keep, held = stratified_holdout(torch.tensor([t for _, t in train_samples]), cfg.val_fraction, cfg.seed)
            train_samples, val_samples = [train_samples[i] for i in keep.tolist()], [train_samples[i] for i in held.tolist()]
            test_samples = [test_samples[i] for i in _limit(torch.arange(len(test_samples)), cfg.test_limit, cfg.seed + 3, "test_limit").tolist()]
        train_samples = [train_samples[i] for i in _limit(torch.arange(len(train_samples)), cfg.train_limit, cfg.seed + 1, "train_limit").tolist()]
        val_samples = [val_samples[i] for i in _limit(torch.arange(len(val_samples)), cfg.val_limit, cfg.seed + 2, "val_limit").tolist()]

        mean, std = IMAGENET_STATS
        self._train_tf = imagenet_train_transform(res, cfg.imagenet_augmentation)
        # the evaluation images (validation, test, calibration) at the native resolution, normalised by the input
        # pipeline's own function (the same values as ToTensor + Normalize)
        self._eval_tf = T.Compose([T.Resize(int(res / 0.875)), T.CenterCrop(res), T.PILToTensor(),
                                   functools.partial(normalise, mean=mean, std=std)])
        self._train = _SampleDataset(train_samples, self._train_tf)
        self._train_eval = _SampleDataset(train_samples, self._eval_tf)
        self._val = _SampleDataset(val_samples, self._eval_tf)
        self._test = _SampleDataset(test_samples, self._eval_tf)
        self.num_test = len(test_samples)
        self.test_source = f"{val_dir} (the ImageNet validation images)" if test_samples else "none"

        self.name = "imagenet-subset"
        self.class_names = list(classes)
        self.num_classes = len(classes)
        self.in_channels = 3
        self.native_resolution = res
        self.mean, self.std = mean, std
        self.num_train, self.num_val = len(train_samples), len(val_samples)
        self.source = str(root)
        self.num_workers = max(int(cfg.num_workers), 0)
        self.augmentation = ("RandomResizedCrop (scale 0.25-1) + horizontal flip + colour jitter 0.4 + lighting 0.1"
                             if cfg.imagenet_augmentation == "reference" else "RandomResizedCrop + horizontal flip")

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["augmentation"] = self.augmentation
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
        try:
            for xb, yb in loader:
                yield xb.to(device, non_blocking=pin), yb.to(device, non_blocking=pin).long()
        except PssError as exc:
            # a worker's PssError comes back wrapped in its traceback; keep the one line that says what to do
            raise PssError(str(exc).strip().splitlines()[-1].split("PssError: ", 1)[-1]) from None

    def train_batches(self, batch_size, generator, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        order = _draw_perm(self.num_train, generator)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        rank, world = shard
        if world > 1:  # this rank's rows of every global batch, in order
            whole = (order.numel() // batch_size) * batch_size
            order = order[:whole].view(-1, batch_size)[:, shard_rows(batch_size, shard)].reshape(-1)
            seed += rank  # each rank's workers augment their own images
        per = batch_size // world
        return self._loader(self._train, order.tolist(), per, torch.device(device), True, seed)

    def val_batches(self, batch_size, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        order = shard_part(torch.arange(self.num_val), shard).tolist()
        return self._loader(self._val, order, batch_size, torch.device(device), False, 0)

    def test_batches(self, batch_size, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        self._require_test()
        order = shard_part(torch.arange(self.num_test), shard).tolist()
        return self._loader(self._test, order, batch_size, torch.device(device), False, 0)

    def calibration_batches(self, n_images, batch_size, generator, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        order = shard_part(_draw_perm(self.num_train, generator)[: max(int(n_images), 0)], shard).tolist()
        return self._loader(self._train_eval, order, batch_size, torch.device(device), False, 0)

    def _eval_dataset(self, split: str) -> _SampleDataset:
        return {"train": self._train_eval, "val": self._val, "test": self._test}[check_split(split)]

    def split_labels(self, split: str) -> Tensor:
        return torch.tensor([t for _, t in self._eval_dataset(split).samples], dtype=torch.long)

    def subset_batches(self, split, indices, batch_size, device="cpu", shard: Shard = (0, 1)):
        _check_batch_size(batch_size)
        ds = self._eval_dataset(split)
        order = shard_part(_check_indices(indices, len(ds), split), shard).tolist()
        return self._loader(ds, order, batch_size, torch.device(device), False, 0)
