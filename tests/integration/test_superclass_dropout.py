"""Superclass dropout in the trainer (EAS Sec. 3.1) and per-superclass accuracy on real data.

* rate 0 trains bit for bit as a run without the keys, for every strategy; a rate above 0 changes training;
* the losses of a step are the masked ones (max CE, students' KL to the masked teacher, PSE-Net's chunks
  with their own samples' masks) while the recorded CE stays the plain one;
* a run with dropout resumes exactly (the mask's randomness is in the checkpoint);
* `pss train smoke --set superclass_dropout=0.6 --set superclasses=...` for every strategy records the keys
  in run.json;
* a split's images of one superclass, and accuracy among its classes.

Each test names the wrong change it would catch.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

import helpers
from pss.config import STRATEGIES, DataConfig, TrainConfig
from pss.data import load_data, subset_of_classes
from pss.errors import PssError
from pss.evaluate.superclass import count_restricted_correct, restricted_correct
from pss.io.run import open_run
from pss.nn.supernet import chunk_sizes
from pss.problem.superclasses import resolve_superclasses
from pss.training.schedules import distillation_loss
from pss.training.superclass_dropout import masked_logits, superclass_dropout_mask
from pss.training.trainer import Trainer
from pss.workflows.train import fit

N = 4  # num_subnets

#: three superclasses of the synthetic data's (and the CIFAR-10 npz's) ten classes, by index
GROUPS_YAML = "low: [0, 1, 2]\nmiddle: [3, 4, 5]\nhigh: [6, 7, 8, 9]\n"
GROUPS = (0, 0, 0, 1, 1, 1, 2, 2, 2, 2)


@pytest.fixture(scope="module")
def groups_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("superclasses") / "groups.yaml"
    path.write_text(GROUPS_YAML)
    return str(path)


@pytest.fixture(scope="module")
def data():
    return load_data(DataConfig(dataset="synthetic", train_limit=64, val_limit=32))


def _cfg(strategy: str, **kw) -> TrainConfig:
    base = dict(model="resnet20", width_mult=0.5, dataset="synthetic", epochs=1, batch_size=16, budget_count=3, pool_size=3,
                structure_set_size=2000, eval_calib_images=0, progress=False, train_limit=64, val_limit=32,
                strategy=strategy, num_subnets=N, channels_last=True, lower_bound=0.5, resolution_min=24)
    base.update(kw)
    return TrainConfig.from_mapping(base)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


# ---------------------------------------------------------------------- rate 0 is today's training
@pytest.mark.parametrize("name", STRATEGIES)
def test_rate_zero_trains_bit_identically_to_no_superclasses(data, groups_file, name):
    """Catches: rate 0 drawing random numbers, or masking, or computing the loss any other way than plain training."""
    plain = Trainer.build(_cfg(name), data)
    zero = Trainer.build(_cfg(name, superclasses=groups_file, superclass_dropout=0.0), data)
    assert zero.superclass_map is not None and zero.superclass_map.class_superclass == GROUPS
    a, b = plain.train_epoch(0), zero.train_epoch(0)
    wa, wb = _weights(plain), _weights(zero)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.losses == b.losses and a.samples.to_json() == b.samples.to_json()
    assert plain.rng.bit_generator.state == zero.rng.bit_generator.state


@pytest.mark.parametrize("name", ["pss", "pse"])
def test_a_positive_rate_changes_training(data, groups_file, name):
    """Catches: the trainer ignoring superclass_dropout (the key recorded but never applied)."""
    plain = Trainer.build(_cfg(name), data)
    dropped = Trainer.build(_cfg(name, superclasses=groups_file, superclass_dropout=0.6), data)
    plain.train_epoch(0), dropped.train_epoch(0)
    wa, wb = _weights(plain), _weights(dropped)
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)


# ---------------------------------------------------------------------- what a step optimises
def _predict(trainer: Trainer, y: torch.Tensor):
    """The step's plan and superclass mask, drawn from a copy of the trainer's RNG in the trainer's order."""
    rng = copy.deepcopy(trainer.rng)
    plan = trainer.strategy.plan(rng, 0.0)
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))
    return plan, superclass_dropout_mask(y, GROUPS, trainer.cfg.superclass_dropout, gen)


def test_serial_step_losses_are_over_the_kept_logits(data, groups_file):
    """Catches: the max CE or the students' KL over all logits, a teacher over other logits than the student's,
    a new mask per subnet, or the recorded CE (PSS-Net's m) computed from the masked logits."""
    trainer = Trainer.build(_cfg("mutual", superclasses=groups_file, superclass_dropout=0.6), data)
    x, y = next(iter(data.train_batches(16, torch.Generator().manual_seed(0), "cpu")))
    x = x.contiguous(memory_format=torch.channels_last)
    plan, keep = _predict(trainer, y)
    assert not keep.all()
    model = copy.deepcopy(trainer.model).train()
    with torch.no_grad():
        outs = [model(x, s.structure) for s in plan]  # BN batch statistics: the same forwards as the step's
    teacher = F.softmax(masked_logits(outs[0], keep), 1)
    expected_losses = [F.cross_entropy(masked_logits(outs[0], keep), y).item()]
    expected_losses += [distillation_loss(masked_logits(o, keep), teacher).item() for o in outs[1:]]
    expected_ce = [F.cross_entropy(o, y).item() for o in outs]
    r = trainer.train_step(x, y, 0.0)
    assert [s.structure for s in r.subnets] == [s.structure for s in plan]
    assert r.losses == pytest.approx(expected_losses, abs=1e-5)
    assert r.ce == pytest.approx(expected_ce, abs=1e-5)
    assert r.losses[0] < r.ce[0]  # fewer classes to beat: the masked CE is lower
    assert all(math.isfinite(v) for v in r.losses)


def test_pse_chunks_keep_their_own_samples_masks(data, groups_file):
    """Catches: a mask per chunk or per batch instead of per sample, or chunks given another chunk's mask rows."""
    trainer = Trainer.build(_cfg("pse", superclasses=groups_file, superclass_dropout=0.6), data)
    x, y = next(iter(data.train_batches(16, torch.Generator().manual_seed(5), "cpu")))
    plan, keep = _predict(trainer, y)
    model = copy.deepcopy(trainer.model).train()
    sizes = chunk_sizes(16, N)
    with torch.no_grad():
        outs = [model(xc, s.structure) for s, xc in zip(plan, x.split(sizes))]
    expected = [F.cross_entropy(masked_logits(o, k), yc).item() for o, k, yc in zip(outs, keep.split(sizes), y.split(sizes))]
    plain = [F.cross_entropy(o, yc).item() for o, yc in zip(outs, y.split(sizes))]
    r = trainer.train_step(x, y, 0.0)
    assert r.losses == pytest.approx(expected, abs=1e-5)
    assert r.ce == pytest.approx(plain, abs=1e-5)


def test_a_run_with_dropout_resumes_exactly(tmp_path, data, groups_file):
    """Catches: the masks drawn from a generator the checkpoint does not hold (a resumed run would drop other classes)."""
    cfg = dict(superclasses=groups_file, superclass_dropout=0.6)
    straight = Trainer.build(_cfg("pss", epochs=2, **cfg), data)
    fit(straight, tmp_path / "a")
    fit(Trainer.build(_cfg("pss", epochs=1, **cfg), data), tmp_path / "b")
    resumed = Trainer.build(_cfg("pss", epochs=2, **cfg), data)
    fit(resumed, tmp_path / "b", resume_run=True)
    wa, wb = _weights(straight), _weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_bad_map_fails_before_training(data, tmp_path):
    """Catches: a superclass file that does not fit the data found only mid-training (or never)."""
    path = tmp_path / "bad.yaml"
    path.write_text("a: [0, 1]\nb: [2, 3]\n")
    with pytest.raises(PssError, match="leaves class"):
        Trainer.build(_cfg("pss", superclasses=str(path), superclass_dropout=0.5), data)
    with pytest.raises(PssError, match="no built-in superclass map"):  # synthetic data (config allows npz's fallback)
        Trainer.build(_cfg("pss", dataset="npz", npz_path=str(tmp_path / "none.npz"), synthetic_fallback=True,
                           superclasses="builtin", superclass_dropout=0.5), data)


# ---------------------------------------------------------------------- real runs through the CLI
@pytest.mark.parametrize("name", STRATEGIES)
def test_cli_training_with_superclass_dropout_records_the_keys(small_run, groups_file, name):
    """Catches: a strategy whose step breaks with the mask, or the keys missing from run.json / not read back."""
    value = "builtin" if name == "pss" and helpers.NPZ_PATH.is_file() else groups_file  # the CIFAR-10 npz: its built-in map
    run = small_run(strategy=name, superclass_dropout=0.6, superclasses=value)
    doc = json.loads((run / "run.json").read_text())
    assert doc["config"]["superclass_dropout"] == 0.6 and doc["config"]["superclasses"] == value
    cfg = open_run(run).read_config()
    assert (cfg.superclass_dropout, cfg.superclasses) == (0.6, value)
    snap = json.loads((run / "snapshots" / "epoch_0001.json").read_text())
    assert math.isfinite(snap["losses"]["max"])
    assert all(math.isfinite(v) for v in snap["samples"]["loss"])


def test_cli_refuses_dropout_without_superclasses(capsys, tmp_path):
    code, out, err = helpers.run_cli(capsys, "train", "smoke", "--out", str(tmp_path / "run"), "--quiet",
                                     "--set", "superclass_dropout=0.6")
    assert code == 2 and "superclass_dropout=0.6 needs superclasses" in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- a superclass's images and accuracy
def test_a_splits_images_of_one_superclass(data):
    """Catches: positions into the wrong split, images of other classes let through, or some left out."""
    classes = [3, 4, 5]
    for split in ("train", "val"):
        labels = data.split_labels(split)
        idx = subset_of_classes(data, split, classes)
        assert idx.numel() == int(torch.isin(labels, torch.tensor(classes)).sum()) > 0
        got = torch.cat([yb for _, yb in data.subset_batches(split, idx, 7)])
        assert torch.equal(got, labels[idx]) and torch.isin(got, torch.tensor(classes)).all()
    val = list(data.val_batches(32))
    assert torch.equal(torch.cat([y for _, y in val]), data.split_labels("val"))  # the order the batches yield
    xs = torch.cat([x for x, _ in val])
    idx = subset_of_classes(data, "val", classes)
    assert torch.equal(torch.cat([x for x, _ in data.subset_batches("val", idx, 5)]), xs[idx])
    with pytest.raises(PssError, match="outside 0..9"):
        subset_of_classes(data, "val", [10])
    with pytest.raises(PssError, match="unknown split"):
        subset_of_classes(data, "validation", [0])


def test_superclass_accuracy_on_its_own_images_equals_it_on_the_whole_split(data):
    """Catches: the subset's batches and the restricted count disagreeing (one of them picks other images)."""
    trainer = Trainer.build(_cfg("pss"), data)
    s = trainer.max_structure
    classes = [6, 7, 8, 9]
    own = count_restricted_correct(trainer.model, s, data.subset_batches("val", subset_of_classes(data, "val", classes), 8), classes)
    whole = count_restricted_correct(trainer.model, s, data.val_batches(8), classes)
    assert own == whole and own[1] == int(torch.isin(data.split_labels("val"), torch.tensor(classes)).sum())
    trainer.model.eval()
    with torch.no_grad():
        x, y = next(iter(data.val_batches(32)))
        logits = trainer.model(x, s)
    assert restricted_correct(logits, y, list(range(10))) == ((logits.argmax(1) == y).sum().item(), 32)  # all classes: plain accuracy


def test_an_imagenet_subset_by_wnid_file_and_its_test_images(tmp_path):
    """Catches: folder data without split labels, or a superclass's test images read from another split or class."""
    from PIL import Image

    colours = {"n001": (255, 0, 0), "n002": (0, 255, 0), "n003": (0, 0, 255)}  # wnid -> its dominant channel
    for split, n in (("train", 4), ("val", 2)):
        for wnid, colour in colours.items():
            (tmp_path / "inet" / split / wnid).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (20, 20), colour).save(tmp_path / "inet" / split / wnid / f"img{i}.png")
    (tmp_path / "groups.json").write_text(json.dumps({"warm": ["n001"], "cool": ["n002", "n003"]}))
    d = load_data(DataConfig(dataset="imagenet-subset", imagenet_root=str(tmp_path / "inet"), imagenet_resolution=16, num_workers=0))
    smap = resolve_superclasses("groups.json", d.name, d.class_names, base_dir=tmp_path)
    assert smap.class_superclass == (0, 1, 1)
    idx = subset_of_classes(d, "test", smap.classes_of("cool"))
    assert torch.equal(idx, torch.tensor([2, 3, 4, 5]))  # val/ (the test split) in class order: n001 x2, n002 x2, n003 x2
    x, y = (torch.cat(t) for t in zip(*d.subset_batches("test", idx, 3)))
    assert y.tolist() == [1, 1, 2, 2] and x.mean(dim=(2, 3)).argmax(1).tolist() == [1, 1, 2, 2]
    assert torch.equal(d.split_labels("train").bincount(), torch.tensor([3, 3, 3]))  # one image a class held out to validate
