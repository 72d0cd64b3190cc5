"""Evaluation identical to training: one input pipeline (`pss.inputs.subnet_input`) from a dataset's images to a
subnet's input, used by training, calibration, test, the export card and the exported model.

The pipeline keeps the numbers of the code before it bit for bit (a study trained with that code stays valid),
and an exported 20 px and 24 px subnet, fed the raw test images through it, count exactly the test images
correct that `pss study` (`per_image_correct`) and the export card count; an antialiased or reordered
resize would not.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pss.cli import main
from pss.config import DataConfig
from pss.data import load_data
from pss.data.memory import TensorImageData, make_synthetic
from pss.evaluate.calibration import BNCalibrator
from pss.inputs import normalise, resize, subnet_input
from pss.io.card import PIPELINE_KEYS, input_pipeline, read_card
from pss.io.checkpoint import read_bn_stats
from pss.io.run import front_subnets, open_run
from pss.nn.supernet import resize_batch
from pss.problem.inputs import interpolate_arguments
from pss.problem.space import Structure
from pss.workflows.export import load_subnet
from pss.workflows.loaded import load_trained
from pss.workflows.study import per_image_correct

#: (mean, std) of the datasets pss knows, and a computed one (npz, synthetic)
STATS = [((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)), ((0.2860,), (0.3530,)),
         ((0.4946, 0.4839, 0.4454), (0.2469, 0.2432, 0.2611)), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))]

#: The space of the run below: resolutions 20 and 24, its min and max subnets, below the data's 32 px.
RESOLUTIONS = (20, 24)


# ---------------------------------------------------------------- the code before the pipeline, verbatim

def _old_normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    """pss/data/memory.py TensorImageData._normalise before the pipeline."""
    mean = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float().div_(255.0) - mean) / std


def _old_resize_batch(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """pss/nn/supernet.py resize_batch before the pipeline."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


def _every_pixel_value(channels: int) -> torch.Tensor:
    """uint8 (2, C, 16, 16) holding every value 0..255 in every channel (normalising is per value and channel)."""
    return torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(2, channels, 16, 16).contiguous()


@pytest.mark.parametrize("mean, std", STATS)
def test_normalise_equals_the_old_code_for_every_pixel_value(mean, std):
    x = _every_pixel_value(len(mean))
    got = normalise(x, mean, std)
    assert got.dtype == torch.float32 and torch.equal(got, _old_normalise(x, mean, std))
    assert torch.equal(normalise(x.float(), mean, std), got)  # float pixels on the 0-255 scale: the same numbers
    assert torch.equal(normalise(x[0], mean, std), got[0])  # one image (C, H, W), as the folder datasets' transform
    before = x.float()
    normalise(before, mean, std)
    assert torch.equal(before, x.float()), "normalise modified its input"


@pytest.mark.parametrize("size, resolution", [(32, 20), (32, 24), (28, 20), (28, 24), (32, 32), (20, 28)])
def test_resize_equals_the_old_code(size, resolution):
    x = torch.randn(5, 3, size, size, generator=torch.Generator().manual_seed(size * 100 + resolution))
    got = resize(x, resolution)
    assert got.shape == (5, 3, resolution, resolution) and torch.equal(got, _old_resize_batch(x, resolution))
    assert (got is x) == (size == resolution)  # at its size a batch comes back as it is, as before
    assert resize_batch is resize  # the old name (notebooks, benches) is the pipeline's function


@pytest.mark.parametrize("mean, std", STATS[:2])
def test_subnet_input_is_the_old_composition(mean, std):
    x = torch.randint(0, 256, (6, len(mean), 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    for r in (*RESOLUTIONS, 32):
        assert torch.equal(subnet_input(x, mean, std, r), _old_resize_batch(_old_normalise(x, mean, std), r))


def test_dataset_batches_are_the_pipelines_first_half():
    """Training, validation, test and calibration batches of in-memory data are `normalise`d images (the supernet
    resizes them); training batches after their crop and flip."""
    x, y = make_synthetic(120, seed=3)
    data = TensorImageData("synthetic", x[:80], y[:80], x[80:100], y[80:100], [str(i) for i in range(10)], pad=4,
                           test=(x[100:], y[100:]))
    for split, raw in (("val", data.x_val), ("test", data.x_test)):
        batches = data.val_batches(8) if split == "val" else data.test_batches(8)
        got = torch.cat([b for b, _ in batches])
        assert torch.equal(got, normalise(raw, data.mean, data.std)) and torch.equal(got, _old_normalise(raw, data.mean, data.std))
    gen = torch.Generator().manual_seed(0)
    (xb, _), *_ = data.calibration_batches(16, 16, gen)
    order = torch.randperm(80, generator=torch.Generator().manual_seed(0))[:16]
    assert torch.equal(xb, normalise(data.x_train[order], data.mean, data.std))


def test_folder_evaluation_images_equal_torchvisions_normalize(tmp_path):
    """ImageNet-style folders: the evaluation transform normalises with the pipeline's function, giving the very
    numbers of the ToTensor + Normalize it replaced."""
    from PIL import Image
    from torchvision import transforms as T

    gen = np.random.default_rng(0)
    for split in ("train", "val"):
        for wnid in ("n001", "n002"):
            (tmp_path / split / wnid).mkdir(parents=True)
            for i in range(3 if split == "train" else 1):
                Image.fromarray(gen.integers(0, 256, (23, 19, 3), dtype=np.uint8)).save(tmp_path / split / wnid / f"{i}.png")
    data = load_data(DataConfig(dataset="imagenet-subset", imagenet_root=str(tmp_path), imagenet_resolution=16, num_workers=0))
    before = T.Compose([T.Resize(int(16 / 0.875)), T.CenterCrop(16), T.ToTensor(), T.Normalize(data.mean, data.std)])
    want = torch.stack([before(Image.open(tmp_path / "val" / wnid / "0.png").convert("RGB")) for wnid in ("n001", "n002")])
    got = torch.cat([x for x, _ in data.test_batches(4)])
    assert torch.equal(got, want)


# ---------------------------------------------------------------- an exported subnet counts what the study counts

@pytest.fixture(scope="module")
def run(small_run):
    """A tiny trained and calibrated run whose space has resolutions 20 and 24 only (min and max are calibrated)."""
    return small_run(calibrate=(64, 2), resolution_min=RESOLUTIONS[0], resolution_max=RESOLUTIONS[1], resolution_step=4)


@pytest.fixture(scope="module")
def exports(run, tmp_path_factory):
    """One calibrated subnet per resolution, exported with `pss export --key`: {resolution: (key, export dir)}."""
    front = open_run(run).read_front()
    keys = {}
    for _, c in front_subnets(front):
        keys.setdefault(Structure.from_key(c["key"]).resolution, c["key"])
    assert set(RESOLUTIONS) <= set(keys), f"the front has resolutions {sorted(keys)}"
    out = {}
    for r in RESOLUTIONS:
        d = tmp_path_factory.mktemp("export") / f"r{r}"
        assert main(["export", str(run), "--key", keys[r], "--out", str(d)]) == 0
        out[r] = (keys[r], d)
    return out


@pytest.fixture(scope="module")
def test_images(run):
    """The run's raw test images (uint8, the dataset's native size) and labels, as the data hold them."""
    cfg, _ = open_run(run).read_problem()
    data = load_data(cfg, create=False)
    assert data.num_test > 0 and data.native_resolution > max(RESOLUTIONS)  # every subnet here resizes
    return data.x_test, data.y_test


@pytest.fixture(scope="module")
def study_marks(run, exports):
    """Per test image, whether `pss study` counts each exported subnet correct."""
    return per_image_correct(open_run(run), [key for key, _ in exports.values()], "cpu")


@pytest.fixture(scope="module")
def study_logits(run, exports):
    """Each exported subnet's logits on the test split the way the study computes them (`per_image_correct`): the
    calibrated supernet on the data's test batches, which the supernet resizes."""
    trained = load_trained(open_run(run))
    data = load_data(trained.cfg, create=False)
    calibrator = BNCalibrator(trained.supernet)
    stats = read_bn_stats(trained.run)
    out = {}
    with torch.no_grad():
        for key, _ in exports.values():
            calibrator.load(stats[key])
            model = calibrator.model.eval()
            out[key] = torch.cat([model(x, Structure.from_key(key)) for x, _ in data.test_batches(trained.cfg.eval_batch_size)])
    return out


def _program(directory):
    return torch.export.load(str(directory / "model.pt2")).module()


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_the_exported_model_counts_the_studys_test_images(exports, test_images, study_marks, study_logits, resolution):
    key, d = exports[resolution]
    card = read_card(d)
    inp = card["input"]
    x, y = test_images
    assert inp["native_resolution"] == x.shape[-1] and inp["resolution"] == resolution
    with torch.no_grad():
        logits = _program(d)(subnet_input(x, inp["mean"], inp["std"], inp["resolution"]))
    marks = (logits.argmax(1) == y).numpy()
    assert np.array_equal(marks, study_marks[key]), "the exported model and the study disagree on some test images"
    assert int(marks.sum()) == card["test"]["correct"] and marks.size == card["test"]["images"]
    torch.testing.assert_close(logits, study_logits[key], rtol=0, atol=1e-4)  # the same numbers, not only the same argmax


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_the_onnx_model_fed_by_the_card_alone_counts_the_same(exports, test_images, study_marks, study_logits, resolution):
    """A deployer without pss: the card's fields as data, plain torch to apply them, onnxruntime to run."""
    import onnxruntime as ort

    key, d = exports[resolution]
    inp = read_card(d)["input"]
    x, y = test_images
    assert inp["order"] == ["normalise", "resize"]
    m = torch.tensor(inp["mean"]).view(1, -1, 1, 1)
    s = torch.tensor(inp["std"]).view(1, -1, 1, 1)
    z = (x.float() / inp["max_pixel_value"] - m) / s
    r = inp["resolution"]
    z = F.interpolate(z, size=(r, r), **inp["interpolate"]) if inp["native_resolution"] != r else z
    assert torch.equal(z, subnet_input(x, inp["mean"], inp["std"], r)), "the card describes another pipeline"
    session = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"images": z.contiguous().numpy()})
    assert np.array_equal(logits.argmax(1) == y.numpy(), study_marks[key])
    torch.testing.assert_close(torch.from_numpy(logits), study_logits[key], rtol=0, atol=1e-4)


def _antialiased(x, mean, std, r):
    return F.interpolate(normalise(x, mean, std), size=(r, r), mode="bilinear", align_corners=False, antialias=True)


def _resized_image_first(x, mean, std, r):
    """Resize the 0-255 image, round it back to uint8 (what an image library hands over), then normalise."""
    shrunk = F.interpolate(x.float(), size=(r, r), mode="bilinear", align_corners=False).round().clamp(0, 255).to(torch.uint8)
    return normalise(shrunk, mean, std)


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("wrong", [_antialiased, _resized_image_first], ids=["antialias", "resize-first"])
def test_another_pipeline_gives_other_numbers(exports, test_images, study_logits, resolution, wrong):
    """The equality above is no accident: an antialiased resize, or resizing the image before normalising, feeds
    the same model other numbers; its logits leave the study's by far more than the 1e-4 allowed above. (A
    one-epoch model predicts nearly one class, so its count rarely moves; a trained one's does.)"""
    key, d = exports[resolution]
    inp = read_card(d)["input"]
    x, _ = test_images
    with torch.no_grad():
        other = _program(d)(wrong(x, inp["mean"], inp["std"], resolution))
    assert (other - study_logits[key]).abs().max() > 1e-2


def test_cards_record_the_pipeline_and_old_cards_still_read(exports, tmp_path):
    _, d = exports[RESOLUTIONS[0]]
    card = read_card(d)
    inp = card["input"]
    assert set(PIPELINE_KEYS) <= set(inp)
    assert inp["interpolate"] == interpolate_arguments() == {"mode": "bilinear", "align_corners": False, "antialias": False}
    assert inp["max_pixel_value"] == 255 and inp["order"] == ["normalise", "resize"]
    assert "bilinear" in inp["resize"] and "align_corners=False" in inp["resize"] and "no antialiasing" in inp["resize"]
    assert input_pipeline(card) == inp
    old = {**card, "input": {k: v for k, v in inp.items() if k not in (*PIPELINE_KEYS, "resize")}}
    got = input_pipeline(old)
    assert got["interpolate"] == inp["interpolate"] and got["order"] == inp["order"] and got["native_resolution"] is None
    assert got["max_pixel_value"] == 255 and got["mean"] == inp["mean"]
    shutil.copytree(d, tmp_path / "old")
    (tmp_path / "old" / "card.json").write_text(json.dumps(old))
    assert read_card(tmp_path / "old") == old and isinstance(load_subnet(tmp_path / "old"), torch.nn.Module)
