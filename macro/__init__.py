"""Numba finite-volume hydrocode for 1D/2D (reactive, multi-material) compressible flow.

The public names below are imported on first use (PEP 562), so that a light submodule such as
:mod:`macro.cellstore` (imported by the closure's serving path) does not pull in the solver and
its Numba kernels; ``import macro; macro.Simulation`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

#: public name -> submodule that defines it (a submodule itself where the two are equal)
_LAZY = {
    "eos": "eos",
    "shock_tube": "api",
    "ShockTubeResult": "api",
    "exact_riemann": "exact",
    "RiemannSolution": "exact",
    "Solver": "solver",
    "Simulation": "simulation",
    "Result": "simulation",
    "NonPhysicalStateError": "solver",
}

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time the names are lazy
    from . import eos
    from .api import ShockTubeResult, shock_tube
    from .exact import RiemannSolution, exact_riemann
    from .simulation import Result, Simulation
    from .solver import NonPhysicalStateError, Solver


def __getattr__(name: str) -> Any:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module 'macro' has no attribute {name!r}")
    mod = importlib.import_module(f"{__name__}.{sub}")
    value = mod if sub == name else getattr(mod, name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
