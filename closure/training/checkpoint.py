"""Training checkpoints, written atomically (:func:`closure.files.atomic_write_bytes`), so a crash
mid-write never destroys the last good checkpoint.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from closure.files import atomic_write_bytes

__all__ = ["atomic_write_bytes", "load_checkpoint", "save_checkpoint"]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` of ``state`` written atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (tensors, numbers, strings only)."""
    return torch.load(path, map_location="cpu", weights_only=True)
