"""Macro-scale target material: PBX 9501 (pressed HMX), the one place its parameters live.

Units are SI. Every number carries its source; "EOSlib" is LANL's public EOS database
(github.com/lanl/EOSlib, directory ``DATA/``), which transcribes the original reports.

* **Material** -- PBX 9501: 94.9 wt% HMX, 2.5% Estane, 2.5% nitroplasticizer (EOSlib
  ``Davis.data``), pressed to ``rho0 = 1844 kg/m3``: the density of the Pop-plot experiments
  below and of the unreacted Hugoniot. Chosen over other pressed-HMX materials because its
  shock-initiation line, unreacted Hugoniot and products EOS are all public at one density.
* **Unreacted PBX 9501** -- Mie-Grueneisen about ``Us = c0 + s up`` with ``c0 = 2500 m/s``,
  ``s = 2.18``, ``Gamma0 = 1.5`` (``Gamma rho`` constant), ``cv = 0.4 cal/(g K) = 1674
  J/(kg K)``: Mader's HOM set for PBX 9501 at 1.844 g/cc (Numerical Modeling of Explosives and
  Propellants, 9501.OUT; EOSlib ``HOM.data``, ``EOS:UsUp=PBX9501``). The Gibbs & Popolato fit
  (c0 2953, s 1.507, EOSlib ``ArrheniusHE.data``) is stated valid only for up < 0.9 km/s
  (< 7 GPa); Mader's covers the initiation range 3-20 GPa used here.
* **Products** -- JWL, Souers & Haselman, Detonation Equation of State at LLNL 1993, p. 5-19
  (EOSlib ``JWL.data``, ``EOS:JWL=PBX9404``; EOSlib pairs this set with PBX 9501 in
  ``ArrheniusHE.data``): ``A = 740.349 GPa, B = 11.7009 GPa, R1 = 4.317, R2 = 1.05,
  omega = 0.25``, detonation energy ``E0 = 10.5 GPa`` (per unit initial volume), fitted at
  1.843 g/cc. ``Q = E0 / rho0``; products' JWL energy = reactant-frame energy + Q. Its CJ
  state with this reactant (:func:`cj_state`): 37.5 GPa, 8.76 km/s. PBX 9501 at 1.844 g/cc
  in EOSlib ``HOM.data`` (Mader): ``p_CJ = 36.3 GPa, D_CJ = 8.85 km/s`` (see PBX9501_CJ).
* **Mixture rule** (the one the hydro kernels implement, :func:`macro.euler.mix_xi_pi`):
  reactant and products share the cell's density and pressure, and the mixture energy is
  ``e = (1 - lam) e_r(rho, p) + lam (e_p(rho, p) - Q)``. The ignition-and-growth set below
  is calibrated with exactly this EOS pair and rule (published I&G sets assume pressure and
  temperature equilibrium with JWL reactants and are not valid here).
* **Rate** -- Lee-Tarver ignition and growth, ``PBX9501_LEE_TARVER``: the form's fixed exponents
  are Tarver's for pressed HMX (b = c = 2/3, x = 4, a = 0, d = 1/3; Tarver, Hallquist &
  Erickson, 8th Detonation Symposium 1985), and ``I``, ``G1`` and ``y`` are this project's
  calibration on the experimental Pop plot at 3 pressures (benchmarks/calibrate_ig.py,
  results in benchmarks/results/ig_calibration.json; validated on 6 others in
  benchmarks/results/pop_ig.json).
* **Pop plot** -- PBX 9501 at 1.844 g/cc, ``log10(P/GPa) = 1.10 - 0.61 log10(x*/mm)``:
  Gibbs & Popolato, LASL Explosive Property Data (1980) p. 115, as transcribed in EOSlib
  ``HOM.data`` (``HErate:FFrate=PBX9501``). The experimental points and the pressure range of
  the wedge tests are not in that transcription; the line is used over 3-20 GPa.

:func:`cj_state` computes the Chapman-Jouguet state of the products from the unreacted initial
state with the same EOS objects the hydro kernels use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from .eos import EOS, JWL, MieGruneisen, xi_pi
from .reaction import LeeTarver

__all__ = [
    "PBX9501_RHO0",
    "PBX9501_MG",
    "PBX9501_JWL",
    "PBX9501_Q",
    "PBX9501_CJ",
    "PBX9501_LEE_TARVER",
    "AMBIENT_P",
    "POP_PBX9501",
    "pbx9501_unreacted",
    "pbx9501_products",
    "pbx9501_lee_tarver",
    "CJState",
    "cj_state",
    "shock_state",
    "pop_plot_run_distance",
    "piston_velocity_for",
]

PBX9501_RHO0 = 1844.0  # kg/m3
#: Unreacted PBX 9501, Mie-Grueneisen (Mader HOM, EOSlib HOM.data EOS:UsUp=PBX9501).
PBX9501_MG: dict = {"rho0": PBX9501_RHO0, "c0": 2500.0, "s": 2.18, "gamma0": 1.5,
                    "cv": 0.4 * 4184.0, "T0": 300.0}
#: JWL products (Souers & Haselman 1993 p. 5-19, EOSlib JWL.data EOS:JWL=PBX9404), A, B in Pa.
PBX9501_JWL: dict = {"rho0": PBX9501_RHO0, "A": 740.349e9, "B": 11.7009e9, "R1": 4.317,
                     "R2": 1.05, "omega": 0.25, "cv": 1000.0}
PBX9501_E0 = 10.5e9  # J/m3, detonation energy per unit initial volume (same source)
PBX9501_Q = PBX9501_E0 / PBX9501_RHO0  # J/kg
#: Published CJ state of PBX 9501 at 1.844 g/cc (EOSlib HOM.data, Mader), Pa and m/s.
PBX9501_CJ: dict = {"p": 36.3e9, "D": 8850.0}
#: Lee-Tarver ignition and growth for this EOS pair and mixture rule, Mbar / microsecond units
#: as in macro.reaction. I, G1, y: calibration (benchmarks/results/ig_calibration.json).
PBX9501_LEE_TARVER: dict = {"rho0": PBX9501_RHO0, "I": 1.112e4, "a": 0.0, "b": 2.0 / 3.0,
                            "x": 7.0, "G1": 1819.0, "c": 2.0 / 3.0, "d": 1.0 / 3.0,
                            "y": 3.324, "G2": 0.0, "e": 2.0 / 3.0, "g": 2.0 / 3.0, "z": 1.0,
                            "Figmax": 0.3, "FG1max": 1.0, "FG2min": 1.0}
AMBIENT_P = 1.0e5  # Pa
#: PBX 9501 Pop plot (Gibbs & Popolato p. 115 via EOSlib HOM.data):
#: log10(P/GPa) = a - b log10(x*/mm) at the density rho0 (kg/m3).
POP_PBX9501: dict = {"a": 1.10, "b": 0.61, "rho0": PBX9501_RHO0}


def pbx9501_unreacted() -> MieGruneisen:
    return MieGruneisen(**PBX9501_MG)


def pbx9501_products() -> JWL:
    return JWL(**PBX9501_JWL)


def pbx9501_lee_tarver(**overrides) -> LeeTarver:
    return LeeTarver(**{**PBX9501_LEE_TARVER, **overrides})


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


def cj_state(unreacted: EOS | None = None, products: EOS | None = None, Q: float = PBX9501_Q,
             rho0: float = PBX9501_RHO0, p0: float = AMBIENT_P) -> CJState:
    """CJ state of ``products`` (reactive mixture convention: products energy = e + Q) ahead
    of which the unreacted material sits at (rho0, p0, u = 0).

    The products Hugoniot ``e_p(p, v) - Q - e0 = (p + p0)(v0 - v)/2`` is linear in p for the
    ``rho e = xi p + Pi`` form, so ``p_H(v)`` is explicit; the CJ point minimises the Rayleigh
    line slope ``D^2 = v0^2 (p_H - p0)/(v0 - v)`` (tangency), found with scipy and refined by
    root finding (brentq) on the sonic condition ``D - u = c`` (c from ``products``).
    """
    unreacted = unreacted if unreacted is not None else pbx9501_unreacted()
    products = products if products is not None else pbx9501_products()
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
    eos = eos if eos is not None else pbx9501_unreacted()
    if not (np.isfinite(up) and up > 0):
        raise ValueError(f"up={up!r} must be finite and > 0 (m/s)")
    us = eos.c0 + eos.s * up
    return eos.rho0 * us * up, us


def piston_velocity_for(pressure: float, eos: MieGruneisen | None = None) -> float:
    """Particle velocity (m/s) that gives shock pressure ``pressure`` (Pa) in unreacted PBX 9501."""
    eos = eos if eos is not None else pbx9501_unreacted()
    if not (np.isfinite(pressure) and pressure > 0):
        raise ValueError(f"pressure={pressure!r} must be finite and > 0 (Pa)")
    a, b, c = eos.rho0 * eos.s, eos.rho0 * eos.c0, -pressure
    return float((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a))
