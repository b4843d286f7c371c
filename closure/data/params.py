"""Every physical and numerical parameter of the pore-collapse data, with its source.

This is the one place to change the physics of the training data. The values are grouped into
plain dicts so that they can be written, resolved, into every data set (``config`` attribute) and
overridden from a TOML file (``configs/data/*.toml``) without touching code. Units are SI.

Why these numbers (see ``docs/data.md`` for the measurements behind them):

* **HMX** -- Mie-Grueneisen about the linear ``Us = c0 + s up`` Hugoniot
  (``macro.eos.MieGruneisen``), ``Gamma*rho`` constant, constant ``cv``. ``rho0 = 1900 kg/m3``,
  ``c0 = 2423 m/s``, ``s = 1.883`` (Us-up fit of Mader, LANL EOSlib ``HMX.data``);
  ``Gamma0 = 1.1`` and ``cv = 1500 J/(kg K)`` (Hayes/Olinger fit; Menikoff & Sewell 2001 use
  Gamma = 0.9 V/V0). Mader's ``Gamma0 = 0.65, cv = 1670`` gives 50-90 K cooler shocks in the
  loading range; of the published fits compared in ``docs/hugoniot_T.png`` ours is the hottest,
  i.e. the conservative one for keeping bulk shocked HMX below the hotspot threshold.
  A stiffened gas (gamma ~ 6.5) is *not* used: its Grueneisen parameter ~5.5 overheats shocks.
* **Pore gas** -- air, ideal gas ``gamma = 1.4``, ``cv = 717.5 J/(kg K)``, at 1 bar and 300 K
  (``rho = p/(R T) = 1.161 kg/m3``).
* **Chemistry** -- one-step Arrhenius (Henson et al. 2002 fit to HMX decomposition):
  ``k = 5.58e12 1/s``, ``Ea = 149 kJ/mol`` (``Ta = Ea/R = 17922 K``), heat of reaction 5.5 MJ/kg,
  released in the HMX phase and driven by the HMX-phase temperature. ``rate_scale`` multiplies
  ``k``; the default 1.0 (unscaled) because the frames span only a few ns: with the usual
  calibration scale 0.01-0.1 no hotspot of these simulations would react visibly.
* **Loading** -- shock particle velocity ``u_p`` drawn uniformly in ``[0.7, 1.5] km/s``
  (5.0-15.0 GPa). The upper end keeps bulk shocked HMX at 745 K, 130 K below the 875 K hotspot
  threshold (the Hugoniot reaches 875 K at u_p = 1.70 km/s, 18 GPa), so every cell above the
  threshold is a hotspot; the lower end is where collapse hotspots stop reaching the threshold.
* **Numerics** -- five-equation diffuse interface, HLLC, MUSCL with the minmod limiter (MC fails
  at the gas/HMX interface: negative gas pressure at density ratios ~1600), SSP-RK2, CFL 0.8.
  Volume-fraction floor 1e-6 (the absent material in a "pure" cell).
"""

from __future__ import annotations

import copy

__all__ = [
    "AMBIENT",
    "DEFAULTS",
    "GAS",
    "HMX",
    "REACTION",
    "SCALES",
    "defaults_for",
    "hugoniot_state",
]

#: Unreacted HMX, Mie-Grueneisen about the Us-up Hugoniot (see module docstring for sources).
HMX: dict = {"rho0": 1900.0, "c0": 2423.0, "s": 1.883, "gamma0": 1.1, "cv": 1500.0, "T0": 300.0}

#: Pore gas: air at 1 bar, 300 K.
GAS: dict = {"gamma": 1.4, "cv": 717.5, "rho": 1.161}

#: Ambient state of the sample before the shock.
AMBIENT: dict = {"p": 1.0e5, "T": 300.0}

#: Henson one-step Arrhenius HMX chemistry (k in 1/s, Ta in K, Q in J/kg).
#: ``cells = "hmx"``: react only in HMX cells (alpha1 >= hmx_cell_alpha), whose temperature is
#: the T channel's; ``"all"``: macro's built-in Arrhenius in every cell (interface cells included).
REACTION: dict = {"k": 5.58e12, "Ta": 17922.0, "Q": 5.5e6, "rate_scale": 1.0, "T_ignition": 0.0,
                  "cells": "hmx"}

_COMMON: dict = {
    "physics": {
        "hmx": HMX,
        "gas": GAS,
        "ambient": AMBIENT,
        "reaction": REACTION,
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
        # Particle velocity range (m/s), uniform per sample.
        "u_p": [700.0, 1500.0],
        # The x_low inflow state is ramped along the Hugoniot from ambient to the full shock state
        # over this time (cosine ramp): removes the start-up entropy error (the "hot stripe").
        "ramp_time": 1.0e-10,
    },
    "numerics": {"cfl": 0.8, "order": 2, "limiter": "minmod", "riemann": "hllc"},
}

#: Scale-specific defaults: same cell size at both scales (a token = an 8x8 patch = 0.5 um).
SCALES: dict = {
    "micro": {
        "grid": {"nx": 96, "ny": 64, "dx": 62.5e-9},
        "time": {"frame_dt": 1.25e-10, "n_frames": 20},
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
        "grid": {"nx": 192, "ny": 128, "dx": 62.5e-9},
        "time": {"frame_dt": 2.5e-10, "n_frames": 20},
        "geometry": {
            "kind": "many",
            "shapes": ["circle", "ellipse", "fourier"],
            "radius": [0.5e-6, 0.7e-6],
            "aspect": [1.25, 1.75],
            "fourier_modes": [2, 6],
            "fourier_amplitude": 0.2,
            "min_radius": 0.5e-6,
            # target porosity; the achieved one is within half a smallest pore (0.4%) of it
            "porosity": [0.025, 0.095],
            "gap": 1.25e-7,                 # min distance between pore outlines (2 cells)
            "margin": 0.5e-6,               # pores stay this far from x_low and x_high
            "max_tries": 2000,
        },
    },
}


def hugoniot_state(hmx: dict, u_p: float, p0: float) -> dict:
    """Shocked HMX on the linear Us-up Hugoniot: Us, rho, p (Pa) for particle velocity u_p."""
    us = hmx["c0"] + hmx["s"] * u_p
    rho = hmx["rho0"] * us / (us - u_p)
    p = p0 + hmx["rho0"] * us * u_p
    return {"Us": us, "rho": rho, "p": p}


def defaults_for(scale: str) -> dict:
    """A fresh, fully populated default config for ``scale`` ('micro' or 'meso')."""
    if scale not in SCALES:
        raise ValueError(f"scale={scale!r} is not one of {sorted(SCALES)}")
    cfg = copy.deepcopy(_COMMON)
    cfg.update(copy.deepcopy(SCALES[scale]))
    cfg["scale"] = scale
    return cfg


DEFAULTS = {s: defaults_for(s) for s in SCALES}
