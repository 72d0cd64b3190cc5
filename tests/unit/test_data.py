"""Tests for pss.data: splits, batching, augmentation, errors and the three data sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import helpers
from pss.config import DataConfig, TrainConfig
from pss.data import (
    CIFAR10_CLASSES,
    FASHION_MNIST_SYSTEM_DIR,
    FolderImageData,
    TensorImageData,
    crop_flip,
    load_data,
    make_synthetic,
    random_crop_flip,
    stratified_holdout,
)
from pss.errors import PssError

NPZ = helpers.NPZ_PATH
needs_npz = pytest.mark.skipif(not NPZ.is_file(), reason=f"CIFAR-10 subset not present at {NPZ}")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def npz_data() -> TensorImageData:
    if not NPZ.is_file():
        pytest.skip(f"CIFAR-10 subset not present at {NPZ}")
    return load_data(DataConfig(dataset="npz", npz_path=str(NPZ)))


@pytest.fixture(scope="module")
def synth() -> TensorImageData:
    return load_data(DataConfig(dataset="synthetic", seed=3))


# --------------------------------------------------------------------------- npz


@needs_npz
def test_npz_split_sizes_classes_and_describe(npz_data):
    assert npz_data.name == "npz"
    assert npz_data.num_train + npz_data.num_val + npz_data.num_test == 5085
    assert 500 <= npz_data.num_test <= 520  # ~10 % held out for testing first
    assert 440 <= npz_data.num_val <= 470  # then ~10 % of the rest for validation
    assert npz_data.class_names == CIFAR10_CLASSES
    assert (npz_data.num_classes, npz_data.in_channels, npz_data.native_resolution) == (10, 3, 32)
    info = json.loads(json.dumps(npz_data.describe()))
    assert info["num_train"] == npz_data.num_train and info["source"].endswith("cifar10-train-subset.npz")
    assert len(info["mean"]) == 3 and len(info["std"]) == 3


def _image_ids(x: torch.Tensor) -> set[bytes]:
    return {bytes(img.numpy().tobytes()) for img in x}


@needs_npz
def test_three_splits_are_disjoint_images_and_the_legacy_split_is_unchanged(npz_data):
    """Selection (val) and reporting (test) never see a training image; runs before test splits read as they were."""
    train, val, test = _image_ids(npz_data.x_train), _image_ids(npz_data.x_val), _image_ids(npz_data.x_test)
    assert not (train & test) and not (val & test) and not (train & val)
    totals = torch.bincount(torch.from_numpy(np.load(NPZ)["y"].astype(np.int64)), minlength=10)
    assert torch.bincount(npz_data.y_test, minlength=10).tolist() == [round(0.1 * int(n)) for n in totals]  # stratified
    again = load_data(DataConfig(dataset="npz", npz_path=str(NPZ)))
    assert torch.equal(again.y_test, npz_data.y_test) and torch.equal(again.x_test, npz_data.x_test)
    xb, yb = next(iter(npz_data.test_batches(10_000)))
    assert xb.shape[0] == npz_data.num_test and torch.equal(yb, npz_data.y_test)
    legacy = load_data(DataConfig(dataset="npz", npz_path=str(NPZ), test_split=False))
    assert (legacy.num_train, legacy.num_val, legacy.num_test) == (4576, 509, 0)  # the bundled sample run's split before 0.2
    with pytest.raises(PssError, match="no test split"):
        legacy.test_batches(64)
    assert TrainConfig.from_stored({"dataset": "npz"}).test_split is False  # a stored config without the key
    assert TrainConfig.from_stored({"dataset": "npz", "test_split": True}).test_split is True
    assert legacy.describe()["test_split"] == "none" and npz_data.describe()["num_test"] == npz_data.num_test


@needs_npz
def test_holdout_disjoint_stratified_and_deterministic():
    y = torch.from_numpy(np.load(NPZ)["y"].astype(np.int64))
    tr, va = stratified_holdout(y, 0.1, seed=0)
    assert set(tr.tolist()).isdisjoint(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(len(y)))
    counts = torch.bincount(y[va], minlength=10)
    assert counts.min() >= 45 and counts.max() <= 55  # every class ~10 %
    tr2, va2 = stratified_holdout(y, 0.1, seed=0)
    assert torch.equal(va, va2) and torch.equal(tr, tr2)
    _, va3 = stratified_holdout(y, 0.1, seed=1)
    assert not torch.equal(va, va3)


@needs_npz
def test_npz_loaded_split_follows_seed(npz_data):
    same = load_data(DataConfig(dataset="npz", npz_path=str(NPZ), seed=0))
    other = load_data(DataConfig(dataset="npz", npz_path=str(NPZ), seed=7))
    assert torch.equal(same.x_val, npz_data.x_val)
    assert not torch.equal(other.x_val, npz_data.x_val)
    # train and val images are disjoint (compare raw image bytes)
    train_keys = {bytes(r) for r in npz_data.x_train.flatten(1).numpy()}
    assert not any(bytes(r) in train_keys for r in npz_data.x_val.flatten(1).numpy())


@needs_npz
def test_npz_batches_are_normalised(npz_data):
    xs, ys = zip(*npz_data.val_batches(200))
    x, y = torch.cat(xs), torch.cat(ys)
    assert [b.shape[0] for b in xs][-1] == npz_data.num_val % 200  # last partial batch kept
    assert x.shape == (npz_data.num_val, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) <= 9
    assert x.mean(dim=(0, 2, 3)).abs().max() < 0.1
    assert (x.std(dim=(0, 2, 3)) - 1).abs().max() < 0.1
    # fixed order: a second pass is identical
    assert torch.equal(torch.cat([b for b, _ in npz_data.val_batches(200)]), x)


@needs_npz
def test_limits(tmp_path):
    d = load_data(DataConfig(dataset="npz", npz_path=str(NPZ), train_limit=300, val_limit=50))
    assert (d.num_train, d.num_val) == (300, 50)
    assert len(set(d.y_train.tolist())) == 10


# --------------------------------------------------------------------------- augmentation


def test_crop_helper_identity_flip_and_shift():
    x = torch.randint(1, 256, (5, 3, 8, 8), dtype=torch.uint8)
    pad = 2
    full = torch.full((5,), pad)
    no = torch.zeros(5, dtype=torch.bool)
    assert torch.equal(crop_flip(x, pad, full, full, no), x)
    assert torch.equal(crop_flip(x, pad, full, full, ~no), x.flip(-1))
    zero = torch.zeros(5, dtype=torch.long)
    shifted = crop_flip(x, pad, zero, zero, no)
    assert torch.equal(shifted[..., pad:, pad:], x[..., :-pad, :-pad])
    assert (shifted[..., :pad, :] == 0).all() and (shifted[..., :, :pad] == 0).all()
    # per-image offsets: image 1 shifted, the others untouched
    dy = full.clone()
    dy[1] = 0
    mixed = crop_flip(x, pad, dy, full, no)
    assert torch.equal(mixed[0], x[0]) and not torch.equal(mixed[1], x[1])


def test_random_crop_flip_changes_images_keeps_shape():
    x = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = random_crop_flip(x, 4, _gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    changed = (out != x).flatten(1).any(1)
    assert changed.sum() > 40  # a few may draw the identity (centre crop, no flip)
    assert torch.equal(out, random_crop_flip(x, 4, _gen(0)))


# --------------------------------------------------------------------------- batching


def test_train_batches_reproducible_and_drop_last(synth):
    bs = 128
    a = list(synth.train_batches(bs, _gen(5)))
    b = list(synth.train_batches(bs, _gen(5)))
    c = list(synth.train_batches(bs, _gen(6)))
    assert len(a) == synth.len_train_batches(bs) == synth.num_train // bs
    assert synth.num_train % bs != 0  # so drop_last is actually exercised
    assert all(x.shape == (bs, 3, 32, 32) and y.shape == (bs,) for x, y in a)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    assert a[0][0].dtype == torch.float32 and a[0][1].dtype == torch.int64


def test_calibration_batches_exact_count_unaugmented(synth):
    sizes = [x.shape[0] for x, _ in synth.calibration_batches(300, 128, _gen(0))]
    assert sizes == [128, 128, 44]
    allx = torch.cat([x for x, _ in synth.calibration_batches(10**6, 256, _gen(1))])
    assert allx.shape[0] == synth.num_train
    # no augmentation: the images are exactly the normalised training images, permuted
    ref = synth._normalise(synth.x_train).flatten(1).sum(1).sort().values
    assert torch.allclose(allx.flatten(1).sum(1).sort().values, ref, atol=1e-2)


def test_synthetic_deterministic_and_learnable(synth):
    x1, y1 = make_synthetic(200, seed=4)
    x2, y2 = make_synthetic(200, seed=4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (200, 3, 32, 32) and x1.dtype == torch.uint8
    assert synth.num_train + synth.num_val + synth.num_test == 2000 and synth.num_test == 200 and synth.num_classes == 10
    # nearest class centroid on 8x8 thumbnails is far above chance (10 %)
    def feats(x):
        return torch.nn.functional.avg_pool2d(x.float(), 4).flatten(1)
    ftr, fva = feats(synth.x_train), feats(synth.x_val)
    centroids = torch.stack([ftr[synth.y_train == k].mean(0) for k in range(10)])
    acc = (torch.cdist(fva, centroids).argmin(1) == synth.y_val).float().mean()
    assert acc > 0.5


# --------------------------------------------------------------------------- errors and fallback


def test_synthetic_fallback_when_npz_missing(tmp_path):
    cfg = DataConfig(dataset="npz", npz_path=str(tmp_path / "nope.npz"), synthetic_fallback=True)
    with pytest.warns(UserWarning, match="synthetic"):
        d = load_data(cfg)
    assert d.name == "synthetic" and d.num_train + d.num_val + d.num_test == 2000


def test_cifar_missing_offline_falls_back_or_raises(tmp_path):
    cfg = DataConfig(dataset="cifar10", data_root=str(tmp_path), download=False)
    with pytest.raises(PssError, match="cifar-10-batches-py"):
        load_data(cfg)
    cfg.synthetic_fallback = True
    with pytest.warns(UserWarning):
        assert load_data(cfg).name == "synthetic"


def _one_line_error(cfg: DataConfig, match: str) -> str:
    with pytest.raises(PssError, match=match) as info:
        load_data(cfg)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_errors_are_pss_errors(tmp_path):
    _one_line_error(DataConfig(dataset="npz", npz_path=str(tmp_path / "nope.npz")), "not found")
    msg = _one_line_error(DataConfig(dataset="mnist"), "unknown dataset")
    assert "cifar10" in msg and "imagenet-subset" in msg
    for bad in (0.0, 1.0, -0.2, 1.5):
        _one_line_error(DataConfig(dataset="synthetic", val_fraction=bad), "val_fraction")
    np.savez(tmp_path / "noy.npz", x=np.zeros((10, 32, 32, 3), np.uint8))
    _one_line_error(DataConfig(dataset="npz", npz_path=str(tmp_path / "noy.npz")), "'x' or 'y'")
    np.savez(tmp_path / "shape.npz", x=np.zeros((10, 3, 32), np.uint8)[None], y=np.zeros(1, np.int64))
    _one_line_error(DataConfig(dataset="npz", npz_path=str(tmp_path / "shape.npz")), "shape")
    np.savez(tmp_path / "ylen.npz", x=np.zeros((10, 32, 32, 3), np.uint8), y=np.zeros(9, np.int64))
    _one_line_error(DataConfig(dataset="npz", npz_path=str(tmp_path / "ylen.npz")), "y has shape")
    (tmp_path / "junk.npz").write_text("not a zip")
    _one_line_error(DataConfig(dataset="npz", npz_path=str(tmp_path / "junk.npz")), "cannot read")


def test_npz_without_class_names_and_grayscale(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "g.npz", x=rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), y=np.arange(60) % 3)
    d = load_data(DataConfig(dataset="npz", npz_path=str(tmp_path / "g.npz")))
    assert d.class_names == ["class 0", "class 1", "class 2"] and d.in_channels == 1
    assert d.native_resolution == 28 and d.num_val == 6
    names = np.array(["a", "b", "c"])
    np.savez(tmp_path / "n.npz", x=rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8), y=np.arange(60) % 3,
             class_names=names)
    assert load_data(DataConfig(dataset="npz", npz_path=str(tmp_path / "n.npz"))).class_names == ["a", "b", "c"]


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.skipif(not FASHION_MNIST_SYSTEM_DIR.is_dir(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_debian_package(tmp_path):
    d = load_data(DataConfig(dataset="fashion-mnist", data_root=str(tmp_path), download=False))
    assert d.name == "fashion-mnist"
    assert d.num_train + d.num_val == 60000 and d.num_val == 6000
    assert d.num_test == 10000 and d.test_source == "the official fashion-mnist test set"
    assert (d.in_channels, d.native_resolution, d.num_classes) == (1, 28, 10)
    assert d.class_names[0] == "T-shirt/top" and d.mean == (0.2860,)
    x, y = next(d.train_batches(32, _gen(0)))
    assert x.shape == (32, 1, 28, 28) and y.dtype == torch.int64


@pytest.mark.skipif(not FASHION_MNIST_SYSTEM_DIR.is_dir(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_of_a_run_from_elsewhere_reads_the_package_in_place(tmp_path):
    """A run trained on another machine names a data_root that is empty here: commands on it (create=False)
    read the Debian package's files in place, nothing written, the same images as torchvision's folder."""
    empty = tmp_path / "elsewhere"
    d = load_data(DataConfig(dataset="fashion-mnist", data_root=str(empty), download=False), create=False)
    assert not empty.exists(), "create=False writes nothing"
    assert d.num_train + d.num_val == 60000 and d.num_test == 10000 and d.class_names[0] == "T-shirt/top"
    ref = load_data(DataConfig(dataset="fashion-mnist", data_root=str(tmp_path / "unpacked"), download=False))
    xa, ya = next(d.test_batches(1000))
    xb, yb = next(ref.test_batches(1000))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    va, vb = next(d.val_batches(500)), next(ref.val_batches(500))
    assert torch.equal(va[0], vb[0]) and torch.equal(va[1], vb[1]), "the same validation split"


# --------------------------------------------------------------------------- ImageFolder subset

_COLOURS = {"n001": (255, 0, 0), "n002": (0, 255, 0), "n003": (0, 0, 255)}


@pytest.fixture()
def image_tree(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "inet"
    for split, n in (("train", 5), ("val", 2)):
        for wnid, colour in _COLOURS.items():
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                ext = "png" if i % 2 else "jpg"
                Image.new("RGB", (20 + i, 24), colour).save(folder / f"img{i}.{ext}")
    return root


def _dominant_channel(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3)).argmax(1)


def test_imagenet_subset_class_file_and_remap(image_tree, tmp_path):
    listing = tmp_path / "classes.txt"
    listing.write_text("n003\n\n# comment\nn001\n")
    cfg = DataConfig(dataset="imagenet-subset", imagenet_root=str(image_tree), imagenet_classes=str(listing),
                     imagenet_resolution=16, num_workers=0, test_split=False)  # a run from before test splits: val/ validates
    d = load_data(cfg)
    assert isinstance(d, FolderImageData)
    assert d.class_names == ["n003", "n001"] and d.num_classes == 2
    assert (d.num_train, d.num_val, d.native_resolution) == (10, 4, 16)
    x, y = zip(*d.val_batches(3))
    assert [b.shape[0] for b in x] == [3, 1]
    x, y = torch.cat(x), torch.cat(y)
    assert x.shape == (4, 3, 16, 16) and y.dtype == torch.int64
    # label 0 is n003 (blue, channel 2), label 1 is n001 (red, channel 0)
    expected = torch.where(y == 0, torch.tensor(2), torch.tensor(0))
    assert torch.equal(_dominant_channel(x), expected)
    batches = list(d.train_batches(4, _gen(0)))
    assert len(batches) == d.len_train_batches(4) == 2
    assert all(b.shape == (4, 3, 16, 16) for b, _ in batches)
    assert [t.tolist() for _, t in batches] == [t.tolist() for _, t in d.train_batches(4, _gen(0))]
    assert sum(b.shape[0] for b, _ in d.calibration_batches(7, 4, _gen(0))) == 7
    assert d.num_test == 0


def test_imagenet_subset_reports_on_val_and_selects_on_part_of_train(image_tree):
    """With a test split, val/ only reports; validation is a stratified part of train/ (one per class here)."""
    d = load_data(DataConfig(dataset="imagenet-subset", imagenet_root=str(image_tree), imagenet_classes=3,
                             imagenet_resolution=16, num_workers=0))
    assert (d.num_train, d.num_val, d.num_test) == (12, 3, 6)
    val_files = {p for p, _ in d._val.samples}
    assert all("/train/" in p for p in val_files) and not val_files & {p for p, _ in d._train.samples}
    assert all("/val/" in p for p, _ in d._test.samples)
    x, y = (torch.cat(t) for t in zip(*d.test_batches(4)))
    assert x.shape == (6, 3, 16, 16) and torch.equal(_dominant_channel(x), y)
    assert sorted(torch.cat([t for _, t in d.val_batches(8)]).tolist()) == [0, 1, 2]


def test_imagenet_subset_count_and_errors(image_tree, tmp_path):
    base = dict(dataset="imagenet-subset", imagenet_root=str(image_tree), imagenet_resolution=16, num_workers=0)
    d = load_data(DataConfig(**base, imagenet_classes=2))
    assert d.class_names == ["n001", "n002"] and d.num_train == 8  # 5 per class, 1 per class validates
    assert load_data(DataConfig(**base, imagenet_classes="3")).num_classes == 3
    _one_line_error(DataConfig(**base, imagenet_classes=4), "3 class folders")
    listing = tmp_path / "bad.txt"
    listing.write_text("n001\nn999\n")
    _one_line_error(DataConfig(**base, imagenet_classes=str(listing)), "n999")
    _one_line_error(DataConfig(**{**base, "imagenet_root": str(tmp_path / "missing")}), "train")
    _one_line_error(DataConfig(**{**base, "imagenet_root": None}), "imagenet_root")


def test_imagenet_subset_with_workers(image_tree):
    d = load_data(DataConfig(dataset="imagenet-subset", imagenet_root=str(image_tree), imagenet_classes=3,
                             imagenet_resolution=16, num_workers=2))
    x, y = next(d.train_batches(6, _gen(1)))
    assert x.shape == (6, 3, 16, 16)
    assert torch.equal(_dominant_channel(x), y)  # n001 red=0, n002 green=1, n003 blue=2
