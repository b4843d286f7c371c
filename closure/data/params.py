"""Every physical and numerical parameter of the pore-collapse data, with its source.

This is the one place to change the physics of the training data. The values are grouped into
plain dicts so that they can be written, resolved, into every data set (``config`` attribute) and
overridden from a TOML file (``configs/data/*.toml``) without touching code. Units are SI.

Why these numbers (see ``docs/data.md`` for the measurements behind them):

* **HMX (unreacted)** -- beta-HMX crystal, Hayes EOS (``macro.eos.Hayes``): Mie-Grueneisen about
  the 300 K isotherm ``p_T = K0/N ((rho/rho0)^N - 1)``, ``Gamma*rho`` constant, constant cv,
  with ``rho0 = 1900 kg/m3, K0 = 13.5 GPa, N = 9.3`` (fit to the hydrostatic compression data of
  beta-HMX of Olinger, Roof & Cady, Proc. Int. Symp. on High Dynamic Pressures, Paris 1978,
  pp. 3-8) and ``Gamma0 = 1.1, cv = 1500 J/(kg K)``: LANL EOSlib ``DATA/HMX.data``, entry
  ``Hayes=HMX`` (EOSlib's reactant EOS for HMX in ``ArrheniusHE=HMX``). Its Hugoniot from
  (1900 kg/m3, 1 bar) gives 2.0 / 9.8 / 18.0 / 21.8 GPa and bulk shock temperatures 334 /
  492 / 727 / 855 K at u_p = 0.3 / 1.0 / 1.5 / 1.7 km/s (``hugoniot_state``); its low-pressure
  linear equivalent, listed by EOSlib beside it, is ``Us = 2.678 + 2.689 up`` (km/s). The
  previous ``c0 = 2423, s = 1.883`` is Mader's fit for PBX 9404 (EOSlib ``UsUp=HMX-Mader``:
  "EOS parameters for PBX 9404 with rho0 of HMX crystal"), ~20% softer; it stays available as
  ``hmx.eos = "us_up"`` with ``c0``, ``s``. A stiffened gas (gamma ~ 6.5) is *not* used: its
  Grueneisen parameter ~5.5 overheats shocks.
* **Products** -- JWL of HMX, Souers & Haselman, Detonation Equation of State at LLNL 1993,
  p. 5-19 (EOSlib ``JWL.data``, ``JWL=HMX3500``, the products EOS of EOSlib's
  ``ArrheniusHE=HMX``): ``A = 858.0805 GPa, B = 7.546531 GPa, R1 = 4.306, R2 = 0.80,
  omega = 0.30, V0 = 0.525976 cm3/g``, detonation energy 11.0 GPa per unit initial volume, so
  ``Q = 11.0 GPa * V0 = 5.786 MJ/kg``. The reacting HMX phase mixes reactant and products at
  its phase density and pressure by lambda (``macro.eos.ReactiveEOS``), so a burning hotspot
  follows the products EOS and expands. ``products.enabled = false``: products = reactant
  EOS with the heat Q (the previous model).
* **Pore gas** -- air, ideal gas ``gamma = 1.4``, ``cv = 717.5 J/(kg K)``, at 1 bar and 300 K
  (``rho = p/(R T) = 1.161 kg/m3``).
* **Chemistry** -- one-step Arrhenius (Henson, Asay, Smilowitz & Dickson, "Ignition chemistry in
  HMX from thermal explosion to detonation", LA-UR-01-3499, as transcribed in EOSlib):
  ``k = 5.58e12 1/s``, ``Ea = 149 kJ/mol`` (``Ta = Ea/R = 17922 K``), heat ``Q`` of the
  products EOS, released in the HMX phase and driven by the unreacted HMX-phase temperature,
  only in cells with alpha1 >= ``hmx_cell_alpha`` (macro's built-in rate, sub-stepped so that
  the temperature feedback of the heat release is integrated to second order: the adiabatic
  induction time is resolved even when it is shorter than the hydro step). ``rate_scale``
  multiplies ``k``; the default 1.0 is Henson's rate of the hot HMX itself. EOSlib scales it
  by 0.1 ("correct rate for induction time") and 0.1 again ("normalize to Craig's wedge
  experiment") for homogenized, hotspot-free HMX; the first factor may belong to resolved
  hotspots too (open: it would make every induction time 10x longer).
* **Heat conduction** (``transport.conduction``) -- ``kappa_hmx = 0.45 W/(m K)``, the middle of
  the 0.40-0.50 W/(m K) quoted for HMX at room temperature (Gibbs & Popolato, LASL Explosive
  Property Data 1980; Menikoff & Sewell, Combust. Theory Modelling 6, 103, 2002: values not
  re-read here; molecular dynamics of beta-HMX, Perriot & Cawkwell, J. Appl. Phys. 130, 145106,
  2021, finds ~36% anisotropy at 300 K); ``kappa_gas = 0.0263 W/(m K)`` (dry air at 300 K,
  standard tables, e.g. Incropera & DeWitt). Each phase conducts with its own temperature and
  volume fraction (``macro.transport``): the gas insulates.
* **Viscosity** (``transport.viscosity``) -- the collapse's physical length scale. Newtonian,
  ``mu_hmx = 0.45 Pa s``: the shear viscosity of liquid HMX near its melting point (550 K)
  from molecular dynamics, Bedrov, Smith & Sewell, J. Chem. Phys. 112, 7203 (2000) (0.0055 Pa s
  at 800 K up to 0.45 Pa s near melting, Arrhenius in T), the value pore-collapse studies of
  melt heating start from (Austin et al., J. Appl. Phys. 117, 185902, 2015; Kroonblawd &
  Austin, Mech. Mater. 152, 103644, 2021). Applied to the whole HMX phase at constant value as
  a stand-in for its strength (the solid's elastic-plastic response is not modelled): the
  stress ``mu * (strain rate ~ u_p/R ~ 2e9 1/s)`` ~ 0.9 GPa is that of a yield strength of a
  few 0.1 GPa, the order used for HMX in pore-collapse studies. Viscous length
  ``mu/(rho0 u_p)`` = 0.24 um at 1 km/s, 0.16 um at 1.5 km/s: 2.5-4 cells at 62.5 nm, so the
  jet and the hotspot get a width the grid can converge to. ``mu_gas = 1.85e-5 Pa s`` (air,
  300 K). The temperature-dependent MD viscosity would be 0.0055 Pa s at 800 K (a 3 nm viscous
  length, unresolvable): constant is the choice that gives a length scale.
* **Loading** -- shock pressure 2-20 GPa, log-uniform (``u_p`` 0.30-1.61 km/s on the Hayes
  Hugoniot). Bulk shocked HMX is at 334 K at 2 GPa and 795 K at 20 GPa, 80 K below the 875 K
  hotspot threshold (the Hugoniot reaches 875 K at u_p = 1.73 km/s, 22 GPa); the excess
  statistic ``T > T_bulk + 300 K`` (``closure.normalization.HOTSPOT_EXCESS_K``) counts pore
  hotspots only at every pressure.
* **Microstructure (meso)** -- PBX 9501-like: porosity 1-2%, pore radii 0.5-1.0 um (see
  ``SCALES["meso"]["geometry"]``); the micro set has one pore of 0.5-0.8 um per window.
* **Numerics** -- five-equation diffuse interface, HLLC, MUSCL with the minmod limiter (MC fails
  at the gas/HMX interface: negative gas pressure at density ratios ~1600), SSP-RK2, CFL 0.8.
  Volume-fraction floor 1e-6 (the absent material in a "pure" cell). Conduction and viscosity
  are explicit, operator-split after each hydro step and sub-cycled to their stability limits.
"""

from __future__ import annotations

import copy
import math

__all__ = [
    "AMBIENT",
    "DEFAULTS",
    "GAS",
    "HMX",
    "PREVIOUS_HMX",
    "PREVIOUS_MESO",
    "PRODUCTS",
    "REACTION",
    "SCALES",
    "TRANSPORT",
    "defaults_for",
    "hmx_eos",
    "hugoniot_state",
    "hugoniot_u_p",
    "products_eos",
]

#: Unreacted beta-HMX (see module docstring for sources). ``eos = "hayes"``: Hayes EOS with
#: K0 (Pa), N, Gamma0, cv; ``"us_up"``: Mie-Grueneisen about Us = c0 + s up (the previous,
#: PBX 9404 fit c0 2423 m/s, s 1.883), same Gamma0 and cv.
HMX: dict = {"eos": "hayes", "rho0": 1900.0, "K0": 13.5e9, "N": 9.3, "gamma0": 1.1,
             "cv": 1500.0, "T0": 300.0, "c0": 2423.0, "s": 1.883}

#: The HMX EOS of data sets generated before the beta-HMX change (Mader's PBX 9404 Us-up fit,
#: Gamma0 1.1, cv 1500): closure.runner builds the initial patches of models whose card does
#: not record ``data.meso.hmx`` on this Hugoniot, the one they were trained on.
PREVIOUS_HMX: dict = dict(HMX, eos="us_up")

#: HMX detonation products, JWL (A, B in Pa; rho0 = 1/V0 of the fit, kg/m3).
PRODUCTS: dict = {"enabled": True, "A": 858.0805e9, "B": 7.546531e9, "R1": 4.306, "R2": 0.80,
                  "omega": 0.30, "rho0": 1.0 / 0.525976e-3, "cv": 1500.0}

#: Pore gas: air at 1 bar, 300 K.
GAS: dict = {"gamma": 1.4, "cv": 717.5, "rho": 1.161}

#: Ambient state of the sample before the shock.
AMBIENT: dict = {"p": 1.0e5, "T": 300.0}

#: Henson one-step Arrhenius HMX chemistry (k in 1/s, Ta in K, Q in J/kg: the JWL's 11.0 GPa
#: per unit initial volume times V0 = 0.525976e-3 m3/kg). ``cells = "hmx"``: react only in
#: HMX cells (alpha1 >= hmx_cell_alpha), whose temperature is the T channel's; ``"all"``: in
#: every cell (interface cells included).
REACTION: dict = {"k": 5.58e12, "Ta": 17922.0, "Q": 11.0e9 * 0.525976e-3, "rate_scale": 1.0,
                  "T_ignition": 0.0, "cells": "hmx"}

#: Heat conduction (W/(m K)) and Newtonian viscosity (Pa s) of HMX and the pore gas; each term
#: switches off on its own (``conduction``, ``viscosity``). HMX conducts and is viscous in HMX
#: cells (alpha1 >= physics.hmx_cell_alpha), the gas in nearly pure gas cells (alpha2 >=
#: gas_cell_alpha): the phase temperatures of mixed cells are numerically mixed
#: (macro.transport).
TRANSPORT: dict = {"conduction": True, "kappa_hmx": 0.45, "kappa_gas": 0.0263,
                   "viscosity": True, "mu_hmx": 0.45, "mu_gas": 1.85e-5,
                   "gas_cell_alpha": 0.999}

_COMMON: dict = {
    "physics": {
        "hmx": HMX,
        "gas": GAS,
        "ambient": AMBIENT,
        "reaction": REACTION,
        "products": PRODUCTS,
        "transport": TRANSPORT,
        # Kapila (True) or Allaire (False) volume-fraction equation. Kapila's K div(u) term is
        # what compresses the gas in mixed cells and collapses the pore; with Allaire the gas is
        # smeared, not compressed, and hotspots stay ~200 K cooler (docs/data.md). It needs a
        # kernel that integrates K div(u) without leaving (0, 1) next to nearly pure cells
        # (macro.multi.kapila_relax, docs/kernel_request_kapila.md).
        "kapila": True,
        "alpha_floor": 1.0e-6,
        # T channel: HMX-phase temperature where alpha1 >= hmx_cell_alpha; other cells are
        # filled with the nearest HMX cell's temperature ("nearest") or T0 ("ambient").
        "hmx_cell_alpha": 0.9,
        "t_fill": "nearest",
    },
    "loading": {
        # Particle velocity range (m/s): 300-1610 m/s is 1.98-20.0 GPa on the beta-HMX
        # Hugoniot (bulk shock temperature 334-795 K). "log_pressure": each sample's shock
        # pressure is log-uniform between the ends' pressures (as many samples per decade of
        # pressure, the spacing of a Pop plot); "uniform": u_p uniform in the range.
        "u_p": [300.0, 1610.0],
        "distribution": "log_pressure",
        # The x_low inflow state is ramped along the Hugoniot from ambient to the full shock state
        # over this time (cosine ramp): removes the start-up entropy error (the "hot stripe").
        "ramp_time": 1.0e-10,
    },
    "numerics": {"cfl": 0.8, "order": 2, "limiter": "minmod", "riemann": "hllc"},
}

#: Scale-specific defaults: same cell size at both scales (a token = an 8x8 patch = 0.5 um),
#: 8 cells on the smallest pore radius (docs/resolution_study.json).
SCALES: dict = {
    "micro": {
        "grid": {"nx": 96, "ny": 64, "dx": 62.5e-9},
        # 10 ns in 40 frames: collapse (0.2-2 ns from 20 to 2 GPa), ignition and early burning
        "time": {"frame_dt": 2.5e-10, "n_frames": 40},
        "geometry": {
            "kind": "single",
            "shapes": ["circle", "ellipse", "fourier"],
            # Equivalent (area) radius; smallest local radius raised to min_radius if needed.
            "radius": [0.5e-6, 0.8e-6],
            "aspect": [1.25, 2.0],          # ellipse semi-major / semi-minor
            "fourier_modes": [2, 6],        # modes k = 2..6
            "fourier_amplitude": 0.2,       # max |r/r0 - 1|
            "min_radius": 0.5e-6,           # smallest local radius: >= 8 cells at dx = 62.5 nm
            "lead_gap": [0.5e-6, 1.0e-6],   # distance x_low -> pore leading edge
        },
    },
    "meso": {
        # 24 x 16 um patch: ~3 pores at PBX 9501 porosity (a 12 x 8 um patch holds one at most)
        "grid": {"nx": 384, "ny": 256, "dx": 62.5e-9},
        # 20 ns in 40 frames: ignition of hotspots above ~1200 K and their first burning
        "time": {"frame_dt": 5.0e-10, "n_frames": 40},
        "geometry": {
            "kind": "many",
            "shapes": ["circle", "ellipse", "fourier"],
            # PBX 9501 (95 wt% HMX): nominal density 1.830-1.835 g/cm3 against 1.860 for its
            # voidless composition (Gibbs & Popolato, LASL Explosive Property Data, 1980), so
            # 1.3-1.6% porosity; drawn in [1.0, 2.0]% to cover pressing variation. Its pores
            # span ~0.1-5 um; the patch resolves the 0.5-1.0 um radius part with >= 8 cells
            # (smaller pores are below the grid and treated as homogeneous HMX, larger ones
            # would not fit ~3 per patch). The binder is neglected (pure HMX around the pores).
            "radius": [0.5e-6, 1.0e-6],
            "aspect": [1.25, 1.75],
            "fourier_modes": [2, 6],
            "fourier_amplitude": 0.2,
            "min_radius": 0.5e-6,
            "porosity": [0.010, 0.020],
            "gap": 1.25e-7,                 # min distance between pore outlines (2 cells)
            "margin": 1.0e-6,               # pores stay this far from x_low and x_high
            "max_tries": 2000,
        },
    },
}


def hmx_eos(hmx: dict):
    """The unreacted HMX EOS (a ``macro.eos`` object) of an ``hmx`` parameter table."""
    from macro.eos import Hayes, MieGruneisen

    if hmx["eos"] == "hayes":
        return Hayes(rho0=hmx["rho0"], K0=hmx["K0"], N=hmx["N"], gamma0=hmx["gamma0"],
                     cv=hmx["cv"], T0=hmx["T0"])
    if hmx["eos"] == "us_up":
        return MieGruneisen(rho0=hmx["rho0"], c0=hmx["c0"], s=hmx["s"], gamma0=hmx["gamma0"],
                            cv=hmx["cv"], T0=hmx["T0"])
    raise ValueError(f"hmx eos={hmx['eos']!r} must be 'hayes' or 'us_up'")


def products_eos(products: dict):
    """The HMX products JWL (``macro.eos.JWL``) of a ``products`` parameter table."""
    from macro.eos import JWL

    return JWL(rho0=products["rho0"], A=products["A"], B=products["B"], R1=products["R1"],
               R2=products["R2"], omega=products["omega"], cv=products["cv"])


def _hayes_hugoniot(h: dict, u_p: float, p0: float) -> dict:
    """Hayes-EOS Hugoniot from (rho0, p0) in closed form per volume, solved for V by brentq.

    ``p = p_T(V) + Gamma0 rho0 cv (T - T0)``, ``e = e_T(V) + cv (T - T0)`` (``macro.eos.Hayes``,
    which the tests check against this); plain NumPy/SciPy, so the closure's table queries need
    no Numba."""
    from scipy.optimize import brentq

    rho0, K0, N, g0, cv, T0 = (float(h[k]) for k in ("rho0", "K0", "N", "gamma0", "cv", "T0"))
    V0 = 1.0 / rho0
    a = g0 * rho0  # thermal pressure per unit thermal energy density
    e_a = p0 / a  # energy of the initial state (rho0, p0): e_T(V0) = 0

    def state(V):
        x = V0 / V
        dv = V / V0 - 1.0
        th = T0 * g0 * cv
        if x >= 1.0:
            pT = K0 / N * (x**N - 1.0)
            eT = th * dv - K0 * V0 / N * ((x ** (N - 1.0) - 1.0) / (1.0 - N) - dv)
        else:
            pT = -K0 * dv
            eT = th * dv + 0.5 * K0 * V0 * dv * dv
        theta = (0.5 * (pT + p0) * (V0 - V) + e_a - eT) / (1.0 - 0.5 * a * (V0 - V))
        return pT + a * theta, eT + theta, T0 + theta / cv

    if u_p <= 0.0:
        p, e, T = state(V0)
        c = math.sqrt(K0 / rho0 + g0 * g0 * cv * T)
        return {"Us": float(c), "rho": rho0, "p": float(p), "e": float(e), "T": float(T)}
    u2 = float(u_p) ** 2
    V = brentq(lambda V: (state(V)[0] - p0) * (V0 - V) - u2, 0.3 * V0, V0 * (1.0 - 1e-15),
               xtol=1e-18, rtol=1e-15)
    p, e, T = state(V)
    return {"Us": float(V0 * math.sqrt((p - p0) / (V0 - V))), "rho": float(1.0 / V),
            "p": float(p), "e": float(e), "T": float(T)}


def hugoniot_state(hmx: dict, u_p: float, p0: float) -> dict:
    """Shocked HMX of particle velocity u_p from (rho0, p0): Us, rho, p (Pa), e, T (K).

    Hayes EOS: closed form (``_hayes_hugoniot``, no Numba); ``us_up``: the linear Hugoniot, T
    from ``macro.eos.MieGruneisen``."""
    if hmx["eos"] == "hayes":
        return _hayes_hugoniot(hmx, float(u_p), float(p0))
    return _us_up_hugoniot(hmx, float(u_p), float(p0))


def hugoniot_u_p(hmx: dict, p: float, p0: float, lo: float, hi: float) -> float:
    """Particle velocity (m/s) of the shock to pressure ``p`` (Pa) from (rho0, p0), bracketed
    in [lo, hi] (the inverse of :func:`hugoniot_state`)."""
    from scipy.optimize import brentq

    return float(brentq(lambda u: hugoniot_state(hmx, u, p0)["p"] - p, lo, hi, xtol=1e-9,
                        rtol=1e-13))


def _us_up_hugoniot(h: dict, u_p: float, p0: float) -> dict:
    """Linear Us-up Hugoniot; T integrated along it as ``macro.eos.MieGruneisen`` does
    (Gamma*rho constant, constant cv; tested equal), in SciPy so that no Numba is imported."""
    from scipy.integrate import solve_ivp

    rho0, c0, s, g0, cv, T0 = (float(h[k]) for k in ("rho0", "c0", "s", "gamma0", "cv", "T0"))
    us = c0 + s * u_p
    eta = u_p / us
    k = rho0 * c0 * c0

    def rhs(x, T):
        ph = k * x / (1.0 - s * x) ** 2
        dph = k * (1.0 + s * x) / (1.0 - s * x) ** 3
        return 0.5 / (rho0 * cv) * (x * dph - ph) + g0 * T

    T = T0
    if eta > 0.0:
        T = float(solve_ivp(rhs, (0.0, eta), [T0], rtol=1e-10, atol=1e-8,
                            method="DOP853").y[0, -1])
    rho = rho0 / (1.0 - eta)
    p = p0 + rho0 * us * u_p
    return {"Us": us, "rho": rho, "p": p, "e": 0.5 * (p + p0) * (1.0 / rho0 - 1.0 / rho),
            "T": T}


def defaults_for(scale: str) -> dict:
    """A fresh, fully populated default config for ``scale`` ('micro' or 'meso')."""
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} is not one of {sorted(SCALES)}")
    cfg = copy.deepcopy(_COMMON)
    cfg.update(copy.deepcopy(SCALES[scale]))
    cfg["scale"] = scale
    return cfg


DEFAULTS = {s: defaults_for(s) for s in SCALES}


def _previous_meso() -> dict:
    """The meso data config of data format 1 (5 ns, u_p 0.7-1.5 km/s uniform, 2.5-9.5%
    porosity, 8 x 12 um patch, the PBX 9404 Us-up HMX fit): models whose card records no data
    config were trained on it, and the closure builds their patches, envelope and
    microstructures from it."""
    cfg = defaults_for("meso")
    cfg["physics"]["hmx"] = dict(PREVIOUS_HMX)
    cfg["grid"].update(nx=192, ny=128)
    cfg["time"].update(frame_dt=2.5e-10, n_frames=20)
    cfg["loading"].update(u_p=[700.0, 1500.0], distribution="uniform")
    cfg["geometry"].update(radius=[0.5e-6, 0.7e-6], porosity=[0.025, 0.095], margin=0.5e-6)
    return cfg


#: See :func:`_previous_meso`.
PREVIOUS_MESO: dict = _previous_meso()
