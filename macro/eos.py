"""Equations of state in the Mie-Grueneisen form used by every hydro kernel.

Every EOS here is written as ``rho*e = xi(rho)*p + Pi(rho)``, i.e. ``p = (rho*e - Pi)/xi``:

=================  ======================  ==========================================
EOS                xi(rho)                 Pi(rho)
=================  ======================  ==========================================
ideal gas          1/(gamma-1)             0
stiffened gas      1/(gamma-1)             gamma*p_inf/(gamma-1)
Mie-Grueneisen     rho/(Gamma0*rho0)       rho*(e_H - p_H/(Gamma0*rho0))   (Gamma*rho const)
JWL                1/omega                 -p_ref(rho)/omega
Hayes              rho/(Gamma0*rho0)       rho*(e_T - p_T/(Gamma0*rho0))   (T0 isotherm)
=================  ======================  ==========================================

This one form gives pressure, sound speed and the diffuse-interface mixture rule
``p = (rho*e - sum alpha_k Pi_k(rho_k)) / sum alpha_k xi_k(rho_k)`` for all materials, so the
kernels need a single code path. Each Python class packs its parameters into a float64 vector
(``pack()``) that jitted kernels read through :func:`xi_pi`, :func:`sound_speed_sq` and
:func:`temperature`.

Temperature models (constant cv): ideal/stiffened ``e = cv*T (+ p_inf/rho)``; Mie-Grueneisen
``T = T_H(rho) + (e - e_H(rho))/cv`` with the Hugoniot temperature ``T_H`` integrated once at
construction and tabulated; JWL ``p = A exp(-R1 V) + B exp(-R2 V) + omega*rho*cv*T`` with
``V = rho0/rho``; Hayes ``T = T0 + (e - e_T(rho))/cv`` exactly (its reference is an isotherm).

A reacting material's packed vector may carry its products EOS in its tail
(:class:`ReactiveEOS`): the five-equation kernels mix the two at the phase density by the
reaction progress (:func:`macro.multi.phase1_xi_pi`) without another EOS row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np
from scipy.integrate import solve_ivp

from .vmath import exp as vexp
from .vmath import pow_pos

__all__ = [
    "EOS",
    "IdealGas",
    "StiffenedGas",
    "MieGruneisen",
    "JWL",
    "Hayes",
    "ReactiveEOS",
    "pack_eos",
    "xi_pi",
    "pressure",
    "sound_speed_sq",
    "temperature",
]

# Packed layout: slot 0 kind, slot 1 cv, slots 2.. kind-specific, table from HEADER on; a
# reacting material's products EOS (its header) from PRODUCTS_OFF on, flagged in PRODUCTS_FLAG.
KIND_IDEAL, KIND_STIFFENED, KIND_MG, KIND_JWL, KIND_HAYES = 0, 1, 2, 3, 4
HEADER = 16
MG_TABLE = 1024
PRODUCTS_FLAG = HEADER - 1
PRODUCTS_OFF = HEADER + MG_TABLE
PACK_SIZE = PRODUCTS_OFF + HEADER


class EOS:
    """Base class: Python-side helpers wrapping the jitted scalar functions."""

    kind: int

    def pack(self) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def packed(self) -> np.ndarray:
        cached = getattr(self, "_packed", None)
        if cached is None:
            cached = self.pack()
            object.__setattr__(self, "_packed", cached)
        return cached

    def pressure(self, rho, e):
        """Pressure (Pa) from density (kg/m3) and specific internal energy (J/kg)."""
        return self._apply(_vec_pressure, rho, e)

    def energy(self, rho, p):
        """Specific internal energy from density and pressure."""
        return self._apply(_vec_energy, rho, p)

    def sound_speed(self, rho, p):
        """Sound speed (m/s) from density and pressure."""
        return np.sqrt(self._apply(_vec_c2, rho, p))

    def temperature(self, rho, e):
        """Temperature (K) from density and specific internal energy."""
        return self._apply(_vec_temperature, rho, e)

    def hugoniot(self, u_p: float, rho_a: float, p_a: float) -> dict:
        """Shock state of particle velocity ``u_p`` (m/s) from the state (``rho_a``, ``p_a``)
        at rest: Rankine-Hugoniot with this EOS, ``e - e_a = (p + p_a)(V_a - V)/2``.

        Returns ``Us``, ``rho``, ``p``, ``e``, ``T`` (SI). Valid for any xi/Pi EOS whose
        Hugoniot is monotone in density (all here in the range of interest)."""
        from scipy.optimize import brentq

        e_a = float(self.energy(rho_a, p_a))
        Va = 1.0 / rho_a
        u2 = float(u_p) ** 2
        if u2 == 0.0:
            return {"Us": float(self.sound_speed(rho_a, p_a)), "rho": float(rho_a),
                    "p": float(p_a), "e": e_a, "T": float(self.temperature(rho_a, e_a))}

        def p_h(rho):
            xi, pi = _xi_pi_py(self.packed, rho)
            dv = Va - 1.0 / rho
            return (e_a + 0.5 * p_a * dv - pi / rho) / (xi / rho - 0.5 * dv)

        def f(rho):
            return (p_h(rho) - p_a) * (Va - 1.0 / rho) - u2

        hi = rho_a * 1.05
        while f(hi) < 0.0:
            hi = rho_a + 2.0 * (hi - rho_a)
            if hi > 10.0 * rho_a:
                raise ValueError(f"no Hugoniot state for u_p={u_p!r} below 10 rho_a")
        rho = brentq(f, rho_a * (1.0 + 1e-14), hi, xtol=1e-14 * rho_a, rtol=1e-14)
        p = p_h(rho)
        e = e_a + 0.5 * (p + p_a) * (Va - 1.0 / rho)
        us = float(np.sqrt((p - p_a) / (Va - 1.0 / rho)) * Va)
        return {"Us": us, "rho": float(rho), "p": float(p), "e": float(e),
                "T": float(self.temperature(rho, e))}

    def _apply(self, fn, a, b):
        a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
        out = fn(self.packed, np.ascontiguousarray(a).ravel(), np.ascontiguousarray(b).ravel())
        return out.reshape(a.shape) if a.ndim else float(out[0])

    def to_dict(self) -> dict:
        out = {"type": type(self).__name__}
        for k, v in self.__dict__.items():
            if not k.startswith("_"):
                out[k] = v
        return out


@dataclass(frozen=True)
class IdealGas(EOS):
    """Calorically perfect gas; ``cv`` defaults to air (R = 287 J/(kg K))."""

    gamma: float
    cv: float = 717.5
    kind: int = field(default=KIND_IDEAL, init=False, repr=False)

    def __post_init__(self):
        _check_gamma(self.gamma)
        _check_positive("cv", self.cv, "> 0")

    def pack(self) -> np.ndarray:
        a = np.zeros(PACK_SIZE)
        a[0], a[1], a[2], a[3] = KIND_IDEAL, self.cv, self.gamma, 0.0
        return a


@dataclass(frozen=True)
class StiffenedGas(EOS):
    """Stiffened gas ``p = (gamma-1)*rho*e - gamma*p_inf``; temperature from ``e - p_inf/rho``."""

    gamma: float
    p_inf: float
    cv: float = 1000.0
    kind: int = field(default=KIND_STIFFENED, init=False, repr=False)

    def __post_init__(self):
        _check_gamma(self.gamma)
        if self.p_inf < 0:
            raise ValueError(f"p_inf={self.p_inf!r} must be >= 0 Pa")
        _check_positive("cv", self.cv, "> 0")

    def pack(self) -> np.ndarray:
        a = np.zeros(PACK_SIZE)
        a[0], a[1], a[2], a[3] = KIND_STIFFENED, self.cv, self.gamma, self.p_inf
        return a


@dataclass(frozen=True)
class MieGruneisen(EOS):
    """Mie-Grueneisen about the linear ``Us = c0 + s*up`` Hugoniot from (rho0, p=0, T0).

    In expansion (rho < rho0) the reference curve is ``rho0*c0^2*eta`` (constant bulk modulus,
    continuous slope at rho0): the Hugoniot formula's slope vanishes for strong expansion and
    would give c^2 < 0 for material in tension or in mixed cells of the diffuse interface.

    ``Gamma*rho = Gamma0*rho0`` (constant), constant ``cv``. The tabulated Hugoniot temperature
    covers compression ``eta = 1 - rho0/rho`` in [eta_min, eta_max]; outside it the table is
    extrapolated linearly (temperature is a diagnostic and drives chemistry, never pressure).
    """

    rho0: float
    c0: float
    s: float
    gamma0: float
    cv: float
    T0: float = 300.0
    eta_min: float = -0.6
    eta_max: float | None = None
    kind: int = field(default=KIND_MG, init=False, repr=False)

    def __post_init__(self):
        for name in ("rho0", "c0", "s", "gamma0", "cv", "T0"):
            _check_positive(name, getattr(self, name), "> 0")
        if self.eta_max is None:
            object.__setattr__(self, "eta_max", min(0.6, 0.9 / self.s))
        if not (self.eta_min < 0.0 < self.eta_max < 1.0 / self.s):
            raise ValueError(
                f"eta range [{self.eta_min}, {self.eta_max}] must bracket 0 and stay below "
                f"1/s = {1.0 / self.s:.4f}"
            )

    def hugoniot_pressure(self, eta):
        """Reference pressure: the Us-up Hugoniot in compression, rho0 c0^2 eta in expansion."""
        eta = np.asarray(eta, float)
        k = self.rho0 * self.c0**2
        return np.where(eta >= 0, k * eta / (1.0 - self.s * np.maximum(eta, 0)) ** 2, k * eta)

    def _hugoniot_slope(self, eta):
        k = self.rho0 * self.c0**2
        if eta < 0:
            return k
        return k * (1 + self.s * eta) / (1 - self.s * eta) ** 3

    def hugoniot_temperature(self, eta):
        """Temperature on the Hugoniot at compression ``eta``, integrated from T0 at eta=0."""
        eta = np.atleast_1d(np.asarray(eta, float))
        V0 = 1.0 / self.rho0

        def rhs(x, T):
            ph = float(self.hugoniot_pressure(x))
            dph = self._hugoniot_slope(x)
            return V0 / (2 * self.cv) * (x * dph - ph) + self.gamma0 * T

        out = np.empty_like(eta)
        for sign in (1.0, -1.0):
            sel = (eta >= 0) if sign > 0 else (eta < 0)
            if not sel.any():
                continue
            pts = eta[sel]
            order = np.argsort(sign * pts)
            sol = solve_ivp(rhs, (0.0, pts[order][-1]), [self.T0], t_eval=pts[order],
                            rtol=1e-10, atol=1e-8, method="DOP853")
            vals = np.empty_like(pts)
            vals[order] = sol.y[0]
            out[sel] = vals
        return out

    def pack(self) -> np.ndarray:
        a = np.zeros(PACK_SIZE)
        a[0], a[1] = KIND_MG, self.cv
        a[2], a[3], a[4], a[5] = self.gamma0, self.rho0, self.c0, self.s
        a[6], a[7], a[8] = self.T0, self.eta_min, self.eta_max
        a[HEADER:HEADER + MG_TABLE] = self.hugoniot_temperature(
            np.linspace(self.eta_min, self.eta_max, MG_TABLE))
        return a


@dataclass(frozen=True)
class JWL(EOS):
    """Jones-Wilkins-Lee detonation products (A, B in Pa; rho0 the explosive's density)."""

    rho0: float
    A: float
    B: float
    R1: float
    R2: float
    omega: float
    cv: float = 1000.0
    kind: int = field(default=KIND_JWL, init=False, repr=False)

    def __post_init__(self):
        for name in ("rho0", "A", "R1", "R2", "omega", "cv"):
            _check_positive(name, getattr(self, name), "> 0")

    def pack(self) -> np.ndarray:
        a = np.zeros(PACK_SIZE)
        a[0], a[1] = KIND_JWL, self.cv
        a[2], a[3], a[4], a[5], a[6], a[7] = self.omega, self.rho0, self.A, self.B, self.R1, self.R2
        return a


@dataclass(frozen=True)
class Hayes(EOS):
    """Hayes EOS: Mie-Grueneisen about the ``T0`` isotherm, ``Gamma*rho`` constant, constant cv.

    Isotherm (Murnaghan) ``p_T = K0/N ((rho/rho0)^N - 1)`` in compression; in expansion
    ``p_T = K0 (1 - rho0/rho)`` (the same slope at rho0; Murnaghan's tends to ``-K0/N`` with a
    vanishing sound speed, which mixed cells of a diffuse interface would reach). With
    ``Gamma/V`` constant the energy is ``e = e_T(V) + cv (T - T0)``, ``de_T/dV = T0 Gamma0 cv/V0
    - p_T``, ``e = 0`` at (rho0, T0), so ``p = p_T + Gamma0 rho0 cv (T - T0)`` and the
    temperature is exact (no table). LANL EOSlib ``HMX.data`` lists this form for beta-HMX
    (``Hayes=HMX``: K0 13.5 GPa, N 9.3 from the hydrostatic data of Olinger, Roof & Cady 1978,
    Gamma0 1.1, cv 1.5 kJ/(kg K)).
    """

    rho0: float
    K0: float
    N: float
    gamma0: float
    cv: float
    T0: float = 300.0
    kind: int = field(default=KIND_HAYES, init=False, repr=False)

    def __post_init__(self):
        for name in ("rho0", "K0", "gamma0", "cv", "T0"):
            _check_positive(name, getattr(self, name), "> 0")
        if not (np.isfinite(self.N) and self.N > 1.0):
            raise ValueError(f"N={self.N!r} must be finite and > 1")

    def pack(self) -> np.ndarray:
        a = np.zeros(PACK_SIZE)
        a[0], a[1] = KIND_HAYES, self.cv
        a[2], a[3], a[4], a[5], a[6] = self.gamma0, self.rho0, self.K0, self.N, self.T0
        return a


@dataclass(frozen=True)
class ReactiveEOS(EOS):
    """A reacting material: its reactant EOS, with the products EOS packed into the tail.

    As a plain EOS (Python helpers, kernels that ignore the tail) it is the reactant. The
    five-equation kernels mix reactant and products at the phase density and pressure by the
    reaction progress lambda, ``e = (1 - lam) e_r(rho, p) + lam (e_p(rho, p) - Q)``: the rule
    of :func:`macro.euler.mix_xi_pi` (see :mod:`macro.materials`), so a burning phase follows
    the products EOS as it expands.
    """

    reactant: EOS
    products: EOS
    kind: int = field(default=-1, init=False, repr=False)

    def __post_init__(self):
        if isinstance(self.reactant, ReactiveEOS) or isinstance(self.products, ReactiveEOS):
            raise ValueError("ReactiveEOS cannot nest another ReactiveEOS")
        object.__setattr__(self, "kind", self.reactant.kind)

    def pack(self) -> np.ndarray:
        a = self.reactant.pack().copy()
        a[PRODUCTS_FLAG] = 1.0
        a[PRODUCTS_OFF:PRODUCTS_OFF + HEADER] = self.products.pack()[:HEADER]
        return a

    def to_dict(self) -> dict:
        return {"type": "ReactiveEOS", "reactant": self.reactant.to_dict(),
                "products": self.products.to_dict()}


def pack_eos(*eos: EOS) -> np.ndarray:
    """Stack packed EOS vectors into the (n, PACK_SIZE) array the kernels take."""
    return np.ascontiguousarray(np.stack([e.packed for e in eos]))


#: EOS classes by the ``type`` name of their config tables (macro.config validates against it).
EOS_TYPES: dict[str, type[EOS]] = {c.__name__: c for c in (IdealGas, StiffenedGas, MieGruneisen,
                                                            JWL, Hayes)}


def eos_from_dict(d: dict) -> EOS:
    """Build an EOS from a config table such as ``{type = "StiffenedGas", gamma = 4.4, ...}``."""
    d = dict(d)
    kind = d.pop("type", None)
    if kind not in EOS_TYPES:
        raise ValueError(f"eos type={kind!r} is not one of {sorted(EOS_TYPES)}")
    return EOS_TYPES[kind](**d)


def _check_gamma(gamma):
    if not (np.isfinite(gamma) and gamma > 1):
        raise ValueError(f"gamma={gamma!r} must be finite and > 1")


def _check_positive(name, value, what):
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name}={value!r} must be finite and {what}")


# ---------------------------------------------------------------------------------------------
# Jitted scalar functions (kernels call these; `q` is one packed EOS vector)
# ---------------------------------------------------------------------------------------------


@nb.njit(cache=True, inline="always")
def _mg_hugoniot(q, rho):
    """(eta, p_H, e_H, dp_H/drho, de_H/drho) of the linear Us-up Hugoniot."""
    rho0, c0, s = q[3], q[4], q[5]
    eta = 1.0 - rho0 / rho
    if eta >= 0.0:
        den = 1.0 - s * eta
        ph = rho0 * c0 * c0 * eta / (den * den)
        dph_deta = rho0 * c0 * c0 * (1.0 + s * eta) / (den * den * den)
    else:  # expansion: constant bulk modulus (C1-continuous), keeps c^2 > 0 in tension
        ph = rho0 * c0 * c0 * eta
        dph_deta = rho0 * c0 * c0
    eh = ph * eta / (2.0 * rho0)
    deh_deta = (dph_deta * eta + ph) / (2.0 * rho0)
    deta_drho = rho0 / (rho * rho)
    return eta, ph, eh, dph_deta * deta_drho, deh_deta * deta_drho


@nb.njit(cache=True, inline="always")
def _jwl_ref(q, rho):
    """JWL reference pressure p_ref(rho) (the part not proportional to rho*e) and dp_ref/drho."""
    omega, rho0, A, B, R1, R2 = q[2], q[3], q[4], q[5], q[6], q[7]
    V = rho0 / rho
    e1 = vexp(-R1 * V)
    e2 = vexp(-R2 * V)
    f1 = 1.0 - omega / (R1 * V)
    f2 = 1.0 - omega / (R2 * V)
    pr = A * f1 * e1 + B * f2 * e2
    dV = -V / rho
    # d/dV of A*(1 - omega/(R1 V)) exp(-R1 V)
    d1 = A * e1 * (omega / (R1 * V * V) - R1 * f1)
    d2 = B * e2 * (omega / (R2 * V * V) - R2 * f2)
    return pr, (d1 + d2) * dV


@nb.njit(cache=True, inline="always")
def hayes_power(q, rho):
    """``(rho/rho0)^(N-1)`` of the Hayes isotherm where it is used (compression), else 1: the
    one transcendental of the Hayes EOS (:func:`macro.vmath.pow_pos`: no libm call, so loops
    over it vectorise), which :func:`hayes_ref_given` takes as an argument."""
    return hayes_power_c(hayes_consts(q), rho)


@nb.njit(cache=True, inline="always")
def hayes_power_c(c, rho):
    """:func:`hayes_power` with the constants :func:`hayes_consts` (held in registers)."""
    x = rho / c[2]
    return pow_pos(x, c[4] - 1.0) if x >= 1.0 else 1.0


@nb.njit(cache=True, inline="always")
def hayes_consts(q):
    """The constants of a packed Hayes EOS as a tuple (cv, Gamma0, rho0, K0, N, T0): held in
    registers, so that a loop that writes arrays need not reload them."""
    return q[1], q[2], q[3], q[4], q[5], q[6]


@nb.njit(cache=True, inline="always")
def hayes_ref_given(q, rho, xn1):
    """(p_T, e_T, dp_T/drho, de_T/drho) of the Hayes T0 isotherm (see :class:`Hayes`) with
    ``xn1`` = :func:`hayes_power` (no calls, no branches: vectorises)."""
    return hayes_ref_c(hayes_consts(q), rho, xn1)


@nb.njit(cache=True, inline="always")
def hayes_ref_c(c, rho, xn1):
    """:func:`hayes_ref_given` with the constants :func:`hayes_consts`. One division per
    state (1/rho; the constants' quotients are loop invariants): divisions are what a
    vectorised loop over this waits on."""
    cv, g0, rho0, K0, N, T0 = c
    ir0 = 1.0 / rho0
    kr0 = K0 * ir0
    ir = 1.0 / rho
    x = rho * ir0
    ix = rho0 * ir  # 1/x
    th = T0 * g0 * cv
    dv = ix - 1.0  # (V - V0)/V0
    comp = x >= 1.0
    pT = (K0 / N) * (xn1 * x - 1.0) if comp else -K0 * dv
    dpT = kr0 * xn1 if comp else kr0 * (ix * ix)
    eT = (th * dv - (kr0 / N) * ((xn1 - 1.0) * (1.0 / (1.0 - N)) - dv) if comp
          else th * dv + 0.5 * kr0 * dv * dv)
    deT = (pT - th * rho0) * (ir * ir)
    return pT, eT, dpT, deT


@nb.njit(cache=True, inline="always")
def hayes_xi_pi_c(c, rho, xn1):
    """(xi, Pi, dxi/drho, dPi/drho, e_T) of a Hayes EOS with the constants :func:`hayes_consts`
    and ``xn1`` = :func:`hayes_power`: the one spelling of its xi and Pi, which the scalar and
    the vectorised callers share."""
    pT, eT, dpT, deT = hayes_ref_c(c, rho, xn1)
    ig = 1.0 / (c[1] * c[2])  # 1/(Gamma0 rho0)
    xi = rho * ig
    return xi, rho * eT - pT * xi, ig, eT + rho * deT - dpT * xi - pT * ig, eT


@nb.njit(cache=True, inline="always")
def _hayes_ref(q, rho):
    """(p_T, e_T, dp_T/drho, de_T/drho) of the Hayes T0 isotherm (see :class:`Hayes`)."""
    return hayes_ref_given(q, rho, hayes_power(q, rho))


@nb.njit(cache=True, inline="always")
def hayes_xi_pi_given(q, rho, xn1):
    """:func:`xi_pi` of a Hayes EOS with ``xn1`` = :func:`hayes_power`."""
    xi, pi, dxi, dpi, _ = hayes_xi_pi_c(hayes_consts(q), rho, xn1)
    return xi, pi, dxi, dpi


@nb.njit(cache=True, inline="always")
def jwl_xi_pi(q, rho):
    """:func:`xi_pi` of a JWL EOS (no calls, no branches: vectorises)."""
    omega = q[2]
    pr, dpr = _jwl_ref(q, rho)
    return 1.0 / omega, -pr / omega, 0.0, -dpr / omega


@nb.njit(cache=True)
def xi_pi(q, rho):
    """Return (xi, Pi, dxi/drho, dPi/drho) with rho*e = xi*p + Pi."""
    kind = int(q[0])
    if kind == KIND_IDEAL:
        return 1.0 / (q[2] - 1.0), 0.0, 0.0, 0.0
    if kind == KIND_STIFFENED:
        g = q[2]
        return 1.0 / (g - 1.0), g * q[3] / (g - 1.0), 0.0, 0.0
    if kind == KIND_MG:
        g0rho0 = q[2] * q[3]
        _, ph, eh, dph, deh = _mg_hugoniot(q, rho)
        xi = rho / g0rho0
        pi = rho * eh - ph * xi
        dpi = eh + rho * deh - dph * xi - ph / g0rho0
        return xi, pi, 1.0 / g0rho0, dpi
    if kind == KIND_HAYES:
        return hayes_xi_pi_given(q, rho, hayes_power(q, rho))
    return jwl_xi_pi(q, rho)


@nb.njit(cache=True)
def pressure(q, rho, e):
    xi, pi, _, _ = xi_pi(q, rho)
    return (rho * e - pi) / xi


@nb.njit(cache=True)
def energy(q, rho, p):
    xi, pi, _, _ = xi_pi(q, rho)
    return (xi * p + pi) / rho


@nb.njit(cache=True)
def sound_speed_sq(q, rho, p):
    """c^2 = (e + p/rho - Pi' - p*xi')/xi; negative means the state is outside the EOS domain."""
    xi, pi, dxi, dpi = xi_pi(q, rho)
    e = (xi * p + pi) / rho
    return (e + p / rho - dpi - p * dxi) / xi


@nb.njit(cache=True)
def temperature_ref(q, rho):
    """(T_ref, e_ref) with ``T(rho, e) = T_ref + (e - e_ref)/cv`` (every EOS here has a constant
    cv): what :func:`temperature` computes from the density alone, so that callers that need T
    at one density for many energies (the chemistry's sub-steps) evaluate the EOS once."""
    kind = int(q[0])
    if kind == KIND_IDEAL:
        return 0.0, 0.0
    if kind == KIND_STIFFENED:
        return 0.0, q[3] / rho
    if kind == KIND_MG:
        eta, _, eh, _, _ = _mg_hugoniot(q, rho)
        lo, hi = q[7], q[8]
        x = (eta - lo) / (hi - lo) * (MG_TABLE - 1)
        i = int(np.floor(x))
        if i < 0:
            i = 0
        elif i > MG_TABLE - 2:
            i = MG_TABLE - 2
        w = x - i
        return (1.0 - w) * q[HEADER + i] + w * q[HEADER + i + 1], eh
    if kind == KIND_HAYES:
        _, eT, _, _ = _hayes_ref(q, rho)
        return q[6], eT
    # JWL: e = e_c(rho) + cv*T with e_c = (A/R1 exp(-R1 V) + B/R2 exp(-R2 V))/rho0
    rho0, A, B, R1, R2 = q[3], q[4], q[5], q[6], q[7]
    V = rho0 / rho
    return 0.0, (A / R1 * vexp(-R1 * V) + B / R2 * vexp(-R2 * V)) / rho0


@nb.njit(cache=True, inline="always")
def xi_pi_tref(q, rho):
    """:func:`xi_pi` and :func:`temperature_ref` together: (xi, Pi, dxi/drho, dPi/drho, T_ref,
    e_ref), the Hayes isotherm evaluated once for both."""
    if int(q[0]) == KIND_HAYES:
        c = hayes_consts(q)
        xi, pi, dxi, dpi, eT = hayes_xi_pi_c(c, rho, hayes_power_c(c, rho))
        return xi, pi, dxi, dpi, q[6], eT
    xi, pi, dxi, dpi = xi_pi(q, rho)
    Tr, er = temperature_ref(q, rho)
    return xi, pi, dxi, dpi, Tr, er


@nb.njit(cache=True)
def temperature(q, rho, e):
    Tr, er = temperature_ref(q, rho)
    return Tr + (e - er) / q[1]


def _xi_pi_py(q: np.ndarray, rho: float) -> tuple[float, float]:
    xi, pi, _, _ = xi_pi(q, float(rho))
    return float(xi), float(pi)


@nb.njit(cache=True)
def _vec_pressure(q, rho, e):
    out = np.empty(rho.size)
    for i in range(rho.size):
        out[i] = pressure(q, rho[i], e[i])
    return out


@nb.njit(cache=True)
def _vec_energy(q, rho, p):
    out = np.empty(rho.size)
    for i in range(rho.size):
        out[i] = energy(q, rho[i], p[i])
    return out


@nb.njit(cache=True)
def _vec_c2(q, rho, p):
    out = np.empty(rho.size)
    for i in range(rho.size):
        out[i] = sound_speed_sq(q, rho[i], p[i])
    return out


@nb.njit(cache=True)
def _vec_temperature(q, rho, e):
    out = np.empty(rho.size)
    for i in range(rho.size):
        out[i] = temperature(q, rho[i], e[i])
    return out
