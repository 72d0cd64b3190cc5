"""Model families: each file declares a block spec and builder functions."""

from __future__ import annotations

from typing import Any, Callable

from ...config import WIDTH_RULES
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


#: Families that have a width rule besides ``free`` (the reference implementation's MobileNetV2 space).
RULED_MODELS = ("mobilenet_v2",)


def build_spec(model: str, num_classes: int, in_channels: int = 3, width_mult: float = 1.0, stem: str = "cifar",
               dropout: float | None = None, width_rule: str = "free", **_: Any) -> NetSpec:
    """The :class:`NetSpec` of a registered model (extra keys are ignored).

    ``dropout`` None keeps the family's classifier dropout; ``width_rule``
    ``official`` is the reference implementation's MobileNetV2 space. Both are
    part of ``NetSpec.to_json()`` when they differ from the defaults, so
    ``build_spec(**spec.to_json())`` rebuilds the same spec (an export's card).
    """
    if model not in MODELS:
        raise PssError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if stem not in STEMS:
        raise PssError(f"unknown stem {stem!r}; choose 'cifar' (32-px inputs) or 'imagenet' (224-px inputs)")
    if not 0 < width_mult <= 4:
        raise PssError(f"width_mult must be in (0, 4], got {width_mult}")
    if dropout is not None and not 0 <= dropout < 1:
        raise PssError(f"dropout must be in [0, 1) or null, got {dropout}")
    if width_rule not in WIDTH_RULES:
        raise PssError(f"unknown width_rule {width_rule!r}; choose one of {', '.join(WIDTH_RULES)}")
    options: dict[str, Any] = {"dropout": dropout}
    if width_rule != "free":
        if model not in RULED_MODELS:
            raise PssError(f"width_rule={width_rule} is MobileNetV2's reference space; model {model!r} takes width_rule=free")
        options["width_rule"] = width_rule
    return MODELS[model](num_classes=num_classes, in_channels=in_channels, width_mult=width_mult, stem=stem, **options)


__all__ = ["MODELS", "RULED_MODELS", "STEMS", "build_spec", "mobilenet_v1", "mobilenet_v2", "resnet20", "resnet50", "resnet56"]
