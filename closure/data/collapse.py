"""One pore-collapse sample: geometry + shock loading -> hydro run -> normalized frames.

Setup (all numbers from :mod:`closure.data.params` via the resolved config):

* Two materials in the five-equation diffuse-interface model of :mod:`macro`: HMX (material 1,
  Mie-Grueneisen, reactive) and the pore gas (material 2, air). Pure cells carry the absent
  material at volume fraction ``alpha_floor``.
* **Frame of reference: the shocked HMX is at rest.** The unshocked sample streams in through
  x_high at ``-u_p`` (inflow boundary, ambient state) and the shock enters through x_low, an
  inflow boundary holding the Hugoniot state at rest. This is a piston at ``u_p`` seen from the
  piston: the same physics as a lab-frame piston, but the collapsed pore and its hotspot stay in
  the window instead of drifting out at ``u_p``. The x_low state is ramped along the Hugoniot
  over ``ramp_time`` (cosine ramp): an impulsive start leaves a spurious hot stripe (+90 K at
  1.6 km/s). When the shock reaches x_high, that ghost switches to the shocked state at rest, so
  the sample behaves as semi-infinite. Fixed-state ghosts are non-reflecting for outgoing simple
  waves, so blast waves from the collapse leave the window. y is periodic.
* HMX: beta-HMX Hayes EOS; when it reacts, reactant and JWL products share its phase density
  and pressure, mixed by lambda (``physics.products``).
* Chemistry: one-step Arrhenius on the HMX-phase temperature in HMX cells (alpha1 >=
  ``hmx_cell_alpha``), heat released in the HMX, sub-stepped with the temperature feedback
  (``macro.reaction.react_multi``).
* Heat conduction and Newtonian viscosity (``physics.transport``, ``macro.transport``):
  conduction in each phase with its own temperature (the gas insulates), viscosity of HMX as
  the collapse's length scale. Each switches off on its own.

Channels (float32, normalized with :data:`closure.normalization.NORM_RANGES`, not clipped):

* ``T`` -- HMX-phase temperature (K) from the HMX EOS at the HMX phase density and the cell
  pressure, in HMX cells (``alpha1 >= hmx_cell_alpha``, default 0.9). Other cells (pore gas and
  strongly mixed interface cells) take the temperature of the nearest HMX cell (``t_fill =
  "nearest"``, default) or T0 = 300 K (``t_fill = "ambient"``). The gas is not HMX: its very high
  compression temperature must not pose as a hotspot; and the HMX phase of a cell with
  alpha1 ~ 0.5 has a numerically mixed density whose temperature is unreliable (measured from
  -160 K to +1550 K in interface cells of one sample). ``mu`` says which cells were filled.
* ``P`` -- mixture pressure (Pa), the same in both phases (mechanical equilibrium).
* ``mu`` -- HMX volume fraction alpha1 (1 = HMX, ~0 = pore).

Extras in SI: ``lam`` (reaction progress of the HMX), ``u``, ``v`` (m/s, in the shocked-HMX
frame: add ``u_p`` to ``u`` for the lab frame of an unshocked sample).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import distance_transform_edt

from macro.eos import IdealGas, ReactiveEOS
from macro.io import GridSpec
from macro.models import FiveEquationModel
from macro.reaction import Arrhenius
from macro.solver import Solver
from macro.transport import Transport

from ..normalization import (
    CHANNELS,
    HOT_AREA_M2,
    HOTSPOT_EXCESS_K,
    HOTSPOT_THRESHOLD_K,
    NORM_RANGES,
)
from . import geometry
from .params import hmx_eos, hugoniot_state, hugoniot_u_p, products_eos

__all__ = [
    "EXTRAS",
    "SampleResult",
    "hugoniot_state",
    "build_solver",
    "draw_u_p",
    "sample_geometry",
    "sample_seed",
    "run_sample",
    "simulate",
]

EXTRAS = ("u", "v")
SIDE_X_LOW, SIDE_X_HIGH = 0, 1


@dataclass
class SampleResult:
    """Frames and metadata of one sample."""

    fields: np.ndarray                  # (n_t, 3, H, W) float32, normalized T, P, mu
    extras: dict[str, np.ndarray]       # name -> (n_t, H, W) float32, SI
    stats: dict[str, np.ndarray]        # name -> (n_t,) float64 per-frame diagnostics
    meta: dict                          # scalars (see META_FIELDS in closure.data.dataset)
    pores: list[dict] = field(default_factory=list)
    times: np.ndarray | None = None


def sample_seed(seed: int, index: int) -> int:
    """The 63-bit seed of sample ``index`` of a data set with seed ``seed`` (stable, documented)."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def draw_u_p(cfg: dict, rng: np.random.Generator) -> float:
    """Particle velocity of one sample: uniform in ``loading.u_p`` or, with ``distribution =
    "log_pressure"``, log-uniform in the shock pressure between the Hugoniot pressures of the
    range's ends (equal samples per decade of pressure, as a Pop plot spaces them)."""
    ld = cfg["loading"]
    lo, hi = (float(v) for v in ld["u_p"])
    x = float(rng.uniform(0.0, 1.0))
    if ld["distribution"] == "uniform" or hi == lo:
        return lo + x * (hi - lo)
    hmx, p0 = cfg["physics"]["hmx"], cfg["physics"]["ambient"]["p"]
    p_lo, p_hi = (hugoniot_state(hmx, u, p0)["p"] for u in (lo, hi))
    p = p_lo * (p_hi / p_lo) ** x
    return hugoniot_u_p(hmx, p, p0, lo, hi)


def sample_geometry(cfg: dict, rng: np.random.Generator) -> tuple[float, list[dict], float]:
    """(u_p, pores, target porosity) of one sample, drawn in a fixed order from ``rng``."""
    u_p = draw_u_p(cfg, rng)
    g = cfg["grid"]
    geo = cfg["geometry"]
    if geo["kind"] == "single":
        pores = geometry.micro_pores(rng, geo, g["nx"], g["ny"], g["dx"])
        target = float("nan")
    else:
        pores, target = geometry.meso_pores(rng, geo, g["nx"], g["ny"], g["dx"])
    return u_p, pores, target


def _materials(cfg: dict):
    """(HMX phase EOS, gas EOS): the HMX carries its products EOS when they are enabled."""
    ph = cfg["physics"]
    hmx = hmx_eos(ph["hmx"])
    if ph["products"]["enabled"]:
        hmx = ReactiveEOS(hmx, products_eos(ph["products"]))
    gas = IdealGas(ph["gas"]["gamma"], cv=ph["gas"]["cv"])
    return hmx, gas


def transport_of(cfg: dict) -> Transport | None:
    """Conduction and viscosity of the config (None when both are off)."""
    tr = cfg["physics"]["transport"]
    t = Transport(kappa1=tr["kappa_hmx"] if tr["conduction"] else 0.0,
                  kappa2=tr["kappa_gas"] if tr["conduction"] else 0.0,
                  mu1=tr["mu_hmx"] if tr["viscosity"] else 0.0,
                  mu2=tr["mu_gas"] if tr["viscosity"] else 0.0,
                  alpha_min=cfg["physics"]["hmx_cell_alpha"],
                  alpha_min2=tr["gas_cell_alpha"])
    return t if t.active else None


def model_of(cfg: dict) -> FiveEquationModel:
    """The five-equation model of the config's physics (materials, heat of reaction, Kapila
    term, conduction and viscosity)."""
    hmx, gas = _materials(cfg)
    ph = cfg["physics"]
    return FiveEquationModel(hmx, gas, Q=ph["reaction"]["Q"], kapila=bool(ph["kapila"]),
                             transport=transport_of(cfg))


def rate_of(cfg: dict) -> Arrhenius | None:
    """The config's chemistry (None when ``rate_scale`` is 0: inert)."""
    ph = cfg["physics"]
    rx = ph["reaction"]
    if not rx["rate_scale"] > 0:
        return None
    return Arrhenius(k=rx["k"] * rx["rate_scale"], Ta=rx["Ta"], T_ignition=rx["T_ignition"],
                     alpha_min=ph["hmx_cell_alpha"] if rx["cells"] == "hmx" else 0.0)


def shocked_state(cfg: dict, u_p: float, w: float = 1.0) -> dict:
    """Primitives of the Hugoniot state of particle velocity w*u_p in the frame of the shocked
    HMX of u_p (at rest for w = 1): the x_low ghost state, with the pore gas's floor fraction
    compressed isentropically to the same pressure."""
    ph = cfg["physics"]
    p0 = ph["ambient"]["p"]
    hs = hugoniot_state(ph["hmx"], w * u_p, p0)
    gam = ph["gas"]["gamma"]
    return {"rho1": hs["rho"], "rho2": ph["gas"]["rho"] * (hs["p"] / p0) ** (1.0 / gam),
            "alpha1": 1.0 - ph["alpha_floor"], "u": w * u_p - u_p, "v": 0.0, "p": hs["p"],
            "lam": 0.0}


def _set_inflow(solver: Solver, side: int, state: dict) -> None:
    """Update an inflow boundary state during a run (the x_low ramp)."""
    solver.set_inflow(("x_low", "x_high", "y_low", "y_high")[side], state)


def build_solver(cfg: dict, u_p: float, pores: list[dict]) -> tuple[Solver, np.ndarray]:
    """The solver of one sample at t = 0 and its initial gas fraction (ny, nx)."""
    g, ph, num = cfg["grid"], cfg["physics"], cfg["numerics"]
    nx, ny, dx = g["nx"], g["ny"], g["dx"]
    model = model_of(cfg)
    floor = ph["alpha_floor"]
    gasf = geometry.gas_fraction(pores, nx, ny, dx)
    alpha1 = np.clip(1.0 - gasf, floor, 1.0 - floor)
    shape = (ny, nx)
    p0 = ph["ambient"]["p"]
    prim = {"rho1": np.full(shape, ph["hmx"]["rho0"]), "rho2": np.full(shape, ph["gas"]["rho"]),
            "alpha1": alpha1, "u": np.full(shape, -u_p), "v": np.zeros(shape),
            "p": np.full(shape, p0), "lam": np.zeros(shape)}
    U = model.conserved(prim)
    ramp = cfg["loading"]["ramp_time"]
    ambient_in = {"rho1": ph["hmx"]["rho0"], "rho2": ph["gas"]["rho"], "alpha1": 1.0 - floor,
                  "u": -u_p, "v": 0.0, "p": p0, "lam": 0.0}
    solver = Solver(
        model, GridSpec(nx=nx, ny=ny, dx=dx, dy=dx), U,
        bc={"x_low": "inflow", "x_high": "inflow", "y_low": "periodic", "y_high": "periodic"},
        inflow={"x_low": shocked_state(cfg, u_p, 0.0 if ramp > 0 else 1.0),
                "x_high": ambient_in},
        cfl=num["cfl"], order=num["order"], limiter=num["limiter"], riemann=num["riemann"],
        rate=rate_of(cfg), config={"data": cfg, "u_p": u_p, "pores": pores})
    return solver, gasf


def hmx_fill(values: list[np.ndarray], hmx_cell: np.ndarray, fill: str,
             ambient: list[float]) -> list[np.ndarray]:
    """HMX-phase fields in HMX cells, filled elsewhere (the T and lam channels).

    ``fill = "nearest"``: a non-HMX cell takes the value of the nearest HMX cell (periodic in
    y), so an intact pore is invisible and a collapsed pore's residual gas does not punch a
    cold hole into its hotspot; ``fill = "ambient"``: non-HMX cells hold the ambient value.
    Either way no value comes from the gas or from the unreliable HMX phase of strongly mixed
    cells. One nearest-cell search serves every field.
    """
    if fill == "ambient" or hmx_cell.all():
        return [np.where(hmx_cell, v, a) for v, a in zip(values, ambient, strict=True)]
    if not hmx_cell.any():
        return [np.full_like(v, a) for v, a in zip(values, ambient, strict=True)]
    ny = hmx_cell.shape[0]
    tiled = np.concatenate([hmx_cell] * 3, axis=0)
    idx = distance_transform_edt(~tiled, return_distances=False, return_indices=True)
    jj = np.mod(idx[0][ny:2 * ny], ny)
    ii = idx[1][ny:2 * ny]
    return [np.where(hmx_cell, v, v[jj, ii]) for v in values]


def hmx_channel_temperature(T: np.ndarray, hmx_cell: np.ndarray, fill: str,
                            T0: float) -> np.ndarray:
    """The T channel: HMX-phase temperature in HMX cells, filled elsewhere (:func:`hmx_fill`)."""
    return hmx_fill([T], hmx_cell, fill, [T0])[0]


def hottest_area_temperature(T: np.ndarray, cell_area: float,
                             area: float = HOT_AREA_M2) -> float:
    """Mean temperature of the hottest ``area`` (m^2) of the T channel: the hottest whole cells
    plus the matching fraction of the next one, so the statistic is defined by a physical area
    at any cell size."""
    flat = T.ravel()
    n = area / cell_area
    k = int(np.floor(n))
    if k >= flat.size:
        return float(flat.mean())
    top = np.partition(flat, flat.size - k - 1)[flat.size - k - 1:]  # k + 1 largest
    top.sort()
    frac = n - k
    return float((top[1:].sum() + frac * top[0]) / n)


#: Per-frame statistics of every sample (``stats/<name>`` in the data set), SI units.
STAT_NAMES = ("time", "peak_T", "hot_area_T", "hotspot_area", "hotspot_T", "hotspot_area_excess",
              "burned_fraction", "max_p", "min_p", "gas_volume", "mass_hmx", "mass_gas",
              "max_lam", "steps")


class _Frames:
    """Collects frames from ``Solver.advance`` (duck-typed output writer)."""

    def __init__(self, cfg: dict, n_t: int, ny: int, nx: int, mass_fn, hmx_mass_fn,
                 excess_T: float):
        self.cfg = cfg
        self.fields = np.empty((n_t, len(CHANNELS), ny, nx), np.float32)
        self.extras = {k: np.empty((n_t, ny, nx), np.float32) for k in EXTRAS}
        self.stats = {k: np.full(n_t, np.nan) for k in STAT_NAMES}
        self.k = 0
        self.mass_fn = mass_fn
        self.hmx_mass_fn = hmx_mass_fn
        self.excess_T = excess_T

    def write_frame(self, t: float, step: int, f: dict) -> None:
        ph = self.cfg["physics"]
        dx = self.cfg["grid"]["dx"]
        k = self.k
        a1 = f["alpha1"]
        hmx_cell = a1 >= ph["hmx_cell_alpha"]
        T, lam = hmx_fill([f["T"], f["lam"]], hmx_cell, ph["t_fill"], [ph["hmx"]["T0"], 0.0])
        out = {"T": T, "P": f["p"], "mu": a1, "lam": lam}
        for c, name in enumerate(CHANNELS):
            lo, hi = NORM_RANGES[name]
            self.fields[k, c] = (out[name] - lo) / (hi - lo)
        for name in EXTRAS:
            self.extras[name][k] = f[name]
        hot = T > HOTSPOT_THRESHOLD_K
        s = self.stats
        s["time"][k] = t
        s["steps"][k] = step
        s["peak_T"][k] = float(T.max())
        s["hot_area_T"][k] = hottest_area_temperature(T, dx * dx)
        s["hotspot_area"][k] = float(hot.sum()) * dx * dx
        s["hotspot_T"][k] = float(T[hot].mean()) if hot.any() else HOTSPOT_THRESHOLD_K
        s["hotspot_area_excess"][k] = float((T > self.excess_T).sum()) * dx * dx
        # burned mass fraction of the HMX in the window: the HMX partial density weights
        # every cell (gas cells carry ~alpha_floor of it), so no cell-type cut enters F
        m1 = self.hmx_mass_fn()
        s["burned_fraction"][k] = float((m1 * f["lam"]).sum() / m1.sum())
        s["max_p"][k] = float(f["p"].max())
        s["min_p"][k] = float(f["p"].min())
        s["gas_volume"][k] = float((1.0 - a1).sum()) * dx * dx
        m = self.mass_fn()
        s["mass_hmx"][k], s["mass_gas"][k] = m
        s["max_lam"][k] = float(np.where(hmx_cell, f["lam"], 0.0).max())
        self.k += 1


def simulate(cfg: dict, u_p: float, pores: list[dict], *, progress: bool = False,
             callback=None) -> SampleResult:
    """Run one sample with the given loading and pores; frames at k * frame_dt, k = 0..n."""
    g, tm = cfg["grid"], cfg["time"]
    nx, ny, dx = g["nx"], g["ny"], g["dx"]
    n_t = tm["n_frames"] + 1
    times = np.arange(n_t) * tm["frame_dt"]
    t_wall = time.perf_counter()
    solver, gasf = build_solver(cfg, u_p, pores)
    model = solver.model

    i_hmx = model.var_names.index("alpha1_rho1")
    i_gas = model.var_names.index("alpha2_rho2")

    def masses():
        tot = solver.totals()
        return float(tot[i_hmx]), float(tot[i_gas])

    ph = cfg["physics"]
    hs = hugoniot_state(ph["hmx"], u_p, ph["ambient"]["p"])
    sink = _Frames(cfg, n_t, ny, nx, masses, lambda: solver.interior[i_hmx],
                   float(hs["T"]) + HOTSPOT_EXCESS_K)
    sink.write_frame(0.0, 0, solver.fields())
    ramp = cfg["loading"]["ramp_time"]
    i_mx = model.var_names.index("rho_u")
    exited = [False]

    def step_cb(s: Solver) -> None:
        if ramp > 0 and s.t <= ramp + 0.5 * tm["frame_dt"]:
            w = min(1.0, s.t / ramp)
            _set_inflow(s, SIDE_X_LOW, shocked_state(cfg, u_p, 0.5 - 0.5 * math.cos(math.pi * w)))
        if not exited[0]:
            # The shock reaches x_high when the last column has slowed to half the inflow speed:
            # from then on the x_high ghost holds the shocked state at rest (a semi-infinite
            # sample). A fixed ambient inflow would re-shock the exit, zero-gradient would send
            # a rarefaction back (-14% pressure at 1 km/s).
            last = s.interior[:, :, -1]
            u_last = float(np.mean(last[i_mx] / (last[i_hmx] + last[i_gas])))
            if u_last > -0.5 * u_p:
                _set_inflow(s, SIDE_X_HIGH, shocked_state(cfg, u_p, 1.0))
                exited[0] = True
        if callback is not None:
            callback(s)

    solver.advance(float(times[-1]), frame_times=times[1:].tolist(), writer=sink,
                   progress=progress, callback=step_cb)
    wall = time.perf_counter() - t_wall
    area = nx * ny * dx * dx
    req = [geometry.equivalent_radius(p) for p in pores]
    meta = {
        "u_p": u_p, "shock_pressure": hs["p"], "shock_speed": hs["Us"],
        "hugoniot_T": float(hs["T"]),
        "porosity": float(gasf.mean()), "n_pores": len(pores),
        "r_eq_mean": float(np.mean(req)) if req else 0.0,
        "r_eq_min": float(np.min(req)) if req else 0.0,
        "r_eq_max": float(np.max(req)) if req else 0.0,
        "peak_T": float(np.max(sink.stats["peak_T"])),
        "peak_hot_area_T": float(np.max(sink.stats["hot_area_T"])),
        "peak_hotspot_fraction": float(np.max(sink.stats["hotspot_area"]) / area),
        "final_hotspot_fraction": float(sink.stats["hotspot_area"][-1] / area),
        "peak_hotspot_excess_fraction": float(np.max(sink.stats["hotspot_area_excess"]) / area),
        "final_burned_fraction": float(sink.stats["burned_fraction"][-1]),
        "max_lam": float(np.max(sink.stats["max_lam"])),
        "steps": int(solver.step), "wall_s": wall,
    }
    return SampleResult(sink.fields, sink.extras, sink.stats, meta, pores, times)


def run_sample(cfg: dict, seed: int, index: int) -> SampleResult:
    """Sample ``index`` of a data set with seed ``seed``: deterministic in (cfg, seed, index)."""
    sseed = sample_seed(seed, index)
    rng = np.random.default_rng(sseed)
    u_p, pores, target = sample_geometry(cfg, rng)
    res = simulate(cfg, u_p, pores)
    res.meta.update({"index": int(index), "seed": int(seed), "sample_seed": sseed,
                     "target_porosity": target})
    return res
