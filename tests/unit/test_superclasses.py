"""Superclasses (EAS Sec. 3): the map, the built-ins, superclass files, the config keys, the dropout mask
(Eq. 1-2) and per-superclass accuracy on hand-made logits.

Each test names the wrong change it would catch.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import helpers
from pss.config import SUPERCLASS_DATASETS, TrainConfig, load_config
from pss.errors import PssError
from pss.evaluate.superclass import restricted_correct
from pss.problem.superclasses import (
    BUILTIN_SUPERCLASSES, CIFAR10_CLASS_NAMES, CIFAR100_CLASS_NAMES, FASHION_MNIST_CLASS_NAMES, SuperclassMap,
    builtin_superclasses, resolve_superclasses,
)
from pss.training.superclass_dropout import MASKED_LOGIT, masked_logits, superclass_dropout_mask

#: CIFAR-100's coarse label of each fine label 0..99 (the dataset's own ``coarse_labels`` per fine class,
#: as widely republished), an independent statement of the official map.
CIFAR100_COARSE_OF_FINE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15, 3, 15,
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13, 16, 19, 2, 4, 6, 19, 5, 5, 8, 19,
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]


# ---------------------------------------------------------------------- the map
def test_a_map_answers_by_name_or_index():
    """Catches: index() case-sensitive, classes_of unsorted or of the wrong superclass, counts swapped."""
    m = SuperclassMap("toy", ("Vehicles", "animals"), (1, 0, 1, 0, 0))
    assert (m.num_superclasses, m.num_classes) == (2, 5)
    assert m.index("vehicles") == m.index("VEHICLES") == m.index(0) == m.index("0") == 0
    assert m.classes_of("animals") == (0, 2) and m.classes_of(0) == (1, 3, 4)
    assert SuperclassMap.from_json(json.loads(json.dumps(m.to_json()))) == m
    assert SuperclassMap("toy", ["Vehicles", "animals"], np.array([1, 0, 1, 0, 0])).class_superclass == m.class_superclass


def test_an_unknown_superclass_is_one_line_naming_the_known_ones():
    """Catches: a KeyError/IndexError instead of a PssError, or a message without the choices."""
    m = SuperclassMap("toy", ("vehicles", "animals"), (1, 0))
    for bad in ("plants", 2, -1, True):
        with pytest.raises(PssError, match="vehicles, animals") as err:
            m.index(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(PssError, match="did you mean 'animals'"):
        m.index("animal")


@pytest.mark.parametrize("names,assignment,match", [
    ((), (), "no superclasses"),
    (("a", "A"), (0, 1), "twice"),
    (("a", ""), (0, 1), "non-empty"),
    (("a", "b"), (0, 0), "'b' have no classes"),
    (("a", "b"), (0, 2), "class 1 has superclass 2"),
    (("a", "b"), (0, -1), "class 1 has superclass -1"),
    (("a",), (), "assigns no classes"),
])
def test_map_validation(names, assignment, match):
    """Catches: a map with an empty or unknown superclass, or two superclasses one name, accepted."""
    with pytest.raises(PssError, match=match) as err:
        SuperclassMap("bad", names, assignment)
    assert "\n" not in str(err.value)


def test_from_json_refuses_another_document():
    with pytest.raises(PssError, match="class_superclass"):
        SuperclassMap.from_json({"vehicles": [0, 1]})


# ---------------------------------------------------------------------- built-ins
def test_cifar100_has_the_official_20_coarse_classes_of_5():
    """Catches: a fine class under the wrong coarse class, or the fine classes in another order than the data's."""
    m = builtin_superclasses("cifar100")
    assert list(CIFAR100_CLASS_NAMES) == sorted(CIFAR100_CLASS_NAMES) and len(set(CIFAR100_CLASS_NAMES)) == 100
    assert m.num_superclasses == 20 and m.num_classes == 100
    assert all(len(m.classes_of(s)) == 5 for s in range(20))
    assert list(m.class_superclass) == CIFAR100_COARSE_OF_FINE
    assert m.superclasses[0] == "aquatic_mammals" and m.superclasses[1] == "fish" and list(m.superclasses) == sorted(m.superclasses)
    assert [CIFAR100_CLASS_NAMES[c] for c in m.classes_of("people")] == ["baby", "boy", "girl", "man", "woman"]


def test_cifar10_and_fashion_mnist_groups():
    """Catches: class order differing from pss.data's labels (e.g. ship and truck as animals)."""
    from pss.data.memory import CIFAR10_CLASSES

    assert list(CIFAR10_CLASS_NAMES) == CIFAR10_CLASSES
    c10 = builtin_superclasses("cifar10")
    assert c10.superclasses == ("vehicles", "animals")
    assert [CIFAR10_CLASS_NAMES[c] for c in c10.classes_of("vehicles")] == ["airplane", "automobile", "ship", "truck"]
    assert c10.classes_of("animals") == (2, 3, 4, 5, 6, 7)
    fm = builtin_superclasses("fashion_mnist")  # the data layer's aliases
    assert builtin_superclasses("FashionMNIST") is fm
    assert fm.superclasses == ("tops", "bottoms_and_dresses", "footwear", "bags")
    named = {s: [FASHION_MNIST_CLASS_NAMES[c] for c in fm.classes_of(s)] for s in fm.superclasses}
    assert named == {"tops": ["T-shirt/top", "Pullover", "Coat", "Shirt"], "bottoms_and_dresses": ["Trouser", "Dress"],
                     "footwear": ["Sandal", "Sneaker", "Ankle boot"], "bags": ["Bag"]}


def test_fashion_mnist_names_are_torchvisions():
    torchvision = pytest.importorskip("torchvision")
    assert list(FASHION_MNIST_CLASS_NAMES) == list(torchvision.datasets.FashionMNIST.classes)


def test_the_builtin_datasets_are_the_configs():
    """Catches: a built-in map added without the config knowing (or the reverse)."""
    assert tuple(BUILTIN_SUPERCLASSES) == SUPERCLASS_DATASETS


def test_builtin_is_checked_against_the_datas_classes():
    """Catches: a built-in map silently applied to data whose labels mean other classes."""
    assert resolve_superclasses("builtin", "cifar10", CIFAR10_CLASS_NAMES) is builtin_superclasses("cifar10")
    # an npz of CIFAR-10's classes (the smoke preset's subset) takes CIFAR-10's map
    assert resolve_superclasses("builtin", "npz", list(CIFAR10_CLASS_NAMES)) is builtin_superclasses("cifar10")
    with pytest.raises(PssError, match="other than the built-in cifar10 map"):
        resolve_superclasses("builtin", "cifar10", [f"class {i}" for i in range(10)])
    for dataset in ("synthetic", "imagenet-subset", "npz"):
        with pytest.raises(PssError, match="no built-in superclass map.*superclasses=PATH") as err:
            resolve_superclasses("builtin", dataset, [f"class {i}" for i in range(10)])
        assert "\n" not in str(err.value)


# ---------------------------------------------------------------------- files
NAMES = ["cat", "dog", "car", "bus", "ship"]


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_a_file_maps_superclasses_by_class_name_or_index(tmp_path, suffix):
    """Catches: a file format not read, indices and names not both accepted, superclass order not the file's."""
    mapping = {"vehicles": ["car", 3, "Ship"], "animals": ["cat", "dog"]}
    path = tmp_path / f"groups{suffix}"
    path.write_text(json.dumps(mapping) if suffix == ".json" else yaml.safe_dump(mapping, sort_keys=False))
    m = resolve_superclasses(str(path), "imagenet-subset", NAMES)
    assert m.superclasses == ("vehicles", "animals") and m.class_superclass == (1, 1, 0, 0, 0)
    assert m.name == "groups"
    rel = resolve_superclasses(path.name, "npz", NAMES, base_dir=tmp_path)  # relative to base_dir
    assert rel == m


def test_a_file_of_indices_needs_no_class_names(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("a: [0, 2]\nb: [1]\n")
    assert resolve_superclasses(str(path), "synthetic").class_superclass == (0, 1, 0)


@pytest.mark.parametrize("text,match", [
    ("a: [cat, dog]\nb: [car, bus, dog]\n", "'dog' is named in both 'a' and 'b'"),
    ("a: [cat, cat, dog]\nb: [car, bus, ship]\n", "'cat' is named twice in 'a'"),
    ("a: [cat, dog]\nb: [car, bus]\n", "leaves class\\(es\\) 'ship' in no superclass"),
    ("a: [cat, dgo]\nb: [car, bus, ship]\n", "unknown class 'dgo' \\(did you mean 'dog'\\?\\)"),
    ("a: [cat, dog, 7]\nb: [car, bus, ship]\n", "class index 7, outside 0..4"),
    ("a: []\nb: [cat, dog, car, bus, ship]\n", "'a' must list its classes"),
    ("- cat\n- dog\n", "non-empty mapping"),
    ("a: [cat, dog\n", "cannot parse"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, match):
    """Catches: a class in two superclasses, a missing or unknown class, or a parse error, passing or crashing."""
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(PssError, match=match) as err:
        resolve_superclasses(str(path), "npz", NAMES)
    assert "\n" not in str(err.value)


def test_a_missing_or_foreign_file(tmp_path):
    with pytest.raises(PssError, match="does not exist"):
        resolve_superclasses(str(tmp_path / "nope.yaml"), "npz", NAMES)
    with pytest.raises(PssError, match=".json, .yaml or .yml"):
        resolve_superclasses(str(tmp_path / "nope.txt"), "npz", NAMES)


# ---------------------------------------------------------------------- config
def test_config_keys_default_to_plain_training():
    """Catches: a default that turns superclass dropout on, or keys missing from run.json's config."""
    cfg = TrainConfig()
    assert cfg.superclasses is None and cfg.superclass_dropout == 0.0
    assert {"superclasses", "superclass_dropout"} <= set(cfg.to_json())
    stored = {k: v for k, v in cfg.to_json().items() if k not in ("superclasses", "superclass_dropout")}
    old = TrainConfig.from_stored(stored)  # a run.json written before the keys existed
    assert old.superclasses is None and old.superclass_dropout == 0.0


def test_config_set_strings_and_round_trip():
    """Catches: --set values not coerced (the rate stays a string) or lost on the way through run.json."""
    cfg = load_config("smoke", {"superclass_dropout": "0.6", "superclasses": "builtin"})
    assert cfg.superclass_dropout == 0.6 and cfg.superclasses == "builtin"
    again = TrainConfig.from_stored(json.loads(json.dumps(cfg.to_json())))
    assert (again.superclasses, again.superclass_dropout) == ("builtin", 0.6)
    assert load_config("smoke", {"superclasses": "null"}).superclasses is None


@pytest.mark.parametrize("overrides,match", [
    ({"superclass_dropout": 0.6}, "needs superclasses: set superclasses=builtin"),
    ({"superclass_dropout": 1.5, "superclasses": "builtin"}, "superclass_dropout must be in \\[0, 1\\]"),
    ({"superclass_dropout": -0.1, "superclasses": "builtin"}, "superclass_dropout must be in \\[0, 1\\]"),
    ({"superclasses": "groups.txt"}, "'builtin' or the path of a .json/.yaml"),
    ({"superclasses": "builtin", "dataset": "synthetic"}, "dataset 'synthetic' has no built-in superclass map"),
    ({"superclasses": "builtin", "dataset": "imagenet-subset"}, "has no built-in superclass map"),
])
def test_config_errors_are_one_line(overrides, match):
    """Catches: dropout silently ignored without a map, a rate outside [0, 1], or a dataset that can never have a built-in map."""
    with pytest.raises(PssError, match=match) as err:
        TrainConfig.from_mapping(overrides)
    assert "\n" not in str(err.value) and str(err.value).startswith("bad config:")


def test_config_accepts_a_file_or_builtin_and_rate_one():
    cfg = TrainConfig.from_mapping({"superclasses": "maps/groups.yaml", "superclass_dropout": 1.0, "dataset": "npz"})
    assert cfg.superclass_dropout == 1.0
    TrainConfig.from_mapping({"superclasses": "Builtin", "dataset": "fashion_mnist"})


def test_the_superclass_module_is_torch_free(child_env):
    code = "import sys, pss.problem.superclasses; assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], cwd=helpers.REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ---------------------------------------------------------------------- the mask (EAS Eq. 1-2)
GROUPS = builtin_superclasses("cifar100").class_superclass


def _targets(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 100, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("rate", [0.3, 0.6, 1.0])
def test_the_target_superclass_is_never_dropped(rate):
    """Catches: the target's superclass dropped like the others (the loss would then be over no true class)."""
    y = _targets(512)
    keep = superclass_dropout_mask(y, GROUPS, rate, torch.Generator().manual_seed(1))
    assert keep.shape == (512, 100) and keep.dtype == torch.bool
    groups = torch.tensor(GROUPS)
    own = groups.view(1, -1) == groups[y].view(-1, 1)  # (batch, classes): the class is in the target's superclass
    assert keep[own].all()
    assert keep[torch.arange(512), y].all()
    if rate == 1.0:  # rate 1: the target's superclass only (EAS's "target superclass only" ablation)
        assert torch.equal(keep, own)


@pytest.mark.parametrize("rate", [0.3, 0.6])
def test_each_non_target_superclass_is_dropped_at_the_rate_as_a_whole(rate):
    """Catches: the rate inverted (keep with probability rate), classes dropped one by one instead of by
    superclass, or one draw for the whole batch instead of one per sample."""
    n = 2000
    y = _targets(n, seed=3)
    keep = superclass_dropout_mask(y, GROUPS, rate, torch.Generator().manual_seed(2))
    groups = torch.tensor(GROUPS)
    per_superclass = torch.stack([keep[:, groups == s] for s in range(20)], dim=1)  # (n, 20, 5)
    assert (per_superclass.all(dim=2) | ~per_superclass.any(dim=2)).all()  # a superclass stays or goes whole
    kept = per_superclass[:, :, 0]
    non_target = torch.ones(n, 20, dtype=torch.bool)
    non_target[torch.arange(n), groups[y]] = False
    trials = int(non_target.sum())
    dropped = int((~kept & non_target).sum())
    sd = math.sqrt(trials * rate * (1 - rate))
    assert abs(dropped - rate * trials) < 5 * sd, (dropped / trials, rate)  # binomial: 5 sigma
    per_sample = (~kept & non_target).sum(dim=1).float()
    assert per_sample.std() > 0  # samples differ: a mask per sample


def test_rate_zero_keeps_everything_and_draws_nothing():
    """Catches: rate 0 consuming random numbers (training with rate 0 would then differ from plain training)."""
    gen = torch.Generator().manual_seed(5)
    state = gen.get_state()
    keep = superclass_dropout_mask(_targets(64), GROUPS, 0.0, gen)
    assert keep.all() and keep.shape == (64, 100)
    assert torch.equal(gen.get_state(), state)


def test_the_mask_depends_only_on_the_generator():
    """Catches: a draw from the global RNG (not reproducible from the trainer's state)."""
    y = _targets(64)
    a = superclass_dropout_mask(y, GROUPS, 0.5, torch.Generator().manual_seed(9))
    torch.manual_seed(123)
    b = superclass_dropout_mask(y, GROUPS, 0.5, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    assert not torch.equal(a, superclass_dropout_mask(y, GROUPS, 0.5, torch.Generator().manual_seed(10)))


def test_shards_take_their_rows_of_the_global_batch():
    """Catches: every rank drawing the same mask for its different images (distributed != one process)."""
    y = _targets(32)
    whole = superclass_dropout_mask(y, GROUPS, 0.5, torch.Generator().manual_seed(4))
    parts = [superclass_dropout_mask(y[r * 8:(r + 1) * 8], GROUPS, 0.5, torch.Generator().manual_seed(4), shard=(r, 4))
             for r in range(4)]
    assert torch.equal(torch.cat(parts), whole)


def test_masked_softmax_gives_dropped_classes_zero_probability():
    """Catches: masking by multiplying logits by 0 (a logit 0 still has probability), or -inf making the
    distillation loss NaN."""
    torch.manual_seed(0)
    logits = torch.randn(16, 100) * 5
    y = _targets(16)
    keep = superclass_dropout_mask(y, GROUPS, 0.6, torch.Generator().manual_seed(7))
    z = masked_logits(logits, keep)
    p = F.softmax(z, dim=1)
    assert torch.all(p[~keep] == 0)
    assert torch.allclose(p.sum(1), torch.ones(16))
    expected = torch.cat([F.softmax(logits[i][keep[i]], dim=0) for i in range(16)])  # softmax over the kept logits only
    assert torch.allclose(torch.cat([p[i][keep[i]] for i in range(16)]), expected, atol=1e-6)
    assert torch.equal(z[keep], logits[keep]) and torch.all(z[~keep] == MASKED_LOGIT)
    # the loss over the kept logits: finite CE and KL, and no gradient into dropped logits
    leaf = logits.clone().requires_grad_(True)
    zz = masked_logits(leaf, keep)
    loss = F.cross_entropy(zz, y) + F.kl_div(F.log_softmax(zz, 1), F.softmax(z, 1), reduction="batchmean")
    assert math.isfinite(loss.item())
    loss.backward()
    assert torch.all(leaf.grad[~keep] == 0) and leaf.grad[keep].abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_masked_value_is_safe_in_half_precision(dtype):
    """Catches: a fill value that overflows to -inf (or NaN) in fp16/bf16."""
    logits = (torch.randn(4, 100) * 20).to(dtype)
    keep = superclass_dropout_mask(_targets(4), GROUPS, 0.9, torch.Generator().manual_seed(0))
    z = masked_logits(logits, keep)
    assert z.dtype == dtype and torch.isfinite(z).all()
    p = F.softmax(z.float(), dim=1)
    assert torch.all(p[~keep] == 0) and torch.isfinite(F.log_softmax(z.float(), 1)).all()


# ---------------------------------------------------------------------- per-superclass accuracy
def test_restricted_correct_on_hand_made_logits():
    """Catches: counting rows of other superclasses, or taking the argmax over all classes (a confident
    wrong class outside the superclass would then count as an error)."""
    classes = [1, 3]
    logits = torch.tensor([
        [9.0, 1.0, 0.0, 2.0],  # target 1: overall argmax 0 (outside), restricted argmax 3 -> wrong
        [9.0, 3.0, 0.0, 2.0],  # target 1: overall argmax 0 (outside), restricted argmax 1 -> correct
        [0.0, 1.0, 0.0, 2.0],  # target 3: restricted argmax 3 -> correct
        [5.0, 0.0, 9.0, 0.0],  # target 2: not in classes -> not counted
        [0.0, 0.0, 0.0, 0.0],  # target 0: not counted
    ])
    targets = torch.tensor([1, 1, 3, 2, 0])
    assert restricted_correct(logits, targets, classes) == (2, 3)
    assert restricted_correct(logits, targets, torch.tensor(classes)) == (2, 3)
    assert restricted_correct(logits, targets, [2]) == (1, 1)  # one class: its images are always right
    assert restricted_correct(logits, torch.tensor([2, 2, 2, 2, 2]), classes) == (0, 0)
    assert restricted_correct(logits, targets, []) == (0, 0)
