"""Two-material five-equation diffuse-interface model (Allaire et al. 2002): tiled Numba kernels.

Conserved/advected variables, shape (NV, NY, NX):
``alpha1*rho1, alpha2*rho2, rho*u, rho*v, E, alpha1, alpha1*rho1*lambda``.
Material 1 may react: its energy carries ``-lambda*rho1*Q`` (heat released inside material 1);
when its packed EOS carries a products EOS (:class:`macro.eos.ReactiveEOS`) its xi and Pi mix
reactant and products at the phase density by lambda (:func:`phase1_xi_pi`).
Mixture pressure from the xi/Pi form of every EOS:
``p = (rho*e - a1*Pi1(rho1) - a2*Pi2(rho2) + a1*rho1*lambda*Q) / (a1*xi1(rho1) + a2*xi2(rho2))``.
Volume fraction: ``d(a1)/dt + div(a1 u) = (a1 + K) div u`` with the face velocity of the HLLC
solver in both terms (keeps uniform pressure and velocity across interfaces). ``K = 0`` is
Allaire's model; with ``kapila`` set, ``K = (r2c2 - r1c1)/(r2c2/a2 + r1c1/a1)`` (rkck = rho_k c_k^2)
is Kapila's term that lets the gas compress in mixed cells.

Primitive work array W: rho1, rho2, u, v, p, alpha1, lambda, c (frozen), K, and each phase's
EOS data xi_k, Pi_k, z_k = rho_k xi_k c_k^2 (phase 1's at its lambda).

The kernel is the stepper shared with :mod:`macro.euler` (:mod:`macro.stepper`: RK driver,
guard pass, work sharing, strip/ring sweep, reconstruction) with this module's pieces: the guard
pass (:func:`_prim_tile`) stores the stage's primitives and each phase's EOS data in W and the
sweep's ring reads them there (the EOS is evaluated once per cell and stage; at a face that is
nearly pure in a material, that material's xi, Pi and rho xi c^2 are reconstructed like the
primitives instead of evaluated, :func:`_thermo`); the HLLC fluxes with the face velocity, and
the update of alpha1 with its (a1 + K) div u. When both materials are ideal/stiffened gases
their constant xi, Pi are hoisted out of the loops (no per-state EOS calls, so the loops
vectorise); a Hayes material 1 next to such a gas (the data generation's
HMX and pore gas) has its EOS inline in a vectorised loop, its one power per state in a loop of
its own (:func:`_phase_eos`); any other EOS goes through :func:`macro.eos.xi_pi` per state, in a
loop of its own, and the mixture arithmetic runs in a separate loop that vectorises.
"""

import numba as nb
import numpy as np

from . import stepper
from .eos import (
    KIND_HAYES,
    KIND_IDEAL,
    KIND_JWL,
    KIND_STIFFENED,
    PRODUCTS_FLAG,
    PRODUCTS_OFF,
    hayes_consts,
    hayes_power_c,
    hayes_xi_pi_c,
    jwl_xi_pi,
    temperature,
    xi_pi,
    xi_pi_tref,
)
from .riemann import davis_speeds, hll_flux, star_state
from .stepper import SWEEP_JIT, TS, recon_x, recon_y, store_y, update_row

AR1, AR2, MX, MY, EN, ALPHA, ARL = 0, 1, 2, 3, 4, 5, 6
NV = 7
NW = 15
VAR_NAMES = ("alpha1_rho1", "alpha2_rho2", "rho_u", "rho_v", "E", "alpha1", "alpha1_rho1_lambda")

BAD_PARTIAL_DENSITY, BAD_ENERGY, BAD_SOUND_SPEED, BAD_VOLUME_FRACTION = 1, 2, 3, 4
GUARD_NAMES = {
    BAD_PARTIAL_DENSITY: "partial density",
    BAD_ENERGY: "pressure",
    BAD_SOUND_SPEED: "sound speed",
    BAD_VOLUME_FRACTION: "volume fraction",
}

# scratch rows (stride TS). Reconstructed variables: W[0..6] = r1, r2, u, v, p, alpha1, lambda,
# then each phase's EOS data xi_k, Pi_k, z_k = rho_k xi_k c_k^2 (phase 1's at its lambda, heat
# of reaction not included): reconstructed where the face is nearly pure in a phase whose EOS
# has variable coefficients (A_RECON), evaluated at the face state elsewhere and for phases with
# constant ones (ideal and stiffened gases; :func:`_thermo`)
NR = 13
A_RECON = 0.999  # a phase's EOS data are reconstructed at faces where it is this pure (_thermo)
R_X1, R_X2 = 7, 10  # first row of each phase's EOS data (xi, Pi, z)
S_WL = 0 * TS  # left face states (13 rows; slots 2/3 = normal/tangential velocity)
S_WR = 13 * TS  # right face states at face f, stored at f + 1 (13 rows)
S_EL = 26 * TS  # total energy and frozen sound speed of the left face states
S_CL = 27 * TS
S_ER = 28 * TS  # and of the right ones (face f at f)
S_CR = 29 * TS
S_F = 30 * TS  # fluxes m1, m2, normal mom, tangential mom, E, alpha*u, m1*lambda, face u (8)
S_YO = 38 * TS  # y fluxes at the lower face of the row, U order + face velocity (8 rows)
S_YN = 46 * TS  # y fluxes at the upper face (8 rows)
S_D = 54 * TS
S_PT = 55 * TS  # EOS data of both phases at one row of states (8 rows, :func:`_phase_eos`)
S_RING = 63 * TS  # ring of 4 rows of cell data, RS rows each (the NR variables, then K)
RS = NR + 1
# the face states whose EOS data :func:`_thermo` evaluates, gathered (rows r1, r2, lambda as in a
# face state, row 7 their face index)
S_G = (63 + 4 * RS) * TS
NSR = 63 + 4 * RS + 8
# guard pass rows: W (15 rows), wave rate, guard code
P_RATE = 15 * TS
P_CODE = 16 * TS
# the stepper's layout: 2 partial densities for a wall's ghost momentum, momentum/energy rows,
# the guard pass stores W (the sweep's ring reads the cell data there), 8 rows of y fluxes
LAYOUT = (2, MX, MY, EN, True, P_RATE, P_CODE, S_YO, S_YN, 8 * TS)
# ring row k holds W row RING_W[k]
RING_W = (0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14, 8)

_JIT = {"cache": True, "error_model": "numpy"}
_PJIT = {"cache": True, "error_model": "numpy", "parallel": True}


@nb.njit(cache=True, inline="always", error_model="numpy")
def phase1_xi_pi(q0, r1, lam):
    """(xi, Pi, dxi/drho, dPi/drho) of the reacting phase at frozen lambda (heat of reaction
    not included: the mixture adds ``-a1 r1 lam Q``).

    Without a products EOS in ``q0``'s tail this is the reactant EOS (the original model:
    products = reactant with the heat released). With one (:class:`macro.eos.ReactiveEOS`)
    reactant and products share the phase density and pressure and their energies mix by
    lambda, ``rho e = (1 - lam)(xi_r p + Pi_r) + lam (xi_p p + Pi_p)``: the rule of
    :func:`macro.euler.mix_xi_pi`. Products are evaluated only where lambda > 0.
    """
    x, p, dx, dp = xi_pi(q0, r1)
    if lam > 0.0 and q0[PRODUCTS_FLAG] != 0.0:
        xp, pp, dxp, dpp = xi_pi(q0[PRODUCTS_OFF:], r1)
        w = 1.0 - lam
        return w * x + lam * xp, w * p + lam * pp, w * dx + lam * dxp, w * dp + lam * dpp
    return x, p, dx, dp


@nb.njit(cache=True, inline="always", error_model="numpy")
def phase1_state(q0, r1, lam):
    """:func:`phase1_xi_pi` (xi, Pi, dxi/drho, dPi/drho) and the reactant's temperature
    reference (T_ref, e_ref) at r1 (:func:`macro.eos.xi_pi_tref`: one EOS evaluation):
    :func:`phase1_temperature` is ``T_ref + ((xi p + Pi)/r1 - e_ref)/cv``."""
    x, p, dx, dp, Tr, er = xi_pi_tref(q0, r1)
    if lam > 0.0 and q0[PRODUCTS_FLAG] != 0.0:
        xp, pp, dxp, dpp = xi_pi(q0[PRODUCTS_OFF:], r1)
        w = 1.0 - lam
        return (w * x + lam * xp, w * p + lam * pp, w * dx + lam * dxp, w * dp + lam * dpp, Tr,
                er)
    return x, p, dx, dp, Tr, er


# rows of the per-cell EOS array (:func:`cell_eos`): reactant (xi, Pi), products (xi, Pi),
# material 2 (xi, Pi), material 1's temperature reference (T_ref, e_ref)
C_XR, C_PR, C_XP, C_PP, C_X2, C_P2, C_TR, C_ER = range(8)
NC = 8


@nb.njit(cache=True, error_model="numpy")
def cell_eos(U, eos, C):
    """The EOS data at every cell's phase densities (ghosts included) into C (NC rows).

    After the hydro step the phase densities stay fixed (conduction and viscosity change
    momentum and energy, the chemistry lambda), so conduction and chemistry both read these
    instead of evaluating the EOS: material 1's reactant by :func:`macro.eos.xi_pi_tref` (one
    Hayes power), its products (the reactant again without a products EOS) and material 2 by
    :func:`macro.eos.xi_pi`. :func:`phase1_state` is ``C_XR``.. mixed by lambda."""
    _, NY, NX = U.shape
    q0 = eos[0]
    q1 = eos[1]
    prod = q0[PRODUCTS_FLAG] != 0.0
    qp = q0[PRODUCTS_OFF:]
    k1 = q1[0]
    if q0[0] == KIND_HAYES and (k1 == KIND_IDEAL or k1 == KIND_STIFFENED) and (
            not prod or qp[0] == KIND_JWL):
        # the data generation's HMX (JWL products) and pore gas: row by row on row views, one
        # loop per step so that LLVM vectorises them (the arithmetic of the scalar path below)
        c = hayes_consts(q0)
        x2, p2, _, _ = xi_pi(q1, 1.0)  # constants
        T0 = q0[6]
        for j in range(NY):
            ua = U[ALPHA, j]
            um1 = U[AR1, j]
            r1 = C[C_TR, j]  # scratch rows until the last loop
            pw = C[C_X2, j]
            for i in range(NX):
                r1[i] = um1[i] / ua[i]
            for i in range(NX):
                pw[i] = hayes_power_c(c, r1[i])
            xr = C[C_XR, j]
            pr = C[C_PR, j]
            er = C[C_ER, j]
            for i in range(NX):
                xr[i] = hayes_xi_pi_c(c, r1[i], pw[i])[0]
            for i in range(NX):
                pr[i] = hayes_xi_pi_c(c, r1[i], pw[i])[1]
            for i in range(NX):
                er[i] = hayes_xi_pi_c(c, r1[i], pw[i])[4]
            xp = C[C_XP, j]
            pp = C[C_PP, j]
            if prod:
                xp[:] = jwl_xi_pi(qp, 1.0)[0]  # 1/omega
                for i in range(NX):
                    pp[i] = jwl_xi_pi(qp, r1[i])[1]
            else:
                xp[:] = xr
                pp[:] = pr
            C[C_X2, j] = x2
            C[C_P2, j] = p2
            C[C_TR, j] = T0
        return
    for j in range(NY):
        for i in range(NX):
            a1 = U[ALPHA, j, i]
            r1 = U[AR1, j, i] / a1
            r2 = U[AR2, j, i] / (1.0 - a1)
            xr, pr, _, _, Tr, er = xi_pi_tref(q0, r1)
            xp, pp = xr, pr
            if prod:
                xp, pp, _, _ = xi_pi(qp, r1)
            x2, p2, _, _ = xi_pi(q1, r2)
            C[C_XR, j, i] = xr
            C[C_PR, j, i] = pr
            C[C_XP, j, i] = xp
            C[C_PP, j, i] = pp
            C[C_X2, j, i] = x2
            C[C_P2, j, i] = p2
            C[C_TR, j, i] = Tr
            C[C_ER, j, i] = er


@nb.njit(cache=True, inline="always", error_model="numpy")
def phase_sound_sq(q0, r1, lam, p):
    """c^2 of the reacting phase at frozen lambda (see :func:`macro.eos.sound_speed_sq`)."""
    x, pi, dx, dp = phase1_xi_pi(q0, r1, lam)
    return _ssq(x, (pi, dx, dp), r1, p)


@nb.njit(cache=True, inline="always")
def mixture(eos, r1, r2, a1, lam, Q):
    """(xi, Pi) of the mixture with phase densities r1, r2 (chemical term included in Pi)."""
    return _mixture_rows(eos[0], eos[1], r1, r2, a1, lam, Q)


@nb.njit(cache=True, inline="always")
def mixture_sound(eos, r1, r2, a1, lam, p, x1, x2):
    """Frozen mixture sound speed^2 (xi c^2 = sum Y_k xi_k c_k^2), and Kapila's K."""
    return _sound_rows(eos[0], eos[1], r1, r2, a1, lam, p, x1, x2)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _mixture_rows(q0, q1, r1, r2, a1, lam, Q):
    x1, p1, _, _ = phase1_xi_pi(q0, r1, lam)
    x2, p2, _, _ = xi_pi(q1, r2)
    a2 = 1.0 - a1
    return a1 * x1 + a2 * x2, a1 * p1 + a2 * p2 - a1 * r1 * lam * Q, x1, x2


@nb.njit(cache=True, inline="always", error_model="numpy")
def _sound_rows(q0, q1, r1, r2, a1, lam, p, x1, x2):
    _, p1, dx1, dp1 = phase1_xi_pi(q0, r1, lam)
    _, p2, dx2, dp2 = xi_pi(q1, r2)
    return _snd(r1, r2, a1, p, x1, x2, (p1, dx1, dp1), (p2, dx2, dp2))[:2]


@nb.njit(cache=True, inline="always", error_model="numpy")
def phase1_temperature(q0, r1, lam, p):
    """Temperature of material 1 at phase density r1, pressure p and progress lam: the
    HMX-phase temperature that drives chemistry, conduction and the T diagnostic.

    The reactant EOS's temperature at the phase's specific energy with the released heat
    counted as heat, ``T_r(r1, e1 + lam Q)`` (``e1`` from :func:`phase1_xi_pi`). Without a
    products EOS this is the reactant temperature at (r1, p), as always; with one, the products
    EOS sets the pressure (the mechanics) but not the temperature: at a common density the
    products' own energy at the reactant's pressure is far below the reactant's (JWL at
    1.9 g/cc holds ~13 GPa of cold pressure), and the reactant temperature of that mixture
    would jump ~1200 K in the first 10% of the burn (measured: a 1500 K cell then burns 4x
    faster than its one-step kinetics say). Constant-volume burning thus heats by ``Q/cv`` per
    unit lambda, Frank-Kamenetskii's adiabatic explosion."""
    x, pi, _, _ = phase1_xi_pi(q0, r1, lam)
    return temperature(q0, r1, (x * p + pi) / r1)


@nb.njit(**_JIT)
def _eos_consts(eos):
    """(v1, v2, (xi1, Pi1, xi2, Pi2)): v_k unless material k is an ideal/stiffened gas (without
    products), whose xi and Pi are constants (the xi, Pi returned). With both constant the fast
    path evaluates the very same expressions without the per-state EOS calls (bitwise identical
    results, but the loops vectorise); a variable one has its face EOS data reconstructed where
    the face is nearly pure in it (:func:`_thermo`)."""
    k0 = eos[0, 0]
    k1 = eos[1, 0]
    v1 = not ((k0 == KIND_IDEAL or k0 == KIND_STIFFENED) and eos[0, PRODUCTS_FLAG] == 0.0)
    v2 = not (k1 == KIND_IDEAL or k1 == KIND_STIFFENED)
    x1, p1, _, _ = xi_pi(eos[0], 1.0)
    x2, p2, _, _ = xi_pi(eos[1], 1.0)
    return v1, v2, (x1, p1, x2, p2)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _ssq(xi, t, rho, p):
    """:func:`macro.eos.sound_speed_sq` from an EOS evaluation ``xi``, ``t = (Pi, dxi, dPi)``."""
    pi, dxi, dpi = t
    ir = 1.0 / rho
    e = (xi * p + pi) * ir
    return (e + p * ir - dpi - p * dxi) / xi


@nb.njit(cache=True, inline="always", error_model="numpy")
def _snd(r1, r2, a1, p, x1, x2, t1, t2):
    """Frozen mixture c^2, Kapila's K (as :func:`_sound_rows`) and the phases' c_k^2 from the
    phases' EOS data."""
    c21 = _ssq(x1, t1, r1, p)
    c22 = _ssq(x2, t2, r2, p)
    a2 = 1.0 - a1
    m1 = a1 * r1
    m2 = a2 * r2
    xi = a1 * x1 + a2 * x2
    c2 = (m1 * x1 * c21 + m2 * x2 * c22) / ((m1 + m2) * xi)
    z1 = r1 * c21
    z2 = r2 * c22
    K = (z2 - z1) * (a1 * a2) / (z2 * a1 + z1 * a2)  # (z2 - z1)/(z2/a2 + z1/a1)
    return c2, K, c21, c22


# ---------------------------------------------------------------------------------------------
# guard pass (and W)
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always", error_model="numpy")
def _guard_store(S, q, bad, r1, r2, u, v, p, a1, lam, c2, K, dx, dy, is2d, e1, e2):
    code = float(bad)
    if bad == 0:
        if not np.isfinite(p):
            code = float(BAD_ENERGY)
        elif not (c2 > 0.0) or not np.isfinite(c2):
            code = float(BAD_SOUND_SPEED)
    cs = np.sqrt(c2) if c2 > 0.0 else 0.0
    rate = (abs(u) + cs) * (1.0 / dx)
    if is2d:
        rate += (abs(v) + cs) * (1.0 / dy)
    S[q] = r1
    S[TS + q] = r2
    S[2 * TS + q] = u
    S[3 * TS + q] = v
    S[4 * TS + q] = p
    S[5 * TS + q] = a1
    S[6 * TS + q] = lam
    S[7 * TS + q] = cs
    S[8 * TS + q] = K if np.isfinite(K) else 0.0
    S[9 * TS + q] = e1[0]
    S[10 * TS + q] = e1[1]
    S[11 * TS + q] = e1[2]
    S[12 * TS + q] = e2[0]
    S[13 * TS + q] = e2[1]
    S[14 * TS + q] = e2[2]
    S[P_RATE + q] = rate
    S[P_CODE + q] = code


@nb.njit(cache=True, inline="always", error_model="numpy")
def _cell_check(m1, m2, a1):
    """(bad code, m1, m2, a1) of a cell, the partial densities and alpha1 replaced by 0.5 in a
    bad one (keeps ghost arithmetic finite; interior cells are reported)."""
    bad = 0
    if not (m1 > 0.0 and m2 > 0.0) or not (np.isfinite(m1) and np.isfinite(m2)):
        bad = BAD_PARTIAL_DENSITY
    elif not (0.0 < a1 < 1.0):
        bad = BAD_VOLUME_FRACTION
    if bad != 0:
        return bad, 0.5, 0.5, 0.5
    return bad, m1, m2, a1


@nb.njit(cache=True, inline="always", error_model="numpy")
def _guard_cell(S, q, Q, m1, m2, a, mx, my, E, arl, dx, dy, is2d, x1, x2, t1, t2):
    """Guard code, wave rate, primitives and the phases' xi_k, Pi_k, z_k = rho_k xi_k c_k^2 (the
    rows of W) of one cell into scratch column q, from the phases' EOS data x_k, t_k = (Pi_k,
    dxi_k/drho, dPi_k/drho) at the cell's phase densities."""
    bad, m1, m2, a1 = _cell_check(m1, m2, a)
    rho = m1 + m2
    r1 = m1 / a1
    r2 = m2 / (1.0 - a1)
    irho = 1.0 / rho
    u = mx * irho
    v = my * irho
    lam = arl / m1
    a2 = 1.0 - a1
    xi = a1 * x1 + a2 * x2
    pi = a1 * t1[0] + a2 * t2[0] - a1 * r1 * lam * Q
    p = (E - 0.5 * rho * (u * u + v * v) - pi) / xi
    c2, K, c21, c22 = _snd(r1, r2, a1, p, x1, x2, t1, t2)
    _guard_store(S, q, bad, r1, r2, u, v, p, a1, lam, c2, K, dx, dy, is2d,
                 (x1, t1[0], r1 * x1 * c21), (x2, t2[0], r2 * x2 * c22))


@nb.njit(**SWEEP_JIT)
def _prim_tile(U, W, S, j, i0, n, mc, dx, dy, is2d, store):
    """Guard codes, wave rates and primitives (W, as well, if ``store``) of cells i0..i0+n-1
    of row j."""
    fast, c, q0, q1, Q, _, _, _ = mc
    um1 = U[AR1, j, i0:i0 + n]
    um2 = U[AR2, j, i0:i0 + n]
    ua = U[ALPHA, j, i0:i0 + n]
    umx = U[MX, j, i0:i0 + n]
    umy = U[MY, j, i0:i0 + n]
    uen = U[EN, j, i0:i0 + n]
    url = U[ARL, j, i0:i0 + n]
    if fast:
        x1, p1, x2, p2 = c
        t1 = (p1, 0.0, 0.0)
        t2 = (p2, 0.0, 0.0)
        for q in range(n):
            _guard_cell(S, q, Q, um1[q], um2[q], ua[q], umx[q], umy[q], uen[q], url[q], dx, dy,
                        is2d, x1, x2, t1, t2)
    else:
        # phase densities and lambda (rows 0, 1, 6), their EOS data (scalar calls), the rest
        for q in range(n):
            _, m1, m2, a1 = _cell_check(um1[q], um2[q], ua[q])
            S[q] = m1 / a1
            S[TS + q] = m2 / (1.0 - a1)
            S[6 * TS + q] = url[q] / m1
        _phase_eos(S, 0, n, q0, q1)
        for q in range(n):
            _guard_cell(S, q, Q, um1[q], um2[q], ua[q], umx[q], umy[q], uen[q], url[q], dx, dy,
                        is2d, S[S_PT + q], S[S_PT + 4 * TS + q],
                        (S[S_PT + TS + q], S[S_PT + 2 * TS + q], S[S_PT + 3 * TS + q]),
                        (S[S_PT + 5 * TS + q], S[S_PT + 6 * TS + q], S[S_PT + 7 * TS + q]))
    if not store:
        return
    for k in range(NW):
        o = k * TS
        w = W[k, j, i0:i0 + n]
        for q in range(n):
            w[q] = S[o + q]


@nb.njit(cache=True, inline="always", error_model="numpy")
def kapila_relax(q0, q1, a1, p0, r1, r2, dlnv, lam=0.0):
    """Kapila's ``d a1/dt = K div u`` integrated exactly over a Lagrangian volume change.

    Both phases follow an isentrope through the common pressure, locally
    ``phi_k(p) = (1 + G_k (p - p0)/z_k)^(-1/G_k)`` with ``z_k = rho_k c_k^2`` at the stage start
    and ``G_k = 1 + 1/xi_k`` (exact for ideal and stiffened gases). The pressure solves
    ``a1 phi1 + a2 phi2 = exp(dlnv)`` (one root: the left side decreases from +inf to 0) and
    ``a1_new = a1 phi1 / (a1 phi1 + a2 phi2)``, in (0, 1) for any ``dlnv``. Its derivative at
    ``dlnv -> 0`` is exactly ``K div u``; the explicit form is unstable next to nearly pure cells
    (relative rate of the minority fraction ~ (z1/z2) div u, ~1e5 div u for HMX/air).
    Material 1 is taken at its frozen reaction progress ``lam`` (:func:`phase1_xi_pi`).
    """
    if dlnv == 0.0 or not (0.0 < a1 < 1.0):
        return a1
    a2 = 1.0 - a1
    x1, pi1, dx1, dp1 = phase1_xi_pi(q0, r1, lam)
    x2, pi2, dx2, dp2 = xi_pi(q1, r2)
    z1 = r1 * _ssq(x1, (pi1, dx1, dp1), r1, p0)
    z2 = r2 * _ssq(x2, (pi2, dx2, dp2), r2, p0)
    if not (z1 > 0.0 and z2 > 0.0):
        return a1
    g1 = 1.0 + 1.0 / x1
    g2 = 1.0 + 1.0 / x2
    target = np.exp(dlnv)
    if target < 1.0:  # compression: the root is at q = p - p0 > 0
        lo = 0.0
        hi = (1.0 / target - 1.0) * max(z1, z2) + 1.0
        for _ in range(200):
            f = (a1 * (1.0 + g1 * hi / z1) ** (-1.0 / g1)
                 + a2 * (1.0 + g2 * hi / z2) ** (-1.0 / g2) - target)
            if f < 0.0:
                break
            hi *= 4.0
        q = 0.0
    else:  # expansion: root between the end of an isentrope and 0
        lo = max(-z1 / g1, -z2 / g2)
        hi = 0.0
        q = 0.5 * (lo + hi)
    for _ in range(200):
        b1 = 1.0 + g1 * q / z1
        b2 = 1.0 + g2 * q / z2
        if b1 <= 0.0 or b2 <= 0.0:
            lo = q
            q = 0.5 * (lo + hi)
            continue
        ph1 = b1 ** (-1.0 / g1)
        ph2 = b2 ** (-1.0 / g2)
        f = a1 * ph1 + a2 * ph2 - target
        if f > 0.0:
            lo = q
        else:
            hi = q
        df = -a1 * ph1 / (z1 * b1) - a2 * ph2 / (z2 * b2)
        qn = q - f / df
        if not (lo < qn < hi):
            qn = 0.5 * (lo + hi)
        if abs(qn - q) <= 1e-13 * (abs(q) + abs(p0) + 1.0):
            q = qn
            break
        q = qn
    v1 = a1 * (1.0 + g1 * q / z1) ** (-1.0 / g1)
    v2 = a2 * (1.0 + g2 * q / z2) ** (-1.0 / g2)
    an = v1 / (v1 + v2)
    if not (0.0 < an < 1.0):
        return a1
    return an




# ---------------------------------------------------------------------------------------------
# sweep: primitives ring, reconstruction, face thermodynamics, Riemann fluxes, update
# ---------------------------------------------------------------------------------------------


@nb.njit(**SWEEP_JIT)
def _prim_ring(X, W, S, r, c0, m, slot, mc):
    """Cell data of cells c0..c0+m-1 of row r into ring slot ``slot`` (rows in
    :data:`RING_W` order: r1, r2, u, v, p, alpha1, lambda, the EOS data of the phases whose
    face data are reconstructed, K), from the stage's guard pass (W, :func:`_prim_tile`: the
    EOS is evaluated once per cell and stage). K is 0 without ``kapila``."""
    kapila, v1, v2 = mc[5], mc[6], mc[7]
    for k in range(RS):
        if (R_X1 <= k < R_X2 and not v1) or (R_X2 <= k < R_X2 + 3 and not v2):
            continue
        o = S_RING + (RS * slot + k) * TS
        if k == RS - 1 and not kapila:
            for q in range(m):
                S[o + q] = 0.0
            continue
        w = W[RING_W[k], r, c0:c0 + m]
        for q in range(m):
            S[o + q] = w[q]


@nb.njit(cache=True, inline="always", error_model="numpy")
def mix(r, lam, p):
    """A reactant quantity r mixed with the products' p by lambda (r where lambda is 0)."""
    return (1.0 - lam) * r + lam * p if lam > 0.0 else r


@nb.njit(cache=True, inline="always", error_model="numpy")
def mix_row(r, p, lam, prod, out):
    """out = a row of reactant quantities r mixed with the products' p by lambda (:func:`mix`;
    r itself without a products EOS, ``prod`` False)."""
    if prod:
        for i in range(out.size):
            out[i] = mix(r[i], lam[i], p[i])
    else:
        for i in range(out.size):
            out[i] = r[i]


@nb.njit(**SWEEP_JIT)
def _phase_eos(S, o, m, q0, q1):
    """EOS data of both phases at the states in rows o.. (r1, r2, ., ., ., alpha1, lambda) of
    0..m-1 into rows S_PT..S_PT+7: xi, Pi, dxi/drho, dPi/drho of phase 1 (at its lambda) and of
    phase 2. The mixture arithmetic that uses them runs in a separate loop that vectorises.

    A Hayes material 1 with an ideal/stiffened material 2 (the data generation's HMX and pore
    gas) takes a vectorised path: its one power per state (:func:`macro.vmath.pow_pos`) in a
    loop of its own, the rest of the EOS inline; states with products (lambda > 0) then mix in
    the products EOS (a JWL one in vectorised loops as well).
    The arithmetic is that of :func:`phase1_xi_pi` and :func:`macro.eos.xi_pi` either way."""
    k1 = q1[0]
    if q0[0] == KIND_HAYES and (k1 == KIND_IDEAL or k1 == KIND_STIFFENED):
        x2, p2, dx2, dp2 = xi_pi(q1, 1.0)  # constants
        c = hayes_consts(q0)
        # on row views (indices from 0: no wraparound), the power in a loop of its own, then
        # one loop per output row (few memory streams, so that LLVM vectorises the loops)
        r1 = S[o:o + m]
        pw = S[S_PT + 2 * TS:S_PT + 2 * TS + m]
        for f in range(m):
            pw[f] = hayes_power_c(c, r1[f])
        out = S[S_PT + TS:S_PT + TS + m]
        for f in range(m):
            out[f] = hayes_xi_pi_c(c, r1[f], pw[f])[1]
        out = S[S_PT + 3 * TS:S_PT + 3 * TS + m]
        for f in range(m):
            out[f] = hayes_xi_pi_c(c, r1[f], pw[f])[3]
        out = S[S_PT:S_PT + m]
        for f in range(m):
            out[f] = hayes_xi_pi_c(c, r1[f], 1.0)[0]
        dx1 = hayes_xi_pi_c(c, 1.0, 1.0)[2]
        for k, v in ((2, dx1), (4, x2), (5, p2), (6, dx2), (7, dp2)):
            S[S_PT + k * TS:S_PT + k * TS + m] = v
        if q0[PRODUCTS_FLAG] != 0.0:
            # phase1_xi_pi's products mixing, the reactant's part reused from above
            qp = q0[PRODUCTS_OFF:]
            lamr = S[o + 6 * TS:o + 6 * TS + m]
            if qp[0] == KIND_JWL:
                # every state of a row with products computed, the mixture selected where
                # lambda > 0 (vectorises)
                lmax = 0.0
                for f in range(m):
                    lmax = max(lmax, lamr[f])
                if lmax > 0.0:
                    row0 = S[S_PT:S_PT + m]
                    row1 = S[S_PT + TS:S_PT + TS + m]
                    row2 = S[S_PT + 2 * TS:S_PT + 2 * TS + m]
                    row3 = S[S_PT + 3 * TS:S_PT + 3 * TS + m]
                    xp, _, dxp, _ = jwl_xi_pi(qp, 1.0)  # constants
                    for f in range(m):
                        row0[f] = mix(row0[f], lamr[f], xp)
                    for f in range(m):
                        row2[f] = mix(row2[f], lamr[f], dxp)
                    for f in range(m):
                        _, pp, _, dpp = jwl_xi_pi(qp, r1[f])
                        row1[f] = mix(row1[f], lamr[f], pp)
                        row3[f] = mix(row3[f], lamr[f], dpp)
            else:
                for f in range(m):
                    lam = lamr[f]
                    if lam > 0.0:
                        xp, pp, dxp, dpp = xi_pi(qp, r1[f])
                        w = 1.0 - lam
                        S[S_PT + f] = w * S[S_PT + f] + lam * xp
                        S[S_PT + TS + f] = w * S[S_PT + TS + f] + lam * pp
                        S[S_PT + 2 * TS + f] = w * S[S_PT + 2 * TS + f] + lam * dxp
                        S[S_PT + 3 * TS + f] = w * S[S_PT + 3 * TS + f] + lam * dpp
        return
    for f in range(m):
        x1, p1, dx1, dp1 = phase1_xi_pi(q0, S[o + f], S[o + 6 * TS + f])
        x2, p2, dx2, dp2 = xi_pi(q1, S[o + TS + f])
        S[S_PT + f] = x1
        S[S_PT + TS + f] = p1
        S[S_PT + 2 * TS + f] = dx1
        S[S_PT + 3 * TS + f] = dp1
        S[S_PT + 4 * TS + f] = x2
        S[S_PT + 5 * TS + f] = p2
        S[S_PT + 6 * TS + f] = dx2
        S[S_PT + 7 * TS + f] = dp2


@nb.njit(cache=True, inline="always", error_model="numpy")
def _const_phase(S, o, k, m, x, pi):
    """EOS data xi, Pi, z = rho xi c^2 = (xi + 1) p + Pi of a constant-coefficient phase (xi, Pi)
    at face states 0..m-1 in rows o.. (pressure in row 4) into its rows k.."""
    p = S[o + 4 * TS:o + 4 * TS + m]
    S[o + k * TS:o + k * TS + m] = x
    S[o + (k + 1) * TS:o + (k + 1) * TS + m] = pi
    z = S[o + (k + 2) * TS:o + (k + 2) * TS + m]
    for f in range(m):
        z[f] = (x + 1.0) * p[f] + pi


@nb.njit(**SWEEP_JIT)
def _thermo(S, m, mc):
    """Total energy and frozen sound speed of both face states of faces 0..m-1.

    Each phase's xi_k, Pi_k and z_k = rho_k xi_k c_k^2 at a face state combine with its alpha1,
    phase densities and lambda as the EOS combines them: ``rho e = sum a_k (xi_k p + Pi_k) -
    a1 r1 lambda Q``, frozen ``c^2 = sum a_k z_k / (rho xi)`` (:func:`_snd`). Where the face is
    nearly pure in phase k (alpha_k >= :data:`A_RECON`), phase k's data are reconstructed from
    the cells' (limited like the primitives, so bounded by the neighbouring cells' values): no
    EOS evaluation in the bulk of a material. Elsewhere, and always for a phase with constant
    coefficients, they are evaluated exactly at the face state: a phase present as a trace
    has an arbitrary phase density whose EOS data jump from cell to cell, and reconstructing
    them apart from its density leaves the face's energy inconsistent with its pressure in
    exactly the cells (gas with traces of HMX at a collapsing pore) whose pressure is the small
    difference of such terms (negative gas pressure, then a guard failure, at 32 cells per
    pore radius and 20 GPa).
    """
    _, c, q0, q1, Q, _, v1, v2 = mc
    for side in range(2):
        o = S_WL if side == 0 else S_WR + 1
        e = S[S_EL:S_EL + m] if side == 0 else S[S_ER:S_ER + m]
        cs = S[S_CL:S_CL + m] if side == 0 else S[S_CR:S_CR + m]
        if not v1:
            _const_phase(S, o, R_X1, m, c[0], c[1])
        if not v2:
            _const_phase(S, o, R_X2, m, c[2], c[3])
        r1 = S[o:o + m]
        r2 = S[o + TS:o + TS + m]
        un = S[o + 2 * TS:o + 2 * TS + m]
        ut = S[o + 3 * TS:o + 3 * TS + m]
        p = S[o + 4 * TS:o + 4 * TS + m]
        a = S[o + 5 * TS:o + 5 * TS + m]
        lam = S[o + 6 * TS:o + 6 * TS + m]
        x1 = S[o + R_X1 * TS:o + R_X1 * TS + m]
        p1 = S[o + (R_X1 + 1) * TS:o + (R_X1 + 1) * TS + m]
        z1 = S[o + (R_X1 + 2) * TS:o + (R_X1 + 2) * TS + m]
        x2 = S[o + R_X2 * TS:o + R_X2 * TS + m]
        p2 = S[o + (R_X2 + 1) * TS:o + (R_X2 + 1) * TS + m]
        z2 = S[o + (R_X2 + 2) * TS:o + (R_X2 + 2) * TS + m]
        # the faces not nearly pure in a phase with reconstructed data: gathered, their EOS
        # evaluated in :func:`_phase_eos`'s loops (the per-state EOS, bit for bit), scattered
        for k in range(2):
            if not (v1 if k == 0 else v2):
                continue
            g = 0
            for f in range(m):
                if not ((a[f] if k == 0 else 1.0 - a[f]) >= A_RECON):
                    S[S_G + g] = r1[f]
                    S[S_G + TS + g] = r2[f]
                    S[S_G + 6 * TS + g] = lam[f]
                    S[S_G + 7 * TS + g] = f
                    g += 1
            if g == 0:
                continue
            _phase_eos(S, S_G, g, q0, q1)
            o_pt = S_PT + 4 * k * TS
            xk = x1 if k == 0 else x2
            pk = p1 if k == 0 else p2
            zk = z1 if k == 0 else z2
            rk = r1 if k == 0 else r2
            for q in range(g):
                f = int(S[S_G + 7 * TS + q])
                x = S[o_pt + q]
                P = S[o_pt + TS + q]
                xk[f] = x
                pk[f] = P
                zk[f] = rk[f] * x * _ssq(x, (P, S[o_pt + 2 * TS + q], S[o_pt + 3 * TS + q]),
                                         rk[f], p[f])
        for f in range(m):
            af = a[f]
            a2 = 1.0 - af
            r = af * r1[f] + a2 * r2[f]
            xi = af * x1[f] + a2 * x2[f]
            pi = af * p1[f] + a2 * p2[f] - af * r1[f] * lam[f] * Q
            e[f] = xi * p[f] + pi + 0.5 * r * (un[f] * un[f] + ut[f] * ut[f])
            c2 = (af * z1[f] + a2 * z2[f]) / (r * xi)
            cs[f] = np.sqrt(c2) if c2 > 0.0 else 0.0


@nb.njit(**SWEEP_JIT)
def _riemann(S, m, force_hll):
    """HLLC (HLL fallback) fluxes and face velocity of faces 0..m-1, every case computed."""
    for f in range(m):
        r1L = S[S_WL + f]
        r2L = S[S_WL + TS + f]
        unL = S[S_WL + 2 * TS + f]
        utL = S[S_WL + 3 * TS + f]
        pL = S[S_WL + 4 * TS + f]
        aL = S[S_WL + 5 * TS + f]
        lL = S[S_WL + 6 * TS + f]
        r1R = S[S_WR + f + 1]
        r2R = S[S_WR + TS + f + 1]
        unR = S[S_WR + 2 * TS + f + 1]
        utR = S[S_WR + 3 * TS + f + 1]
        pR = S[S_WR + 4 * TS + f + 1]
        aR = S[S_WR + 5 * TS + f + 1]
        lR = S[S_WR + 6 * TS + f + 1]
        EL = S[S_EL + f]
        cL = S[S_CL + f]
        ER = S[S_ER + f]
        cR = S[S_CR + f]
        m1L = aL * r1L
        m2L = (1.0 - aL) * r2L
        m1R = aR * r1R
        m2R = (1.0 - aR) * r2R
        rL = m1L + m2L
        rR = m1R + m2R
        sL, sR, sS, ok = davis_speeds(rL, unL, pL, cL, rR, unR, pR, cR)
        # HLL
        inv = 1.0 / (sR - sL)
        a = sR * sL
        h0 = hll_flux(m1L * unL, m1R * unR, m1L, m1R, sL, sR, a, inv)
        h1 = hll_flux(m2L * unL, m2R * unR, m2L, m2R, sL, sR, a, inv)
        h2 = hll_flux(rL * unL * unL + pL, rR * unR * unR + pR, rL * unL, rR * unR, sL, sR, a,
                      inv)
        h3 = hll_flux(rL * unL * utL, rR * unR * utR, rL * utL, rR * utR, sL, sR, a, inv)
        h4 = hll_flux(unL * (EL + pL), unR * (ER + pR), EL, ER, sL, sR, a, inv)
        h5 = hll_flux(aL * unL, aR * unR, aL, aR, sL, sR, a, inv)
        h6 = hll_flux(m1L * lL * unL, m1R * lR * unR, m1L * lL, m1R * lR, sL, sR, a, inv)
        h7 = (sR * unL - sL * unR) * inv
        # HLLC star flux of the side the contact leaves behind
        left = sS >= 0.0
        s = sL if left else sR
        un = unL if left else unR
        ut = utL if left else utR
        p = pL if left else pR
        E = EL if left else ER
        m1 = m1L if left else m1R
        m2 = m2L if left else m2R
        r = rL if left else rR
        lam = lL if left else lR
        al = aL if left else aR
        fs, Es = star_state(s, un, r, p, E, sS)
        mn = r * un
        c0 = m1 * un + s * (fs - 1.0) * m1
        c1 = m2 * un + s * (fs - 1.0) * m2
        c2 = mn * un + p + s * (r * fs * sS - mn)
        c3 = mn * ut + s * (fs - 1.0) * r * ut
        c4 = un * (E + p) + s * (Es - E)
        c5 = al * sS
        c6 = m1 * lam * un + s * (fs - 1.0) * m1 * lam
        c7 = sS
        hll = force_hll or not ok
        f0 = h0 if hll else c0
        f1 = h1 if hll else c1
        f2 = h2 if hll else c2
        f3 = h3 if hll else c3
        f4 = h4 if hll else c4
        f5 = h5 if hll else c5
        f6 = h6 if hll else c6
        f7 = h7 if hll else c7
        if sR <= 0.0:
            f0 = m1R * unR
            f1 = m2R * unR
            f2 = rR * unR * unR + pR
            f3 = rR * unR * utR
            f4 = unR * (ER + pR)
            f5 = aR * unR
            f6 = m1R * lR * unR
            f7 = unR
        if sL >= 0.0:
            f0 = m1L * unL
            f1 = m2L * unL
            f2 = rL * unL * unL + pL
            f3 = rL * unL * utL
            f4 = unL * (EL + pL)
            f5 = aL * unL
            f6 = m1L * lL * unL
            f7 = unL
        S[S_F + f] = f0
        S[S_F + TS + f] = f1
        S[S_F + 2 * TS + f] = f2
        S[S_F + 3 * TS + f] = f3
        S[S_F + 4 * TS + f] = f4
        S[S_F + 5 * TS + f] = f5
        S[S_F + 6 * TS + f] = f6
        S[S_F + 7 * TS + f] = f7


@nb.njit(**SWEEP_JIT)
def _update_alpha_kapila(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, q0, q1,
                         in_place):
    """alpha1 row with Kapila's source integrated exactly (positivity-preserving).

    The stage is the convex combination ``a*Z + b*(X + (c/b) d)`` of a forward-Euler step from
    the stage state X (whose primitives are in the ring). For alpha1 the forward-Euler step is
    transport (``-div(a1 u) + a1 div u``) followed by the source ``K div u``: explicitly (the
    original scheme) where that changes neither volume fraction by more than 10% of itself, else
    by :func:`kapila_relax` over the Lagrangian volume change ``(c/b) div u``. In the first stage
    X and Z are the same state (b = 0): the step is then taken from Z with weight a.
    """
    ring = S_RING + RS * (j % 4) * TS + 2
    o_k = ring + (RS - 1) * TS
    o_r1 = ring
    o_r2 = ring + TS
    o_p = ring + 4 * TS
    o_a = ring + 5 * TS
    o_l = ring + 6 * TS
    oF = S_F + ALPHA * TS
    oU = S_F + 7 * TS
    x = X[ALPHA, j, i0:i0 + n]
    y = Y[ALPHA, j, i0:i0 + n]
    z = Z[ALPHA, j, i0:i0 + n]
    for q in range(n):
        div = (S[oU + q + 1] - S[oU + q]) * inv_dx
        tr = (S[oF + q] - S[oF + q + 1]) * inv_dx
        if is2d:
            div += (S[S_YN + 7 * TS + q] - S[S_YO + 7 * TS + q]) * inv_dy
            tr += (S[S_YO + 5 * TS + q] - S[S_YN + 5 * TS + q]) * inv_dy
        tr += S[o_a + q] * div
        zq = y[q] if in_place else z[q]
        K = S[o_k + q]
        if b > 0.0:
            h = c / b
            w = b
            rest = a * zq
            base = x[q] + h * tr
        else:
            h = c / a
            w = a
            rest = 0.0
            base = zq + h * tr
        dk = h * K * div
        if abs(dk) <= 0.1 * min(base, 1.0 - base):
            af = base + dk  # explicit K div u is safe (and is the original scheme) here
        else:
            af = kapila_relax(q0, q1, base, S[o_p + q], S[o_r1 + q], S[o_r2 + q], h * div,
                              S[o_l + q])
        y[q] = rest + w * af



@nb.njit(**SWEEP_JIT)
def _update(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, mc):
    """Y = a*Z + b*X + c*d on cells i0..i0+n-1 of row j (alpha1 with its (a1 + K) div u)."""
    _, _, q0, q1, _, kapila, _, _ = mc
    for k in range(NV):
        if k != ALPHA:
            # flux rows 0-6 are in U order (row 7 is the face velocity)
            update_row(X, Z, Y, S, k, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, S_F + k * TS,
                       S_YO + k * TS, S_YN + k * TS)
    in_place = Y.ctypes.data == Z.ctypes.data
    if kapila:
        _update_alpha_kapila(X, Z, Y, S, j, i0, n, is2d, a, b, c, inv_dx, inv_dy, q0, q1,
                             in_place)
        return
    o_a = S_RING + (RS * (j % 4) + 5) * TS + 2  # alpha1 and K of the cells
    o_k = S_RING + (RS * (j % 4) + RS - 1) * TS + 2
    oF = S_F + ALPHA * TS
    oU = S_F + 7 * TS
    if is2d:
        for q in range(n):
            aK = S[o_a + q] + S[o_k + q]
            S[S_D + q] = (S[oF + q] - S[oF + q + 1]
                          + aK * (S[oU + q + 1] - S[oU + q])) * inv_dx + (
                S[S_YO + 5 * TS + q] - S[S_YN + 5 * TS + q]
                + aK * (S[S_YN + 7 * TS + q] - S[S_YO + 7 * TS + q])) * inv_dy
    else:
        for q in range(n):
            aK = S[o_a + q] + S[o_k + q]
            S[S_D + q] = (S[oF + q] - S[oF + q + 1]
                          + aK * (S[oU + q + 1] - S[oU + q])) * inv_dx
    x = X[ALPHA, j, i0:i0 + n]
    y = Y[ALPHA, j, i0:i0 + n]
    if in_place:
        for q in range(n):
            y[q] = a * y[q] + b * x[q] + c * S[S_D + q]
    else:
        z = Z[ALPHA, j, i0:i0 + n]
        for q in range(n):
            y[q] = a * z[q] + b * x[q] + c * S[S_D + q]


@nb.njit(cache=True, inline="always", error_model="numpy")
def _recon_x(S, slot, n, lim, mc):
    """MUSCL face states of the primitives and of the reconstructed phases' EOS data."""
    v1, v2 = mc[6], mc[7]
    recon_x(S, slot, n, lim, NR, S_RING, RS, 0, R_X1 + 3 if v1 else R_X1)
    if v2:
        recon_x(S, slot, n, lim, NR, S_RING, RS, R_X2, R_X2 + 3)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _recon_y(S, j, n, lim, mc):
    v1, v2 = mc[6], mc[7]
    recon_y(S, j, n, lim, NR, S_RING, RS, 2, 0, R_X1 + 3 if v1 else R_X1)
    if v2:
        recon_y(S, j, n, lim, NR, S_RING, RS, 2, R_X2, R_X2 + 3)


@nb.njit(**SWEEP_JIT)
def _y_faces(S, j, n, lim, mc, force_hll, dst):
    """Fluxes through the y faces between rows j and j+1 into rows dst.. (U order, then the
    face velocity)."""
    _recon_y(S, j, n, lim, mc)
    _thermo(S, n, mc)
    _riemann(S, n, force_hll)
    store_y(S, n, S_F, dst, 8, 2)


@nb.njit(**SWEEP_JIT)
def _x_faces(S, slot, n, lim, mc, force_hll):
    """Fluxes through the n + 1 x faces of the strip (ring slot ``slot``) into rows S_F.."""
    _recon_x(S, slot, n, lim, mc)
    _thermo(S, n + 1, mc)
    _riemann(S, n + 1, force_hll)


@nb.njit(**_PJIT)
def _run_parallel(task, nt, X, Z, Y, W, S_all, mc, solver, lim, dx, dy, a, b, c, rowstat):
    """The parallel kernel: one work share per thread (:func:`macro.stepper.run`). The
    constants enter the parallel region one by one (a parfor takes no nested tuple)."""
    fast, ec, q0, q1, Q, kapila, v1, v2 = mc
    x1, p1, x2, p2 = ec
    for w in nb.prange(nt):
        stepper.work(_prim_tile, _prim_ring, _y_faces, _x_faces, _update, LAYOUT, task,
                     np.int64(w), nt, X, Z, Y, W, S_all[w],
                     (fast, (x1, p1, x2, p2), q0, q1, Q, kapila, v1, v2), solver, lim, dx, dy, a,
                     b, c, rowstat)


def scratch(nthreads, shape=None):
    """Per-thread scratch for :func:`step` (:func:`macro.stepper.scratch`)."""
    return stepper.scratch(nthreads, shape, NSR)


@nb.njit(**_JIT)
def _consts(eos, Q, kapila):
    """The model constants the stepper hands to this module's functions: (fast, constant xi/Pi,
    EOS rows, Q, kapila, whether phase 1's / phase 2's face EOS data are reconstructed)."""
    v1, v2, c = _eos_consts(eos)
    return not (v1 or v2), c, eos[0], eos[1], Q, kapila, v1, v2


@nb.njit(**_JIT)
def primitives(U, W, eos, Q, dx, dy, rowstat):
    """Fill W everywhere; return (status, j, i, max wave rate over all cells, ghosts included)."""
    S_all = np.empty((1, NSR * TS))
    return stepper.primitives(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update,
                              LAYOUT, U, W, S_all, _consts(eos, Q, False), dx, dy, rowstat, True,
                              False)


@nb.njit(**_JIT)
def wave_rate(U, W, S_all, eos, Q, dx, dy, codes, uwall, inflow, rowstat):
    """The step's first-stage CFL wave rate (see :func:`macro.euler.wave_rate`)."""
    return stepper.stage(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update,
                         LAYOUT, U, W, S_all, _consts(eos, Q, False), dx, dy, codes, uwall,
                         inflow, rowstat, False)[3]


@nb.njit(**_JIT)
def step(U, U0, W, dU, S_all, eos, Q, kapila, solver, lim, order, cfl, dt_max, dx, dy, codes,
         uwall, inflow, rowstat):
    """One SSP-RK step (:func:`macro.stepper.rk`), work shares run one after the other:
    (status, j, i, dt)."""
    return stepper.rk(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update, LAYOUT,
                      U, U0, W, dU, S_all, _consts(eos, Q, kapila), solver, lim, order, cfl,
                      dt_max, dx, dy, codes, uwall, inflow, rowstat, False)


@nb.njit(**_JIT)
def step_parallel(U, U0, W, dU, S_all, eos, Q, kapila, solver, lim, order, cfl, dt_max, dx, dy,
                  codes, uwall, inflow, rowstat):
    """As :func:`step` with the work shares on Numba's threads (compiled on first use)."""
    return stepper.rk(_run_parallel, _prim_tile, _prim_ring, _y_faces, _x_faces, _update, LAYOUT,
                      U, U0, W, dU, S_all, _consts(eos, Q, kapila), solver, lim, order, cfl,
                      dt_max, dx, dy, codes, uwall, inflow, rowstat, True)


# ---------------------------------------------------------------------------------------------
# diagnostics and initial data
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always", error_model="numpy")
def cell_state(U, j, i, q0, q1, Q):
    """Primitives of cell (j, i) of U: rho, u, v, p, r1, r2, alpha1, lambda and the mixture's
    xi and phase xi_1, xi_2 (for diagnostics and transport, outside the fused sweeps)."""
    m1 = U[AR1, j, i]
    m2 = U[AR2, j, i]
    a1 = U[ALPHA, j, i]
    rho = m1 + m2
    r1 = m1 / a1
    r2 = m2 / (1.0 - a1)
    u = U[MX, j, i] / rho
    v = U[MY, j, i] / rho
    lam = U[ARL, j, i] / m1
    xi, pi, x1, x2 = _mixture_rows(q0, q1, r1, r2, a1, lam, Q)
    p = (U[EN, j, i] - 0.5 * rho * (u * u + v * v) - pi) / xi
    return rho, u, v, p, r1, r2, a1, lam, xi, x1, x2


@nb.njit(**_JIT)
def diagnostics(U, eos, Q, out):
    """out[0..6] = rho, u, v, p, T1 (material-1 temperature, :func:`phase1_temperature`),
    alpha1, lambda."""
    _, NY, NX = U.shape
    q0 = eos[0]
    q1 = eos[1]
    for j in range(NY):
        for i in range(NX):
            rho, u, v, p, r1, r2, a1, lam, _, _, _ = cell_state(U, j, i, q0, q1, Q)
            out[0, j, i] = rho
            out[1, j, i] = u
            out[2, j, i] = v
            out[3, j, i] = p
            out[4, j, i] = phase1_temperature(q0, r1, lam, p)
            out[5, j, i] = a1
            out[6, j, i] = lam


@nb.njit(**_JIT)
def conserved_from_primitive(r1, r2, a1, u, v, p, lam, eos, Q, U):
    ny, nx = r1.shape
    q0 = eos[0]
    q1 = eos[1]
    for j in range(ny):
        for i in range(nx):
            a = a1[j, i]
            xi, pi, _, _ = _mixture_rows(q0, q1, r1[j, i], r2[j, i], a, lam[j, i], Q)
            rho = a * r1[j, i] + (1.0 - a) * r2[j, i]
            U[AR1, j, i] = a * r1[j, i]
            U[AR2, j, i] = (1.0 - a) * r2[j, i]
            U[MX, j, i] = rho * u[j, i]
            U[MY, j, i] = rho * v[j, i]
            U[EN, j, i] = xi * p[j, i] + pi + 0.5 * rho * (u[j, i] ** 2 + v[j, i] ** 2)
            U[ALPHA, j, i] = a
            U[ARL, j, i] = a * r1[j, i] * lam[j, i]
