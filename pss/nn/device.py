"""Where tensors run: the ``device`` key of a config or command."""

from __future__ import annotations

import torch

from ..errors import PssError


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PssError(f"device {name!r} requested but CUDA is not available here; use --set device=cpu or device=auto")
    return torch.device(name)
