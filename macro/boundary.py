"""Ghost-cell boundary conditions, fused into the stepping kernels.

Side order is (x-low, x-high, y-low, y-high). Codes: transmissive (zero gradient), reflective
(fixed wall), periodic (both sides of an axis), piston (wall moving with a prescribed normal
velocity: the standard way to drive a shock in from a boundary) and inflow (a prescribed
conservative state in the ghost cells).
"""

import numba as nb
import numpy as np

TRANSMISSIVE, REFLECTIVE, PERIODIC, PISTON, INFLOW = 0, 1, 2, 3, 4
BC_CODES = {
    "transmissive": TRANSMISSIVE,
    "reflective": REFLECTIVE,
    "periodic": PERIODIC,
    "piston": PISTON,
    "inflow": INFLOW,
}
NG = 2  # ghost layers needed by MUSCL
SIDES = ("x_low", "x_high", "y_low", "y_high")


def bc_code(name: str, side: str) -> int:
    try:
        return BC_CODES[name.lower()]
    except KeyError:
        raise ValueError(f"boundary {side}={name!r} is not one of {sorted(BC_CODES)}") from None


def check_periodic_pairs(codes: np.ndarray) -> None:
    for a, b, axis in ((0, 1, "x"), (2, 3, "y")):
        if (codes[a] == PERIODIC) != (codes[b] == PERIODIC):
            raise ValueError(f"periodic boundary on axis {axis} must be set on both sides")


class Boundaries:
    """The four sides of a grid as the kernels take them: kind codes, piston wall velocities
    and inflow ghost states (conserved), built from side names and the model's primitive
    states. A decomposed run holds one for its block and one for the whole grid (to fill the
    ghosts of gathered checkpoints)."""

    def __init__(self, model, bc: dict, piston_velocity: dict, inflow: dict):
        for key in (*bc, *piston_velocity, *inflow):
            if key not in SIDES:
                raise ValueError(f"boundary side {key!r} is not one of {SIDES}")
        codes = np.array([bc_code(bc.get(s, "transmissive"), s) for s in SIDES], dtype=np.int64)
        check_periodic_pairs(codes)
        self.model = model
        self.kinds = {s: bc.get(s, "transmissive") for s in SIDES}
        self.codes = codes
        self.uwall = np.zeros(4)
        self.inflow = np.zeros((4, model.nv))
        for k, s in enumerate(SIDES):
            if codes[k] == PISTON:
                if s not in piston_velocity:
                    raise ValueError(f"piston boundary on {s} needs piston_velocity[{s!r}]")
                self.uwall[k] = float(piston_velocity[s])
            if codes[k] == INFLOW:
                if s not in inflow:
                    raise ValueError(f"inflow boundary on {s} needs inflow[{s!r}] (a state)")
                state = {n: np.full((1, 1), float(v)) for n, v in inflow[s].items()}
                self.inflow[k] = model.conserved(state)[:, 0, 0]

    @property
    def periodic(self) -> tuple[bool, bool]:
        """Whether the x and the y axis are periodic."""
        return bool(self.codes[0] == PERIODIC), bool(self.codes[2] == PERIODIC)

    def set_inflow(self, side: str, state: dict) -> None:
        """New ghost state (the model's primitive variables) of an inflow side."""
        if side not in SIDES:
            raise ValueError(f"side={side!r} is not one of {SIDES}")
        k = SIDES.index(side)
        if self.codes[k] != INFLOW:
            raise ValueError(f"side {side!r} has boundary {self.kinds[side]!r}, not 'inflow'")
        prim = {n: np.full((1, 1), float(v)) for n, v in state.items()}
        U = self.model.conserved(prim)[:, 0, 0]
        if not np.all(np.isfinite(U)):
            raise ValueError(f"inflow state for {side!r} is not finite: {state!r}")
        self.inflow[k] = U

    def fill(self, U: np.ndarray) -> None:
        """Ghost layers of ``U`` (ghosts included) as a stage of the step fills them."""
        self.model.fill_ghosts(U, self.codes, self.uwall, self.inflow)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _ghost_src(code, l, n, g):
    """Source index of ghost layer l (0 = outermost) on the low (first) and the high (second)
    side of an axis of n cells, ghosts included."""
    if code == PERIODIC:
        return n - g - 1 - l, g + l
    if code == TRANSMISSIVE:
        return g, n - g - 1
    return g + l, n - g - 1 - l


@nb.njit(cache=True, error_model="numpy")
def _fill_x_side(U, j0, j1, dst, src, code, normal, nrho, iE, uwall, inflow):
    """x ghost column dst of rows j0..j1-1 from column src: variable by variable (rows of U
    are contiguous), then the wall's normal momentum and its kinetic energy."""
    nv = U.shape[0]
    if code == INFLOW:
        for k in range(nv):
            for j in range(j0, j1):
                U[k, j, dst] = inflow[k]
        return
    for k in range(nv):
        for j in range(j0, j1):
            U[k, j, dst] = U[k, j, src]
    if code == REFLECTIVE or code == PISTON:
        for j in range(j0, j1):
            _wall(U, j, dst, j, src, normal, nrho, iE, uwall)


@nb.njit(cache=True, error_model="numpy")
def _fill_y_side(U, dst, src, code, normal, nrho, iE, uwall, inflow):
    """y ghost row dst (corners included) from row src, as :func:`_fill_x_side`."""
    nv, _, NX = U.shape
    if code == INFLOW:
        for k in range(nv):
            for i in range(NX):
                U[k, dst, i] = inflow[k]
        return
    for k in range(nv):
        for i in range(NX):
            U[k, dst, i] = U[k, src, i]
    if code == REFLECTIVE or code == PISTON:
        for i in range(NX):
            _wall(U, dst, i, src, i, normal, nrho, iE, uwall)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _wall(U, dst_j, dst_i, src_j, src_i, normal, nrho, iE, uwall):
    """Ghost (already a copy of its source) of a wall moving at ``uwall``: mirrored normal
    momentum, energy with the ghost's kinetic energy."""
    rho = 0.0
    for k in range(nrho):
        rho += U[k, src_j, src_i]
    m = U[normal, src_j, src_i]
    mg = 2.0 * rho * uwall - m
    U[normal, dst_j, dst_i] = mg
    U[iE, dst_j, dst_i] += 0.5 * (mg * mg - m * m) / rho


@nb.njit(cache=True, error_model="numpy")
def fill_ghosts(U, codes, uwall, inflow, nrho, mx, my, iE):
    """Fill ghost cells of U (nv, NY, NX) in place; NY == 1 means 1D (no y ghosts). The x
    ghosts first, then the y ghost rows whole (their corners from the x ghosts)."""
    _, NY, NX = U.shape
    g = NG
    is2d = NY > 1
    j0, j1 = (g, NY - g) if is2d else (0, 1)
    for l in range(g):
        lo = _ghost_src(codes[0], l, NX, g)[0]
        _fill_x_side(U, j0, j1, g - 1 - l, lo, codes[0], mx, nrho, iE, uwall[0], inflow[0])
        hi = _ghost_src(codes[1], l, NX, g)[1]
        _fill_x_side(U, j0, j1, NX - g + l, hi, codes[1], mx, nrho, iE, uwall[1], inflow[1])
    if not is2d:
        return
    for l in range(g):
        lo = _ghost_src(codes[2], l, NY, g)[0]
        _fill_y_side(U, g - 1 - l, lo, codes[2], my, nrho, iE, uwall[2], inflow[2])
        hi = _ghost_src(codes[3], l, NY, g)[1]
        _fill_y_side(U, NY - g + l, hi, codes[3], my, nrho, iE, uwall[3], inflow[3])
