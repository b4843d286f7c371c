"""Macro-scale material set for homogenized pressed HMX: the one place its parameters live.

Units are SI. Sources:

* **Unreacted HMX** -- Mie-Grueneisen about the linear ``Us = c0 + s up`` Hugoniot
  (:class:`macro.eos.MieGruneisen`): ``rho0 = 1900 kg/m3``, ``c0 = 2423 m/s``, ``s = 1.883``
  (Mader, LANL EOSlib ``HMX.data``); ``Gamma0 = 1.1``, ``cv = 1500 J/(kg K)`` (Hayes/Olinger).
  These are the same numbers as the closure's training data (``closure/data/params.py``, the
  closure's copy; ``tests/test_detonation.py`` checks that the two agree), so the macro cell and
  the meso patches the closure was trained on see the same shock states.
* **Density** -- the homogenized material is pressed HMX at 1900 kg/m3 (~1.5% below the HMX
  crystal density 1.91 g/cc, i.e. ~1.5% porosity; PBX 9501 is 1.83 g/cc with 5% binder).
  Porosity is not in the EOS (the Hugoniot fit is for the pressed solid); it enters through the
  reaction rate: Lee-Tarver's ignition term, or the closure's meso hotspots.
* **Products** -- JWL for HMX (Souers & Haselman, LLNL Handbook of JWL parameters):
  ``A = 858.08 GPa, B = 7.5465 GPa, R1 = 4.306, R2 = 0.80, omega = 0.30, E0 = 11.0 GPa``.
  ``E0`` is detonation energy per unit initial volume, so the heat of reaction of the mixture
  model is ``Q = E0 / rho0`` (5.79 MJ/kg): products' JWL energy = reactant-frame energy + Q.
  The products ``cv`` (1000 J/(kg K)) only sets the diagnostic products temperature.
* **Rate** -- Lee-Tarver ignition and growth (Tarver, Tao & Lee 1996, LX-14, 95.5% HMX), the
  parameters of DESIGN.md section 4 with ``rho0`` set to this material's density.
* **Reference Pop plot** -- PBX 9501, ``log10(P/GPa) = 1.10 - 0.51 log10(x*/mm)`` (Gibbs &
  Popolato, LASL Explosive Property Data).

:func:`cj_state` computes the Chapman-Jouguet state of the products from the unreacted initial
state with the same EOS objects the hydro kernels use (HMX at 1900 kg/m3: ~40.5 GPa, ~9.09 km/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from .eos import EOS, JWL, MieGruneisen, xi_pi
from .reaction import LeeTarver

__all__ = [
    "HMX_RHO0",
    "HMX_MG",
    "HMX_JWL",
    "HMX_Q",
    "HMX_LEE_TARVER",
    "AMBIENT_P",
    "POP_PBX9501",
    "hmx_unreacted",
    "hmx_products",
    "hmx_lee_tarver",
    "CJState",
    "cj_state",
    "shock_state",
    "pop_plot_run_distance",
    "piston_velocity_for",
]

HMX_RHO0 = 1900.0  # kg/m3
#: Unreacted HMX, Mie-Grueneisen (same values as closure/data/params.py HMX).
HMX_MG: dict = {"rho0": HMX_RHO0, "c0": 2423.0, "s": 1.883, "gamma0": 1.1, "cv": 1500.0,
                "T0": 300.0}
#: JWL products of HMX (Souers & Haselman), A and B in Pa.
HMX_JWL: dict = {"rho0": HMX_RHO0, "A": 858.08e9, "B": 7.5465e9, "R1": 4.306, "R2": 0.80,
                 "omega": 0.30, "cv": 1000.0}
HMX_E0 = 11.0e9  # J/m3 (detonation energy per unit initial volume)
HMX_Q = HMX_E0 / HMX_RHO0  # J/kg
#: Lee-Tarver ignition and growth (LX-14), Mbar / microsecond units as in macro.reaction.
HMX_LEE_TARVER: dict = {"rho0": HMX_RHO0, "I": 7.43e11, "a": 0.0, "b": 0.667, "x": 20.0,
                        "G1": 175.0, "c": 0.667, "d": 0.111, "y": 2.0,
                        "G2": 10.0, "e": 0.667, "g": 0.667, "z": 1.0,
                        "Figmax": 0.02, "FG1max": 0.8, "FG2min": 0.8}
AMBIENT_P = 1.0e5  # Pa
#: PBX 9501 Pop plot: log10(P/GPa) = a - b log10(x*/mm).
POP_PBX9501: dict = {"a": 1.10, "b": 0.51}


def hmx_unreacted() -> MieGruneisen:
    return MieGruneisen(**HMX_MG)


def hmx_products() -> JWL:
    return JWL(**HMX_JWL)


def hmx_lee_tarver(**overrides) -> LeeTarver:
    return LeeTarver(**{**HMX_LEE_TARVER, **overrides})


def pop_plot_run_distance(pressure_gpa, a: float = POP_PBX9501["a"],
                          b: float = POP_PBX9501["b"]):
    """Run distance (mm) of the Pop-plot line ``log10(P/GPa) = a - b log10(x*/mm)``."""
    p = np.asarray(pressure_gpa, dtype=float)
    if np.any(~(p > 0)):
        raise ValueError(f"pressure_gpa={pressure_gpa!r} must be > 0")
    return 10.0 ** ((a - np.log10(p)) / b)


@dataclass(frozen=True)
class CJState:
    """Chapman-Jouguet state (SI): pressure, detonation speed, density, particle velocity,
    products sound speed (equals ``D - u`` at the CJ point)."""

    p: float
    D: float
    rho: float
    u: float
    c: float


def cj_state(unreacted: EOS | None = None, products: EOS | None = None, Q: float = HMX_Q,
             rho0: float = HMX_RHO0, p0: float = AMBIENT_P) -> CJState:
    """CJ state of ``products`` (reactive mixture convention: products energy = e + Q) ahead
    of which the unreacted material sits at (rho0, p0, u = 0).

    The products Hugoniot ``e_p(p, v) - Q - e0 = (p + p0)(v0 - v)/2`` is linear in p for the
    ``rho e = xi p + Pi`` form, so ``p_H(v)`` is explicit; the CJ point minimises the Rayleigh
    line slope ``D^2 = v0^2 (p_H - p0)/(v0 - v)`` (tangency), found with scipy and refined by
    root finding (brentq) on the sonic condition ``D - u = c`` (c from ``products``).
    """
    unreacted = unreacted if unreacted is not None else hmx_unreacted()
    products = products if products is not None else hmx_products()
    if not (rho0 > 0 and np.isfinite(rho0)):
        raise ValueError(f"rho0={rho0!r} must be finite and > 0 (kg/m3)")
    if not (np.isfinite(Q) and Q > 0):
        raise ValueError(f"Q={Q!r} must be finite and > 0 (J/kg)")
    v0 = 1.0 / rho0
    e0 = float(unreacted.energy(rho0, p0))
    qp = products

    def p_hug(v):
        # rho e_p = xi p + Pi with e_p = e0 + Q + (p + p0)(v0 - v)/2
        xi, pi, _, _ = xi_pi(qp.packed, 1.0 / v)
        return (e0 + Q + 0.5 * p0 * (v0 - v) - pi * v) / (xi * v - 0.5 * (v0 - v))

    def d2(v):
        return v0 * v0 * (p_hug(v) - p0) / (v0 - v)

    def sonic(v):  # (D - u)^2 - c^2 on the Hugoniot: zero at the CJ (tangency) point
        return d2(v) * (v / v0) ** 2 - float(qp.sound_speed(1.0 / v, p_hug(v))) ** 2

    lo, hi = 0.4 * v0, 0.98 * v0
    res = minimize_scalar(d2, bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-10 * v0})
    a, b = max(lo, res.x - 0.05 * v0), min(hi, res.x + 0.05 * v0)
    if not (sonic(a) < 0.0 < sonic(b)):
        raise ValueError(f"no CJ point found for these EOS near v/v0 = {res.x / v0:.4f}")
    v = brentq(sonic, a, b, xtol=1e-15 * v0, rtol=1e-14)
    p = p_hug(v)
    D = float(np.sqrt(d2(v)))
    u = D * (1.0 - v / v0)
    c = float(qp.sound_speed(1.0 / v, p))
    return CJState(p=float(p), D=D, rho=1.0 / v, u=u, c=c)


def shock_state(up: float, eos: MieGruneisen | None = None) -> tuple[float, float]:
    """(pressure Pa, shock speed m/s) of a piston with particle velocity ``up`` driving a
    shock into unreacted material at rest (linear Us-up Hugoniot)."""
    eos = eos if eos is not None else hmx_unreacted()
    if not (np.isfinite(up) and up > 0):
        raise ValueError(f"up={up!r} must be finite and > 0 (m/s)")
    us = eos.c0 + eos.s * up
    return eos.rho0 * us * up, us


def piston_velocity_for(pressure: float, eos: MieGruneisen | None = None) -> float:
    """Particle velocity (m/s) that gives shock pressure ``pressure`` (Pa) in unreacted HMX."""
    eos = eos if eos is not None else hmx_unreacted()
    if not (np.isfinite(pressure) and pressure > 0):
        raise ValueError(f"pressure={pressure!r} must be finite and > 0 (Pa)")
    a, b, c = eos.rho0 * eos.s, eos.rho0 * eos.c0, -pressure
    return float((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a))
