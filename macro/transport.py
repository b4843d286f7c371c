"""Heat conduction and Newtonian viscosity for the five-equation model (:mod:`macro.multi`).

Both are explicit, conservative (face fluxes of energy and momentum) and operator-split after
the hydro step (:meth:`macro.solver.Solver.step_local`), sub-cycled to their own stability
limits, so the fused hydro kernel is untouched and each term can be switched off.

**Conduction.** Each phase conducts with its own temperature and volume fraction,
``dE/dt = div(sum_k alpha_k kappa_k grad T_k)`` (the phase-conduction form of Baer-Nunziato
type models): ``T_1`` is the material-1 (HMX-phase) temperature that drives the chemistry
(:func:`macro.multi.phase1_temperature`), ``T_2`` the gas temperature. Phase k conducts only in
cells where it is nearly pure, ``alpha_1 >= alpha_min`` (the data use 0.9, the cells of the T
channel) and ``alpha_2 >= alpha_min2`` (the data use 0.999), and the face conductance is the
harmonic mean of ``alpha_k kappa_k`` of the two cells: the gas insulates the HMX, interface
cells exchange no heat, and the phase temperatures of mixed cells never drive a flux. They are
numerically mixed: at the upstream surface of a pore hit by the shock (125 nm cells) the gas
temperature of cells with alpha_1 ~ 0.03 swung between -9600 K and +1850 K within a few steps
(the mixture pressure between -3 and +1 MPa), and conduction from them drove the neighbouring
pure gas into tension (a guard failure); HMX-phase conduction out of such cells did the same.

**Viscosity.** Newtonian stress ``tau = mu (grad u + grad u^T - 2/3 div u I)`` (no bulk
viscosity) in the momentum and energy equations, ``mu = alpha_1 mu_1 + alpha_2 mu_2`` per cell,
each share only where its phase is nearly pure (the same cut-offs), material 1's scaled by
``1 - lambda`` (its reacted part is gaseous products), and the harmonic mean on
faces (a gas layer transmits no shear: free slip at pore surfaces). The cut-off exists because the
total-energy-conservative update does not keep each cell's internal energy positive where the
velocity jumps by a large fraction of itself across a cell: in interface cells, whose internal
energy is mostly the gas's, it drove the gas into tension (-1 to -16 MPa at the upstream
surface of a pore as the shock arrived, 125 nm cells, then a guard failure).
Face gradients: normal derivative from the two cells, tangential one from the four cells
around the face. In 1D (one row) only x faces exist; the tangential velocity v still diffuses
(Stokes' first problem).

**Stability.** Forward Euler on the 5-point stencil is stable for ``dt <= dx^2/(4 D)`` in 2D;
the kernel takes ``h = dt/n`` with ``h <= 0.1 dx^2 / D_max``, ``D`` the larger of
``4/3 mu/rho`` and each phase's ``alpha_k kappa_k xi_k / (xi rho_k cv_k)`` (its conductance over
the heat capacity its temperature sees in pressure equilibrium; ``kappa_k/(rho_k cv_k)`` in a
pure cell); the factor 0.1 against 0.25 covers the harmonic face means, which can double a
cell's effective diffusivity. At 62.5 nm cells HMX conduction allows ~1 ns and air at 1 bar
~10 ps, against hydro steps of ~5-10 ps; a viscosity of 0.45 Pa s allows ~1 ps, so viscosity
is the term that sub-cycles (each viscous sub-step recomputes velocities only, no EOS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from .boundary import NG, PERIODIC, fill_ghosts
from .eos import KIND_IDEAL, KIND_STIFFENED, PRODUCTS_FLAG, temperature
from .multi import (
    ALPHA,
    AR1,
    AR2,
    ARL,
    C_ER,
    C_P2,
    C_PP,
    C_PR,
    C_TR,
    C_X2,
    C_XP,
    C_XR,
    EN,
    MX,
    MY,
    mix_row,
)

__all__ = ["Transport", "transport_step"]

# work rows (in the solver's W array): T1, T2, u, v, mu, conduction weights of phases 1 and 2,
# face viscosities of the x faces (face i+1/2 at i) and of the y faces (face j+1/2 at j)
W_T1, W_T2, W_U, W_V, W_MU, W_A, W_B, W_FX, W_FY = 0, 1, 2, 3, 4, 5, 6, 7, 8
NW = 9
SAFETY = 0.1
# the passes allocate nothing (transport_step hands them their scratch) and take row views of
# arrays their caller holds: compiled without reference counting (as macro.stepper.SWEEP_JIT)
_TJIT = {"cache": True, "error_model": "numpy", "_nrt": False}


@dataclass(frozen=True)
class Transport:
    """Conductivities (W/(m K)) and shear viscosities (Pa s) of material 1 and material 2;
    material 1 conducts and is viscous only where alpha1 >= ``alpha_min``, material 2 where
    alpha2 >= ``alpha_min2`` (0: everywhere, weighted by the volume fraction)."""

    kappa1: float = 0.0
    kappa2: float = 0.0
    mu1: float = 0.0
    mu2: float = 0.0
    alpha_min: float = 0.0
    alpha_min2: float = 0.0

    def __post_init__(self):
        for name in ("kappa1", "kappa2", "mu1", "mu2"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0.0):
                raise ValueError(f"Transport {name}={v!r} must be finite and >= 0")
        for name in ("alpha_min", "alpha_min2"):
            v = getattr(self, name)
            if not (0.0 <= v < 1.0):
                raise ValueError(f"Transport {name}={v!r} must be in [0, 1)")

    @property
    def active(self) -> bool:
        """Whether any coefficient is non-zero (an inactive transport costs nothing)."""
        return any(v > 0.0 for v in (self.kappa1, self.kappa2, self.mu1, self.mu2))

    def pack(self) -> np.ndarray:
        return np.array([self.kappa1, self.kappa2, self.mu1, self.mu2, self.alpha_min,
                         self.alpha_min2])

    def to_dict(self) -> dict:
        return {"kappa1": self.kappa1, "kappa2": self.kappa2, "mu1": self.mu1, "mu2": self.mu2,
                "alpha_min": self.alpha_min, "alpha_min2": self.alpha_min2}


@nb.njit(**_TJIT)
def _thermal_cells(U, C, W, eos, Q, tp, dx, dy, is2d, t):
    """Phase temperatures and conduction weights of every cell (ghosts included) into W, from
    the cells' EOS data C (:func:`macro.multi.cell_eos`); returns the largest stable
    conduction sub-step. Row by row, in loops that each write one row and read few (so that
    they vectorise), the arithmetic of :func:`macro.multi.cell_state` and
    :func:`macro.multi.phase1_temperature` (phase1_state's lambda mixing); ``t`` is 8 x NX
    scratch."""
    _, NY, NX = U.shape
    q1 = eos[1]
    prod = eos[0][PRODUCTS_FLAG] != 0.0
    k1, k2, amin, amin2 = tp[0], tp[1], tp[4], tp[5]
    cv1 = eos[0][1]
    cv2 = q1[1]
    kind2 = q1[0]
    pinf2 = q1[3]
    r1, r2, lam, ke, x1, p1, xi, p = t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]
    dmax = 0.0
    for j in range(NY):
        m1 = U[AR1, j]
        m2 = U[AR2, j]
        a1 = U[ALPHA, j]
        for i in range(NX):
            r1[i] = m1[i] / a1[i]
        for i in range(NX):
            r2[i] = m2[i] / (1.0 - a1[i])
        arl = U[ARL, j]
        for i in range(NX):
            lam[i] = arl[i] / m1[i]
        mx = U[MX, j]
        my = U[MY, j]
        for i in range(NX):
            rho = m1[i] + m2[i]
            u = mx[i] / rho
            v = my[i] / rho
            ke[i] = 0.5 * rho * (u * u + v * v)
        mix_row(C[C_XR, j], C[C_XP, j], lam, prod, x1)
        mix_row(C[C_PR, j], C[C_PP, j], lam, prod, p1)
        x2 = C[C_X2, j]
        p2 = C[C_P2, j]
        for i in range(NX):
            xi[i] = a1[i] * x1[i] + (1.0 - a1[i]) * x2[i]
        en = U[EN, j]
        for i in range(NX):
            a = a1[i]
            p[i] = (en[i] - ke[i] - (a * p1[i] + (1.0 - a) * p2[i] - a * r1[i] * lam[i] * Q)
                    ) / xi[i]
        # conduction weights: phase k conducts where it is nearly pure
        w1 = W[W_A, j]
        w2 = W[W_B, j]
        for i in range(NX):
            w1[i] = a1[i] if (k1 > 0.0 and a1[i] >= amin) else 0.0
        for i in range(NX):
            a2 = 1.0 - a1[i]
            w2[i] = a2 if (k2 > 0.0 and a2 >= amin2) else 0.0
        tr = C[C_TR, j]
        er = C[C_ER, j]
        T1 = W[W_T1, j]
        for i in range(NX):
            T = tr[i] + ((x1[i] * p[i] + p1[i]) / r1[i] - er[i]) / cv1
            T1[i] = T if w1[i] > 0.0 else 0.0
        T2 = W[W_T2, j]
        if kind2 == KIND_IDEAL or kind2 == KIND_STIFFENED:
            # macro.eos.temperature's arithmetic for a gas (T_ref 0, e_ref 0 or Pi/rho) inline:
            # a call per cell passes the EOS row, whose reference count costs more than the cell
            for i in range(NX):
                e = (x2[i] * p[i] + p2[i]) / r2[i]
                er2 = 0.0 if kind2 == KIND_IDEAL else pinf2 / r2[i]
                T = 0.0 + (e - er2) / cv2
                T2[i] = T if w2[i] > 0.0 else 0.0
        else:
            for i in range(NX):
                T = temperature(q1, r2[i], (x2[i] * p[i] + p2[i]) / r2[i])
                T2[i] = T if w2[i] > 0.0 else 0.0
        # effective diffusivity of phase k: conductance alpha_k kappa_k over the heat
        # capacity its temperature sees when the mixture energy changes at fixed densities in
        # pressure equilibrium, r_k cv_k xi / xi_k
        for i in range(NX):
            d = w1[i] * k1 * x1[i] / (xi[i] * r1[i] * cv1)
            dmax = d if (w1[i] > 0.0 and d > dmax) else dmax
        for i in range(NX):
            d = w2[i] * k2 * x2[i] / (xi[i] * r2[i] * cv2)
            dmax = d if (w2[i] > 0.0 and d > dmax) else dmax
    return SAFETY * _h2(dx, dy, is2d) / dmax if dmax > 0.0 else np.inf


@nb.njit(**_TJIT)
def _velocity_cells(U, W, tp, dx, dy, is2d):
    """Velocity and viscosity of every cell (ghosts included) into W; returns the largest
    stable viscous sub-step."""
    _, NY, NX = U.shape
    mu1, mu2, amin, amin2 = tp[2], tp[3], tp[4], tp[5]
    dmax = 0.0
    for j in range(NY):
        for i in range(NX):
            m1 = U[AR1, j, i]
            rho = m1 + U[AR2, j, i]
            a1 = U[ALPHA, j, i]
            mu = 0.0
            if a1 >= amin:
                # the reacted part of material 1 is gaseous products: no HMX viscosity
                lam = U[ARL, j, i] / m1
                mu += a1 * mu1 * (1.0 - min(max(lam, 0.0), 1.0))
            if 1.0 - a1 >= amin2:
                mu += (1.0 - a1) * mu2
            W[W_U, j, i] = U[MX, j, i] / rho
            W[W_V, j, i] = U[MY, j, i] / rho
            W[W_MU, j, i] = mu
            d = 4.0 / 3.0 * mu / rho
            if d > dmax:
                dmax = d
    return SAFETY * _h2(dx, dy, is2d) / dmax if dmax > 0.0 else np.inf


@nb.njit(**_TJIT)
def _velocities(U, W):
    """Velocities of every cell (ghosts included) into W: all a viscous sub-step after the first
    needs (it changes momentum and energy, not the viscosities)."""
    _, NY, _ = U.shape
    for j in range(NY):
        m1 = U[AR1, j]
        m2 = U[AR2, j]
        mx = U[MX, j]
        my = U[MY, j]
        wu = W[W_U, j]
        wv = W[W_V, j]
        for i in range(m1.size):
            rho = m1[i] + m2[i]
            wu[i] = mx[i] / rho
            wv[i] = my[i] / rho


@nb.njit(**_TJIT)
def _face_viscosities(W, is2d):
    """Harmonic means of the cell viscosities on the x faces (face i+1/2 at i) and the y faces
    (face j+1/2 at j): fixed over the viscous sub-steps of a step."""
    _, NY, NX = W.shape
    for j in range(NY):
        mu = W[W_MU, j]
        a = mu[:NX - 1]
        b = mu[1:]
        f = W[W_FX, j]
        for i in range(NX - 1):
            f[i] = _hm(a[i], b[i])
    if is2d:
        for j in range(NY - 1):
            a = W[W_MU, j]
            b = W[W_MU, j + 1]
            f = W[W_FY, j]
            for i in range(NX):
                f[i] = _hm(a[i], b[i])


@nb.njit(cache=True, inline="always")
def _h2(dx, dy, is2d):
    return min(dx, dy) ** 2 if is2d else dx * dx


@nb.njit(cache=True, inline="always", error_model="numpy")
def _hm(a, b):
    """Harmonic mean 2ab/(a+b) (0 when either is 0)."""
    s = a + b
    return 2.0 * a * b / s if s > 0.0 else 0.0


@nb.njit(cache=True, inline="always", error_model="numpy")
def _heat_flux(wa0, wa1, ta0, ta1, wb0, wb1, tb0, tb1, k1, k2, inv_d, out, m):
    """Conductive energy flux -(sum_k hm(w_k kappa_k) dT_k/dn) through faces 0..m-1 between
    cells 0 and 1 of each face (hm: harmonic mean)."""
    for q in range(m):
        out[q] = -(_hm(wa0[q] * k1, wa1[q] * k1) * (ta1[q] - ta0[q])
                   + _hm(wb0[q] * k2, wb1[q] * k2) * (tb1[q] - tb0[q])) * inv_d


@nb.njit(**_TJIT)
def _yheat_row(W, k1, k2, inv_dy, j, out):
    """Heat flux through the y faces between rows j and j+1 (all columns) into ``out``."""
    _heat_flux(W[W_A, j], W[W_A, j + 1], W[W_T1, j], W[W_T1, j + 1], W[W_B, j], W[W_B, j + 1],
               W[W_T2, j], W[W_T2, j + 1], k1, k2, inv_dy, out, out.size)


@nb.njit(**_TJIT)
def _conduction(U, W, B, tp, h, dx, dy, is2d):
    """U[EN] += h * div(sum_k alpha_k kappa_k grad T_k) on interior cells (face fluxes), row by
    row: the row's x-face fluxes and the y-face fluxes above it into rows of ``B`` (3 x NX
    scratch; the row below's kept), the sums in the order of the former face-by-face
    accumulation."""
    _, NY, NX = W.shape
    k1, k2 = tp[0], tp[1]
    jlo, jhi = (NG, NY - NG) if is2d else (0, 1)
    inv_dx = 1.0 / dx
    inv_dy = 1.0 / dy
    n = NX - 2 * NG
    fx = B[0, :n + 1]
    lo = 1
    if is2d:
        _yheat_row(W, k1, k2, inv_dy, jlo - 1, B[lo])
    for j in range(jlo, jhi):
        hi = 3 - lo
        a = NG - 1
        b = NX - NG
        _heat_flux(W[W_A, j, a:b], W[W_A, j, a + 1:b + 1], W[W_T1, j, a:b],
                   W[W_T1, j, a + 1:b + 1], W[W_B, j, a:b], W[W_B, j, a + 1:b + 1],
                   W[W_T2, j, a:b], W[W_T2, j, a + 1:b + 1], k1, k2, inv_dx, fx, n + 1)
        en = U[EN, j, NG:NX - NG]
        f0 = B[0, 0:n]
        f1 = B[0, 1:n + 1]
        if is2d:
            _yheat_row(W, k1, k2, inv_dy, j, B[hi])
            g0 = B[lo, NG:NX - NG]
            g1 = B[hi, NG:NX - NG]
            for q in range(n):
                en[q] += h * (0.0 + f0[q] * inv_dx - f1[q] * inv_dx + g0[q] * inv_dy
                              - g1[q] * inv_dy)
        else:
            for q in range(n):
                en[q] += h * (0.0 + f0[q] * inv_dx - f1[q] * inv_dx)
        lo = hi


# The face loops below write one row each and read few: with more memory streams than LLVM's
# runtime alias checks cover, a loop over row views does not vectorise.


@nb.njit(cache=True, inline="always", error_model="numpy")
def _tangential(a0, a1, b0, b1, out, f, m):
    """out = f * (a1 - a0 + b1 - b0): the tangential derivative on faces 0..m-1 from the four
    cells around each face."""
    for q in range(m):
        out[q] = f * (a1[q] - a0[q] + b1[q] - b0[q])


@nb.njit(cache=True, inline="always", error_model="numpy")
def _face_stresses(mu, un0, un1, ut0, ut1, dtn, dtt, inv_dn, tn, tt, te, m):
    """Normal stress, shear stress and energy flux on faces 0..m-1 whose normal velocity is un
    and tangential one ut (cells 0 and 1 on either side), from the tangential derivatives dtn
    (of un) and dtt (of ut); zeros where the face viscosity is not positive (no shear across a
    gas layer)."""
    for q in range(m):
        t = mu[q] * (4.0 / 3.0 * ((un1[q] - un0[q]) * inv_dn) - 2.0 / 3.0 * dtt[q])
        tn[q] = t if mu[q] > 0.0 else 0.0
    for q in range(m):
        t = mu[q] * (dtn[q] + (ut1[q] - ut0[q]) * inv_dn)
        tt[q] = t if mu[q] > 0.0 else 0.0
    for q in range(m):
        e = -(tn[q] * 0.5 * (un0[q] + un1[q]) + tt[q] * 0.5 * (ut0[q] + ut1[q]))
        te[q] = e if mu[q] > 0.0 else 0.0


@nb.njit(**_TJIT)
def _xface_row(W, B, j, i0, m, inv_dx, inv_dy, is2d):
    """(txx, txy, energy flux) at the x faces i0..i0+m-1 of row j (face i+1/2 between cells i and
    i+1) into B rows 0..2 at i0.. (rows 9, 10 take the tangential derivatives). Normal
    derivatives from the two cells, tangential ones from the four cells around the face."""
    u0 = W[W_U, j, i0:i0 + m]
    u1 = W[W_U, j, i0 + 1:i0 + m + 1]
    v0 = W[W_V, j, i0:i0 + m]
    v1 = W[W_V, j, i0 + 1:i0 + m + 1]
    uy = B[9, i0:i0 + m]
    vy = B[10, i0:i0 + m]
    if is2d:
        f = 0.25 * inv_dy
        _tangential(W[W_U, j - 1, i0:i0 + m], W[W_U, j + 1, i0:i0 + m],
                    W[W_U, j - 1, i0 + 1:i0 + m + 1], W[W_U, j + 1, i0 + 1:i0 + m + 1], uy, f, m)
        _tangential(W[W_V, j - 1, i0:i0 + m], W[W_V, j + 1, i0:i0 + m],
                    W[W_V, j - 1, i0 + 1:i0 + m + 1], W[W_V, j + 1, i0 + 1:i0 + m + 1], vy, f, m)
    else:
        uy[:] = 0.0
        vy[:] = 0.0
    _face_stresses(W[W_FX, j, i0:i0 + m], u0, u1, v0, v1, uy, vy, inv_dx, B[0, i0:i0 + m],
                   B[1, i0:i0 + m], B[2, i0:i0 + m], m)


@nb.njit(**_TJIT)
def _yface_row(W, B, k, j, i0, m, inv_dx, inv_dy):
    """(txy, tyy, energy flux) at the y faces between rows j and j+1, columns i0..i0+m-1, into
    B rows k..k+2 at i0.. (as :func:`_xface_row`)."""
    ux = B[9, i0:i0 + m]
    vx = B[10, i0:i0 + m]
    f = 0.25 * inv_dx
    _tangential(W[W_U, j, i0 - 1:i0 + m - 1], W[W_U, j, i0 + 1:i0 + m + 1],
                W[W_U, j + 1, i0 - 1:i0 + m - 1], W[W_U, j + 1, i0 + 1:i0 + m + 1], ux, f, m)
    _tangential(W[W_V, j, i0 - 1:i0 + m - 1], W[W_V, j, i0 + 1:i0 + m + 1],
                W[W_V, j + 1, i0 - 1:i0 + m - 1], W[W_V, j + 1, i0 + 1:i0 + m + 1], vx, f, m)
    # the normal velocity is v, the tangential one u: rows k + 1 (tyy) and k (txy)
    _face_stresses(W[W_FY, j, i0:i0 + m], W[W_V, j, i0:i0 + m], W[W_V, j + 1, i0:i0 + m],
                   W[W_U, j, i0:i0 + m], W[W_U, j + 1, i0:i0 + m], vx, ux, inv_dy,
                   B[k + 1, i0:i0 + m], B[k, i0:i0 + m], B[k + 2, i0:i0 + m], m)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _row_update(y, x0, x1, lo, hi, h, inv_dx, inv_dy, sign, m):
    """y += h * sign * ((x1 - x0)/dx + (hi - lo)/dy) on cells 0..m-1 (the x faces either side,
    the y faces below and above), in the order of the former face-by-face accumulation."""
    if sign > 0.0:
        for q in range(m):
            y[q] += h * (-(x0[q] * inv_dx) + x1[q] * inv_dx - lo[q] * inv_dy + hi[q] * inv_dy)
    else:
        for q in range(m):
            y[q] += h * (x0[q] * inv_dx - x1[q] * inv_dx + lo[q] * inv_dy - hi[q] * inv_dy)


@nb.njit(**_TJIT)
def _viscous(U, W, B, h, dx, dy, is2d):
    """Momentum and energy += h * (div tau, div(tau u)) on interior cells (face fluxes).

    Row by row: the x-face stresses of the row and the y-face stresses above it go into rows
    of ``B`` (11 x NX scratch), the row below's are kept (the two y-face row blocks swap
    roles), and the row of U is updated in place (the stresses come from the velocities in W
    and the face viscosities of :func:`_face_viscosities`, so in-place updates are safe)."""
    _, NY, NX = W.shape
    jlo, jhi = (NG, NY - NG) if is2d else (0, 1)
    inv_dx = 1.0 / dx
    inv_dy = 1.0 / dy
    n = NX - 2 * NG
    lo = 3
    if is2d:
        _yface_row(W, B, lo, jlo - 1, NG, n, inv_dx, inv_dy)
    else:
        B[3:9] = 0.0
    for j in range(jlo, jhi):
        hi = 9 - lo
        _xface_row(W, B, j, NG - 1, n + 1, inv_dx, inv_dy, is2d)
        if is2d:
            _yface_row(W, B, hi, j, NG, n, inv_dx, inv_dy)
        for k, v, sign in ((0, MX, 1.0), (1, MY, 1.0), (2, EN, -1.0)):
            _row_update(U[v, j, NG:NX - NG], B[k, NG - 1:NX - NG - 1], B[k, NG:NX - NG],
                        B[lo + k, NG:NX - NG], B[hi + k, NG:NX - NG], h, inv_dx,
                        inv_dy if is2d else 0.0, sign, n)
        lo = hi


@nb.njit(cache=True)
def _seal_open_sides(W, codes, is2d):
    """No diffusive flux through a non-periodic side: the ghosts' conductances and viscosity
    are zeroed (the face's harmonic mean is then 0). An inflow or transmissive side is open
    (adiabatic, traction-free); with the ghost's fixed state in the face gradient, the
    viscous stress of a window moving against it heated the last cells of an exit by
    ~700 K in 10 ns. Walls are adiabatic and free-slip."""
    _, NY, NX = W.shape
    for k in range(4 if is2d else 2):
        if codes[k] == PERIODIC:
            continue
        if k < 2:
            i0 = 0 if k == 0 else NX - NG
            for j in range(NY):
                for i in range(i0, i0 + NG):
                    W[W_MU, j, i] = 0.0
                    W[W_A, j, i] = 0.0
                    W[W_B, j, i] = 0.0
        else:
            j0 = 0 if k == 2 else NY - NG
            for j in range(j0, j0 + NG):
                for i in range(NX):
                    W[W_MU, j, i] = 0.0
                    W[W_A, j, i] = 0.0
                    W[W_B, j, i] = 0.0


@nb.njit(cache=True, error_model="numpy")
def transport_step(U, C, W, D, eos, Q, tp, dt, dx, dy, codes, uwall, inflow):
    """Advance U (ghosts included) by conduction, then viscosity, over ``dt``, each
    sub-cycled to its own limit (no EOS calls: the cells' EOS data C come from
    :func:`macro.multi.cell_eos` of U with its ghosts filled; a viscous sub-step only
    recomputes velocities).

    ``W`` (at least :data:`NW` rows) is scratch; ``D`` is unused (kept for the caller's
    signature). Returns the number of sub-steps taken (conduction + viscosity; 0 when every
    coefficient is zero)."""
    _, NY, NX = U.shape
    if W.shape[0] < NW:
        raise ValueError("transport_step: W needs at least transport.NW rows")
    is2d = NY > 1
    total = 0
    B = np.empty((11, NX))  # row scratch of the passes
    if tp[0] > 0.0 or tp[1] > 0.0:
        fill_ghosts(U, codes, uwall, inflow, 2, MX, MY, EN)
        hmax = _thermal_cells(U, C, W, eos, Q, tp, dx, dy, is2d, B)
        _seal_open_sides(W, codes, is2d)
        n = 1 if dt <= hmax else int(np.ceil(dt / hmax))
        for s in range(n):
            if s > 0:
                fill_ghosts(U, codes, uwall, inflow, 2, MX, MY, EN)
                _thermal_cells(U, C, W, eos, Q, tp, dx, dy, is2d, B)
                _seal_open_sides(W, codes, is2d)
            _conduction(U, W, B, tp, dt / n, dx, dy, is2d)
        total += n
    if tp[2] > 0.0 or tp[3] > 0.0:
        fill_ghosts(U, codes, uwall, inflow, 2, MX, MY, EN)
        hmax = _velocity_cells(U, W, tp, dx, dy, is2d)
        _seal_open_sides(W, codes, is2d)
        _face_viscosities(W, is2d)
        n = 1 if dt <= hmax else int(np.ceil(dt / hmax))
        for s in range(n):
            if s > 0:
                fill_ghosts(U, codes, uwall, inflow, 2, MX, MY, EN)
                _velocities(U, W)
            _viscous(U, W, B, dt / n, dx, dy, is2d)
        total += n
    return total
