"""Physical models: which conserved variables, which EOS, which kernels.

A model turns named primitive fields into conserved arrays and back, and owns the calls into
its jitted kernel module (:mod:`macro.euler` or :mod:`macro.multi`): the step, the guard, the
CFL wave rate and the ghost fill. The solver and the decomposed run call these methods and never
ask which model they hold. Each model compiles (and caches) only its own kernels; the parallel
driver is only compiled by runs that use more than one work share.
"""

from __future__ import annotations

import numpy as np

from . import euler, multi, reaction
from .boundary import fill_ghosts
from .eos import EOS, pack_eos
from .transport import Transport, transport_step


class _Kernels:
    """What both models do the same way with their kernel module ``_mod``."""

    _mod = euler
    _nrho = 1  # partial densities summed for a wall's ghost momentum (fill_ghosts)

    def scratch(self, nthreads: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """Per-work-share scratch of the step kernel for ``nthreads`` Numba threads on an array
        of ``shape`` (fewer shares for small grids: one share runs the serial driver, which
        never compiles the parallel one; no shape: one share per thread)."""
        return self._mod.scratch(nthreads, shape)

    def fill_ghosts(self, U: np.ndarray, codes: np.ndarray, uwall: np.ndarray,
                    inflow: np.ndarray) -> None:
        """Ghost layers of ``U`` (ghosts included) from the boundary arrays, as a stage does."""
        m = self._mod
        fill_ghosts(U, codes, uwall, inflow, self._nrho, m.MX, m.MY, m.EN)

    def source_scratch(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """Scratch of :meth:`sources` for U of ``shape`` (None: it needs none)."""
        return None

    def sources(self, U, W, D, C, dt, dx, dy, codes, uwall, inflow, kind: int,
                rp: np.ndarray | None) -> int:
        """What follows the hydro step over ``dt``: the built-in reaction ``kind``
        (:data:`macro.reaction.NONE`: none). Returns the number of transport sub-steps (0)."""
        if kind != reaction.NONE:
            self.react(U, kind, rp, dt)
        return 0


class EulerModel(_Kernels):
    """Single-fluid Euler; reactive when ``products`` or ``Q`` is given (mixture on lambda)."""

    nv = euler.NV
    nw = euler.NW
    var_names = euler.VAR_NAMES
    guard_names = euler.GUARD_NAMES
    primitive_names = ("rho", "u", "v", "p", "lam")
    output_names = ("rho", "u", "v", "p", "T", "lam")

    def __init__(self, eos: EOS, products: EOS | None = None, Q: float = 0.0):
        if not np.isfinite(Q):
            raise ValueError(f"Q={Q!r} must be finite (J/kg)")
        self.eos = eos
        self.products = products
        self.Q = float(Q)
        self.reactive = products is not None or Q != 0.0
        self.eos_array = pack_eos(eos, products if products is not None else eos)

    def step(self, U, U0, W, dU, S, solver, lim, order, cfl, dt_max, dx, dy, codes, uwall,
             inflow, rowstat) -> tuple[int, int, int, float]:
        """One SSP-RK step of ``U`` in place (:func:`macro.euler.step`): (status, j, i, dt)."""
        drive = euler.step_parallel if S.shape[0] > 1 else euler.step
        return drive(U, U0, W, dU, S, self.eos_array, self.Q, self.reactive, solver, lim, order,
                     cfl, dt_max, dx, dy, codes, uwall, inflow, rowstat)

    def guard(self, U, W, dx, dy, rowstat) -> tuple[int, int, int, float]:
        """Guard pass over U (W filled): (status, j, i, max wave rate)."""
        return euler.primitives(U, W, self.eos_array, self.Q, self.reactive, dx, dy, rowstat)

    def wave_rate(self, U, W, S, dx, dy, codes, uwall, inflow, rowstat) -> float:
        """The step's first-stage CFL wave rate (:func:`macro.euler.wave_rate`)."""
        return float(euler.wave_rate(U, W, S, self.eos_array, self.Q, self.reactive, dx, dy,
                                     codes, uwall, inflow, rowstat))

    def conserved(self, prim: dict[str, np.ndarray]) -> np.ndarray:
        rho = _field(prim, "rho")
        shape = rho.shape
        get = _getter(prim, shape)
        U = np.empty((self.nv, *shape))
        euler.conserved_from_primitive(rho, get("u"), get("v"), get("p"), get("lam"),
                                       self.eos_array, self.Q, self.reactive, U)
        return U

    def diagnostics(self, U: np.ndarray) -> np.ndarray:
        out = np.empty((6, *U.shape[1:]))
        euler.diagnostics(U, self.eos_array, self.Q, self.reactive, out)
        return out

    def react(self, U: np.ndarray, kind: int, rp: np.ndarray, dt: float) -> None:
        reaction.react_euler(U, self.eos_array, self.Q, kind, rp, dt)

    lam_index = euler.RLAM
    mass_index = euler.RHO

    def density_of(self, U: np.ndarray) -> np.ndarray:
        return U[euler.RHO]

    def to_dict(self) -> dict:
        d = {"type": "euler", "eos": self.eos.to_dict(), "Q": self.Q}
        if self.products is not None:
            d["products"] = self.products.to_dict()
        return d


class FiveEquationModel(_Kernels):
    """Two materials, Allaire five-equation model (Kapila's K div u term with ``kapila=True``).

    Material 1 may react (heat of reaction ``Q`` released in material 1; give it as a
    :class:`macro.eos.ReactiveEOS` for a products EOS). ``transport`` adds heat conduction and
    viscosity (:mod:`macro.transport`), operator-split after each hydro step.
    """

    _mod = multi
    _nrho = 2
    nv = multi.NV
    nw = multi.NW
    var_names = multi.VAR_NAMES
    guard_names = multi.GUARD_NAMES
    primitive_names = ("rho1", "rho2", "alpha1", "u", "v", "p", "lam")
    output_names = ("rho", "u", "v", "p", "T", "alpha1", "lam")

    def __init__(self, eos1: EOS, eos2: EOS, Q: float = 0.0, kapila: bool = False,
                 transport: Transport | None = None):
        if not np.isfinite(Q):
            raise ValueError(f"Q={Q!r} must be finite (J/kg)")
        self.eos1, self.eos2 = eos1, eos2
        self.Q = float(Q)
        self.kapila = bool(kapila)
        self.reactive = Q != 0.0
        self.eos_array = pack_eos(eos1, eos2)
        self.transport = transport if transport is not None and transport.active else None
        self._tp = self.transport.pack() if self.transport is not None else np.zeros(6)

    def apply_transport(self, U, W, D, dt, dx, dy, codes, uwall, inflow) -> int:
        """Conduction and viscosity over ``dt`` (:func:`macro.transport.transport_step`; W and
        D scratch of U's shape): the number of sub-steps, 0 without transport."""
        return self.sources(U, W, D, self.source_scratch(U.shape), dt, dx, dy, codes, uwall,
                            inflow, reaction.NONE, None)

    def source_scratch(self, shape: tuple[int, ...]) -> np.ndarray:
        """The cells' EOS data that :meth:`sources` fills (:func:`macro.multi.cell_eos`)."""
        return np.empty((multi.NC, *shape[1:]))

    def sources(self, U, W, D, C, dt, dx, dy, codes, uwall, inflow, kind: int,
                rp: np.ndarray | None) -> int:
        """What follows the hydro step over ``dt``: conduction and viscosity, then the built-in
        reaction ``kind`` (:data:`macro.reaction.NONE`: none). Both read the EOS data of the
        cells' phase densities, which neither changes, from one pass into C
        (:meth:`source_scratch`, :func:`macro.multi.cell_eos`). W and D are scratch of U's
        shape. Returns the transport's number of sub-steps."""
        react = kind != reaction.NONE
        conduct = self.transport is not None and (self._tp[0] > 0.0 or self._tp[1] > 0.0)
        if not (react or self.transport is not None):
            return 0
        if conduct or react:
            fill_ghosts(U, codes, uwall, inflow, self._nrho, multi.MX, multi.MY, multi.EN)
            multi.cell_eos(U, self.eos_array, C)
        n = 0
        if self.transport is not None:
            n = int(transport_step(U, C, W, D, self.eos_array, self.Q, self._tp, dt, dx, dy,
                                   codes, uwall, inflow))
        if react:
            reaction.react_multi(U, C, self.eos_array, self.Q, kind, rp, dt)
        return n

    def step(self, U, U0, W, dU, S, solver, lim, order, cfl, dt_max, dx, dy, codes, uwall,
             inflow, rowstat) -> tuple[int, int, int, float]:
        """One SSP-RK step of ``U`` in place (:func:`macro.multi.step`): (status, j, i, dt)."""
        drive = multi.step_parallel if S.shape[0] > 1 else multi.step
        return drive(U, U0, W, dU, S, self.eos_array, self.Q, self.kapila, solver, lim, order,
                     cfl, dt_max, dx, dy, codes, uwall, inflow, rowstat)

    def guard(self, U, W, dx, dy, rowstat) -> tuple[int, int, int, float]:
        """Guard pass over U (W filled): (status, j, i, max wave rate)."""
        return multi.primitives(U, W, self.eos_array, self.Q, dx, dy, rowstat)

    def wave_rate(self, U, W, S, dx, dy, codes, uwall, inflow, rowstat) -> float:
        """The step's first-stage CFL wave rate (:func:`macro.multi.wave_rate`)."""
        return float(multi.wave_rate(U, W, S, self.eos_array, self.Q, dx, dy, codes, uwall,
                                     inflow, rowstat))

    def conserved(self, prim: dict[str, np.ndarray]) -> np.ndarray:
        a1 = _field(prim, "alpha1")
        shape = a1.shape
        if np.any(a1 <= 0.0) or np.any(a1 >= 1.0):
            bad = np.argwhere((a1 <= 0.0) | (a1 >= 1.0))[0]
            raise ValueError(f"alpha1 at index {tuple(bad)} = {a1[tuple(bad)]!r} must lie in "
                             "(0, 1): use a small positive floor such as 1e-6 for pure cells")
        get = _getter(prim, shape)
        U = np.empty((self.nv, *shape))
        multi.conserved_from_primitive(get("rho1"), get("rho2"), a1, get("u"), get("v"),
                                       get("p"), get("lam"), self.eos_array, self.Q, U)
        return U

    def diagnostics(self, U: np.ndarray) -> np.ndarray:
        out = np.empty((7, *U.shape[1:]))
        multi.diagnostics(U, self.eos_array, self.Q, out)
        return out

    def react(self, U: np.ndarray, kind: int, rp: np.ndarray, dt: float) -> None:
        C = self.source_scratch(U.shape)
        multi.cell_eos(U, self.eos_array, C)
        reaction.react_multi(U, C, self.eos_array, self.Q, kind, rp, dt)

    lam_index = multi.ARL
    mass_index = multi.AR1

    def density_of(self, U: np.ndarray) -> np.ndarray:
        return U[multi.AR1] + U[multi.AR2]

    def to_dict(self) -> dict:
        d = {"type": "five_equation", "eos1": self.eos1.to_dict(),
             "eos2": self.eos2.to_dict(), "Q": self.Q, "kapila": self.kapila}
        if self.transport is not None:
            d["transport"] = self.transport.to_dict()
        return d


def _field(prim: dict, name: str) -> np.ndarray:
    if name not in prim:
        raise ValueError(f"primitive field {name!r} is missing")
    a = np.ascontiguousarray(prim[name], dtype=float)
    if a.ndim != 2:
        raise ValueError(f"primitive field {name!r} must be 2D (ny, nx), got shape {a.shape}")
    return a


def _getter(prim: dict, shape):
    def get(name):
        a = np.ascontiguousarray(np.broadcast_to(prim.get(name, 0.0), shape), dtype=float)
        bad = ~np.isfinite(a)
        if bad.any():
            idx = tuple(np.argwhere(bad)[0])
            raise ValueError(f"primitive field {name!r} at index {idx} is {a[idx]!r}")
        return a

    return get
