"""Single-fluid (optionally reactive) Euler equations: fused Numba kernels.

Conserved variables, shape (NV, NY, NX) with NG ghost layers (NY == 1 in 1D, no y ghosts):
``rho, rho*u, rho*v, E, rho*lambda``. A reactive cell is a mixture at common density of reactant
(EOS 0) and products (EOS 1) with mass fraction lambda of products; the heat of reaction Q lowers
the products' energy: ``rho*e = xi*p + Pi - lambda*rho*Q`` with xi, Pi mixed linearly in lambda.
Non-reactive runs use EOS 0 only and carry lambda as a passive scalar.

:func:`rhs` is one fused stage (boundary fill, primitives with the guard, fluxes); the RK driver
lives in :mod:`macro.steppers`.
"""

import numba as nb
import numpy as np

from .boundary import NG, fill_ghosts
from .eos import temperature, xi_pi
from .limiters import faces
from .riemann import HLL, star_energy, star_factor, wave_speeds

RHO, MX, MY, EN, RLAM = 0, 1, 2, 3, 4
NV = 5
NW = 6  # primitive work array: rho, u, v, p, lambda, c
VAR_NAMES = ("rho", "rho_u", "rho_v", "E", "rho_lambda")

# guard status codes (0 = ok); the Python side turns them into a NonPhysicalStateError
BAD_DENSITY, BAD_ENERGY, BAD_SOUND_SPEED = 1, 2, 3
GUARD_NAMES = {BAD_DENSITY: "density", BAD_ENERGY: "pressure", BAD_SOUND_SPEED: "sound speed"}


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
def _c2(rho, p, xi, pi, dxi, dpi):
    e = (xi * p + pi) / rho
    return (e + p / rho - dpi - p * dxi) / xi


@nb.njit(cache=True, inline="always")
def cell_pressure(eos, Q, reactive, rho, mx, my, E, rlam):
    lam = rlam / rho
    xi, pi, _, _ = mix_xi_pi(eos, rho, lam, Q, reactive)
    rhoe = E - 0.5 * (mx * mx + my * my) / rho
    return (rhoe - pi) / xi


@nb.njit(cache=True, parallel=True)
def primitives(U, W, eos, Q, reactive, dx, dy, rowstat):
    """Fill W (rho, u, v, p, lambda, c) everywhere; return (status, j, i, max wave rate).

    The max wave rate is max((|u|+c)/dx + (|v|+c)/dy) over all cells, ghosts included.
    """
    _, NY, NX = U.shape
    is2d = NY > 1
    for j in nb.prange(NY):
        rowstat[j, 0] = 0.0
        rowstat[j, 1] = 0.0
        rowstat[j, 2] = 0.0
        interior_row = (not is2d) or (NG <= j < NY - NG)
        for i in range(NX):
            rho = U[RHO, j, i]
            interior = interior_row and NG <= i < NX - NG
            if not (rho > 0.0) or not np.isfinite(rho):
                if interior and rowstat[j, 0] == 0.0:
                    rowstat[j, 0] = BAD_DENSITY
                    rowstat[j, 1] = i
                rho = 1.0  # keeps ghost-cell arithmetic finite; interior failures are reported
            u = U[MX, j, i] / rho
            v = U[MY, j, i] / rho
            lam = U[RLAM, j, i] / rho
            xi, pi, dxi, dpi = mix_xi_pi(eos, rho, lam, Q, reactive)
            p = (U[EN, j, i] - 0.5 * rho * (u * u + v * v) - pi) / xi
            c2 = _c2(rho, p, xi, pi, dxi, dpi)
            if interior and rowstat[j, 0] == 0.0:
                if not np.isfinite(p):
                    rowstat[j, 0] = BAD_ENERGY
                    rowstat[j, 1] = i
                elif not (c2 > 0.0) or not np.isfinite(c2):
                    rowstat[j, 0] = BAD_SOUND_SPEED
                    rowstat[j, 1] = i
            c = np.sqrt(c2) if c2 > 0.0 else 0.0
            W[0, j, i] = rho
            W[1, j, i] = u
            W[2, j, i] = v
            W[3, j, i] = p
            W[4, j, i] = lam
            W[5, j, i] = c
            # all cells, ghosts too: an inflow state may be faster than the interior
            rate = (abs(u) + c) / dx
            if is2d:
                rate += (abs(v) + c) / dy
            if rate > rowstat[j, 2]:
                rowstat[j, 2] = rate
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


@nb.njit(cache=True, inline="always")
def face_flux(eos, Q, reactive, solver, rL, unL, utL, pL, lL, rR, unR, utR, pR, lR):
    """Normal flux (mass, normal mom, tangential mom, energy, rho*lambda) across one face."""
    xL, piL, dxL, dpL = mix_xi_pi(eos, rL, lL, Q, reactive)
    xR, piR, dxR, dpR = mix_xi_pi(eos, rR, lR, Q, reactive)
    c2L = _c2(rL, pL, xL, piL, dxL, dpL)
    c2R = _c2(rR, pR, xR, piR, dxR, dpR)
    cL = np.sqrt(c2L) if c2L > 0.0 else 0.0
    cR = np.sqrt(c2R) if c2R > 0.0 else 0.0
    EL = xL * pL + piL + 0.5 * rL * (unL * unL + utL * utL)
    ER = xR * pR + piR + 0.5 * rR * (unR * unR + utR * utR)
    sL, sR, sS, ok = wave_speeds(rL, unL, pL, cL, rR, unR, pR, cR)
    # left and right physical fluxes
    mL = rL * unL
    mR = rR * unR
    if sL >= 0.0:
        return mL, mL * unL + pL, mL * utL, unL * (EL + pL), mL * lL
    if sR <= 0.0:
        return mR, mR * unR + pR, mR * utR, unR * (ER + pR), mR * lR
    if solver == HLL or not ok:
        inv = 1.0 / (sR - sL)
        a = sR * sL
        f0 = (sR * mL - sL * mR + a * (rR - rL)) * inv
        f1 = (sR * (mL * unL + pL) - sL * (mR * unR + pR) + a * (mR - mL)) * inv
        f2 = (sR * mL * utL - sL * mR * utR + a * (rR * utR - rL * utL)) * inv
        f3 = (sR * unL * (EL + pL) - sL * unR * (ER + pR) + a * (ER - EL)) * inv
        f4 = (sR * mL * lL - sL * mR * lR + a * (rR * lR - rL * lL)) * inv
        return f0, f1, f2, f3, f4
    if sS >= 0.0:
        f = star_factor(rL, unL, sL, sS)
        rs = rL * f
        Es = star_energy(rL, unL, pL, EL, sL, sS)
        return (mL + sL * (rs - rL),
                mL * unL + pL + sL * (rs * sS - mL),
                mL * utL + sL * (rs * utL - rL * utL),
                unL * (EL + pL) + sL * (Es - EL),
                mL * lL + sL * (rs * lL - rL * lL))
    f = star_factor(rR, unR, sR, sS)
    rs = rR * f
    Es = star_energy(rR, unR, pR, ER, sR, sS)
    return (mR + sR * (rs - rR),
            mR * unR + pR + sR * (rs * sS - mR),
            mR * utR + sR * (rs * utR - rR * utR),
            unR * (ER + pR) + sR * (Es - ER),
            mR * lR + sR * (rs * lR - rR * lR))


@nb.njit(cache=True, parallel=True)
def rhs(U, W, dU, FY, eos, Q, reactive, solver, lim, dx, dy, codes, uwall, inflow, rowstat):
    """dU = -div F(U) (interior cells); returns the guard status and CFL wave rate of U."""
    fill_ghosts(U, codes, uwall, inflow, 1, MX, MY, EN)
    status, bj, bi, smax = primitives(U, W, eos, Q, reactive, dx, dy, rowstat)
    if status != 0:
        return status, bj, bi, smax
    _, NY, NX = U.shape
    is2d = NY > 1
    jlo, jhi = (NG, NY - NG) if is2d else (0, 1)
    inv_dx = 1.0 / dx
    for j in nb.prange(jlo, jhi):
        # right face of cell NG-1 seeds the sweep; each cell is reconstructed once
        i = NG - 1
        _, rL = faces(lim, W[0, j, i - 1], W[0, j, i], W[0, j, i + 1])
        _, uL = faces(lim, W[1, j, i - 1], W[1, j, i], W[1, j, i + 1])
        _, vL = faces(lim, W[2, j, i - 1], W[2, j, i], W[2, j, i + 1])
        _, pL = faces(lim, W[3, j, i - 1], W[3, j, i], W[3, j, i + 1])
        _, lL = faces(lim, W[4, j, i - 1], W[4, j, i], W[4, j, i + 1])
        p0 = p1 = p2 = p3 = p4 = 0.0
        for i in range(NG - 1, NX - NG):
            rR, rN = faces(lim, W[0, j, i], W[0, j, i + 1], W[0, j, i + 2])
            uR, uN = faces(lim, W[1, j, i], W[1, j, i + 1], W[1, j, i + 2])
            vR, vN = faces(lim, W[2, j, i], W[2, j, i + 1], W[2, j, i + 2])
            pR, pN = faces(lim, W[3, j, i], W[3, j, i + 1], W[3, j, i + 2])
            lR, lN = faces(lim, W[4, j, i], W[4, j, i + 1], W[4, j, i + 2])
            f0, f1, f2, f3, f4 = face_flux(eos, Q, reactive, solver,
                                           rL, uL, vL, pL, lL, rR, uR, vR, pR, lR)
            if i >= NG:
                dU[0, j, i] = (p0 - f0) * inv_dx
                dU[1, j, i] = (p1 - f1) * inv_dx
                dU[2, j, i] = (p2 - f2) * inv_dx
                dU[3, j, i] = (p3 - f3) * inv_dx
                dU[4, j, i] = (p4 - f4) * inv_dx
            p0, p1, p2, p3, p4 = f0, f1, f2, f3, f4
            rL, uL, vL, pL, lL = rN, uN, vN, pN, lN
    if not is2d:
        return 0, -1, -1, smax
    # y fluxes at faces j-1/2 for j in [NG, NY-NG], stored then differenced (race-free rows)
    for j in nb.prange(NG, NY - NG + 1):
        for i in range(NG, NX - NG):
            _, rL = faces(lim, W[0, j - 2, i], W[0, j - 1, i], W[0, j, i])
            _, uL = faces(lim, W[1, j - 2, i], W[1, j - 1, i], W[1, j, i])
            _, vL = faces(lim, W[2, j - 2, i], W[2, j - 1, i], W[2, j, i])
            _, pL = faces(lim, W[3, j - 2, i], W[3, j - 1, i], W[3, j, i])
            _, lL = faces(lim, W[4, j - 2, i], W[4, j - 1, i], W[4, j, i])
            rR, _ = faces(lim, W[0, j - 1, i], W[0, j, i], W[0, j + 1, i])
            uR, _ = faces(lim, W[1, j - 1, i], W[1, j, i], W[1, j + 1, i])
            vR, _ = faces(lim, W[2, j - 1, i], W[2, j, i], W[2, j + 1, i])
            pR, _ = faces(lim, W[3, j - 1, i], W[3, j, i], W[3, j + 1, i])
            lR, _ = faces(lim, W[4, j - 1, i], W[4, j, i], W[4, j + 1, i])
            f0, f1, f2, f3, f4 = face_flux(eos, Q, reactive, solver,
                                           rL, vL, uL, pL, lL, rR, vR, uR, pR, lR)
            FY[0, j, i] = f0
            FY[1, j, i] = f2  # x-momentum is the tangential component here
            FY[2, j, i] = f1
            FY[3, j, i] = f3
            FY[4, j, i] = f4
    inv_dy = 1.0 / dy
    for j in nb.prange(NG, NY - NG):
        for k in range(NV):
            for i in range(NG, NX - NG):
                dU[k, j, i] += (FY[k, j, i] - FY[k, j + 1, i]) * inv_dy
    return 0, -1, -1, smax


@nb.njit(cache=True, parallel=True)
def diagnostics(U, eos, Q, reactive, out):
    """out[0..4] = rho, u, v, p, T on the full array (T: lambda-weighted reactant/products T)."""
    _, NY, NX = U.shape
    for j in nb.prange(NY):
        for i in range(NX):
            rho = U[RHO, j, i]
            u = U[MX, j, i] / rho
            v = U[MY, j, i] / rho
            lam = U[RLAM, j, i] / rho
            p = cell_pressure(eos, Q, reactive, rho, U[MX, j, i], U[MY, j, i], U[EN, j, i],
                              U[RLAM, j, i])
            xr, pr, _, _ = xi_pi(eos[0], rho)
            T = temperature(eos[0], rho, (xr * p + pr) / rho)
            if reactive:
                xp, pp, _, _ = xi_pi(eos[1], rho)
                T = (1.0 - lam) * T + lam * temperature(eos[1], rho, (xp * p + pp) / rho)
            out[0, j, i] = rho
            out[1, j, i] = u
            out[2, j, i] = v
            out[3, j, i] = p
            out[4, j, i] = T
            out[5, j, i] = lam


@nb.njit(cache=True)
def conserved_from_primitive(rho, u, v, p, lam, eos, Q, reactive, U):
    """Fill U (NV, ny, nx) from primitive arrays of the same (ny, nx) shape."""
    ny, nx = rho.shape
    for j in range(ny):
        for i in range(nx):
            r = rho[j, i]
            xi, pi, _, _ = mix_xi_pi(eos, r, lam[j, i], Q, reactive)
            U[RHO, j, i] = r
            U[MX, j, i] = r * u[j, i]
            U[MY, j, i] = r * v[j, i]
            U[EN, j, i] = xi * p[j, i] + pi + 0.5 * r * (u[j, i] ** 2 + v[j, i] ** 2)
            U[RLAM, j, i] = r * lam[j, i]

