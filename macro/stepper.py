"""The fused, tiled SSP-RK stepper that the Euler (:mod:`macro.euler`) and the five-equation
(:mod:`macro.multi`) kernels share: RK driver, stages, work sharing, the strip/ring sweep and
the MUSCL reconstruction of ring rows. How the work is laid out (this is what makes it fast):

* Each RK stage is a guard pass then a sweep. The guard pass checks every interior cell and takes
  the CFL wave rate over all cells (ghosts included: an inflow state may be faster than anything
  inside). It runs before anything is written, so a failing stage leaves U untouched. Stage
  states live in dU (and U0 for RK3): U holds the start of the step until the last stage.
* The sweep (:func:`block`) walks strips of at most ``TB`` cells of a row. Threads split rows in
  2D and strips in 1D. It puts the primitives of the input state into a per-thread ring of 4
  rows (no full-size primitive array to stream through memory, unless the model keeps the guard
  pass's), reconstructs the face states, completes their thermodynamics (the model's EOS or its
  reconstructed EOS data) and solves the Riemann problems. It then writes the RK combination
  ``Y = a*Z + b*X + c*L(X)`` directly (no stored dU, no separate combine pass). y fluxes are
  kept in a rolling one-row buffer, so each face flux is computed once, except the first face
  row of each thread's block. There is no (NY+1, NX) flux array and no race.
* Every inner loop runs over a row view (indices from 0, so there is no negative-index
  wraparound and LLVM emits contiguous loads, not gathers) or over one flat scratch array. The
  loops are branch-free where they can be: the HLLC cases are computed side by side and
  selected, and the limiter and EOS path are chosen outside the loop. So LLVM vectorises them.
  ``error_model="numpy"`` removes the division-by-zero checks.
* :func:`rk` run from a model's ``step`` runs the work shares one after the other and never
  references the parallel kernel; from ``step_parallel`` it runs them on Numba's threads. Each
  is compiled on first use.

A model plugs in with jitted functions, passed as arguments (each model's entry points call
:func:`rk` with its own, so they compile to direct calls and are cached with the entry point):

* ``prim_tile(U, W, S, j, i0, n, mc, dx, dy, is2d, store)``: guard codes, wave rates and
  primitives of cells i0..i0+n-1 of row j into scratch rows (W as well if ``store``);
* ``ring(X, W, S, r, c0, m, slot, mc)``: primitives of cells c0..c0+m-1 of row r into ring slot
  ``slot``;
* ``y_faces(S, j, n, lim, mc, force_hll, dst)``: fluxes through the y faces between rows j and
  j+1 (n columns) into scratch rows dst.. in U order;
* ``x_faces(S, slot, n, lim, mc, force_hll)``: fluxes through the n+1 x faces of the strip;
* ``update(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, mc)``: Y = a*Z + b*X + c*L(X) on
  the strip of row j (:func:`update_row` for a plain conserved variable);
* ``run_parallel(task, nt, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b, c, rowstat)``: a
  prange over :func:`work` with the model's functions (a parallel kernel cannot take functions
  as arguments and still be cached, so each model has this one small loop of its own).

``mc`` is the model's tuple of constants (EOS rows, hoisted EOS constants, switches), made once
per step; ``lay`` the tuple ``(nrho, mx, my, en, store_w, p_rate, p_code, yo, yn, ywidth)``:
partial densities and momentum/energy rows for the ghost fill, whether the guard pass stores W
for the sweep, the scratch rows of the guard's wave rate and code, and of the rolling y fluxes.
"""

import numba as nb
import numpy as np

from .boundary import NG, fill_ghosts
from .limiters import MC, MINMOD, mc_slope, minmod_slope, vanleer_slope
from .riemann import HLL

# tiling: strips of at most TB cells; one flat per-thread scratch array, rows of stride TS
TB = 512
TS = TB + 8
PAR_MIN_CELLS = 4096  # fewer cells per thread than this: fewer threads (sync costs more)
TASK_GUARD, TASK_PRIM, TASK_SWEEP = 0, 1, 2
# the layout tuple
L_NRHO, L_MX, L_MY, L_EN, L_STORE, L_RATE, L_CODE, L_YO, L_YN, L_YW = range(10)

_JIT = {"cache": True, "error_model": "numpy"}
# the models' sweep pieces (guard tile, ring, face thermodynamics, Riemann solver, update)
# allocate nothing and only take row views of arrays their caller holds, so they are compiled
# without reference counting: Numba's atomic incref/decref of every view was ~9% of a
# five-equation step on 96-cell rows (``_nrt`` is Numba's own, underscored, option; the work
# share and serial/parallel bit-for-bit tests run these pieces)
SWEEP_JIT = {"cache": True, "error_model": "numpy", "_nrt": False}
# thin wrappers are inlined in Numba IR: every separately compiled function that calls the kernels
# re-optimises all of their linked code, which is what dominates the cold compile time
_IJIT = {"cache": True, "error_model": "numpy", "inline": "always"}


def scratch(nthreads, shape, nsr):
    """Per-thread scratch of ``nsr`` rows: one row block per work share.

    With ``shape`` (of U) small problems get fewer shares (one share: the serial driver, which
    has no parallel region to compile or to wait on).
    """
    nt = max(int(nthreads), 1)
    if shape is not None:
        nt = max(1, min(nt, (shape[-1] * shape[-2]) // PAR_MIN_CELLS))
    return np.empty((nt, nsr * TS))


# ---------------------------------------------------------------------------------------------
# guard pass
# ---------------------------------------------------------------------------------------------


@nb.njit(**_JIT)
def tile_scan(S, n, qa, qb, orate, ocode):
    """(max rate over scratch cells 0..n-1, number of bad cells among qa..qb-1).

    Rates are >= 0 or NaN; the max runs on the IEEE bit patterns (integer order = float order
    for non-negative doubles) so that it vectorises. A NaN rate only comes with a bad state:
    reported if interior, and in a ghost cell it means the interior next to it is bad too.
    """
    Si = S.view(np.int64)
    m = 0
    for q in range(n):
        r = Si[orate + q]
        m = r if r > m else m
    nbad = 0
    for q in range(qa, qb):
        nbad += 1 if S[ocode + q] != 0.0 else 0
    Si[orate + TS - 1] = m
    return S[orate + TS - 1], nbad


@nb.njit(**_IJIT)
def prim_rows(prim_tile, lay, U, W, S, mc, dx, dy, rowstat, ja, jb, store):
    """Guard (interior cells) and max wave rate (all cells, ghosts included: an inflow state
    may be faster than anything inside) of rows ja..jb-1 into rowstat; W too if ``store``."""
    _, NY, NX = U.shape
    is2d = NY > 1
    orate = lay[L_RATE]
    ocode = lay[L_CODE]
    for j in range(ja, jb):
        rowstat[j, 0] = 0.0
        rowstat[j, 1] = 0.0
        rowstat[j, 2] = 0.0
        interior_row = (not is2d) or (NG <= j < NY - NG)
        for i0 in range(0, NX, TB):
            n = min(TB, NX - i0)
            prim_tile(U, W, S, j, i0, n, mc, dx, dy, is2d, store)
            qa = max(NG - i0, 0)
            qb = min(NX - NG - i0, n) if interior_row else qa
            rmax, nbad = tile_scan(S, n, qa, qb, orate, ocode)
            if rmax > rowstat[j, 2]:
                rowstat[j, 2] = rmax
            if nbad > 0 and rowstat[j, 0] == 0.0:
                for q in range(qa, qb):
                    if S[ocode + q] != 0.0:
                        rowstat[j, 0] = S[ocode + q]
                        rowstat[j, 1] = i0 + q
                        break


@nb.njit(**_JIT)
def reduce_rowstat(rowstat, NY):
    status = 0
    bj = -1
    bi = -1
    smax = 0.0
    for j in range(NY):
        if status == 0 and rowstat[j, 0] != 0.0:
            status = int(rowstat[j, 0])
            bj = j
            bi = int(rowstat[j, 1])
        if rowstat[j, 2] > smax:
            smax = rowstat[j, 2]
    return status, bj, bi, smax


# ---------------------------------------------------------------------------------------------
# sweep pieces shared by the models: MUSCL on ring rows, y-flux store, plain-variable update
# ---------------------------------------------------------------------------------------------


@nb.njit(**_IJIT)
def recon_x(S, slot, n, lim, nr, ring, stride, k0, k1):
    """Face states of the n + 1 x faces of a strip of n cells from ring slot ``slot``: rows
    0..nr-1 (left states at face f) and nr..2nr-1 (right states at face f, stored at f + 1),
    of the variables k0..k1-1 (a model may leave some rows to be filled otherwise).

    Slot rows are ``ring + (stride*slot + k)*TS`` and hold cells i0-2..i0+n+1; face f lies
    between cells i0-1+f and i0+f.
    """
    wr = nr * TS
    for k in range(k0, k1):
        oL = k * TS
        oR = wr + k * TS
        o = ring + (stride * slot + k) * TS
        w = S[o:o + n + 4]  # cell i0-1+q is w[q+1]
        if lim == MC:
            for q in range(n + 2):
                w0 = w[q + 1]
                s = 0.5 * mc_slope(w0 - w[q], w[q + 2] - w0)
                S[oL + q] = w0 + s
                S[oR + q] = w0 - s
        elif lim == MINMOD:
            for q in range(n + 2):
                w0 = w[q + 1]
                s = 0.5 * minmod_slope(w0 - w[q], w[q + 2] - w0)
                S[oL + q] = w0 + s
                S[oR + q] = w0 - s
        else:
            for q in range(n + 2):
                w0 = w[q + 1]
                s = 0.5 * vanleer_slope(w0 - w[q], w[q + 2] - w0)
                S[oL + q] = w0 + s
                S[oR + q] = w0 - s


@nb.njit(cache=True, inline="always")
def swapped(k, iu):
    """Row of variable k in a y-face frame: the velocities in rows iu (normal) and iu + 1
    (tangential) swap, u <-> v."""
    return 2 * iu + 1 - k if (k == iu or k == iu + 1) else k


@nb.njit(**_IJIT)
def recon_y(S, j, n, lim, nr, ring, stride, iu, k0, k1):
    """Face states of the y faces between rows j and j+1 (ring rows j-1..j+2), n columns, of
    the variables k0..k1-1 in the layout of :func:`recon_x`; the normal velocity (row iu) is v,
    the tangential one u."""
    wr = nr * TS
    for k in range(k0, k1):
        src = swapped(k, iu)
        oL = k * TS
        oR = wr + k * TS + 1
        o0 = ring + (stride * ((j - 1) % 4) + src) * TS + 2
        o1 = ring + (stride * (j % 4) + src) * TS + 2
        o2 = ring + (stride * ((j + 1) % 4) + src) * TS + 2
        o3 = ring + (stride * ((j + 2) % 4) + src) * TS + 2
        r0 = S[o0:o0 + n]
        r1 = S[o1:o1 + n]
        r2 = S[o2:o2 + n]
        r3 = S[o3:o3 + n]
        if lim == MC:
            for q in range(n):
                a1 = r1[q]
                a2 = r2[q]
                S[oL + q] = a1 + 0.5 * mc_slope(a1 - r0[q], a2 - a1)
                S[oR + q] = a2 - 0.5 * mc_slope(a2 - a1, r3[q] - a2)
        elif lim == MINMOD:
            for q in range(n):
                a1 = r1[q]
                a2 = r2[q]
                S[oL + q] = a1 + 0.5 * minmod_slope(a1 - r0[q], a2 - a1)
                S[oR + q] = a2 - 0.5 * minmod_slope(a2 - a1, r3[q] - a2)
        else:
            for q in range(n):
                a1 = r1[q]
                a2 = r2[q]
                S[oL + q] = a1 + 0.5 * vanleer_slope(a1 - r0[q], a2 - a1)
                S[oR + q] = a2 - 0.5 * vanleer_slope(a2 - a1, r3[q] - a2)


@nb.njit(**_IJIT)
def store_y(S, n, src0, dst, nrows, iu):
    """Copy the y fluxes in rows src0.. (normal frame) to rows dst.. in U order."""
    for k in range(nrows):
        src = src0 + swapped(k, iu) * TS
        o = dst + k * TS
        for q in range(n):
            S[o + q] = S[src + q]


@nb.njit(**_IJIT)
def update_row(X, Z, Y, S, k, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, oF, oO, oN):
    """Y = a*Z + b*X + c*d for variable k on cells i0..i0+n-1 of row j, d = -div F from the
    x fluxes in rows oF (face f at oF + f) and the y fluxes below (oO) and above (oN)."""
    in_place = Y.ctypes.data == Z.ctypes.data
    x = X[k, j, i0:i0 + n]
    y = Y[k, j, i0:i0 + n]
    z = Z[k, j, i0:i0 + n]
    # Y is Z: one pointer (y), so LLVM's runtime alias check passes and the loop vectorises
    if is2d and in_place:
        for q in range(n):
            d = (S[oF + q] - S[oF + q + 1]) * inv_dx + (S[oO + q] - S[oN + q]) * inv_dy
            y[q] = a * y[q] + b * x[q] + c * d
    elif is2d:
        for q in range(n):
            d = (S[oF + q] - S[oF + q + 1]) * inv_dx + (S[oO + q] - S[oN + q]) * inv_dy
            y[q] = a * z[q] + b * x[q] + c * d
    elif in_place:
        for q in range(n):
            y[q] = a * y[q] + b * x[q] + c * ((S[oF + q] - S[oF + q + 1]) * inv_dx)
    else:
        for q in range(n):
            y[q] = a * z[q] + b * x[q] + c * ((S[oF + q] - S[oF + q + 1]) * inv_dx)


# ---------------------------------------------------------------------------------------------
# sweep, work sharing, RK driver
# ---------------------------------------------------------------------------------------------


@nb.njit(**_IJIT)
def block(ring, y_faces, x_faces, update, lay, X, Z, Y, W, S, ja, jb, i0, n, mc, force_hll, lim,
          inv_dx, inv_dy, a, b, c):
    """Rows ja..jb-1, columns i0..i0+n-1: Y = a*Z + b*X + c*L(X).

    The primitives of X go into a ring of 4 rows (2D: rows j-1..j+2 while row j is updated;
    each block fills 4 extra rows at its start and each strip 4 extra columns).
    """
    is2d = X.shape[1] > 1
    yo = lay[L_YO]
    yn = lay[L_YN]
    c0 = i0 - 2
    m = n + 4
    if is2d:
        for r in range(ja - 2, ja + 2):
            ring(X, W, S, r, c0, m, r % 4, mc)
        y_faces(S, ja - 1, n, lim, mc, force_hll, yo)
    else:
        ring(X, W, S, np.int64(0), c0, m, np.int64(0), mc)
    for j in range(ja, jb):
        if is2d:
            ring(X, W, S, j + 2, c0, m, (j + 2) % 4, mc)
            y_faces(S, j, n, lim, mc, force_hll, yn)
        x_faces(S, j % 4, n, lim, mc, force_hll)
        update(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, mc)
        if is2d:
            for q in range(lay[L_YW]):
                S[yo + q] = S[yn + q]


@nb.njit(**_IJIT)
def work_guard(prim_tile, lay, store, w, nt, X, W, S, mc, dx, dy, rowstat):
    """Guard share w of nt: rows split between shares (see :func:`run_guard`)."""
    NY = X.shape[1]
    prim_rows(prim_tile, lay, X, W, S, mc, dx, dy, rowstat, w * NY // nt, (w + 1) * NY // nt,
              store)


@nb.njit(**_IJIT)
def work_sweep(ring, y_faces, x_faces, update, lay, w, nt, X, Z, Y, W, S, mc, solver, lim, dx,
               dy, a, b, c):
    """Sweep share w of nt: rows split between shares in 2D, strips in 1D (see
    :func:`run_sweep`)."""
    _, NY, NX = X.shape
    is2d = NY > 1
    nstrips = (NX - 2 * NG + TB - 1) // TB
    if is2d:
        nrows = NY - 2 * NG
        ja = NG + w * nrows // nt
        jb = NG + (w + 1) * nrows // nt
        sa = 0
        sb = nstrips
    else:
        ja = 0
        jb = 1
        sa = w * nstrips // nt
        sb = (w + 1) * nstrips // nt
    if jb <= ja:
        return
    force_hll = solver == HLL
    inv_dx = 1.0 / dx
    inv_dy = 1.0 / dy
    for st in range(sa, sb):
        i0 = NG + st * TB
        n = min(TB, NX - NG - i0)
        block(ring, y_faces, x_faces, update, lay, X, Z, Y, W, S, ja, jb, i0, n, mc, force_hll,
              lim, inv_dx, inv_dy, a, b, c)


@nb.njit(**_IJIT)
def work(prim_tile, ring, y_faces, x_faces, update, lay, task, w, nt, X, Z, Y, W, S, mc, solver,
         lim, dx, dy, a, b, c, rowstat):
    """Work share w of nt of a task (a model's parallel kernel runs one per thread)."""
    if task != TASK_SWEEP:
        work_guard(prim_tile, lay, task == TASK_PRIM, w, nt, X, W, S, mc, dx, dy, rowstat)
    else:
        work_sweep(ring, y_faces, x_faces, update, lay, w, nt, X, Z, Y, W, S, mc, solver, lim,
                   dx, dy, a, b, c)


# The model's functions travel as six arguments RP, PT, RG, YF, XF, UP: run_parallel, prim_tile,
# ring, y_faces, x_faces, update (a tuple of functions would be a first-class function type,
# which Numba marks experimental). Every function that takes them is inlined into the model's
# entry points: a function called through a function-typed argument that itself calls another
# jitted function makes the caller uncacheable (Numba 0.61: "dynamic globals").


@nb.njit(**_IJIT)
def run_guard(RP, PT, lay, store, X, W, S_all, mc, dx, dy, rowstat, par):
    """Guard and wave rate of X's rows into rowstat (and W if ``store``), rows split between
    S_all.shape[0] work shares, run in parallel if ``par`` (a literal: the serial callers never
    reference, hence never compile, the parallel kernel ``RP``)."""
    nt = min(S_all.shape[0], X.shape[1])
    task = np.int64(TASK_PRIM) if store else np.int64(TASK_GUARD)
    if par:
        if nt > 1:
            RP(task, nt, X, X, X, W, S_all, mc, np.int64(0), np.int64(0), dx, dy, 0.0, 0.0, 0.0,
               rowstat)
            return
    for w in range(nt):
        work_guard(PT, lay, store, np.int64(w), np.int64(nt), X, W, S_all[w], mc, dx, dy,
                   rowstat)


@nb.njit(**_IJIT)
def run_sweep(RP, RG, YF, XF, UP, lay, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b, c,
              rowstat, par):
    """Y = a*Z + b*X + c*L(X) on interior cells, L(X) = -div F(X) (ghosts of X filled), in
    S_all.shape[0] work shares (in parallel as :func:`run_guard`). Y must not be X (its rows
    are read by neighbouring blocks); Y may be Z."""
    nt = S_all.shape[0]
    if par:
        if nt > 1:
            RP(np.int64(TASK_SWEEP), nt, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b, c,
               rowstat)
            return
    for w in range(nt):
        work_sweep(RG, YF, XF, UP, lay, np.int64(w), np.int64(nt), X, Z, Y, W, S_all[w], mc,
                   solver, lim, dx, dy, a, b, c)


@nb.njit(**_IJIT)
def primitives(RP, PT, RG, YF, XF, UP, lay, U, W, S_all, mc, dx, dy, rowstat, store, par):
    """Guard status, first bad cell and max wave rate of U's interior (W too if ``store``)."""
    run_guard(RP, PT, lay, store, U, W, S_all, mc, dx, dy, rowstat, par)
    return reduce_rowstat(rowstat, U.shape[1])


@nb.njit(**_IJIT)
def sweep(RP, PT, RG, YF, XF, UP, lay, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b, c,
          rowstat, par):
    """Y = a*Z + b*X + c*L(X) on interior cells (see :func:`run_sweep`)."""
    run_sweep(RP, RG, YF, XF, UP, lay, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b, c,
              rowstat, par)


@nb.njit(**_JIT)
def copy(src, dst):
    a = src.reshape(-1)
    b = dst.reshape(-1)
    for i in range(a.size):
        b[i] = a[i]


@nb.njit(**_IJIT)
def stage(RP, PT, RG, YF, XF, UP, lay, X, W, S_all, mc, dx, dy, codes, uwall, inflow, rowstat,
          par):
    """Ghosts of X, then its guard and wave rate (and its primitives in W when the model's
    sweep reads them there)."""
    fill_ghosts(X, codes, uwall, inflow, lay[L_NRHO], lay[L_MX], lay[L_MY], lay[L_EN])
    return primitives(RP, PT, RG, YF, XF, UP, lay, X, W, S_all, mc, dx, dy, rowstat,
                      lay[L_STORE], par)


@nb.njit(**_IJIT)
def rk(RP, PT, RG, YF, XF, UP, lay, U, U0, W, dU, S_all, mc, solver, lim, order, cfl, dt_max, dx,
       dy, codes, uwall, inflow, rowstat, par):
    """One SSP-RK step (order 2 or 3) of ``U`` in place (see :meth:`macro.models.EulerModel.step`).

    Stage k is ``Y = a*Z + b*X + c dt L(X)``: U1 = U + dt L(U); RK2: U = U/2 + (U1 + dt L(U1))/2;
    RK3: U2 = 3U/4 + (U1 + dt L(U1))/4, U = U/3 + 2 (U2 + dt L(U2))/3. Stage states live in dU
    (and U0 for the third RK3 stage); U keeps the start of the step until the last stage writes
    the result, so after a guard failure (every guard runs before the sweep that uses its state)
    U is intact and is copied to U0. The stages are one loop, so that the inlined stage and
    sweep are compiled once. Returns (status, j, i, dt).
    """
    dt = 0.0
    status = 0
    bj = -1
    bi = -1
    for k in range(order):
        X, Z, Y = U, U, dU
        a, b, c = 1.0, 0.0, 1.0
        if k == 1:
            X, Z, Y = dU, U, U
            a, b, c = 0.5, 0.5, 0.5
            if order == 3:
                Y = U0
                a, b, c = 0.75, 0.25, 0.25
        elif k == 2:
            X, Z, Y = U0, U, U
            a, b, c = 1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0
        status, bj, bi, rate = stage(RP, PT, RG, YF, XF, UP, lay, X, W, S_all, mc, dx, dy, codes,
                                     uwall, inflow, rowstat, par)
        if status != 0:
            break
        if k == 0:
            dt = cfl / rate if rate > 0.0 else dt_max
            if dt > dt_max:
                dt = dt_max
        sweep(RP, PT, RG, YF, XF, UP, lay, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b,
              c * dt, rowstat, par)
    if status == 0:
        return 0, -1, -1, dt
    copy(U, U0)
    return status, bj, bi, dt
