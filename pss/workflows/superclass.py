"""What a superclass export needs besides the plain export (EAS, Elastic Architecture Search): which classes a
superclass keeps, and the top-1 accuracy of restricted models on the images of those classes only.

A model restricted to a superclass (``extract_subnet(..., classes=...)``) has one output per kept class, output
j being dataset class ``classes[j]``. Its accuracy is measured on the images whose label is one of those
classes, by argmax over its kept logits: the accuracy a deployer who only ever sees that superclass gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

from ..config import is_builtin_superclasses
from ..data import DataBundle, subset_of_classes
from ..errors import PssError
from ..evaluate.statistics import Accuracy
from ..inputs import resize
from ..problem.superclasses import SuperclassMap, resolve_superclasses
from .loaded import TrainedRun

#: What the card says about the restricted head's outputs.
OUTPUTS_RULE = "output j is dataset class classes[j] (class_names[j]); the other classes' outputs are removed"


@dataclass(frozen=True)
class SuperclassTarget:
    """One superclass of a run's map: the classes a restricted export keeps, in ascending order."""

    map: SuperclassMap
    index: int
    source: str
    """Where the map came from: ``builtin`` or the file, as given (the run's config or ``--superclasses``)."""
    dataset_class_names: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.map.superclasses[self.index]

    @property
    def classes(self) -> tuple[int, ...]:
        return tuple(int(c) for c in self.map.classes_of(self.index))

    @property
    def class_names(self) -> list[str]:
        return [self.dataset_class_names[c] for c in self.classes]

    def to_json(self) -> dict[str, Any]:
        """The card's ``superclass`` object, before the export adds its measurements."""
        return {"name": self.name, "index": self.index, "map": self.source, "classes": list(self.classes),
                "class_names": self.class_names, "outputs": OUTPUTS_RULE}


def superclass_target(trained: TrainedRun, name: str, superclasses: str | Path | None = None) -> SuperclassTarget:
    """The superclass ``name`` (ignoring case, or its index) of the run's superclass map, or of ``superclasses``.

    ``superclasses`` (``builtin`` or a map file, `pss export --superclasses`) overrides the run's config key
    ``superclasses``; a restricted classifier works on any supernet, superclass dropout in training only makes
    it better. A run trained without a map and no ``superclasses`` is a one-line error naming both ways out; an
    unknown name is one naming the superclasses the map has.
    """
    configured = getattr(trained.cfg, "superclasses", None)
    value = superclasses if superclasses is not None else configured
    if value is None or str(value).strip() == "":
        raise PssError(
            f"run {trained.path} was trained without a superclass map (config superclasses is null), so --superclass "
            f"has no classes to keep; pass --superclasses builtin (the dataset's own map) or --superclasses FILE, "
            f"or train with --set superclasses=builtin"
        )
    ds = trained.run_json["dataset"]
    names = tuple(ds["class_names"])
    text = str(value).strip()
    # A map file named in the run's config was relative to where training ran; when it is not there, next to the run.
    base_dir = None
    if superclasses is None and not is_builtin_superclasses(text) and not Path(text).expanduser().is_file():
        base_dir = trained.path
    smap = resolve_superclasses(text, str(ds.get("name") or trained.cfg.dataset), class_names=list(names), base_dir=base_dir)
    if smap.num_classes != len(names):
        raise PssError(f"the superclass map {text} covers {smap.num_classes} classes but the run has "
                       f"{len(names)}; use a map of this dataset's classes")
    return SuperclassTarget(smap, smap.index(name), text, names)


def class_batches(data: DataBundle, split: str, classes: Sequence[int], batch_size: int,
                  device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The images of ``split`` ("val" or "test") whose label is one of ``classes`` (data that cannot pick a subset:
    the whole split, which the callers filter), on ``device``."""
    try:
        return data.subset_batches(split, subset_of_classes(data, split, classes), batch_size, device)
    except NotImplementedError:
        return data.val_batches(batch_size, device) if split == "val" else data.test_batches(batch_size, device)


@torch.no_grad()
def superclass_accuracies(models: Sequence[tuple[nn.Module, int]], batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                          classes: Sequence[int]) -> list[Accuracy] | None:
    """Top-1 accuracy of each restricted model on the images of ``classes`` only; None when ``batches`` hold none.

    ``models`` are (model, input resolution) pairs whose output j is class ``classes[j]``
    (``extract_subnet(..., classes=classes)``), in eval mode; every batch is filtered once and fed to all of
    them (resized to each resolution as the supernet would). An image counts as correct when the argmax of the
    kept logits is its class: the other classes cannot be predicted.
    """
    classes = [int(c) for c in classes]
    correct = [0] * len(models)
    images = 0
    for x, y in batches:
        target = torch.full_like(y, -1)
        for j, c in enumerate(classes):
            target[y == c] = j
        keep = target >= 0
        n = int(keep.sum())
        if n == 0:
            continue
        x, target = x[keep], target[keep]
        images += n
        for i, (model, resolution) in enumerate(models):
            correct[i] += int((model(resize(x, resolution)).argmax(1) == target).sum())
    if images == 0:
        return None
    return [Accuracy(c, images) for c in correct]
