"""SSP Runge-Kutta drivers: one jitted call per full time step, for every model.

:func:`step` is a thin Python dispatcher to the model's own jitted driver (``euler.step`` /
``multi.step``, or their ``step_parallel`` twins when the grid is large enough for several
threads): each model compiles (and caches) only its own kernels, and the parallel kernel is only
compiled by runs that use it.
"""

import numba as nb

from . import euler, multi
from .boundary import NG

EULER, FIVE_EQ = 0, 1


@nb.njit(cache=True, parallel=True, error_model="numpy")
def combine(out, a, A, b, B, c, dU):
    """out = a*A + b*B + c*dU on interior cells (ghosts are refilled by the next stage)."""
    nv, NY, NX = out.shape
    jlo, jhi = (NG, NY - NG) if NY > 1 else (0, 1)
    for j in nb.prange(jlo, jhi):
        for k in range(nv):
            for i in range(NG, NX - NG):
                out[k, j, i] = a * A[k, j, i] + b * B[k, j, i] + c * dU[k, j, i]


def step(model, U, U0, W, dU, FY, eos, Q, flag, solver, lim, order, cfl, dt_max, dx, dy,
         codes, uwall, inflow, rowstat):
    """One SSP-RK step (order 2 or 3) of ``U`` in place.

    Returns (status, j, i, dt); status != 0 is a guard failure at array cell (j, i), and then
    U0 holds the last good state (the start of the step). dt = min(cfl / wave rate, dt_max).
    """
    if model == EULER:
        mod = euler
    elif model == FIVE_EQ:
        mod = multi
    else:
        raise ValueError(f"unknown model code {model!r}")
    # one work share per Numba thread, fewer for small grids; a single share runs the serial
    # driver, which does not even compile the parallel kernel
    S_all = mod.scratch(nb.get_num_threads(), U.shape)
    drive = mod.step_parallel if S_all.shape[0] > 1 else mod.step
    return drive(U, U0, W, dU, S_all, eos, Q, flag, solver, lim, order, cfl, dt_max, dx, dy, codes,
                 uwall, inflow, rowstat)
