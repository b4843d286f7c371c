"""Reaction rate models for the progress variable lambda (0 = unreacted, 1 = fully reacted).

Built-in rates run inside jitted kernels (operator split after each hydro step, at constant
density and total energy, so only lambda and with it p and T change). Each cell is sub-cycled
so lambda moves by at most a few percent per sub-step: the induction time of Arrhenius chemistry
at hotspot temperatures (~0.1 ns at 2000 K) is far below a hydro step.

Any Python object with a ``rate(*, cell_ids, pressure, density, temperature, lam, dt)`` method
returning dlambda/dt (1/s) per cell is accepted as well (see :class:`RateModel`): that is how the
learned closure plugs in without the hydro code importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numba as nb
import numpy as np

from . import euler, multi
from .eos import temperature, xi_pi
from .vmath import exp as vexp

NONE, ARRHENIUS, LEE_TARVER = 0, 1, 2
RATE_PARAMS = 16
MBAR = 1.0e11  # Pa
MICROSECOND = 1.0e-6  # s


@runtime_checkable
class RateModel(Protocol):
    """A reaction rate supplied from outside the hydro core (e.g. the learned closure)."""

    def rate(self, *, cell_ids: np.ndarray, pressure: np.ndarray, density: np.ndarray,
             temperature: np.ndarray, lam: np.ndarray, dt: float) -> np.ndarray: ...


@dataclass(frozen=True)
class Arrhenius:
    """One-step Arrhenius ``dlam/dt = k (1 - lam) exp(-Ta / T)`` with the reactant temperature.

    ``T_ignition`` switches the rate off below that temperature (0 = never). HMX (Henson et al.):
    Ta = 17,922 K, k = 5.58e12 1/s (commonly scaled by 0.01-0.1). ``alpha_min`` (five-equation
    model only): react only where the reacting material's volume fraction is at least this
    (0 = every cell); interface cells' phase temperature is numerically mixed.
    """

    k: float
    Ta: float
    T_ignition: float = 0.0
    alpha_min: float = 0.0

    def __post_init__(self):
        if not (self.k > 0 and np.isfinite(self.k)):
            raise ValueError(f"Arrhenius k={self.k!r} must be finite and > 0 (1/s)")
        if not (self.Ta >= 0 and np.isfinite(self.Ta)):
            raise ValueError(f"Arrhenius Ta={self.Ta!r} must be finite and >= 0 (K)")
        if not (0.0 <= self.alpha_min < 1.0):
            raise ValueError(f"Arrhenius alpha_min={self.alpha_min!r} must be in [0, 1)")

    def pack(self) -> tuple[int, np.ndarray]:
        rp = np.zeros(RATE_PARAMS)
        rp[0], rp[1], rp[2], rp[3] = self.k, self.Ta, self.T_ignition, self.alpha_min
        return ARRHENIUS, rp


@dataclass(frozen=True)
class LeeTarver:
    """Lee-Tarver ignition and growth (Tarver, Tao & Lee 1996, LX-14), in Mbar and microseconds.

    ``dF/dt = I (1-F)^b (rho/rho0 - 1 - a)^x        [F < Figmax]
             + G1 (1-F)^c F^d p^y                    [F < FG1max]
             + G2 (1-F)^e F^g p^z                    [F > FG2min]``
    """

    rho0: float = 1849.0
    I: float = 7.43e11  # noqa: E741 - the model's name for it
    a: float = 0.0
    b: float = 0.667
    x: float = 20.0
    G1: float = 175.0
    c: float = 0.667
    d: float = 0.111
    y: float = 2.0
    G2: float = 10.0
    e: float = 0.667
    g: float = 0.667
    z: float = 1.0
    Figmax: float = 0.02
    FG1max: float = 0.8
    FG2min: float = 0.8

    def pack(self) -> tuple[int, np.ndarray]:
        rp = np.zeros(RATE_PARAMS)
        rp[:16] = (self.I, self.a, self.b, self.x, self.G1, self.c, self.d, self.y, self.G2,
                   self.e, self.g, self.z, self.Figmax, self.FG1max, self.FG2min, self.rho0)
        return LEE_TARVER, rp


#: Built-in rates by the ``type`` name of their [reaction] tables (macro.config validates these).
RATE_TYPES: dict[str, type] = {"Arrhenius": Arrhenius, "LeeTarver": LeeTarver}


def rate_from_dict(d: dict):
    d = dict(d)
    kind = d.pop("type", None)
    if kind not in RATE_TYPES:
        raise ValueError(f"rate type={kind!r} is not one of {sorted(RATE_TYPES)}")
    return RATE_TYPES[kind](**d)


@nb.njit(cache=True, inline="always")
def builtin_rate(kind, rp, p, rho, T, lam):
    if kind == ARRHENIUS:
        if T <= rp[2] or T <= 0.0:
            return 0.0
        return rp[0] * (1.0 - lam) * np.exp(-rp[1] / T)
    # Lee-Tarver in Mbar / microsecond units
    F = lam
    pm = p / MBAR
    r = 0.0
    mu = rho / rp[15] - 1.0 - rp[1]
    if F < rp[12] and mu > 0.0:
        r += rp[0] * (1.0 - F) ** rp[2] * mu ** rp[3]
    if pm > 0.0:
        if F < rp[13] and F > 0.0:
            r += rp[4] * (1.0 - F) ** rp[5] * F ** rp[6] * pm ** rp[7]
        if F > rp[14]:
            r += rp[8] * (1.0 - F) ** rp[9] * F ** rp[10] * pm ** rp[11]
    return r / MICROSECOND


@nb.njit(cache=True, inline="always")
def substep(kind, rp, p, rho, T, lam, remaining):
    """Advance lambda over at most `remaining`; returns (new lambda, time used)."""
    r = builtin_rate(kind, rp, p, rho, T, lam)
    if not (r > 0.0) or lam >= 1.0:
        return lam, remaining
    if kind == ARRHENIUS:
        h = min(remaining, 0.05 / r)
        keff = r / (1.0 - lam)
        return 1.0 - (1.0 - lam) * np.exp(-keff * h), h
    h = min(remaining, 0.02 / r)
    new = lam + r * h
    return (new if new < 1.0 else 1.0), h


@nb.njit(cache=True, parallel=True)
def react_euler(U, eos, Q, kind, rp, dt):
    """Integrate the built-in rate over dt in every interior cell of the Euler model."""
    _, NY, NX = U.shape
    g = 2
    jlo, jhi = (g, NY - g) if NY > 1 else (0, 1)
    for j in nb.prange(jlo, jhi):
        for i in range(g, NX - g):
            rho = U[euler.RHO, j, i]
            lam = U[euler.RLAM, j, i] / rho
            rhoe = U[euler.EN, j, i] - 0.5 * (U[euler.MX, j, i] ** 2 + U[euler.MY, j, i] ** 2) / rho
            xr, pr, _, _ = xi_pi(eos[0], rho)
            t = 0.0
            while t < dt and lam < 1.0:
                xi, pi, _, _ = euler.mix_xi_pi(eos, rho, lam, Q, True)
                p = (rhoe - pi) / xi
                T = temperature(eos[0], rho, (xr * p + pr) / rho)
                lam, h = substep(kind, rp, p, rho, T, lam, dt - t)
                t += h
            U[euler.RLAM, j, i] = rho * lam


@nb.njit(cache=True, inline="always", error_model="numpy")
def _multi_cell_eos(C, eos, j, i):
    """What the chemistry of one five-equation cell needs from the EOS, all at the cell's fixed
    phase densities (:func:`macro.multi.cell_eos`, evaluated once per cell, not per sub-step):
    reactant and products (xi, Pi) of material 1, (xi, Pi) of material 2, and material 1's
    temperature reference (:func:`macro.eos.temperature_ref`)."""
    q0 = eos[0]
    prod = q0[multi.PRODUCTS_FLAG] != 0.0
    return (C[multi.C_XR, j, i], C[multi.C_PR, j, i], C[multi.C_XP, j, i], C[multi.C_PP, j, i],
            prod, C[multi.C_X2, j, i], C[multi.C_P2, j, i], C[multi.C_TR, j, i],
            C[multi.C_ER, j, i], q0[1])


@nb.njit(cache=True, inline="always", error_model="numpy")
def _p_T(a1, r1, lam, rhoe, x1, p1, x2, p2, Tr, er, Q, cv):
    """Pressure and reactant temperature of a cell from its phases' (xi, Pi), material 1's
    mixed by lambda: the arithmetic of :func:`macro.multi.mixture` and
    :func:`macro.multi.phase1_temperature`."""
    a2 = 1.0 - a1
    p = (rhoe - (a1 * p1 + a2 * p2 - a1 * r1 * lam * Q)) / (a1 * x1 + a2 * x2)
    return p, Tr + ((x1 * p + p1) / r1 - er) / cv


@nb.njit(cache=True, inline="always", error_model="numpy")
def _multi_p_T(c, Q, r1, a1, lam, rhoe):
    """Pressure and reactant (HMX-phase) temperature of a cell at constant density and energy
    (``c`` from :func:`_multi_cell_eos`)."""
    xr, pr, xp, pp, prod, x2, p2, Tr, er, cv = c
    x1 = multi.mix(xr, lam, xp) if prod else xr
    p1 = multi.mix(pr, lam, pp) if prod else pr
    return _p_T(a1, r1, lam, rhoe, x1, p1, x2, p2, Tr, er, Q, cv)


@nb.njit(cache=True, inline="always", error_model="numpy")
def _arrhenius_multi(c, Q, rp, r1, a1, rhoe, lam, T, remaining):
    """One Arrhenius sub-step at constant density and energy: (new lambda, time used).

    The step moves lambda by at most 5% and the temperature by at most ``0.1 T^2/Ta`` (heat
    ``Q dlam / cv``), i.e. the rate by ~10%; lambda is advanced exactly at the rate of the
    mid-step temperature (exponential midpoint: second order in the heat-release feedback),
    so the adiabatic induction time is resolved whatever the hydro step. Where k h < 1e-17 the
    step is skipped and lambda kept exactly: exp(-k h) rounds to 1 there."""
    k, Ta, Tig = rp[0], rp[1], rp[2]
    if not (T > Tig and T > 0.0):
        return lam, remaining
    k0 = k * np.exp(-Ta / T)
    if not (k0 * remaining > 1e-17):
        # exp(-k0 h) rounds to 1 (and the mid-step rate is k0's): lambda cannot move
        return lam, remaining
    dlam = 0.05
    cv = c[9]
    if Ta > 0.0 and Q > 0.0:
        dlam = min(dlam, 0.1 * T * T / Ta * cv / Q)
    h = min(remaining, dlam / (k0 * (1.0 - lam)))
    lh = 1.0 - (1.0 - lam) * np.exp(-0.5 * k0 * h)
    _, Th = _multi_p_T(c, Q, r1, a1, lh, rhoe)
    kh = k * np.exp(-Ta / Th) if (Th > Tig and Th > 0.0) else 0.0
    return 1.0 - (1.0 - lam) * np.exp(-kh * h), h


@nb.njit(cache=True, error_model="numpy")
def arrhenius_screen_temperature(rp, dt):
    """A temperature below which no cell can react over ``dt`` (:func:`_arrhenius_multi` skips
    it: T <= T_ig, or k exp(-Ta/T) dt <= 1e-17), 1e-6 below the exact bound (far above its
    rounding), so that screening with it never skips a cell the sub-step would move."""
    k, Ta, Tig = rp[0], rp[1], rp[2]
    if not (k * dt > 1e-17):
        return np.inf
    Tk = Ta / np.log(k * dt / 1e-17) if Ta > 0.0 else 0.0
    return max(Tig, 0.0, Tk) * (1.0 - 1e-6)


# scratch rows of :func:`_arrhenius_row`
_R1, _LAM, _RHOE, _X1, _P1, _T, _K0, _H, _LNEW = range(9)
ROW_SCRATCH = 9


@nb.njit(cache=True, error_model="numpy", _nrt=False)
def _arrhenius_row(U, C, Q, prod, cv, rp, amin, T_min, dt, j, t):
    """The first Arrhenius sub-step of every cell of row j at once: :func:`_arrhenius_multi`'s
    arithmetic with :func:`macro.vmath.exp`, in loops that vectorise (each writes one row and
    reads few). Into the rows of t: lambda before (row _LAM) and after (_LNEW) it and its length
    (_H; 0 where the cell cannot react: below the screen temperature ``T_min``, alpha1 <
    ``amin``, burnt, or k h < 1e-17). In a shocked patch nearly every cell passes the
    temperature screen yet needs a single sub-step (k exp(-Ta/T) dt << 0.05): that step as a
    serial chain of libm exps per cell was a fifth of a burning data-generation step. Row
    views only: compiled without reference counting (:data:`macro.stepper.SWEEP_JIT`)."""
    r1, lam, rhoe, x1, p1 = t[_R1], t[_LAM], t[_RHOE], t[_X1], t[_P1]
    T, k0, h, lnew = t[_T], t[_K0], t[_H], t[_LNEW]
    m1 = U[multi.AR1, j]
    a1 = U[multi.ALPHA, j]
    arl = U[multi.ARL, j]
    for i in range(r1.size):
        r1[i] = m1[i] / a1[i]
    for i in range(r1.size):
        lam[i] = arl[i] / m1[i]
    m2 = U[multi.AR2, j]
    en = U[multi.EN, j]
    mx = U[multi.MX, j]
    my = U[multi.MY, j]
    for i in range(r1.size):
        rhoe[i] = en[i] - 0.5 * (mx[i] ** 2 + my[i] ** 2) / (m1[i] + m2[i])
    xr, xp = C[multi.C_XR, j], C[multi.C_XP, j]
    pr, pp = C[multi.C_PR, j], C[multi.C_PP, j]
    x2, p2 = C[multi.C_X2, j], C[multi.C_P2, j]
    tr, er = C[multi.C_TR, j], C[multi.C_ER, j]
    multi.mix_row(xr, xp, lam, prod, x1)
    multi.mix_row(pr, pp, lam, prod, p1)
    for i in range(r1.size):
        T[i] = _p_T(a1[i], r1[i], lam[i], rhoe[i], x1[i], p1[i], x2[i], p2[i], tr[i], er[i], Q,
                    cv)[1]
    k, Ta, Tig = rp[0], rp[1], rp[2]
    limit_dT = Ta > 0.0 and Q > 0.0
    n = 0
    for i in range(r1.size):
        Ti = T[i]
        go = Ti >= T_min and a1[i] >= amin and lam[i] < 1.0 and Ti > Tig and Ti > 0.0
        h[i] = 1.0 if go else 0.0
        n += go
    if n == 0:
        return  # the usual row of an inert patch: no cell can react (h is 0 throughout)
    for i in range(r1.size):
        Ti = T[i]
        go = h[i] > 0.0
        kk = k * vexp(-Ta / Ti if go else 0.0)
        go = go and kk * dt > 1e-17
        dlam = min(0.05, 0.1 * Ti * Ti / Ta * cv / Q) if limit_dT else 0.05
        k0[i] = kk if go else 0.0
        h[i] = min(dt, dlam / (kk * (1.0 - lam[i]))) if go else 0.0
    lh = T  # the mid-step lambda (T is not needed again)
    for i in range(r1.size):
        lh[i] = 1.0 - (1.0 - lam[i]) * vexp(-0.5 * k0[i] * h[i])
    multi.mix_row(xr, xp, lh, prod, x1)
    multi.mix_row(pr, pp, lh, prod, p1)
    for i in range(r1.size):
        Th = _p_T(a1[i], r1[i], lh[i], rhoe[i], x1[i], p1[i], x2[i], p2[i], tr[i], er[i], Q,
                  cv)[1]
        ok = Th > Tig and Th > 0.0
        kh = k * vexp(-Ta / Th if ok else 0.0) if ok else 0.0
        ln = 1.0 - (1.0 - lam[i]) * vexp(-kh * h[i])
        lnew[i] = ln if h[i] > 0.0 else lam[i]


@nb.njit(cache=True, parallel=True)
def react_multi(U, C, eos, Q, kind, rp, dt):
    """Same for the five-equation model; the rate sees material 1's phase density and its
    temperature (:func:`macro.multi.phase1_temperature`). Arrhenius reacts only where alpha1
    >= ``rp[3]`` and is sub-stepped by :func:`_arrhenius_multi`, the first sub-step of a row's
    cells at once (:func:`_arrhenius_row`, after a temperature screen:
    :func:`arrhenius_screen_temperature`), the rest per cell. The phase densities are fixed
    during the step, so the EOS data are the cells' C (:func:`macro.multi.cell_eos` of U). A
    cell whose lambda does not move keeps its conserved lambda exactly."""
    _, NY, NX = U.shape
    g = 2
    jlo, jhi = (g, NY - g) if NY > 1 else (0, 1)
    arr = kind == ARRHENIUS
    amin = rp[3] if arr else 0.0
    T_min = arrhenius_screen_temperature(rp, dt) if arr else -np.inf
    prod = eos[0][multi.PRODUCTS_FLAG] != 0.0
    cv = eos[0][1]
    for j in nb.prange(jlo, jhi):
        if arr:
            if not dt > 0.0:
                continue
            tmp = np.empty((ROW_SCRATCH, NX))
            _arrhenius_row(U, C, Q, prod, cv, rp, amin, T_min, dt, j, tmp)
        for i in range(g, NX - g):
            m1 = U[multi.AR1, j, i]
            a1 = U[multi.ALPHA, j, i]
            if arr:
                t = tmp[_H, i]
                if not t > 0.0:
                    continue
                lam0 = tmp[_LAM, i]
                lam = tmp[_LNEW, i]
            else:
                if a1 < amin:
                    continue
                lam0 = U[multi.ARL, j, i] / m1
                lam = lam0
                t = 0.0
                if not (lam < 1.0 and dt > 0.0):
                    continue
            if t < dt and lam < 1.0:
                r1 = m1 / a1
                rhoe = U[multi.EN, j, i] - 0.5 * (U[multi.MX, j, i] ** 2
                                                   + U[multi.MY, j, i] ** 2) / (
                    m1 + U[multi.AR2, j, i])
                c = _multi_cell_eos(C, eos, j, i)
                while t < dt and lam < 1.0:
                    p, T = _multi_p_T(c, Q, r1, a1, lam, rhoe)
                    if arr:
                        lam, h = _arrhenius_multi(c, Q, rp, r1, a1, rhoe, lam, T, dt - t)
                    else:
                        lam, h = substep(kind, rp, p, r1, T, lam, dt - t)
                    t += h
            if lam != lam0:
                U[multi.ARL, j, i] = m1 * lam
