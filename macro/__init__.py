"""Numba finite-volume hydrocode for 1D/2D (reactive, multi-material) compressible flow."""

from . import eos
from .api import ShockTubeResult, shock_tube
from .exact import RiemannSolution, exact_riemann
from .simulation import Result, Simulation
from .solver import NonPhysicalStateError, Solver

__all__ = [
    "eos",
    "shock_tube",
    "ShockTubeResult",
    "exact_riemann",
    "RiemannSolution",
    "Solver",
    "Simulation",
    "Result",
    "NonPhysicalStateError",
]
