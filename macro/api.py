"""Convenience entry points for common verification problems."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .eos import EOS, IdealGas
from .grid import GridSpec
from .models import EulerModel, FiveEquationModel
from .solver import Solver

_AIR = IdealGas(1.4)
ALPHA_FLOOR = 1e-6  # volume fraction of the absent material in a "pure" cell


@dataclass(frozen=True)
class ShockTubeResult:
    """Cell-centred solution of a 1D Riemann problem (SI units)."""

    x: np.ndarray
    rho: np.ndarray
    u: np.ndarray
    p: np.ndarray
    T: np.ndarray
    t: float
    steps: int
    alpha1: np.ndarray | None = None


def shock_tube(left, right, *, n_cells: int, t_end: float, x0: float = 0.5,
               length: float = 1.0, eos: EOS = _AIR, eos_right: EOS | None = None,
               cfl: float = 0.8, order: int = 2, limiter: str = "mc", riemann: str = "hllc",
               bc: str = "transmissive", kapila: bool = False) -> ShockTubeResult:
    """Solve a 1D Riemann problem with (rho, u, p) states ``left`` | ``right`` at ``x0``.

    With ``eos_right`` given (and different from ``eos``) the two materials are tracked with the
    five-equation diffuse-interface model (Kapila's K div u term with ``kapila=True``);
    otherwise the single-fluid Euler equations are used.
    """
    if not (isinstance(n_cells, int | np.integer) and n_cells >= 4):
        raise ValueError(f"n_cells={n_cells!r} must be an integer >= 4")
    if not (0.0 < x0 < length):
        raise ValueError(f"x0={x0!r} must lie inside (0, length={length!r})")
    for name, st in (("left", left), ("right", right)):
        if len(st) != 3 or not all(np.isfinite(v) for v in st):
            raise ValueError(f"{name}={st!r} must be a finite (rho, u, p) triple")
    grid = GridSpec(nx=int(n_cells), ny=1, dx=length / n_cells, dy=1.0)
    x = (np.arange(n_cells) + 0.5) * grid.dx
    is_left = (x < x0)[None, :]
    pick = lambda k: np.where(is_left, left[k], right[k])  # noqa: E731
    two_material = eos_right is not None and eos_right != eos
    if two_material:
        model = FiveEquationModel(eos, eos_right, kapila=kapila)
        a1 = np.where(is_left, 1.0 - ALPHA_FLOOR, ALPHA_FLOOR)
        prim = {"rho1": np.full_like(a1, left[0]), "rho2": np.full_like(a1, right[0]),
                "alpha1": a1, "u": pick(1), "p": pick(2)}
    else:
        model = EulerModel(eos)
        prim = {"rho": pick(0), "u": pick(1), "p": pick(2)}
    solver = Solver(model, grid, model.conserved(prim), bc={"x_low": bc, "x_high": bc},
                    cfl=cfl, order=order, limiter=limiter, riemann=riemann)
    solver.advance(t_end)
    f = solver.fields()
    return ShockTubeResult(x=x, rho=f["rho"], u=f["u"], p=f["p"], T=f["T"], t=solver.t,
                           steps=solver.step, alpha1=f.get("alpha1"))
