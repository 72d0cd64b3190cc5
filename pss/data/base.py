"""The interface every dataset implements (:class:`DataBundle`) and the helpers they share."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor

from ..errors import PssError

_DEVICE_CACHE_BYTES = 2 << 30  # keep splits up to 2 GiB resident on an accelerator

Shard = tuple[int, int]
"""(rank, world size) of a process in distributed training; (0, 1) alone."""


def shard_rows(batch_size: int, shard: Shard) -> slice:
    """This rank's rows of a global batch: ``batch_size / world`` contiguous rows (a DistributedSampler's share)."""
    rank, world = shard
    if world == 1:
        return slice(None)
    per = batch_size // world
    return slice(rank * per, (rank + 1) * per)


def shard_part(order: Tensor, shard: Shard) -> Tensor:
    """This rank's contiguous part of an evaluation order (the parts cover it exactly once)."""
    rank, world = shard
    return order if world == 1 else order.tensor_split(world)[rank]



class DataBundle(ABC):
    """Train / validation / test splits with batch iterators; what the trainer and the evaluators see.

    Three splits, three uses: *train* trains the supernet and re-estimates BN
    statistics; *validation* selects (the calibrated top-k per pool, Eq. 5,
    search); *test* only reports, so the accuracy a user reads was never used
    to choose the subnet. :attr:`num_test` is 0 for a run without a test split
    (``test_split: false``, or a run written before test splits existed).

    Batches are float32 NCHW, normalised with :attr:`mean`/:attr:`std` by
    :func:`pss.inputs.normalise` (the input pipeline's first half; the supernet
    resizes them to a subnet's resolution), at :attr:`native_resolution`, on the
    requested device; labels are int64.
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
    num_test: int = 0
    test_source: str = "none"
    source: str

    @abstractmethod
    def train_batches(
        self, batch_size: int, generator: torch.Generator, device: torch.device | str = "cpu", shard: "Shard" = (0, 1)
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """One augmented epoch in an order drawn from ``generator``; drops the last partial batch.

        ``batch_size`` is the global batch; with ``shard=(rank, world)`` each batch holds this rank's
        ``batch_size / world`` rows (every rank draws the same order, as a DistributedSampler does).
        """

    def len_train_batches(self, batch_size: int) -> int:
        """Number of batches :meth:`train_batches` yields (drop_last)."""
        _check_batch_size(batch_size)
        return self.num_train // batch_size

    @abstractmethod
    def val_batches(
        self, batch_size: int, device: torch.device | str = "cpu", shard: "Shard" = (0, 1)
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The validation split (this rank's part of it), un-augmented, in a fixed order, last partial batch kept."""

    @abstractmethod
    def test_batches(
        self, batch_size: int, device: torch.device | str = "cpu", shard: "Shard" = (0, 1)
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The test split, like :meth:`val_batches`; a :class:`PssError` when the data have none (:attr:`num_test` 0)."""

    @property
    def has_test(self) -> bool:
        return self.num_test > 0

    def _require_test(self) -> None:
        if not self.has_test:
            raise PssError(f"the {self.name} data of this run have no test split; retrain with test_split=true to report test accuracy")

    @abstractmethod
    def calibration_batches(
        self,
        n_images: int,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device | str = "cpu",
        shard: "Shard" = (0, 1),
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """``n_images`` un-augmented training images (a random subset) for BatchNorm re-estimation."""

    def split_labels(self, split: str) -> Tensor:
        """The int64 labels of ``split`` (``train``, ``val`` or ``test``) in the order its batches yield them.

        The validation and test batches come in this order; training batches are a shuffle of it.
        """
        raise NotImplementedError(f"{type(self).__name__} does not expose its labels")

    def subset_batches(
        self, split: str, indices: Tensor, batch_size: int, device: torch.device | str = "cpu", shard: "Shard" = (0, 1)
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """The images ``indices`` of ``split`` (positions in :meth:`split_labels`), un-augmented, in that order,
        last partial batch kept; with ``shard`` this rank's part. E.g. one superclass's images
        (:func:`subset_of_classes`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot batch a subset of a split")

    def describe(self) -> dict[str, Any]:
        """JSON-able summary, written next to checkpoints so a run records its data."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "in_channels": self.in_channels,
            "native_resolution": self.native_resolution,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "num_test": self.num_test,
            "test_split": self.test_source,
            "class_names": list(self.class_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "source": self.source,
        }



SPLITS = ("train", "val", "test")
"""The splits of a :class:`DataBundle`, as :meth:`DataBundle.split_labels` names them."""


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise PssError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def subset_of_classes(data: DataBundle, split: str, classes: Sequence[int]) -> Tensor:
    """The positions (sorted, int64) of ``split``'s images whose label is one of ``classes``.

    E.g. one superclass's test images (EAS: a superclass's accuracy is measured on its own images):
    ``data.subset_batches("test", subset_of_classes(data, "test", smap.classes_of("vehicles")), 256)``.
    """
    labels = data.split_labels(check_split(split))
    wanted = torch.as_tensor(list(classes), dtype=torch.long)
    bad = wanted[(wanted < 0) | (wanted >= data.num_classes)]
    if bad.numel():
        raise PssError(f"class index {int(bad[0])} is outside 0..{data.num_classes - 1} of the {data.name} data; "
                       "give class indices of this dataset")
    return torch.nonzero(torch.isin(labels, wanted)).flatten()


def _check_indices(indices: Tensor, n: int, split: str) -> Tensor:
    """``indices`` as int64 positions into a split of ``n`` images (PssError for one outside it)."""
    idx = torch.as_tensor(indices, dtype=torch.long).flatten().cpu()
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise PssError(f"image index out of range for the {split} split of {n} images; take indices from subset_of_classes")
    return idx


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise PssError(f"batch size must be a positive integer, got {batch_size!r}; set batch_size to e.g. 128")


def _draw_perm(n: int, generator: torch.Generator) -> Tensor:
    """A CPU permutation of range(n) from ``generator`` (which may live on any device)."""
    return torch.randperm(n, generator=generator, device=generator.device).cpu()


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


TEST_SEED_OFFSET = 7919
"""Offset of the seed that holds out an npz's test split from the run's seed (the validation split uses the seed)."""


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


MIN_RESOLUTION = 8


def check_image_data(name: str, classes: int, size: int) -> None:
    """Warn about data a supernet cannot learn much from: one class, or images under 8 px."""
    if classes < 2:
        warnings.warn(f"{name} has images of one class only; accuracy will be 100% and meaningless", stacklevel=3)
    if size < MIN_RESOLUTION:
        warnings.warn(f"{name} has {size}x{size}-pixel images; the models expect at least {MIN_RESOLUTION} px "
                      "(resolution_min) and will see mostly padding", stacklevel=3)
