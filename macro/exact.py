"""Exact Riemann solver for the 1D Euler equations with ideal or stiffened-gas EOS.

This is the reference the hydro kernels are verified against, so it is written for accuracy
rather than speed: Toro, *Riemann Solvers and Numerical Methods for Fluid Dynamics*, ch. 4,
generalised to the stiffened gas ``p = (gamma-1)*rho*e - gamma*p_inf``. With ``P = p + p_inf``
the stiffened gas has the same shock and rarefaction relations as an ideal gas in ``P`` (and
``c^2 = gamma*P/rho``), so each side uses Toro's formulas in its own ``P``, ``gamma``. The two
sides may use different EOS (e.g. water against air); they share ``p`` and ``u`` in the star
region, not ``P``.

The star pressure solves ``f_L(p) + f_R(p) + (u_R - u_L) = 0`` with ``f`` monotone in ``p``;
it is bracketed on ``p > -min(p_inf_L, p_inf_R)`` (both star states keep ``P > 0``; no sign
change there means vacuum) and found with :func:`scipy.optimize.brentq` in the shifted unknown
``p + min(p_inf)`` to a relative tolerance of 1e-14.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from macro.eos import IdealGas, StiffenedGas

__all__ = ["RiemannSolution", "exact_riemann"]

_AIR = IdealGas(1.4)
_RTOL = 1e-14


@dataclass(frozen=True)
class RiemannSolution:
    """Exact solution sampled at ``x`` and time ``t``, plus the star-region values."""

    x: np.ndarray
    rho: np.ndarray
    u: np.ndarray
    p: np.ndarray
    p_star: float
    u_star: float
    rho_star_left: float
    rho_star_right: float


@dataclass(frozen=True)
class _Side:
    """One initial state in the shifted-pressure variables the wave relations need."""

    rho: float
    u: float
    p: float
    gamma: float
    p_inf: float

    @property
    def P(self) -> float:
        return self.p + self.p_inf

    @property
    def c(self) -> float:
        return math.sqrt(self.gamma * self.P / self.rho)

    def f(self, Ps: float) -> float:
        """Toro's f_K: velocity jump across the wave to the star state at ``Ps = p* + p_inf``."""
        g, P = self.gamma, self.P
        if Ps > P:  # shock
            A = 2.0 / ((g + 1.0) * self.rho)
            B = (g - 1.0) / (g + 1.0) * P
            return (Ps - P) * math.sqrt(A / (Ps + B))
        return 2.0 * self.c / (g - 1.0) * ((max(Ps, 0.0) / P) ** ((g - 1.0) / (2.0 * g)) - 1.0)

    def rho_star(self, Ps: float) -> float:
        g, ratio = self.gamma, Ps / self.P
        if ratio > 1.0:
            gm = (g - 1.0) / (g + 1.0)
            return self.rho * (ratio + gm) / (gm * ratio + 1.0)
        return self.rho * ratio ** (1.0 / g)


def _eos_params(eos: object, name: str) -> tuple[float, float]:
    if not isinstance(eos, IdealGas | StiffenedGas):
        raise TypeError(
            f"{name} must be IdealGas or StiffenedGas for the exact solver, "
            f"got {type(eos).__name__}"
        )
    return float(eos.gamma), float(getattr(eos, "p_inf", 0.0))


def _side(state: Sequence[float], eos: object, name: str, eos_name: str) -> _Side:
    gamma, p_inf = _eos_params(eos, eos_name)
    try:
        rho, u, p = (float(v) for v in state)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a (rho, u, p) triple of numbers, got {state!r}") from exc
    for label, v in (("rho", rho), ("u", u), ("p", p)):
        if not math.isfinite(v):
            raise ValueError(f"{name} {label}={v!r} must be finite")
    if rho <= 0.0:
        raise ValueError(f"{name} rho={rho!r} must be > 0")
    if p + p_inf <= 0.0:
        raise ValueError(f"{name} p={p!r} must satisfy p + p_inf > 0 (p_inf={p_inf!r})")
    return _Side(rho, u, p, gamma, p_inf)


def _star_pressure(L: _Side, R: _Side) -> tuple[float, float, float]:
    """Star pressure and both sides' ``p* + p_inf``; raise if the data open a vacuum.

    The unknown is ``z = p* + min(p_inf_L, p_inf_R) > 0`` so that a near-vacuum root
    (``p*`` many decades below the initial pressures) is still resolved to relative accuracy.
    """
    du = R.u - L.u
    p_inf_min = min(L.p_inf, R.p_inf)
    dL, dR = L.p_inf - p_inf_min, R.p_inf - p_inf_min  # exact 0 on the smaller-p_inf side

    def fun(z: float) -> float:
        return L.f(z + dL) + R.f(z + dR) + du

    if fun(0.0) >= 0.0:
        limit = -(L.f(dL) + R.f(dR))
        raise ValueError(
            "initial data generate vacuum (pressure positivity condition violated: "
            f"u_R - u_L = {du!r} >= {limit!r}); vacuum is not supported"
        )
    z_hi = max(L.P, R.P)
    while fun(z_hi) <= 0.0:  # f grows like sqrt(p) on the shock branch, so this terminates
        z_hi *= 4.0
    z = float(brentq(fun, 0.0, z_hi, xtol=1e-300, rtol=_RTOL, maxiter=1000))
    return z - p_inf_min, z + dL, z + dR


def _sample_left(S: np.ndarray, L: _Side, p_s: float, Ps: float, u_s: float):
    """Left state, star state or fan interior at similarity coordinates S = (x - x0)/t."""
    g, c, P = L.gamma, L.c, L.P
    rho = np.full(S.shape, L.rho_star(Ps))
    u = np.full(S.shape, u_s)
    p = np.full(S.shape, p_s)
    if Ps > P:
        S_shock = L.u - c * math.sqrt((g + 1.0) / (2.0 * g) * Ps / P + (g - 1.0) / (2.0 * g))
        ahead = S <= S_shock
    else:
        S_head = L.u - c
        S_tail = u_s - c * (Ps / P) ** ((g - 1.0) / (2.0 * g))
        ahead = S <= S_head
        fan = (S > S_head) & (S < S_tail)
        base = 2.0 / (g + 1.0) + (g - 1.0) / ((g + 1.0) * c) * (L.u - S[fan])
        rho[fan] = L.rho * base ** (2.0 / (g - 1.0))
        u[fan] = 2.0 / (g + 1.0) * (c + 0.5 * (g - 1.0) * L.u + S[fan])
        p[fan] = P * base ** (2.0 * g / (g - 1.0)) - L.p_inf
    rho[ahead], u[ahead], p[ahead] = L.rho, L.u, L.p
    return rho, u, p


def _mirror(s: _Side) -> _Side:
    return _Side(s.rho, -s.u, s.p, s.gamma, s.p_inf)


def exact_riemann(
    left: Sequence[float],
    right: Sequence[float],
    x: np.ndarray,
    t: float,
    *,
    x0: float = 0.5,
    eos: IdealGas | StiffenedGas = _AIR,
    eos_right: IdealGas | StiffenedGas | None = None,
) -> RiemannSolution:
    """Exact solution of the Riemann problem ``left | right`` at ``x0``, sampled at ``(x, t)``.

    ``left``/``right`` are ``(rho, u, p)``; ``eos`` governs the left state and ``eos_right``
    the right one (``None``: same as ``eos``). Raises ``ValueError`` on invalid data or if the
    data generate vacuum, ``TypeError`` for an EOS other than ideal/stiffened gas.
    """
    L = _side(left, eos, "left", "eos")
    R = _side(right, eos if eos_right is None else eos_right, "right", "eos_right")
    t = float(t)
    if not (math.isfinite(t) and t > 0.0):
        raise ValueError(f"t={t!r} must be finite and > 0")
    x0 = float(x0)
    if not math.isfinite(x0):
        raise ValueError(f"x0={x0!r} must be finite")
    x = np.array(x, dtype=float)
    if not np.all(np.isfinite(x)):
        raise ValueError("x must contain only finite positions")

    p_s, Ps_l, Ps_r = _star_pressure(L, R)
    u_s = 0.5 * (L.u + R.u) + 0.5 * (R.f(Ps_r) - L.f(Ps_l))
    rho_sl, rho_sr = L.rho_star(Ps_l), R.rho_star(Ps_r)

    S = (x - x0) / t
    rho, u, p = _sample_left(S, L, p_s, Ps_l, u_s)
    # The right side is the left-side problem mirrored in x (S -> -S, u -> -u).
    right_of_contact = S > u_s
    rr, ur, pr = _sample_left(-S[right_of_contact], _mirror(R), p_s, Ps_r, -u_s)
    rho[right_of_contact], u[right_of_contact], p[right_of_contact] = rr, -ur, pr
    return RiemannSolution(x, rho, u, p, p_s, u_s, rho_sl, rho_sr)
