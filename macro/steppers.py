"""SSP Runge-Kutta drivers: one jitted call per full time step, for every model.

The model is chosen by an integer so the driver (and its Numba cache entry) is shared: passing
jitted functions as arguments would defeat on-disk caching.
"""

import numba as nb

from . import euler, multi
from .boundary import NG

EULER, FIVE_EQ = 0, 1


@nb.njit(cache=True, parallel=True)
def combine(out, a, A, b, B, c, dU):
    """out = a*A + b*B + c*dU on interior cells (ghosts are refilled by the next stage)."""
    nv, NY, NX = out.shape
    jlo, jhi = (NG, NY - NG) if NY > 1 else (0, 1)
    for j in nb.prange(jlo, jhi):
        for k in range(nv):
            for i in range(NG, NX - NG):
                out[k, j, i] = a * A[k, j, i] + b * B[k, j, i] + c * dU[k, j, i]


@nb.njit(cache=True)
def _rhs(model, U, W, dU, FY, eos, Q, flag, solver, lim, dx, dy, codes, uwall, inflow, rowstat):
    if model == EULER:
        return euler.rhs(U, W, dU, FY, eos, Q, flag, solver, lim, dx, dy, codes, uwall, inflow,
                         rowstat)
    return multi.rhs(U, W, dU, FY, eos, Q, flag, solver, lim, dx, dy, codes, uwall, inflow,
                     rowstat)


@nb.njit(cache=True)
def step(model, U, U0, W, dU, FY, eos, Q, flag, solver, lim, order, cfl, dt_max, dx, dy,
         codes, uwall, inflow, rowstat):
    """One SSP-RK step (order 2 or 3) of ``U`` in place.

    Returns (status, j, i, dt); status != 0 is a guard failure at array cell (j, i), and then
    U0 holds the last good state (the start of the step). dt = min(cfl / wave rate, dt_max).
    """
    U0[:] = U
    status, bj, bi, rate = _rhs(model, U, W, dU, FY, eos, Q, flag, solver, lim, dx, dy,
                                codes, uwall, inflow, rowstat)
    if status != 0:
        return status, bj, bi, 0.0
    dt = cfl / rate if rate > 0.0 else dt_max
    if dt > dt_max:
        dt = dt_max
    combine(U, 1.0, U0, 0.0, U0, dt, dU)
    status, bj, bi, _ = _rhs(model, U, W, dU, FY, eos, Q, flag, solver, lim, dx, dy,
                             codes, uwall, inflow, rowstat)
    if status != 0:
        return status, bj, bi, dt
    if order == 2:
        combine(U, 0.5, U0, 0.5, U, 0.5 * dt, dU)
        return 0, -1, -1, dt
    combine(U, 0.75, U0, 0.25, U, 0.25 * dt, dU)
    status, bj, bi, _ = _rhs(model, U, W, dU, FY, eos, Q, flag, solver, lim, dx, dy,
                             codes, uwall, inflow, rowstat)
    if status != 0:
        return status, bj, bi, dt
    combine(U, 1.0 / 3.0, U0, 2.0 / 3.0, U, 2.0 / 3.0 * dt, dU)
    return 0, -1, -1, dt
