"""Two-material five-equation diffuse-interface model (Allaire et al. 2002): fused Numba kernels.

Conserved/advected variables, shape (NV, NY, NX):
``alpha1*rho1, alpha2*rho2, rho*u, rho*v, E, alpha1, alpha1*rho1*lambda``.
Material 1 may react: its energy carries ``-lambda*rho1*Q`` (heat released inside material 1).
Mixture pressure from the xi/Pi form of every EOS:
``p = (rho*e - a1*Pi1(rho1) - a2*Pi2(rho2) + a1*rho1*lambda*Q) / (a1*xi1(rho1) + a2*xi2(rho2))``.
Volume fraction: ``d(a1)/dt + div(a1 u) = (a1 + K) div u`` with the face velocity of the HLLC
solver in both terms (keeps uniform pressure and velocity across interfaces). ``K = 0`` is
Allaire's model; with ``kapila`` set, ``K = (r2c2 - r1c1)/(r2c2/a2 + r1c1/a1)`` (rkck = rho_k c_k^2)
is Kapila's term that lets the gas compress in mixed cells.

Primitive work array W: rho1, rho2, u, v, p, alpha1, lambda, c (frozen), K.
"""

import numba as nb
import numpy as np

from .boundary import NG, fill_ghosts
from .eos import sound_speed_sq, temperature, xi_pi
from .limiters import faces
from .riemann import HLL, star_factor, wave_speeds

AR1, AR2, MX, MY, EN, ALPHA, ARL = 0, 1, 2, 3, 4, 5, 6
NV = 7
NW = 9
VAR_NAMES = ("alpha1_rho1", "alpha2_rho2", "rho_u", "rho_v", "E", "alpha1", "alpha1_rho1_lambda")

BAD_PARTIAL_DENSITY, BAD_ENERGY, BAD_SOUND_SPEED, BAD_VOLUME_FRACTION = 1, 2, 3, 4
GUARD_NAMES = {
    BAD_PARTIAL_DENSITY: "partial density",
    BAD_ENERGY: "pressure",
    BAD_SOUND_SPEED: "sound speed",
    BAD_VOLUME_FRACTION: "volume fraction",
}


@nb.njit(cache=True, inline="always")
def mixture(eos, r1, r2, a1, lam, Q):
    """(xi, Pi) of the mixture with phase densities r1, r2 (chemical term included in Pi)."""
    x1, p1, _, _ = xi_pi(eos[0], r1)
    x2, p2, _, _ = xi_pi(eos[1], r2)
    a2 = 1.0 - a1
    return a1 * x1 + a2 * x2, a1 * p1 + a2 * p2 - a1 * r1 * lam * Q, x1, x2


@nb.njit(cache=True, inline="always")
def mixture_sound(eos, r1, r2, a1, p, x1, x2):
    """Frozen mixture sound speed^2 (xi c^2 = sum Y_k xi_k c_k^2), and Kapila's K."""
    c21 = sound_speed_sq(eos[0], r1, p)
    c22 = sound_speed_sq(eos[1], r2, p)
    a2 = 1.0 - a1
    m1 = a1 * r1
    m2 = a2 * r2
    xi = a1 * x1 + a2 * x2
    c2 = (m1 * x1 * c21 + m2 * x2 * c22) / ((m1 + m2) * xi)
    z1 = r1 * c21
    z2 = r2 * c22
    K = (z2 - z1) / (z2 / a2 + z1 / a1)
    return c2, K


@nb.njit(cache=True, parallel=True)
def primitives(U, W, eos, Q, dx, dy, rowstat):
    _, NY, NX = U.shape
    is2d = NY > 1
    for j in nb.prange(NY):
        rowstat[j, 0] = 0.0
        rowstat[j, 1] = 0.0
        rowstat[j, 2] = 0.0
        interior_row = (not is2d) or (NG <= j < NY - NG)
        for i in range(NX):
            interior = interior_row and NG <= i < NX - NG
            m1 = U[AR1, j, i]
            m2 = U[AR2, j, i]
            a1 = U[ALPHA, j, i]
            bad = 0
            if not (m1 > 0.0 and m2 > 0.0) or not (np.isfinite(m1) and np.isfinite(m2)):
                bad = BAD_PARTIAL_DENSITY
            elif not (0.0 < a1 < 1.0):
                bad = BAD_VOLUME_FRACTION
            if bad != 0:
                if interior and rowstat[j, 0] == 0.0:
                    rowstat[j, 0] = bad
                    rowstat[j, 1] = i
                m1, m2, a1 = 0.5, 0.5, 0.5  # keeps ghost arithmetic finite
            rho = m1 + m2
            r1 = m1 / a1
            r2 = m2 / (1.0 - a1)
            u = U[MX, j, i] / rho
            v = U[MY, j, i] / rho
            lam = U[ARL, j, i] / m1
            xi, pi, x1, x2 = mixture(eos, r1, r2, a1, lam, Q)
            p = (U[EN, j, i] - 0.5 * rho * (u * u + v * v) - pi) / xi
            c2, K = mixture_sound(eos, r1, r2, a1, p, x1, x2)
            if interior and rowstat[j, 0] == 0.0:
                if not np.isfinite(p):
                    rowstat[j, 0] = BAD_ENERGY
                    rowstat[j, 1] = i
                elif not (c2 > 0.0) or not np.isfinite(c2):
                    rowstat[j, 0] = BAD_SOUND_SPEED
                    rowstat[j, 1] = i
            c = np.sqrt(c2) if c2 > 0.0 else 0.0
            W[0, j, i] = r1
            W[1, j, i] = r2
            W[2, j, i] = u
            W[3, j, i] = v
            W[4, j, i] = p
            W[5, j, i] = a1
            W[6, j, i] = lam
            W[7, j, i] = c
            W[8, j, i] = K if np.isfinite(K) else 0.0
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
def face_flux(eos, Q, solver, r1L, r2L, unL, utL, pL, aL, lL, r1R, r2R, unR, utR, pR, aR, lR):
    """Fluxes (m1, m2, normal mom, tangential mom, E, m1*lambda, alpha*u_face) and u_face."""
    m1L = aL * r1L
    m2L = (1.0 - aL) * r2L
    m1R = aR * r1R
    m2R = (1.0 - aR) * r2R
    rL = m1L + m2L
    rR = m1R + m2R
    xL, piL, x1L, x2L = mixture(eos, r1L, r2L, aL, lL, Q)
    xR, piR, x1R, x2R = mixture(eos, r1R, r2R, aR, lR, Q)
    c2L, _ = mixture_sound(eos, r1L, r2L, aL, pL, x1L, x2L)
    c2R, _ = mixture_sound(eos, r1R, r2R, aR, pR, x1R, x2R)
    cL = np.sqrt(c2L) if c2L > 0.0 else 0.0
    cR = np.sqrt(c2R) if c2R > 0.0 else 0.0
    EL = xL * pL + piL + 0.5 * rL * (unL * unL + utL * utL)
    ER = xR * pR + piR + 0.5 * rR * (unR * unR + utR * utR)
    sL, sR, sS, ok = wave_speeds(rL, unL, pL, cL, rR, unR, pR, cR)
    if sL >= 0.0:
        return (m1L * unL, m2L * unL, rL * unL * unL + pL, rL * unL * utL, unL * (EL + pL),
                m1L * lL * unL, aL * unL, unL)
    if sR <= 0.0:
        return (m1R * unR, m2R * unR, rR * unR * unR + pR, rR * unR * utR, unR * (ER + pR),
                m1R * lR * unR, aR * unR, unR)
    if solver == HLL or not ok:
        inv = 1.0 / (sR - sL)
        a = sR * sL

        def hll(fl, fr, ul, ur):
            return (sR * fl - sL * fr + a * (ur - ul)) * inv

        uf = (sR * unL - sL * unR) * inv
        return (hll(m1L * unL, m1R * unR, m1L, m1R),
                hll(m2L * unL, m2R * unR, m2L, m2R),
                hll(rL * unL * unL + pL, rR * unR * unR + pR, rL * unL, rR * unR),
                hll(rL * unL * utL, rR * unR * utR, rL * utL, rR * utR),
                hll(unL * (EL + pL), unR * (ER + pR), EL, ER),
                hll(m1L * lL * unL, m1R * lR * unR, m1L * lL, m1R * lR),
                hll(aL * unL, aR * unR, aL, aR), uf)
    if sS >= 0.0:
        s, un, ut, p, E, m1, m2, r, lam, al = sL, unL, utL, pL, EL, m1L, m2L, rL, lL, aL
    else:
        s, un, ut, p, E, m1, m2, r, lam, al = sR, unR, utR, pR, ER, m1R, m2R, rR, lR, aR
    f = star_factor(r, un, s, sS)
    Es = f * (E + (sS - un) * (r * sS + p / (s - un)))
    mn = r * un
    return (m1 * un + s * (f - 1.0) * m1,
            m2 * un + s * (f - 1.0) * m2,
            mn * un + p + s * (r * f * sS - mn),
            mn * ut + s * (f - 1.0) * r * ut,
            un * (E + p) + s * (Es - E),
            m1 * lam * un + s * (f - 1.0) * m1 * lam,
            al * sS, sS)


@nb.njit(cache=True, parallel=True)
def rhs(U, W, dU, FY, eos, Q, kapila, solver, lim, dx, dy, codes, uwall, inflow, rowstat):
    """dU for the five-equation model; FY (NV+1, NY+1, NX) holds y fluxes and face velocities."""
    fill_ghosts(U, codes, uwall, inflow, 2, MX, MY, EN)
    status, bj, bi, smax = primitives(U, W, eos, Q, dx, dy, rowstat)
    if status != 0:
        return status, bj, bi, smax
    _, NY, NX = U.shape
    is2d = NY > 1
    jlo, jhi = (NG, NY - NG) if is2d else (0, 1)
    inv_dx = 1.0 / dx
    for j in nb.prange(jlo, jhi):
        i = NG - 1
        _, r1L = faces(lim, W[0, j, i - 1], W[0, j, i], W[0, j, i + 1])
        _, r2L = faces(lim, W[1, j, i - 1], W[1, j, i], W[1, j, i + 1])
        _, uL = faces(lim, W[2, j, i - 1], W[2, j, i], W[2, j, i + 1])
        _, vL = faces(lim, W[3, j, i - 1], W[3, j, i], W[3, j, i + 1])
        _, pL = faces(lim, W[4, j, i - 1], W[4, j, i], W[4, j, i + 1])
        _, aL = faces(lim, W[5, j, i - 1], W[5, j, i], W[5, j, i + 1])
        _, lL = faces(lim, W[6, j, i - 1], W[6, j, i], W[6, j, i + 1])
        q0 = q1 = q2 = q3 = q4 = q5 = q6 = q7 = 0.0
        for i in range(NG - 1, NX - NG):
            r1R, r1N = faces(lim, W[0, j, i], W[0, j, i + 1], W[0, j, i + 2])
            r2R, r2N = faces(lim, W[1, j, i], W[1, j, i + 1], W[1, j, i + 2])
            uR, uN = faces(lim, W[2, j, i], W[2, j, i + 1], W[2, j, i + 2])
            vR, vN = faces(lim, W[3, j, i], W[3, j, i + 1], W[3, j, i + 2])
            pR, pN = faces(lim, W[4, j, i], W[4, j, i + 1], W[4, j, i + 2])
            aR, aN = faces(lim, W[5, j, i], W[5, j, i + 1], W[5, j, i + 2])
            lR, lN = faces(lim, W[6, j, i], W[6, j, i + 1], W[6, j, i + 2])
            f0, f1, f2, f3, f4, f5, fa, uf = face_flux(
                eos, Q, solver, r1L, r2L, uL, vL, pL, aL, lL, r1R, r2R, uR, vR, pR, aR, lR)
            if i >= NG:
                dU[AR1, j, i] = (q0 - f0) * inv_dx
                dU[AR2, j, i] = (q1 - f1) * inv_dx
                dU[MX, j, i] = (q2 - f2) * inv_dx
                dU[MY, j, i] = (q3 - f3) * inv_dx
                dU[EN, j, i] = (q4 - f4) * inv_dx
                dU[ARL, j, i] = (q5 - f5) * inv_dx
                K = W[8, j, i] if kapila else 0.0
                dU[ALPHA, j, i] = (q6 - fa + (W[5, j, i] + K) * (uf - q7)) * inv_dx
            q0, q1, q2, q3, q4, q5, q6, q7 = f0, f1, f2, f3, f4, f5, fa, uf
            r1L, r2L, uL, vL, pL, aL, lL = r1N, r2N, uN, vN, pN, aN, lN
    if not is2d:
        return 0, -1, -1, smax
    for j in nb.prange(NG, NY - NG + 1):
        for i in range(NG, NX - NG):
            _, r1L = faces(lim, W[0, j - 2, i], W[0, j - 1, i], W[0, j, i])
            _, r2L = faces(lim, W[1, j - 2, i], W[1, j - 1, i], W[1, j, i])
            _, uL = faces(lim, W[2, j - 2, i], W[2, j - 1, i], W[2, j, i])
            _, vL = faces(lim, W[3, j - 2, i], W[3, j - 1, i], W[3, j, i])
            _, pL = faces(lim, W[4, j - 2, i], W[4, j - 1, i], W[4, j, i])
            _, aL = faces(lim, W[5, j - 2, i], W[5, j - 1, i], W[5, j, i])
            _, lL = faces(lim, W[6, j - 2, i], W[6, j - 1, i], W[6, j, i])
            r1R, _ = faces(lim, W[0, j - 1, i], W[0, j, i], W[0, j + 1, i])
            r2R, _ = faces(lim, W[1, j - 1, i], W[1, j, i], W[1, j + 1, i])
            uR, _ = faces(lim, W[2, j - 1, i], W[2, j, i], W[2, j + 1, i])
            vR, _ = faces(lim, W[3, j - 1, i], W[3, j, i], W[3, j + 1, i])
            pR, _ = faces(lim, W[4, j - 1, i], W[4, j, i], W[4, j + 1, i])
            aR, _ = faces(lim, W[5, j - 1, i], W[5, j, i], W[5, j + 1, i])
            lR, _ = faces(lim, W[6, j - 1, i], W[6, j, i], W[6, j + 1, i])
            f0, f1, f2, f3, f4, f5, fa, uf = face_flux(
                eos, Q, solver, r1L, r2L, vL, uL, pL, aL, lL, r1R, r2R, vR, uR, pR, aR, lR)
            FY[AR1, j, i] = f0
            FY[AR2, j, i] = f1
            FY[MX, j, i] = f3
            FY[MY, j, i] = f2
            FY[EN, j, i] = f4
            FY[ARL, j, i] = f5
            FY[ALPHA, j, i] = fa
            FY[NV, j, i] = uf
    inv_dy = 1.0 / dy
    for j in nb.prange(NG, NY - NG):
        for i in range(NG, NX - NG):
            for k in range(NV):
                if k != ALPHA:
                    dU[k, j, i] += (FY[k, j, i] - FY[k, j + 1, i]) * inv_dy
            K = W[8, j, i] if kapila else 0.0
            dU[ALPHA, j, i] += (FY[ALPHA, j, i] - FY[ALPHA, j + 1, i]
                                + (W[5, j, i] + K) * (FY[NV, j + 1, i] - FY[NV, j, i])) * inv_dy
    return 0, -1, -1, smax


@nb.njit(cache=True, parallel=True)
def diagnostics(U, eos, Q, out):
    """out[0..6] = rho, u, v, p, T1 (material-1 temperature at its phase density), alpha1, lambda."""
    _, NY, NX = U.shape
    for j in nb.prange(NY):
        for i in range(NX):
            m1 = U[AR1, j, i]
            m2 = U[AR2, j, i]
            a1 = U[ALPHA, j, i]
            rho = m1 + m2
            r1 = m1 / a1
            r2 = m2 / (1.0 - a1)
            u = U[MX, j, i] / rho
            v = U[MY, j, i] / rho
            lam = U[ARL, j, i] / m1
            xi, pi, x1, _ = mixture(eos, r1, r2, a1, lam, Q)
            p = (U[EN, j, i] - 0.5 * rho * (u * u + v * v) - pi) / xi
            _, p1, _, _ = xi_pi(eos[0], r1)
            out[0, j, i] = rho
            out[1, j, i] = u
            out[2, j, i] = v
            out[3, j, i] = p
            out[4, j, i] = temperature(eos[0], r1, (x1 * p + p1) / r1)
            out[5, j, i] = a1
            out[6, j, i] = lam


@nb.njit(cache=True)
def conserved_from_primitive(r1, r2, a1, u, v, p, lam, eos, Q, U):
    ny, nx = r1.shape
    for j in range(ny):
        for i in range(nx):
            a = a1[j, i]
            xi, pi, _, _ = mixture(eos, r1[j, i], r2[j, i], a, lam[j, i], Q)
            rho = a * r1[j, i] + (1.0 - a) * r2[j, i]
            U[AR1, j, i] = a * r1[j, i]
            U[AR2, j, i] = (1.0 - a) * r2[j, i]
            U[MX, j, i] = rho * u[j, i]
            U[MY, j, i] = rho * v[j, i]
            U[EN, j, i] = xi * p[j, i] + pi + 0.5 * rho * (u[j, i] ** 2 + v[j, i] ** 2)
            U[ALPHA, j, i] = a
            U[ARL, j, i] = a * r1[j, i] * lam[j, i]
