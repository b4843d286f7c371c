"""Single-fluid (optionally reactive) Euler equations: tiled, vectorisable Numba kernels.

Conserved variables, shape (NV, NY, NX) with NG ghost layers (NY == 1 in 1D, no y ghosts):
``rho, rho*u, rho*v, E, rho*lambda``. A reactive cell is a mixture at common density of reactant
(EOS 0) and products (EOS 1) with mass fraction lambda of products; the heat of reaction Q lowers
the products' energy: ``rho*e = xi*p + Pi - lambda*rho*Q`` with xi, Pi mixed linearly in lambda.
Non-reactive runs use EOS 0 only and carry lambda as a passive scalar.

Scheme: MUSCL (minmod/MC/van Leer) on primitive variables, HLLC with HLL fallback, unsplit in
2D; :func:`step` is one SSP-RK2/RK3 step. How the work is laid out (this is what makes it fast):

* Each RK stage is a guard pass then a sweep. The guard pass checks every interior cell and takes
  the CFL wave rate over all cells (ghosts included: an inflow state may be faster than anything
  inside). It runs before anything is written, so a failing stage leaves U untouched. Stage
  states live in dU (and U0 for RK3): U holds the start of the step until the last stage.
* The sweep (:func:`_block`) walks strips of at most ``TB`` cells of a row. Threads split rows in
  2D and strips in 1D. It computes the primitives of the input state into a per-thread ring of 4
  rows (no full-size primitive array to stream through memory), reconstructs the face states,
  evaluates the EOS at the faces and solves the Riemann problems. It then writes the RK
  combination ``Y = a*Z + b*X + c*L(X)`` directly (no stored dU, no separate combine pass).
  y fluxes are kept in a rolling one-row buffer, so each face flux is computed once, except
  the first face row of each thread's block. There is no (NY+1, NX) flux array and no race.
* Every inner loop runs over a row view (indices from 0, so there is no negative-index
  wraparound and LLVM emits contiguous loads, not gathers) or over one flat scratch array. The
  loops are branch-free: the HLLC cases are computed side by side and selected, and the limiter
  and EOS path are chosen outside the loop. So LLVM vectorises them (AVX-512 here). Hot code
  has no function calls; ``error_model="numpy"`` removes the division-by-zero checks.
* Ideal and stiffened gases (and reactive mixtures of the two) take a fast path with constant
  xi, Pi and c^2 = (A p + B)/rho; any other EOS goes through :func:`macro.eos.xi_pi` per state.
* :func:`step` runs the work shares one after the other and never references the parallel
  kernel; :func:`step_parallel` runs them on Numba's threads. Each is compiled on first use.
"""

import numba as nb
import numpy as np

from .boundary import NG, fill_ghosts
from .eos import KIND_IDEAL, KIND_STIFFENED, temperature, xi_pi
from .limiters import MC, MINMOD, mc_slope, minmod_slope, vanleer_slope
from .riemann import HLL

RHO, MX, MY, EN, RLAM = 0, 1, 2, 3, 4
NV = 5
NW = 6  # primitive work array: rho, u, v, p, lambda, c
VAR_NAMES = ("rho", "rho_u", "rho_v", "E", "rho_lambda")

# guard status codes (0 = ok); the Python side turns them into a NonPhysicalStateError
BAD_DENSITY, BAD_ENERGY, BAD_SOUND_SPEED = 1, 2, 3
GUARD_NAMES = {BAD_DENSITY: "density", BAD_ENERGY: "pressure", BAD_SOUND_SPEED: "sound speed"}

# EOS evaluation paths
EOS_FAST, EOS_FAST_MIX, EOS_GENERAL = 0, 1, 2

# tiling: strips of at most TB cells; one flat per-thread scratch array, rows of stride TS
TB = 512
TS = TB + 8
S_WL = 0 * TS  # left face states at face f: rho, un, ut, p, lambda (5 rows)
S_WR = 5 * TS  # right face states at face f, stored at f + 1 (5 rows)
S_EL = 10 * TS  # total energy, sound speed of the left/right states
S_CL = 11 * TS
S_ER = 12 * TS
S_CR = 13 * TS
S_F = 14 * TS  # normal fluxes (mass, normal mom, tangential mom, energy, rho*lambda) (5 rows)
S_YO = 19 * TS  # y fluxes at the lower face of the current row, in U order (5 rows)
S_YN = 24 * TS  # y fluxes at the upper face (5 rows)
S_RING = 29 * TS  # ring of primitive rows j-1..j+2 (2D) or row 0 (1D): 4 slots x 5 rows
NSR = 49
# the guard pass (_prim_tile) reuses rows 0-7: rho, u, v, p, lambda, c, wave rate, guard code
P_RATE = 6 * TS
P_CODE = 7 * TS
TASK_GUARD, TASK_PRIM, TASK_SWEEP = 0, 1, 2

_JIT = {"cache": True, "error_model": "numpy"}
# thin wrappers are inlined in Numba IR: every separately compiled function that calls the kernels
# re-optimises all of their linked code, which is what dominates the cold compile time
_IJIT = {"cache": True, "error_model": "numpy", "inline": "always"}
_PJIT = {"cache": True, "error_model": "numpy", "parallel": True}


@nb.njit(cache=True, inline="always")
def mix_xi_pi(eos, rho, lam, Q, reactive):
    xr, pr, dxr, dpr = xi_pi(eos[0], rho)
    if not reactive:
        return xr, pr, dxr, dpr
    xp, pp, dxp, dpp = xi_pi(eos[1], rho)
    a = 1.0 - lam
    return (a * xr + lam * xp, a * pr + lam * pp - lam * rho * Q,
            a * dxr + lam * dxp, a * dpr + lam * dpp - lam * Q)


@nb.njit(cache=True, inline="always")
def _mix_rows(q0, q1, rho, lam, Q, reactive):
    """mix_xi_pi on pre-extracted EOS rows (no per-call array views in hot loops)."""
    xr, pr, dxr, dpr = xi_pi(q0, rho)
    if not reactive:
        return xr, pr, dxr, dpr
    xp, pp, dxp, dpp = xi_pi(q1, rho)
    a = 1.0 - lam
    return (a * xr + lam * xp, a * pr + lam * pp - lam * rho * Q,
            a * dxr + lam * dxp, a * dpr + lam * dpp - lam * Q)


@nb.njit(cache=True, inline="always")
def _c2(rho, p, xi, pi, dxi, dpi):
    e = (xi * p + pi) / rho
    return (e + p / rho - dpi - p * dxi) / xi


@nb.njit(cache=True, inline="always")
def cell_pressure(eos, Q, reactive, rho, mx, my, E, rlam):
    lam = rlam / rho
    xi, pi, _, _ = mix_xi_pi(eos, rho, lam, Q, reactive)
    rhoe = E - 0.5 * (mx * mx + my * my) / rho
    return (rhoe - pi) / xi


@nb.njit(cache=True, inline="always", error_model="numpy")
def _fast_ab(x0, p0):
    ixi = 1.0 / x0
    return ixi, (1.0 + x0) * ixi, p0 * ixi


@nb.njit(**_JIT)
def _eos_setup(eos, reactive):
    """(path, xi0, Pi0, xi1, Pi1): constant xi/Pi when both EOS in use are ideal/stiffened.

    On the EOS_FAST path c^2 = (e + p/rho)/xi = ((1 + xi) p + Pi)/(xi rho) = (A p + B)/rho with
    A = (1 + xi)/xi (= gamma) and B = Pi/xi (= gamma p_inf), see :func:`_fast_ab`.
    """
    k0 = eos[0, 0]
    k1 = eos[1, 0] if reactive else k0
    fast0 = k0 == KIND_IDEAL or k0 == KIND_STIFFENED
    fast1 = k1 == KIND_IDEAL or k1 == KIND_STIFFENED
    x0, p0, _, _ = xi_pi(eos[0], 1.0)
    x1, p1, _, _ = xi_pi(eos[1], 1.0)
    if not (fast0 and fast1):
        return EOS_GENERAL, x0, p0, x1, p1
    return (EOS_FAST_MIX if reactive else EOS_FAST), x0, p0, x1, p1


# ---------------------------------------------------------------------------------------------
# primitives + guard + CFL rate
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always", error_model="numpy")
def _prim_store(S, q, rho, rbad, u, v, lam, p, c2, idx, idy, is2d):
    c = np.sqrt(c2) if c2 > 0.0 else 0.0
    code = 0.0
    if not (c2 > 0.0) or not np.isfinite(c2):
        code = float(BAD_SOUND_SPEED)
    if not np.isfinite(p):
        code = float(BAD_ENERGY)
    if rbad:
        code = float(BAD_DENSITY)
    rate = (abs(u) + c) * idx
    if is2d:
        rate += (abs(v) + c) * idy
    S[0 * TS + q] = rho
    S[1 * TS + q] = u
    S[2 * TS + q] = v
    S[3 * TS + q] = p
    S[4 * TS + q] = lam
    S[5 * TS + q] = c
    S[P_RATE + q] = rate
    S[P_CODE + q] = code


@nb.njit(**_JIT)
def _prim_tile(U, W, S, j, i0, n, path, q0, q1, x0, p0, x1, p1, Q, reactive, idx, idy, is2d,
               store):
    """Guard codes and wave rates (and W if ``store``) of cells i0..i0+n-1 of row j.

    One loop per EOS path so that the ideal/stiffened loops carry no call and vectorise; rows
    are taken as views so that indices start at 0 (no negative-index wraparound, no gathers).
    """
    ur = U[RHO, j, i0:i0 + n]
    umx = U[MX, j, i0:i0 + n]
    umy = U[MY, j, i0:i0 + n]
    uen = U[EN, j, i0:i0 + n]
    url = U[RLAM, j, i0:i0 + n]
    if path == EOS_FAST:
        ixi, A, B = _fast_ab(x0, p0)
        for q in range(n):
            rho = ur[q]
            rbad = not (rho > 0.0) or not np.isfinite(rho)
            rho = 1.0 if rbad else rho  # keeps ghost arithmetic finite; interior is reported
            inv = 1.0 / rho
            u = umx[q] * inv
            v = umy[q] * inv
            lam = url[q] * inv
            p = (uen[q] - 0.5 * rho * (u * u + v * v) - p0) * ixi
            _prim_store(S, q, rho, rbad, u, v, lam, p, (A * p + B) * inv, idx, idy, is2d)
    elif path == EOS_FAST_MIX:
        for q in range(n):
            rho = ur[q]
            rbad = not (rho > 0.0) or not np.isfinite(rho)
            rho = 1.0 if rbad else rho
            inv = 1.0 / rho
            u = umx[q] * inv
            v = umy[q] * inv
            lam = url[q] * inv
            a = 1.0 - lam
            xi = a * x0 + lam * x1
            pi = a * p0 + lam * p1 - lam * rho * Q
            p = (uen[q] - 0.5 * rho * (u * u + v * v) - pi) / xi
            # c^2 = (e + p/rho - dPi/drho)/xi with dPi/drho = -lam Q (dxi/drho = 0)
            c2 = ((xi + 1.0) * p + pi + lam * Q * rho) / (xi * rho)
            _prim_store(S, q, rho, rbad, u, v, lam, p, c2, idx, idy, is2d)
    else:
        for q in range(n):
            rho = ur[q]
            rbad = not (rho > 0.0) or not np.isfinite(rho)
            rho = 1.0 if rbad else rho
            inv = 1.0 / rho
            u = umx[q] * inv
            v = umy[q] * inv
            lam = url[q] * inv
            xi, pi, dxi, dpi = _mix_rows(q0, q1, rho, lam, Q, reactive)
            p = (uen[q] - 0.5 * rho * (u * u + v * v) - pi) / xi
            _prim_store(S, q, rho, rbad, u, v, lam, p, _c2(rho, p, xi, pi, dxi, dpi), idx, idy,
                        is2d)
    if not store:
        return
    for k in range(NW):
        o = k * TS
        w = W[k, j, i0:i0 + n]
        for q in range(n):
            w[q] = S[o + q]


@nb.njit(**_JIT)
def _tile_scan_at(S, n, qa, qb, orate, ocode):
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


@nb.njit(**_JIT)
def _prim_rows(U, W, S, eos, Q, reactive, dx, dy, rowstat, ja, jb, store):
    """Guard (interior cells) and max wave rate (all cells, ghosts included: an inflow state
    may be faster than anything inside) of rows ja..jb-1 into rowstat; W too if ``store``."""
    _, NY, NX = U.shape
    is2d = NY > 1
    path, x0, p0, x1, p1 = _eos_setup(eos, reactive)
    q0 = eos[0]
    q1 = eos[1]
    idx = 1.0 / dx
    idy = 1.0 / dy
    for j in range(ja, jb):
        rowstat[j, 0] = 0.0
        rowstat[j, 1] = 0.0
        rowstat[j, 2] = 0.0
        interior_row = (not is2d) or (NG <= j < NY - NG)
        for i0 in range(0, NX, TB):
            n = min(TB, NX - i0)
            _prim_tile(U, W, S, j, i0, n, path, q0, q1, x0, p0, x1, p1, Q, reactive, idx, idy,
                       is2d, store)
            qa = max(NG - i0, 0)
            qb = min(NX - NG - i0, n) if interior_row else qa
            rmax, nbad = _tile_scan_at(S, n, qa, qb, P_RATE, P_CODE)
            if rmax > rowstat[j, 2]:
                rowstat[j, 2] = rmax
            if nbad > 0 and rowstat[j, 0] == 0.0:
                for q in range(qa, qb):
                    if S[P_CODE + q] != 0.0:
                        rowstat[j, 0] = S[P_CODE + q]
                        rowstat[j, 1] = i0 + q
                        break


@nb.njit(**_JIT)
def _reduce_rowstat(rowstat, NY):
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


@nb.njit(**_IJIT)
def _primitives(U, W, S_all, eos, Q, reactive, dx, dy, rowstat, store, par):
    """Guard status, first bad cell and max wave rate of U's interior (W too if ``store``)."""
    task = np.int64(TASK_PRIM) if store else np.int64(TASK_GUARD)
    _run(task, U, U, U, W, S_all, eos, Q, reactive, np.int64(0), np.int64(0), dx, dy, 0.0, 0.0,
         0.0, rowstat, par)
    return _reduce_rowstat(rowstat, U.shape[1])


PAR_MIN_CELLS = 4096  # fewer cells per thread than this: fewer threads (sync costs more)


def scratch(nthreads, shape=None):
    """Per-thread scratch for :func:`step` / :func:`step_parallel`: one row block per share.

    With ``shape`` (of U) small problems get fewer shares (one share: use :func:`step`, which
    has no parallel region to compile or to wait on).
    """
    nt = max(int(nthreads), 1)
    if shape is not None:
        nt = max(1, min(nt, (shape[-1] * shape[-2]) // PAR_MIN_CELLS))
    return np.empty((nt, NSR * TS))


@nb.njit(**_JIT)
def primitives(U, W, eos, Q, reactive, dx, dy, rowstat):
    """Fill W (rho, u, v, p, lambda, c) everywhere; return (status, j, i, max wave rate).

    The max wave rate is max((|u|+c)/dx + (|v|+c)/dy) over all cells, ghosts included.
    """
    S_all = np.empty((1, NSR * TS))
    return _primitives(U, W, S_all, eos, Q, reactive, dx, dy, rowstat, np.bool_(True), False)


# ---------------------------------------------------------------------------------------------
# reconstruction, face thermodynamics, Riemann fluxes, update (one strip of one row)
# ---------------------------------------------------------------------------------------------


@nb.njit(**_JIT)
def _prim_ring(X, S, r, c0, m, slot, path, q0, q1, x0, p0, x1, p1, Q, reactive):
    """Primitives (rho, u, v, p, lambda) of cells c0..c0+m-1 of row r into ring slot ``slot``.

    Same arithmetic as :func:`_prim_tile` (no guard: that ran before the sweep). The slot is
    written through one view at constant offsets, so LLVM needs no alias checks between its rows.
    """
    R = S[S_RING + 5 * slot * TS:S_RING + 5 * (slot + 1) * TS]
    ur = X[RHO, r, c0:c0 + m]
    umx = X[MX, r, c0:c0 + m]
    umy = X[MY, r, c0:c0 + m]
    uen = X[EN, r, c0:c0 + m]
    url = X[RLAM, r, c0:c0 + m]
    if path == EOS_FAST:
        ixi, _, _ = _fast_ab(x0, p0)
        for q in range(m):
            rho = ur[q]
            rbad = not (rho > 0.0) or not np.isfinite(rho)
            rho = 1.0 if rbad else rho
            inv = 1.0 / rho
            u = umx[q] * inv
            v = umy[q] * inv
            R[q] = rho
            R[TS + q] = u
            R[2 * TS + q] = v
            R[3 * TS + q] = (uen[q] - 0.5 * rho * (u * u + v * v) - p0) * ixi
            R[4 * TS + q] = url[q] * inv
    elif path == EOS_FAST_MIX:
        for q in range(m):
            rho = ur[q]
            rbad = not (rho > 0.0) or not np.isfinite(rho)
            rho = 1.0 if rbad else rho
            inv = 1.0 / rho
            u = umx[q] * inv
            v = umy[q] * inv
            lam = url[q] * inv
            a = 1.0 - lam
            xi = a * x0 + lam * x1
            pi = a * p0 + lam * p1 - lam * rho * Q
            R[q] = rho
            R[TS + q] = u
            R[2 * TS + q] = v
            R[3 * TS + q] = (uen[q] - 0.5 * rho * (u * u + v * v) - pi) / xi
            R[4 * TS + q] = lam
    else:
        for q in range(m):
            rho = ur[q]
            rbad = not (rho > 0.0) or not np.isfinite(rho)
            rho = 1.0 if rbad else rho
            inv = 1.0 / rho
            u = umx[q] * inv
            v = umy[q] * inv
            lam = url[q] * inv
            xi, pi, _, _ = _mix_rows(q0, q1, rho, lam, Q, reactive)
            R[q] = rho
            R[TS + q] = u
            R[2 * TS + q] = v
            R[3 * TS + q] = (uen[q] - 0.5 * rho * (u * u + v * v) - pi) / xi
            R[4 * TS + q] = lam


@nb.njit(**_JIT)
def _recon_x(S, slot, n, lim):
    """Face states of the n + 1 x faces of a strip of n cells from ring slot ``slot``.

    The slot holds cells i0-2..i0+n+1; face f lies between cells i0-1+f and i0+f.
    """
    for k in range(5):
        oL = S_WL + k * TS
        oR = S_WR + k * TS
        o = S_RING + (5 * slot + k) * TS
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


@nb.njit(**_JIT)
def _recon_y(S, j, n, lim):
    """Face states of the y faces between rows j and j+1 (ring rows j-1..j+2), n columns.

    The normal velocity (slot 1) is v and the tangential one (slot 2) is u.
    """
    for k in range(5):
        src = 3 - k if (k == 1 or k == 2) else k
        oL = S_WL + k * TS
        oR = S_WR + k * TS + 1
        o0 = S_RING + (5 * ((j - 1) % 4) + src) * TS + 2
        o1 = S_RING + (5 * (j % 4) + src) * TS + 2
        o2 = S_RING + (5 * ((j + 1) % 4) + src) * TS + 2
        o3 = S_RING + (5 * ((j + 2) % 4) + src) * TS + 2
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


@nb.njit(cache=True, inline="always", error_model="numpy")
def _thermo_store(S, oE, oC, f, r, un, ut, p, xi, pi, c2):
    S[oC + f] = np.sqrt(c2) if c2 > 0.0 else 0.0
    S[oE + f] = xi * p + pi + 0.5 * r * (un * un + ut * ut)


@nb.njit(**_JIT)
def _thermo(S, m, path, q0, q1, x0, p0, x1, p1, Q, reactive):
    """Total energy and sound speed of both face states of faces 0..m-1."""
    for side in range(2):
        o = S_WL if side == 0 else S_WR + 1
        oE = S_EL if side == 0 else S_ER
        oC = S_CL if side == 0 else S_CR
        if path == EOS_FAST:
            _, A, B = _fast_ab(x0, p0)
            for f in range(m):
                r = S[o + f]
                p = S[o + 3 * TS + f]
                _thermo_store(S, oE, oC, f, r, S[o + TS + f], S[o + 2 * TS + f], p, x0, p0,
                              (A * p + B) / r)
        elif path == EOS_FAST_MIX:
            for f in range(m):
                r = S[o + f]
                p = S[o + 3 * TS + f]
                lam = S[o + 4 * TS + f]
                a = 1.0 - lam
                xi = a * x0 + lam * x1
                pi = a * p0 + lam * p1 - lam * r * Q
                c2 = ((xi + 1.0) * p + pi + lam * Q * r) / (xi * r)
                _thermo_store(S, oE, oC, f, r, S[o + TS + f], S[o + 2 * TS + f], p, xi, pi, c2)
        else:
            for f in range(m):
                r = S[o + f]
                p = S[o + 3 * TS + f]
                xi, pi, dxi, dpi = _mix_rows(q0, q1, r, S[o + 4 * TS + f], Q, reactive)
                _thermo_store(S, oE, oC, f, r, S[o + TS + f], S[o + 2 * TS + f], p, xi, pi,
                              _c2(r, p, xi, pi, dxi, dpi))


@nb.njit(**_JIT)
def _riemann(S, m, force_hll):
    """HLLC (HLL fallback) normal fluxes of faces 0..m-1; every case computed, one selected."""
    for f in range(m):
        rL = S[S_WL + f]
        uL = S[S_WL + TS + f]
        vL = S[S_WL + 2 * TS + f]
        pL = S[S_WL + 3 * TS + f]
        lL = S[S_WL + 4 * TS + f]
        rR = S[S_WR + f + 1]
        uR = S[S_WR + TS + f + 1]
        vR = S[S_WR + 2 * TS + f + 1]
        pR = S[S_WR + 3 * TS + f + 1]
        lR = S[S_WR + 4 * TS + f + 1]
        EL = S[S_EL + f]
        cL = S[S_CL + f]
        ER = S[S_ER + f]
        cR = S[S_CR + f]
        # Davis wave speeds and contact speed (see riemann.wave_speeds)
        sL = min(uL - cL, uR - cR)
        sR = max(uL + cL, uR + cR)
        den = rL * (sL - uL) - rR * (sR - uR)
        sS = (pR - pL + rL * uL * (sL - uL) - rR * uR * (sR - uR)) / den
        ok = den != 0.0 and sL < sS and sS < sR
        mL = rL * uL
        mR = rR * uR
        # HLL
        inv = 1.0 / (sR - sL)
        a = sR * sL
        h0 = (sR * mL - sL * mR + a * (rR - rL)) * inv
        h1 = (sR * (mL * uL + pL) - sL * (mR * uR + pR) + a * (mR - mL)) * inv
        h2 = (sR * mL * vL - sL * mR * vR + a * (rR * vR - rL * vL)) * inv
        h3 = (sR * uL * (EL + pL) - sL * uR * (ER + pR) + a * (ER - EL)) * inv
        h4 = (sR * mL * lL - sL * mR * lR + a * (rR * lR - rL * lL)) * inv
        # HLLC star flux of the side the contact leaves behind (Toro 10.38-10.39)
        left = sS >= 0.0
        s = sL if left else sR
        r = rL if left else rR
        u = uL if left else uR
        v = vL if left else vR
        p = pL if left else pR
        E = EL if left else ER
        lam = lL if left else lR
        mk = mL if left else mR
        fs = (s - u) / (s - sS)
        rs = r * fs
        Es = fs * (E + (sS - u) * (r * sS + p / (s - u)))
        c0 = mk + s * (rs - r)
        c1 = mk * u + p + s * (rs * sS - mk)
        c2 = mk * v + s * (rs * v - r * v)
        c3 = u * (E + p) + s * (Es - E)
        c4 = mk * lam + s * (rs * lam - r * lam)
        hll = force_hll or not ok
        f0 = h0 if hll else c0
        f1 = h1 if hll else c1
        f2 = h2 if hll else c2
        f3 = h3 if hll else c3
        f4 = h4 if hll else c4
        # supersonic: upwind physical flux
        if sR <= 0.0:
            f0 = mR
            f1 = mR * uR + pR
            f2 = mR * vR
            f3 = uR * (ER + pR)
            f4 = mR * lR
        if sL >= 0.0:
            f0 = mL
            f1 = mL * uL + pL
            f2 = mL * vL
            f3 = uL * (EL + pL)
            f4 = mL * lL
        S[S_F + f] = f0
        S[S_F + TS + f] = f1
        S[S_F + 2 * TS + f] = f2
        S[S_F + 3 * TS + f] = f3
        S[S_F + 4 * TS + f] = f4


@nb.njit(**_JIT)
def _store_y(S, n, dst):
    """Copy the y fluxes in S_F (normal frame) to rows dst.. in U order (swap the momenta)."""
    for k in range(5):
        src = S_F + (3 - k if (k == 1 or k == 2) else k) * TS
        o = dst + k * TS
        for q in range(n):
            S[o + q] = S[src + q]


@nb.njit(**_JIT)
def _update(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy):
    """Y = a*Z + b*X + c*d on cells i0..i0+n-1 of row j, d = -div F from the scratch fluxes."""
    in_place = Y.ctypes.data == Z.ctypes.data
    for k in range(5):
        oF = S_F + k * TS
        oO = S_YO + k * TS
        oN = S_YN + k * TS
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


@nb.njit(**_JIT)
def _y_faces(S, j, n, lim, path, q0, q1, x0, p0, x1, p1, Q, reactive, force_hll, dst):
    _recon_y(S, j, n, lim)
    _thermo(S, n, path, q0, q1, x0, p0, x1, p1, Q, reactive)
    _riemann(S, n, force_hll)
    _store_y(S, n, dst)


@nb.njit(**_JIT)
def _block(X, Z, Y, S, ja, jb, i0, n, eos, Q, reactive, force_hll, lim, inv_dx, inv_dy, a, b, c):
    """Rows ja..jb-1, columns i0..i0+n-1: Y = a*Z + b*X + c*L(X).

    Primitives of X are computed on the fly into a ring of 4 rows (2D: rows j-1..j+2 while
    row j is updated; each block computes 4 extra rows at its start and each strip 4 extra
    columns), so no full-size primitive array is read or written.
    """
    is2d = X.shape[1] > 1
    path, x0, p0, x1, p1 = _eos_setup(eos, reactive)
    q0 = eos[0]
    q1 = eos[1]
    c0 = i0 - 2
    m = n + 4
    if is2d:
        for r in range(ja - 2, ja + 2):
            _prim_ring(X, S, r, c0, m, r % 4, path, q0, q1, x0, p0, x1, p1, Q, reactive)
        _y_faces(S, ja - 1, n, lim, path, q0, q1, x0, p0, x1, p1, Q, reactive, force_hll,
                 np.int64(S_YO))
    else:
        _prim_ring(X, S, np.int64(0), c0, m, np.int64(0), path, q0, q1, x0, p0, x1, p1, Q,
                   reactive)
    for j in range(ja, jb):
        if is2d:
            _prim_ring(X, S, j + 2, c0, m, (j + 2) % 4, path, q0, q1, x0, p0, x1, p1, Q,
                       reactive)
            _y_faces(S, j, n, lim, path, q0, q1, x0, p0, x1, p1, Q, reactive, force_hll,
                     np.int64(S_YN))
        _recon_x(S, j % 4, n, lim)
        _thermo(S, n + 1, path, q0, q1, x0, p0, x1, p1, Q, reactive)
        _riemann(S, n + 1, force_hll)
        _update(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy)
        if is2d:
            for q in range(5 * TS):
                S[S_YO + q] = S[S_YN + q]


@nb.njit(**_JIT)
def _work(task, w, nt, X, Z, Y, W, S, eos, Q, reactive, solver, lim, dx, dy, a, b, c, rowstat):
    """Work share w of nt (see :func:`_run`)."""
    _, NY, NX = X.shape
    if task != TASK_SWEEP:
        _prim_rows(X, W, S, eos, Q, reactive, dx, dy, rowstat, w * NY // nt, (w + 1) * NY // nt,
                   task == TASK_PRIM)
        return
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
        _block(X, Z, Y, S, ja, jb, i0, n, eos, Q, reactive, force_hll, lim, inv_dx, inv_dy, a,
               b, c)


@nb.njit(**_PJIT)
def _run_parallel(task, nt, X, Z, Y, W, S_all, eos, Q, reactive, solver, lim, dx, dy, a, b, c,
                  rowstat):
    """The only parallel kernel (one small parfor to compile): one work share per thread."""
    for w in nb.prange(nt):
        _work(task, np.int64(w), nt, X, Z, Y, W, S_all[w], eos, Q, reactive, solver, lim, dx,
              dy, a, b, c, rowstat)


@nb.njit(**_IJIT)
def _run(task, X, Z, Y, W, S_all, eos, Q, reactive, solver, lim, dx, dy, a, b, c, rowstat, par):
    """Run a task in S_all.shape[0] work shares, in parallel if ``par`` (a literal: the serial
    callers never reference, hence never compile, the parallel kernel).

    TASK_GUARD / TASK_PRIM: guard and wave rate of X's rows into rowstat (and W for TASK_PRIM),
    rows split between shares. TASK_SWEEP: Y = a*Z + b*X + c*L(X) on interior cells,
    L(X) = -div F(X) (ghosts of X filled); shares split rows in 2D and strips in 1D. Y must
    not be X (its rows are read by neighbouring blocks); Y may be Z.
    """
    nt = S_all.shape[0]
    if task != TASK_SWEEP:
        nt = min(nt, X.shape[1])
    if par:
        if nt > 1:
            _run_parallel(task, nt, X, Z, Y, W, S_all, eos, Q, reactive, solver, lim, dx, dy, a,
                          b, c, rowstat)
            return
    for w in range(nt):
        _work(task, np.int64(w), np.int64(nt), X, Z, Y, W, S_all[w], eos, Q, reactive, solver,
              lim, dx, dy, a, b, c, rowstat)


@nb.njit(**_IJIT)
def _sweep(X, Z, Y, S_all, eos, Q, reactive, solver, lim, dx, dy, a, b, c, rowstat, par):
    """Y = a*Z + b*X + c*L(X) on interior cells (see :func:`_run`)."""
    _run(np.int64(TASK_SWEEP), X, Z, Y, X, S_all, eos, Q, reactive, solver, lim, dx, dy, a, b, c,
         rowstat, par)


@nb.njit(**_JIT)
def _copy(src, dst):
    a = src.reshape(-1)
    b = dst.reshape(-1)
    for i in range(a.size):
        b[i] = a[i]


@nb.njit(**_IJIT)
def _stage(X, W, S_all, eos, Q, reactive, dx, dy, codes, uwall, inflow, rowstat, par):
    """Ghosts of X, then its guard and wave rate (W is not needed by the sweep)."""
    fill_ghosts(X, codes, uwall, inflow, 1, MX, MY, EN)
    return _primitives(X, W, S_all, eos, Q, reactive, dx, dy, rowstat, np.bool_(False), par)


@nb.njit(**_IJIT)
def _rk(U, U0, W, dU, S_all, eos, Q, reactive, solver, lim, order, cfl, dt_max, dx, dy, codes,
        uwall, inflow, rowstat, par):
    """One SSP-RK step (order 2 or 3) of ``U`` in place (see :meth:`macro.models.EulerModel.step`).

    Stage states live in dU (and U0 for the third RK3 stage); U keeps the start of the step
    until the last stage writes the result, so after a guard failure (every guard runs before
    the sweep that uses its state) U is intact and is copied to U0.
    """
    status, bj, bi, rate = _stage(U, W, S_all, eos, Q, reactive, dx, dy, codes, uwall, inflow,
                                  rowstat, par)
    dt = 0.0
    if status == 0:
        dt = cfl / rate if rate > 0.0 else dt_max
        if dt > dt_max:
            dt = dt_max
        # U1 = U + dt L(U)
        _sweep(U, U, dU, S_all, eos, Q, reactive, solver, lim, dx, dy, 1.0, 0.0, dt, rowstat,
               par)
        status, bj, bi, _ = _stage(dU, W, S_all, eos, Q, reactive, dx, dy, codes, uwall, inflow,
                                   rowstat, par)
    if status == 0:
        if order == 2:
            # U = U/2 + (U1 + dt L(U1))/2
            _sweep(dU, U, U, S_all, eos, Q, reactive, solver, lim, dx, dy, 0.5, 0.5, 0.5 * dt,
                   rowstat, par)
            return 0, -1, -1, dt
        # U2 = 3U/4 + (U1 + dt L(U1))/4
        _sweep(dU, U, U0, S_all, eos, Q, reactive, solver, lim, dx, dy, 0.75, 0.25, 0.25 * dt,
               rowstat, par)
        status, bj, bi, _ = _stage(U0, W, S_all, eos, Q, reactive, dx, dy, codes, uwall, inflow,
                                   rowstat, par)
    if status == 0:
        # U = U/3 + 2 (U2 + dt L(U2))/3
        _sweep(U0, U, U, S_all, eos, Q, reactive, solver, lim, dx, dy, 1.0 / 3.0, 2.0 / 3.0,
               2.0 / 3.0 * dt, rowstat, par)
        return 0, -1, -1, dt
    _copy(U, U0)
    return status, bj, bi, dt


@nb.njit(**_JIT)
def wave_rate(U, W, S_all, eos, Q, reactive, dx, dy, codes, uwall, inflow, rowstat):
    """The CFL wave rate that the step's first stage takes (ghost fill and guard pass, W not
    written): a decomposed run reduces it over the ranks before it steps, so every rank takes
    the serial dt. A guard failure is left to the step."""
    return _stage(U, W, S_all, eos, Q, reactive, dx, dy, codes, uwall, inflow, rowstat, False)[3]


@nb.njit(**_JIT)
def step(U, U0, W, dU, S_all, eos, Q, reactive, solver, lim, order, cfl, dt_max, dx, dy, codes,
         uwall, inflow, rowstat):
    """One SSP-RK step, the work shares of S_all (:func:`scratch`) run one after the other."""
    return _rk(U, U0, W, dU, S_all, eos, Q, reactive, solver, lim, order, cfl, dt_max, dx, dy,
               codes, uwall, inflow, rowstat, False)


@nb.njit(**_JIT)
def step_parallel(U, U0, W, dU, S_all, eos, Q, reactive, solver, lim, order, cfl, dt_max, dx, dy,
                  codes, uwall, inflow, rowstat):
    """As :func:`step` with the work shares on Numba's threads (compiled on first use)."""
    return _rk(U, U0, W, dU, S_all, eos, Q, reactive, solver, lim, order, cfl, dt_max, dx, dy,
               codes, uwall, inflow, rowstat, True)


# ---------------------------------------------------------------------------------------------
# diagnostics and initial data
# ---------------------------------------------------------------------------------------------


@nb.njit(**_JIT)
def diagnostics(U, eos, Q, reactive, out):
    """out[0..4] = rho, u, v, p, T on the full array (T: lambda-weighted reactant/products T)."""
    _, NY, NX = U.shape
    q0 = eos[0]
    q1 = eos[1]
    for j in range(NY):
        for i in range(NX):
            rho = U[RHO, j, i]
            u = U[MX, j, i] / rho
            v = U[MY, j, i] / rho
            lam = U[RLAM, j, i] / rho
            xi, pi, _, _ = _mix_rows(q0, q1, rho, lam, Q, reactive)
            rhoe = U[EN, j, i] - 0.5 * (U[MX, j, i] * U[MX, j, i] + U[MY, j, i] * U[MY, j, i]) / rho
            p = (rhoe - pi) / xi
            xr, pr, _, _ = xi_pi(q0, rho)
            T = temperature(q0, rho, (xr * p + pr) / rho)
            if reactive:
                xp, pp, _, _ = xi_pi(q1, rho)
                T = (1.0 - lam) * T + lam * temperature(q1, rho, (xp * p + pp) / rho)
            out[0, j, i] = rho
            out[1, j, i] = u
            out[2, j, i] = v
            out[3, j, i] = p
            out[4, j, i] = T
            out[5, j, i] = lam


@nb.njit(**_JIT)
def conserved_from_primitive(rho, u, v, p, lam, eos, Q, reactive, U):
    """Fill U (NV, ny, nx) from primitive arrays of the same (ny, nx) shape."""
    ny, nx = rho.shape
    q0 = eos[0]
    q1 = eos[1]
    for j in range(ny):
        for i in range(nx):
            r = rho[j, i]
            xi, pi, _, _ = _mix_rows(q0, q1, r, lam[j, i], Q, reactive)
            U[RHO, j, i] = r
            U[MX, j, i] = r * u[j, i]
            U[MY, j, i] = r * v[j, i]
            U[EN, j, i] = xi * p[j, i] + pi + 0.5 * r * (u[j, i] ** 2 + v[j, i] ** 2)
            U[RLAM, j, i] = r * lam[j, i]
