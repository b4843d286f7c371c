"""Single-fluid (optionally reactive) Euler equations: tiled, vectorisable Numba kernels.

Conserved variables, shape (NV, NY, NX) with NG ghost layers (NY == 1 in 1D, no y ghosts):
``rho, rho*u, rho*v, E, rho*lambda``. A reactive cell is a mixture at common density of reactant
(EOS 0) and products (EOS 1) with mass fraction lambda of products; the heat of reaction Q lowers
the products' energy: ``rho*e = xi*p + Pi - lambda*rho*Q`` with xi, Pi mixed linearly in lambda.
Non-reactive runs use EOS 0 only and carry lambda as a passive scalar.

Scheme: MUSCL (minmod/MC/van Leer) on primitive variables, HLLC with HLL fallback, unsplit in
2D; :func:`step` is one SSP-RK2/RK3 step of the stepper shared with the five-equation model
(:mod:`macro.stepper`: RK driver, guard pass, work sharing, strip/ring sweep, reconstruction).
This module gives it the model's pieces: the guard/primitive tile, the ring of primitive rows
(recomputed from the stage state: cheaper here than a stored primitive array), the face
thermodynamics, the HLLC fluxes and the update.

Ideal and stiffened gases (and reactive mixtures of the two) take a fast path with constant
xi, Pi and c^2 = (A p + B)/rho; any other EOS goes through :func:`macro.eos.xi_pi` per state.
Hot loops carry no call on the fast paths and vectorise.
"""

import numba as nb
import numpy as np

from . import stepper
from .eos import KIND_IDEAL, KIND_STIFFENED, temperature, xi_pi
from .riemann import davis_speeds, star_state
from .stepper import SWEEP_JIT, TS, recon_x, recon_y, store_y, update_row

RHO, MX, MY, EN, RLAM = 0, 1, 2, 3, 4
NV = 5
NW = 6  # primitive work array: rho, u, v, p, lambda, c
VAR_NAMES = ("rho", "rho_u", "rho_v", "E", "rho_lambda")

# guard status codes (0 = ok); the Python side turns them into a NonPhysicalStateError
BAD_DENSITY, BAD_ENERGY, BAD_SOUND_SPEED = 1, 2, 3
GUARD_NAMES = {BAD_DENSITY: "density", BAD_ENERGY: "pressure", BAD_SOUND_SPEED: "sound speed"}

# EOS evaluation paths
EOS_FAST, EOS_FAST_MIX, EOS_GENERAL = 0, 1, 2

# per-thread scratch rows (stride TS, :mod:`macro.stepper`)
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
# the stepper's layout: 1 density for a wall's ghost momentum, momentum/energy rows, no stored W
LAYOUT = (1, MX, MY, EN, False, P_RATE, P_CODE, S_YO, S_YN, 5 * TS)

_JIT = {"cache": True, "error_model": "numpy"}
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


@nb.njit(**SWEEP_JIT)
def _prim_tile(U, W, S, j, i0, n, mc, dx, dy, is2d, store):
    """Guard codes and wave rates (and W if ``store``) of cells i0..i0+n-1 of row j.

    One loop per EOS path so that the ideal/stiffened loops carry no call and vectorise; rows
    are taken as views so that indices start at 0 (no negative-index wraparound, no gathers).
    """
    path, q0, q1, x0, p0, x1, p1, Q, reactive = mc
    idx = 1.0 / dx
    idy = 1.0 / dy
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


def scratch(nthreads, shape=None):
    """Per-thread scratch for :func:`step` / :func:`step_parallel`
    (:func:`macro.stepper.scratch`)."""
    return stepper.scratch(nthreads, shape, NSR)


@nb.njit(**_JIT)
def _consts(eos, Q, reactive):
    """The model constants the stepper hands to this module's functions."""
    path, x0, p0, x1, p1 = _eos_setup(eos, reactive)
    return path, eos[0], eos[1], x0, p0, x1, p1, Q, reactive


# ---------------------------------------------------------------------------------------------
# reconstruction, face thermodynamics, Riemann fluxes, update (one strip of one row)
# ---------------------------------------------------------------------------------------------


@nb.njit(**SWEEP_JIT)
def _prim_ring(X, W, S, r, c0, m, slot, mc):
    """Primitives (rho, u, v, p, lambda) of cells c0..c0+m-1 of row r into ring slot ``slot``.

    Same arithmetic as :func:`_prim_tile` (no guard: that ran before the sweep). The slot is
    written through one view at constant offsets, so LLVM needs no alias checks between its rows.
    """
    path, q0, q1, x0, p0, x1, p1, Q, reactive = mc
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


@nb.njit(cache=True, inline="always", error_model="numpy")
def _thermo_store(S, oE, oC, f, r, un, ut, p, xi, pi, c2):
    S[oC + f] = np.sqrt(c2) if c2 > 0.0 else 0.0
    S[oE + f] = xi * p + pi + 0.5 * r * (un * un + ut * ut)


@nb.njit(**SWEEP_JIT)
def _thermo(S, m, mc):
    """Total energy and sound speed of both face states of faces 0..m-1."""
    path, q0, q1, x0, p0, x1, p1, Q, reactive = mc
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


@nb.njit(**SWEEP_JIT)
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
        sL, sR, sS, ok = davis_speeds(rL, uL, pL, cL, rR, uR, pR, cR)
        mL = rL * uL
        mR = rR * uR
        # HLL (as riemann.hll_flux, associated so that sR*mL and sL*mR are shared: measured
        # ~15% faster sweeps than the hll_flux form)
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
        fs, Es = star_state(s, u, r, p, E, sS)
        rs = r * fs
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


@nb.njit(**SWEEP_JIT)
def _update(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, mc):
    """Y = a*Z + b*X + c*d on cells i0..i0+n-1 of row j, d = -div F from the scratch fluxes."""
    for k in range(NV):
        update_row(X, Z, Y, S, k, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, S_F + k * TS,
                   S_YO + k * TS, S_YN + k * TS)


@nb.njit(**SWEEP_JIT)
def _y_faces(S, j, n, lim, mc, force_hll, dst):
    """Fluxes through the y faces between rows j and j+1 into rows dst.. (U order)."""
    recon_y(S, j, n, lim, NV, S_RING, NV, 1, 0, NV)
    _thermo(S, n, mc)
    _riemann(S, n, force_hll)
    store_y(S, n, S_F, dst, NV, 1)


@nb.njit(**SWEEP_JIT)
def _x_faces(S, slot, n, lim, mc, force_hll):
    """Fluxes through the n + 1 x faces of the strip (ring slot ``slot``) into rows S_F.."""
    recon_x(S, slot, n, lim, NV, S_RING, NV, 0, NV)
    _thermo(S, n + 1, mc)
    _riemann(S, n + 1, force_hll)


@nb.njit(**_PJIT)
def _run_parallel(task, nt, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b, c, rowstat):
    """The only parallel kernel (one small parfor to compile): one work share per thread. The
    constants enter the parallel region one by one (a parfor takes no tuple of arrays)."""
    path, q0, q1, x0, p0, x1, p1, Q, reactive = mc
    for w in nb.prange(nt):
        stepper.work(_prim_tile, _prim_ring, _y_faces, _x_faces, _update, LAYOUT, task,
                     np.int64(w), nt, X, Z, Y, W, S_all[w],
                     (path, q0, q1, x0, p0, x1, p1, Q, reactive), solver, lim, dx, dy, a, b, c,
                     rowstat)


@nb.njit(**_JIT)
def primitives(U, W, eos, Q, reactive, dx, dy, rowstat):
    """Fill W (rho, u, v, p, lambda, c) everywhere; return (status, j, i, max wave rate).

    The max wave rate is max((|u|+c)/dx + (|v|+c)/dy) over all cells, ghosts included.
    """
    S_all = np.empty((1, NSR * TS))
    return stepper.primitives(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update,
                              LAYOUT, U, W, S_all, _consts(eos, Q, reactive), dx, dy, rowstat,
                              True, False)


@nb.njit(**_JIT)
def wave_rate(U, W, S_all, eos, Q, reactive, dx, dy, codes, uwall, inflow, rowstat):
    """The CFL wave rate that the step's first stage takes (ghost fill and guard pass, W not
    written): a decomposed run reduces it over the ranks before it steps, so every rank takes
    the serial dt. A guard failure is left to the step."""
    return stepper.stage(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update,
                         LAYOUT, U, W, S_all, _consts(eos, Q, reactive), dx, dy, codes, uwall,
                         inflow, rowstat, False)[3]


@nb.njit(**_JIT)
def step(U, U0, W, dU, S_all, eos, Q, reactive, solver, lim, order, cfl, dt_max, dx, dy, codes,
         uwall, inflow, rowstat):
    """One SSP-RK step (:func:`macro.stepper.rk`), the work shares of S_all (:func:`scratch`)
    run one after the other: (status, j, i, dt)."""
    return stepper.rk(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update, LAYOUT,
                      U, U0, W, dU, S_all, _consts(eos, Q, reactive), solver, lim, order, cfl,
                      dt_max, dx, dy, codes, uwall, inflow, rowstat, False)


@nb.njit(**_JIT)
def step_parallel(U, U0, W, dU, S_all, eos, Q, reactive, solver, lim, order, cfl, dt_max, dx, dy,
                  codes, uwall, inflow, rowstat):
    """As :func:`step` with the work shares on Numba's threads (compiled on first use)."""
    return stepper.rk(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update, LAYOUT,
                      U, U0, W, dU, S_all, _consts(eos, Q, reactive), solver, lim, order, cfl,
                      dt_max, dx, dy, codes, uwall, inflow, rowstat, True)


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
