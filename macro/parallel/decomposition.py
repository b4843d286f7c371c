"""How a distributed run cuts its grid: blocks on a Cartesian grid of solver ranks, each with
an overlap of ``width`` cells on every internal side (the cells a rank computes redundantly so
that one exchange per step keeps its owned cells exact)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "Decomposition"]


def _split(n: int, p: int, k: int) -> tuple[int, int]:
    base, extra = divmod(n, p)
    start = k * base + min(k, extra)
    return start, start + base + (1 if k < extra else 0)


@dataclass(frozen=True)
class Block:
    """One solver rank's cells: owned global ranges and overlap widths on each side."""

    rank: int
    cy: int
    cx: int
    j0: int
    j1: int
    i0: int
    i1: int
    ylo: int
    yhi: int
    xlo: int
    xhi: int

    def local_indices(self, ny: int, nx: int, is2d: bool) -> tuple[np.ndarray, np.ndarray]:
        """Global row and column indices of the local interior (owned + overlap, wrapped)."""
        jj = np.arange(self.j0 - self.ylo, self.j1 + self.yhi) % ny if is2d else np.zeros(1, int)
        ii = np.arange(self.i0 - self.xlo, self.i1 + self.xhi) % nx
        return jj, ii


class Decomposition:
    """Blocks of an (ny, nx) grid over ``nranks`` solver ranks, row-major rank order (y slowest).

    1D grids (ny == 1) are cut into x slabs; 2D grids into py x px blocks with the larger factor
    along the longer axis. ``width`` is the overlap on internal sides; every cut axis needs
    blocks of at least ``width`` cells.
    """

    def __init__(self, nx: int, ny: int, nranks: int, periodic: tuple[bool, bool], width: int,
                 dims: tuple[int, int] | None = None):
        if nranks < 1:
            raise ValueError(f"nranks={nranks} must be >= 1")
        self.nx, self.ny, self.nranks, self.width = nx, ny, nranks, width
        self.is2d = ny > 1
        if dims is None:
            dims = self.default_dims(nx, ny, nranks)
        py, px = dims
        if py * px != nranks or (not self.is2d and py != 1):
            raise ValueError(f"dims={dims} do not fit {nranks} ranks on a {ny} x {nx} grid")
        self.dims = (py, px)
        for n, p, axis in ((nx, px, "x"), (ny, py, "y")):
            if p > 1 and n // p < width:
                raise ValueError(
                    f"grid n{axis}={n} is too small for {p} ranks along {axis}: blocks need at "
                    f"least {width} cells (the overlap width); use fewer solver ranks")
        # an axis cut in one piece keeps its own periodic boundary; cut ones exchange across it
        self.periods = (bool(periodic[1]) and py > 1, bool(periodic[0]) and px > 1)
        self.blocks = []
        for r in range(nranks):
            cy, cx = divmod(r, px)
            j0, j1 = _split(ny, py, cy)
            i0, i1 = _split(nx, px, cx)
            w = width
            xlo = w if (cx > 0 or self.periods[1]) else 0
            xhi = w if (cx < px - 1 or self.periods[1]) else 0
            ylo = w if (cy > 0 or self.periods[0]) else 0
            yhi = w if (cy < py - 1 or self.periods[0]) else 0
            self.blocks.append(Block(r, cy, cx, j0, j1, i0, i1, ylo, yhi, xlo, xhi))

    @staticmethod
    def default_dims(nx: int, ny: int, nranks: int) -> tuple[int, int]:
        if ny == 1:
            return 1, nranks
        best = None
        for py in range(1, nranks + 1):
            if nranks % py:
                continue
            px = nranks // py
            halo = px * ny + py * nx  # cut length: exchanged cells scale with it
            # ties go to more y cuts: rows stay long (the kernels sweep rows) and contiguous
            if best is None or halo <= best[0]:
                best = (halo, py, px)
        return best[1], best[2]

    def neighbours(self, rank: int) -> dict[str, int]:
        """Ranks across each internal side (-1 where the side is a physical boundary)."""
        b = self.blocks[rank]
        py, px = self.dims
        out = {}
        for side, cut, d, axis in (("x_low", b.xlo, -1, 1), ("x_high", b.xhi, 1, 1),
                                   ("y_low", b.ylo, -1, 0), ("y_high", b.yhi, 1, 0)):
            if not cut:
                out[side] = -1
                continue
            cy, cx = b.cy, b.cx
            if axis == 1:
                cx = (cx + d) % px
            else:
                cy = (cy + d) % py
            out[side] = cy * px + cx
        return out
