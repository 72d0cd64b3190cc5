"""Superclasses (EAS Sec. 3): every class of a dataset belongs to exactly one superclass.

EAS ("Rapid Elastic Architecture Search under Specialized Classes and Resource Constraints") groups
the classes into disjoint superclasses: a deployment cares about one superclass, its accuracy is the
accuracy among that superclass's classes on its own test images, and training drops the other
superclasses' logits (superclass dropout, Sec. 3.1; :mod:`pss.training.superclass_dropout`).

A :class:`SuperclassMap` says, for each class index ``0..K-1`` of the dataset (in the order the data
layer labels them), the index of its superclass. Maps are built in for CIFAR-100 (its 20 official
coarse classes), CIFAR-10 (vehicles / animals) and Fashion-MNIST (tops / bottoms and dresses /
footwear / bags); any other dataset (an ImageNet subset, an npz) takes a JSON or YAML file mapping
each superclass name to its classes, by name or index (:func:`resolve_superclasses`).

No torch here: the problem layer is torch-free.
"""

from __future__ import annotations

import difflib
import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..config import SUPERCLASS_DATASETS, canonical_dataset, is_builtin_superclasses
from ..errors import PssError, one_line


@dataclass(frozen=True)
class SuperclassMap:
    """Each class's superclass: ``class_superclass[c]`` is the index in ``superclasses`` of class ``c``'s superclass.

    Validated on construction (every class in exactly one valid superclass, no superclass empty, names
    unique ignoring case); a problem is a one-line :class:`PssError` naming the fix.
    """

    name: str
    superclasses: tuple[str, ...]
    class_superclass: tuple[int, ...]

    def __post_init__(self) -> None:
        where = f"superclass map {self.name!r}"
        for field in ("superclasses", "class_superclass"):  # numpy arrays (and their integers) read as lists of ints
            value = getattr(self, field)
            if hasattr(value, "tolist") and not isinstance(value, (str, tuple, list)):
                object.__setattr__(self, field, value.tolist())
        if isinstance(self.superclasses, str) or not isinstance(self.superclasses, Sequence):
            raise PssError(f"{where}: superclasses must be a list of names, got {type(self.superclasses).__name__}")
        if isinstance(self.class_superclass, str) or not isinstance(self.class_superclass, Sequence):
            raise PssError(f"{where}: class_superclass must be a list of superclass indices, got {type(self.class_superclass).__name__}")
        object.__setattr__(self, "superclasses", tuple(self.superclasses))
        object.__setattr__(self, "class_superclass", tuple(int(s) if isinstance(s, numbers.Integral) and not isinstance(s, bool) else s
                                                          for s in self.class_superclass))
        names = self.superclasses
        if not names:
            raise PssError(f"{where} has no superclasses; give at least one superclass with its classes")
        for n in names:
            if not isinstance(n, str) or not n.strip():
                raise PssError(f"{where}: superclass name {n!r} is not a non-empty string; name every superclass")
        seen: dict[str, str] = {}
        for n in names:
            if n.lower() in seen:
                raise PssError(f"{where} names superclass {n!r} twice (names are compared ignoring case: {seen[n.lower()]!r}); "
                               "give each superclass its own name")
            seen[n.lower()] = n
        if not self.class_superclass:
            raise PssError(f"{where} assigns no classes; give every class of the dataset a superclass")
        for c, s in enumerate(self.class_superclass):
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < len(names):
                raise PssError(f"{where}: class {c} has superclass {s!r}, not an index in 0..{len(names) - 1}; "
                               "give every class the index of one of the superclasses")
        used = set(self.class_superclass)
        empty = [n for i, n in enumerate(names) if i not in used]
        if empty:
            raise PssError(f"{where}: superclass(es) {', '.join(map(repr, empty))} have no classes; "
                           "give each superclass at least one class or remove it")

    # ------------------------------------------------------------------
    @property
    def num_superclasses(self) -> int:
        return len(self.superclasses)

    @property
    def num_classes(self) -> int:
        return len(self.class_superclass)

    def index(self, name_or_index: str | int) -> int:
        """The index of a superclass given by name (ignoring case) or by index (an int, or a string of digits)."""
        key = name_or_index
        if isinstance(key, bool):
            key = str(key)
        if isinstance(key, int):
            if 0 <= key < self.num_superclasses:
                return key
            raise PssError(f"superclass index {key} is out of range 0..{self.num_superclasses - 1}; "
                           f"choose among {self._known()}")
        text = str(key).strip()
        lowered = [n.lower() for n in self.superclasses]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        if text.isdigit() and int(text) < self.num_superclasses:
            return int(text)
        close = difflib.get_close_matches(text.lower(), lowered, n=1)
        hint = f" (did you mean {self.superclasses[lowered.index(close[0])]!r}?)" if close else ""
        raise PssError(f"unknown superclass {text!r}{hint} in {self.name!r}; choose among {self._known()}")

    def classes_of(self, name_or_index: str | int) -> tuple[int, ...]:
        """The class indices of one superclass, sorted."""
        s = self.index(name_or_index)
        return tuple(c for c, t in enumerate(self.class_superclass) if t == s)

    def _known(self) -> str:
        shown = ", ".join(self.superclasses[:30])
        return shown + (f" ... ({self.num_superclasses} in all)" if self.num_superclasses > 30 else "")

    # ------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "superclasses": list(self.superclasses), "class_superclass": list(self.class_superclass)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SuperclassMap":
        """The map :meth:`to_json` wrote (validated; one-line :class:`PssError` when it is not one)."""
        if not isinstance(data, Mapping) or not {"superclasses", "class_superclass"} <= set(data):
            raise PssError("a superclass map must be a mapping with superclasses and class_superclass "
                           "(as SuperclassMap.to_json writes it)")
        return cls(str(data.get("name", "superclasses")), data["superclasses"], data["class_superclass"])


# ---------------------------------------------------------------------- built-in maps
CIFAR10_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""CIFAR-10's classes in label order (as :mod:`pss.data` and torchvision label them)."""

FASHION_MNIST_CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                             "Ankle boot")
"""Fashion-MNIST's classes in label order (torchvision's ``FashionMNIST.classes``)."""

#: CIFAR-100's 20 official coarse classes (the dataset's ``coarse_label_names``, alphabetical as its indices)
#: with their 5 fine classes each.
_CIFAR100_COARSE: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

CIFAR100_CLASS_NAMES = tuple(sorted(n for fine in _CIFAR100_COARSE.values() for n in fine))
"""CIFAR-100's 100 fine classes in label order: alphabetical (the dataset's ``fine_label_names``, torchvision's ``classes``)."""

_CIFAR10_GROUPS = {"vehicles": ("airplane", "automobile", "ship", "truck"),
                   "animals": ("bird", "cat", "deer", "dog", "frog", "horse")}
_FASHION_GROUPS = {"tops": ("T-shirt/top", "Pullover", "Coat", "Shirt"),
                   "bottoms_and_dresses": ("Trouser", "Dress"),
                   "footwear": ("Sandal", "Sneaker", "Ankle boot"),
                   "bags": ("Bag",)}


def _from_groups(name: str, groups: Mapping[str, Sequence[str]], class_names: Sequence[str]) -> SuperclassMap:
    index = {c: i for i, c in enumerate(class_names)}
    assignment = [-1] * len(class_names)
    for s, members in enumerate(groups.values()):
        for c in members:
            assignment[index[c]] = s
    return SuperclassMap(name, tuple(groups), tuple(assignment))


BUILTIN_SUPERCLASSES: dict[str, tuple[tuple[str, ...], SuperclassMap]] = {
    "cifar10": (CIFAR10_CLASS_NAMES, _from_groups("cifar10-vehicles-animals", _CIFAR10_GROUPS, CIFAR10_CLASS_NAMES)),
    "cifar100": (CIFAR100_CLASS_NAMES, _from_groups("cifar100-coarse", _CIFAR100_COARSE, CIFAR100_CLASS_NAMES)),
    "fashion-mnist": (FASHION_MNIST_CLASS_NAMES, _from_groups("fashion-mnist-4", _FASHION_GROUPS, FASHION_MNIST_CLASS_NAMES)),
}
"""dataset -> (its class names in label order, its built-in map); the keys are :data:`pss.config.SUPERCLASS_DATASETS`."""


def builtin_superclasses(dataset: str, class_names: Sequence[str] | None = None) -> SuperclassMap:
    """The built-in map of ``dataset``; with ``class_names``, checked against the data's classes.

    A dataset without one of its own (an ``npz``) takes the built-in map whose class names equal
    ``class_names`` (the CIFAR-10 npz subset: CIFAR-10's map).
    """
    key = canonical_dataset(dataset)
    names = None if class_names is None else tuple(str(c) for c in class_names)
    if key in BUILTIN_SUPERCLASSES:
        expected, smap = BUILTIN_SUPERCLASSES[key]
        if names is not None and names != expected:
            raise PssError(f"the {dataset} data have classes ({_shown(names)}) other than the built-in {key} map's "
                           f"({_shown(expected)}); set superclasses=PATH of a JSON/YAML file mapping each superclass to its classes")
        return smap
    for expected, smap in BUILTIN_SUPERCLASSES.values():
        if names is not None and names == expected:
            return smap
    classes = f" (classes {_shown(names)})" if names is not None else ""
    raise PssError(f"dataset {dataset!r}{classes} has no built-in superclass map (built in for {', '.join(SUPERCLASS_DATASETS)}); "
                   "set superclasses=PATH of a JSON/YAML file mapping each superclass to its classes")


def _shown(names: Sequence[str], limit: int = 4) -> str:
    return ", ".join(names[:limit]) + (f" ... {len(names)} in all" if len(names) > limit else "")


# ---------------------------------------------------------------------- files
def resolve_superclasses(value: str, dataset: str, class_names: Sequence[str] | None = None,
                         base_dir: str | Path | None = None) -> SuperclassMap:
    """The superclass map a ``superclasses`` config value names, for the data's classes.

    ``value`` is ``builtin`` (the dataset's built-in map, :func:`builtin_superclasses`) or the path of
    a JSON or YAML file (relative to ``base_dir`` when given, else to the working directory) holding
    one mapping, superclass name -> list of its classes, each a class name (of ``class_names``) or a
    class index::

        vehicles: [airplane, automobile, ship, truck]
        animals: [2, 3, 4, 5, 6, 7]

    Every class of the data must appear exactly once. Without ``class_names`` only indices can be
    given, and the classes are 0..the largest index. Any problem is a one-line :class:`PssError`.
    """
    if value is None or not str(value).strip():
        raise PssError("superclasses is not set; set superclasses=builtin or superclasses=PATH of a JSON/YAML file")
    if is_builtin_superclasses(value):
        return builtin_superclasses(dataset, class_names)
    path = Path(str(value).strip()).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir).expanduser() / path
    if path.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise PssError(f"superclasses file {path} must be .json, .yaml or .yml (a mapping of each superclass to its classes)")
    if not path.is_file():
        raise PssError(f"superclasses file {path} does not exist; fix the path, or set superclasses=builtin for "
                       f"{', '.join(SUPERCLASS_DATASETS)}")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise PssError(f"cannot parse superclasses file {path}: {one_line(exc)}") from None
    return superclasses_from_mapping(data, class_names, path.stem, str(path))


def superclasses_from_mapping(data: Any, class_names: Sequence[str] | None = None, name: str = "superclasses",
                              source: str = "the superclass mapping") -> SuperclassMap:
    """A map from ``{superclass name: [class name or index, ...]}`` (what a superclasses file holds), checked against ``class_names``."""
    fix = "write one mapping: superclass name -> list of its class names or indices, each class exactly once"
    if not isinstance(data, Mapping) or not data:
        raise PssError(f"{source} must hold a non-empty mapping of superclass names to class lists; {fix}")
    names = None if class_names is None else [str(c) for c in class_names]
    by_name = {} if names is None else {c: i for i, c in enumerate(names)}
    by_lower: dict[str, list[int]] = {}
    for i, c in enumerate(names or []):
        by_lower.setdefault(c.lower(), []).append(i)
    owner: dict[int, str] = {}
    groups: list[tuple[str, list[int]]] = []
    for sname, members in data.items():
        sname = str(sname)
        if isinstance(members, (str, int)) and not isinstance(members, bool):
            members = [members]
        if not isinstance(members, list) or not members:
            raise PssError(f"{source}: superclass {sname!r} must list its classes (a non-empty list); {fix}")
        indices = []
        for m in members:
            c = _class_index(m, names, by_name, by_lower, sname, source)
            if c in owner:
                label = names[c] if names is not None else str(c)
                where = "twice in" if owner[c] == sname else f"in both {owner[c]!r} and"
                raise PssError(f"{source}: class {label!r} is named {where} {sname!r}; put every class in exactly one superclass")
            owner[c] = sname
            indices.append(c)
        groups.append((sname, indices))
    num_classes = len(names) if names is not None else max(owner) + 1
    missing = [c for c in range(num_classes) if c not in owner]
    if missing:
        shown = ", ".join(repr(names[c]) if names is not None else str(c) for c in missing[:8])
        more = f" ... ({len(missing)} in all)" if len(missing) > 8 else ""
        raise PssError(f"{source} leaves class(es) {shown}{more} in no superclass; every class of the data needs one")
    assignment = [0] * num_classes
    for s, (_, indices) in enumerate(groups):
        for c in indices:
            assignment[c] = s
    try:
        return SuperclassMap(name, tuple(g for g, _ in groups), tuple(assignment))
    except PssError as exc:
        raise PssError(f"{source}: {exc}") from None


def _class_index(member: Any, names: list[str] | None, by_name: dict[str, int], by_lower: dict[str, list[int]],
                 sname: str, source: str) -> int:
    """A class given by index or by name (exact, else ignoring case when that is unique)."""
    if isinstance(member, bool) or not isinstance(member, (int, str)):
        raise PssError(f"{source}: superclass {sname!r} lists {member!r}, neither a class name nor a class index")
    if isinstance(member, int):
        if member < 0 or (names is not None and member >= len(names)):
            top = f"0..{len(names) - 1}" if names is not None else "0 or more"
            raise PssError(f"{source}: superclass {sname!r} lists class index {member}, outside {top}; fix the index")
        return member
    if names is None:
        if member.strip().isdigit():
            return int(member.strip())
        raise PssError(f"{source}: superclass {sname!r} names class {member!r}, but the data's class names are not known here; "
                       "list classes by index")
    if member in by_name:
        return by_name[member]
    folded = by_lower.get(member.strip().lower(), [])
    if len(folded) == 1:
        return folded[0]
    close = difflib.get_close_matches(member, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise PssError(f"{source}: superclass {sname!r} names unknown class {member!r}{hint}; "
                   f"the data's classes are {_shown(names, 6)}")
