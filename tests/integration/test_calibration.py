"""BN calibration (Alg. 1 lines 11-17): exact averaging, on a copy, and it helps."""

from __future__ import annotations

import copy

import pytest
import torch

from pss.config import DataConfig, TrainConfig
from pss.data import load_data
from pss.evaluate.calibration import BNCalibrator, bn_channels, evaluate_accuracy
from pss.problem.space import Structure
from pss.training.trainer import Trainer
from pss.workflows.train import fit

pytestmark = pytest.mark.slow  # the module fixture trains a supernet for 2 epochs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real (tiny) PSS run on generated data: 2 epochs of MobileNetV1 x0.25."""
    cfg = TrainConfig.from_mapping(
        dict(
            model="mobilenet_v1", width_mult=0.25, dataset="synthetic", epochs=2, batch_size=64, lr=0.1,
            budget_count=3, pool_size=4, structure_set_size=5000, eval_calib_images=0, progress=False,
            lower_bound=0.5, warmup_epochs=0.1,
        )
    )
    data = load_data(DataConfig(dataset="synthetic", val_fraction=0.2))
    trainer = Trainer.build(cfg, data)
    fit(trainer, tmp_path_factory.mktemp("run"))
    return trainer, data


def _batches(data, n, seed=0):
    return list(data.calibration_batches(n, 64, torch.Generator().manual_seed(seed), "cpu"))


def test_calibration_never_touches_the_supernet(trained):
    trainer, data = trained
    before = copy.deepcopy(trainer.model.state_dict())
    cal = BNCalibrator(trainer.model)
    cal.calibrate(trainer.min_structure, _batches(data, 256))
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_calibration_is_an_exact_average(trained):
    trainer, data = trained
    s = trainer.min_structure
    batches = _batches(data, 256)
    stats = BNCalibrator(trainer.model).calibrate(s, batches)
    # The stem BN sees conv(x) directly: its mean must be the mean over all images and pixels.
    model = trainer.model
    stem = model.blocks[0].body[0]
    with torch.no_grad():
        feats = torch.cat([stem.conv(model_resize(x, s), s.widths[0]) for x, _ in batches])
    expected_mean = feats.mean(dim=(0, 2, 3))
    torch.testing.assert_close(stats["blocks.0.body.0.bn.running_mean"], expected_mean, atol=1e-5, rtol=1e-4)
    assert stats["blocks.0.body.0.bn.running_mean"].shape[0] == s.widths[0]
    channels = bn_channels(model.spec, s)
    assert all(stats[f"{k}.running_var"].shape[0] == c for k, c in channels.items())


def model_resize(x, s: Structure):
    from pss.nn.supernet import resize_batch

    return resize_batch(x, s.resolution)


def test_recalibration_beats_stale_running_stats_for_non_max_subnets(trained):
    trainer, data = trained
    val = list(data.val_batches(256, "cpu"))
    cal = BNCalibrator(trainer.model)
    gains = []
    subnets = [trainer.min_structure] + [p.entries[0].structure for p in trainer.pools]
    for s in subnets:
        stale = evaluate_accuracy(trainer.model, s, val)
        cal.calibrate(s, _batches(data, 512))
        fresh = cal.accuracy(s, val)
        gains.append(fresh - stale)
    assert max(gains) > 0.02, gains
    assert sum(gains) / len(gains) > 0, gains
