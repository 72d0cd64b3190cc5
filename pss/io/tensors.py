"""Tensor files: saved atomically, loaded with ``weights_only=True`` (nothing from a user file is unpickled)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from ..errors import PssError, one_line
from .files import atomic_write_bytes


def save_tensors(obj: Any, path: Path) -> None:
    """Serialise in memory, then write atomically: a full disk is then a plain OSError (one line from the CLI),
    never an error from inside torch's archive writer, and nothing half-written stays."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_tensors(path: Path, what: str) -> Any:
    """torch.load with weights_only=True; a missing, empty or damaged file is a one-line PssError."""
    try:
        if Path(path).stat().st_size == 0:
            raise PssError(f"{what} {path} is empty (0 bytes): a crash or a full disk cut it short; "
                           "delete it and resume from a copy, or train again")
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PssError(f"{what} {path} is missing") from None
    except PssError:
        raise
    except Exception as exc:  # corrupt archive, or a pickle that weights_only refuses
        raise PssError(f"cannot read {what} {path}: {one_line(exc)}") from None

