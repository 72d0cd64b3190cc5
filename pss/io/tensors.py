"""Tensor files: saved atomically, loaded with ``weights_only=True`` (nothing from a user file is unpickled)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..errors import PssError
from .files import atomic_write


def save_tensors(obj: Any, path: Path) -> None:
    atomic_write(path, lambda fh: torch.save(obj, fh))


def load_tensors(path: Path, what: str) -> Any:
    """torch.load with weights_only=True; a missing or damaged file is a one-line PssError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PssError(f"{what} {path} is missing") from None
    except Exception as exc:  # corrupt archive, or a pickle that weights_only refuses
        raise PssError(f"cannot read {what} {path}: {str(exc).splitlines()[0][:160]}") from None
