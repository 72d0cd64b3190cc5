"""Model families: each file declares a block spec and builder functions."""

from __future__ import annotations

from typing import Any, Callable

from ...errors import PssError
from ..spec import NetSpec
from .mobilenet_v1 import mobilenet_v1
from .mobilenet_v2 import mobilenet_v2
from .resnet import resnet20, resnet50, resnet56

MODELS: dict[str, Callable[..., NetSpec]] = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "resnet20": resnet20,
    "resnet56": resnet56,
    "resnet50": resnet50,
}
STEMS = ("cifar", "imagenet")


def build_spec(model: str, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, stem: str = "cifar", **_: Any) -> NetSpec:
    """The :class:`NetSpec` of a registered model (extra keys are ignored)."""
    if model not in MODELS:
        raise PssError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if stem not in STEMS:
        raise PssError(f"unknown stem {stem!r}; choose 'cifar' (32-px inputs) or 'imagenet' (224-px inputs)")
    if not 0 < width_mult <= 4:
        raise PssError(f"width_mult must be in (0, 4], got {width_mult}")
    return MODELS[model](num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, stem=stem)


__all__ = ["MODELS", "STEMS", "build_spec", "mobilenet_v1", "mobilenet_v2", "resnet20", "resnet56", "resnet50"]
