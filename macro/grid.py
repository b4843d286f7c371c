"""The uniform Cartesian grid every run, output file and checkpoint is defined on."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GridSpec"]


@dataclass(frozen=True)
class GridSpec:
    """Uniform Cartesian grid with cell-centred data; ``ny == 1`` means a 1D run.

    ``x0``/``y0`` are the lower-left domain corner (a cell *edge*), which is what XDMF's
    CoRectMesh origin means; cell centres sit half a cell inside.
    """

    nx: int
    ny: int
    dx: float
    dy: float
    x0: float = 0.0
    y0: float = 0.0

    def __post_init__(self) -> None:
        for name in ("nx", "ny"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise ValueError(f"GridSpec.{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("dx", "dy", "x0", "y0"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"GridSpec.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, value)
        if self.dx <= 0.0:
            raise ValueError(f"GridSpec.dx must be > 0, got {self.dx!r}")
        # A 1D run has no meaningful dy; allow 0 there (the XDMF slab then uses dx).
        if self.dy < 0.0 or (self.dy == 0.0 and self.ny > 1):
            raise ValueError(f"GridSpec.dy must be > 0 for ny > 1, got {self.dy!r}")

    @property
    def ndim(self) -> int:
        """1 for a single row of cells, else 2."""
        return 1 if self.ny == 1 else 2

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape of one field: ``(nx,)`` in 1D, ``(ny, nx)`` in 2D (C order, x fastest)."""
        return (self.nx,) if self.ndim == 1 else (self.ny, self.nx)

    def cell_centers(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre coordinates ``x`` (nx,) and ``y`` (ny,)."""
        x = self.x0 + (np.arange(self.nx, dtype=np.float64) + 0.5) * self.dx
        y = self.y0 + (np.arange(self.ny, dtype=np.float64) + 0.5) * self.dy
        return x, y

    def attrs(self) -> dict[str, int | float]:
        """The grid as flat HDF5 attributes (also what ``write_xdmf`` reads back)."""
        return {
            "nx": self.nx,
            "ny": self.ny,
            "dx": self.dx,
            "dy": self.dy,
            "x0": self.x0,
            "y0": self.y0,
            "ndim": self.ndim,
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> GridSpec:
        """Rebuild a grid from attributes written by :meth:`attrs`."""
        return cls(
            nx=int(attrs["nx"]),
            ny=int(attrs["ny"]),
            dx=float(attrs["dx"]),
            dy=float(attrs["dy"]),
            x0=float(attrs["x0"]),
            y0=float(attrs["y0"]),
        )
