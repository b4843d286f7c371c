"""Initial meso patch of a newly shocked macro cell: a synthetic "frame 1" of the meso data.

The meso data (``closure.data``) start from an ambient frame 0; the shock enters
through x_low (an inflow boundary ramped along the Hugoniot over ``ramp_time``), so frame 1
(t1 = one meso frame dt after the start) is the first frame that carries the shock pressure. A
newly shocked closure cell starts its meso patch from an analytic copy of that frame:

* microstructure: a random meso pore set (:func:`closure.data.geometry.meso_pores`, the data
  set's geometry config, seeded), every pore moved by ``-u_p * t1`` (the unshocked sample
  streams in at ``-u_p`` in the shocked-HMX frame of the data);
* planar shock at ``x_front = (Us - u_p) (t1 - ramp_time / 2)`` from x_low (the cosine ramp
  delays the front by about half the ramp), smoothed over ``front_width`` cells (tanh);
  behind it the Hugoniot state of :func:`closure.data.params.hugoniot_state` at ``Ps``
  (pressure ``Ps``, HMX Hugoniot temperature), ahead ambient (1 bar, 300 K);
* channels normalized as in the data: T (HMX temperature; pores take the value of the HMX around
  them, as ``t_fill = "nearest"`` does), P, mu = HMX volume fraction (clipped to the data's
  ``[alpha_floor, 1 - alpha_floor]``).

Not modelled: the cooler first cells behind x_low left by the ramp (~50 K over 3 cells) and
pores already touched by the front. ``benchmarks/closure_frame1.py`` measures the per-channel
RMSE of this construction against frame 1 of ``data/meso.h5``.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np

from closure.data.params import defaults_for, hugoniot_state
from closure.normalization import CHANNELS, NORM_RANGES

__all__ = [
    "DEFAULT_GRID",
    "default_envelope",
    "hugoniot_temperature",
    "microstructure_bank",
    "particle_velocity",
    "shifted_gas_fraction",
    "shock_speed",
    "synthetic_frame1",
]

#: Meso patch (H, W) of the default meso data config (closure.data.params).
DEFAULT_GRID: tuple[int, int] = (defaults_for("meso")["grid"]["ny"],
                                 defaults_for("meso")["grid"]["nx"])


@lru_cache(maxsize=1)
def _meso_cfg() -> dict:
    """The meso data config's defaults, shared by every call (read it, never modify it): a
    fresh copy per call cost ~1 ms of each patch's ~4 ms set-up."""
    return defaults_for("meso")


def _key(hmx: dict | None) -> tuple:
    h = _meso_cfg()["physics"]["hmx"] if hmx is None else hmx
    return tuple(sorted(h.items()))


@lru_cache(maxsize=4)
def _hugoniot_table(key: tuple):
    """An HMX Hugoniot (from 1 bar) as monotone cubic interpolants of u_p, Us and T in shock
    pressure, u_p 0-3 km/s."""
    from scipy.interpolate import PchipInterpolator

    h, p0 = dict(key), _meso_cfg()["physics"]["ambient"]["p"]
    up = np.linspace(0.0, 3000.0, 601)
    st = [hugoniot_state(h, u, p0) for u in up]
    p = np.array([s["p"] for s in st])
    return (PchipInterpolator(p, up), PchipInterpolator(p, [s["Us"] for s in st]),
            PchipInterpolator(p, [s["T"] for s in st]), p[0])


def particle_velocity(ps: float | np.ndarray, hmx: dict | None = None) -> np.ndarray:
    """u_p (m/s) on the HMX Hugoniot (``hmx`` table; default: the data's, params.HMX) with
    shock pressure ``ps`` (Pa)."""
    f_up, _, _, p0 = _hugoniot_table(_key(hmx))
    return f_up(np.maximum(np.asarray(ps, float), p0))


def shock_speed(ps: float | np.ndarray, hmx: dict | None = None) -> np.ndarray:
    """Us (m/s) on the HMX Hugoniot with shock pressure ``ps`` (Pa)."""
    _, f_us, _, p0 = _hugoniot_table(_key(hmx))
    return f_us(np.maximum(np.asarray(ps, float), p0))


def hugoniot_temperature(ps: float | np.ndarray, hmx: dict | None = None) -> np.ndarray:
    """HMX Hugoniot temperature (K) at shock pressure ``ps`` (Pa)."""
    _, _, f_T, p0 = _hugoniot_table(_key(hmx))
    return f_T(np.maximum(np.asarray(ps, float), p0))


def default_envelope(hmx: dict | None = None, cfg: dict | None = None) -> tuple[float, float]:
    """Shock-pressure range (Pa) of a meso data config's loading (``cfg``; default: the
    generator's defaults) on the HMX Hugoniot of ``hmx`` (default: the config's)."""
    cfg = cfg or _meso_cfg()
    lo, hi = cfg["loading"]["u_p"]
    h = cfg["physics"]["hmx"] if hmx is None else hmx
    p0 = cfg["physics"]["ambient"]["p"]
    return float(hugoniot_state(h, lo, p0)["p"]), float(hugoniot_state(h, hi, p0)["p"])


def microstructure_bank(n: int, seed: int = 0, grid: tuple[int, int] = DEFAULT_GRID,
                        dx: float | None = None, cfg: dict | None = None) -> list[list[dict]]:
    """``n`` random meso pore sets (geometry of the meso data config ``cfg``, default: the
    generator's defaults) for a ``grid`` patch; member ``i`` depends only on (``seed``, ``i``,
    grid, config)."""
    from closure.data import geometry  # Numba: imported when pores are drawn, not for tables

    cfg = cfg or _meso_cfg()
    H, W = grid
    dx = cfg["grid"]["dx"] if dx is None else dx
    geo = copy.deepcopy(cfg["geometry"])
    out = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(i), H, W]))
        try:
            pores, _ = geometry.meso_pores(rng, geo, W, H, dx)
        except ValueError:
            pores = []
        out.append(pores)
    return out


def synthetic_frame1(ps: float, pores: list[dict], grid: tuple[int, int] = DEFAULT_GRID, *,
                     dx: float | None = None, t1: float | None = None,
                     ramp_time: float | None = None, front_width: float = 1.0,
                     gas_fraction: np.ndarray | None = None,
                     hmx: dict | None = None, cfg: dict | None = None,
                     fields: tuple[str, ...] = CHANNELS) -> np.ndarray:
    """Normalized (len(fields), H, W) float32 frame: planar shock at ``ps`` (Pa) entered from
    x_low; ``fields`` in the model's order (``lam`` = 0: nothing has reacted yet).

    ``pores`` are in the frame-0 positions (as stored per sample in the data set);
    ``gas_fraction`` (H, W) may be passed instead to skip rasterization (already shifted).
    ``hmx``: the HMX EOS table of the Hugoniot (default: the data generator's, params.HMX);
    ``cfg``: the meso data config whose frame interval, ramp and ambient state apply (default:
    the generator's defaults).
    """
    cfg = cfg or _meso_cfg()
    H, W = grid
    dx = cfg["grid"]["dx"] if dx is None else dx
    t1 = cfg["time"]["frame_dt"] if t1 is None else t1
    ramp = cfg["loading"]["ramp_time"] if ramp_time is None else ramp_time
    ph = cfg["physics"]
    up = float(particle_velocity(ps, hmx))
    us = float(shock_speed(ps, hmx))
    if gas_fraction is None:
        gas_fraction = shifted_gas_fraction(pores, ps, grid, dx, t1, hmx, cfg)
    x = (np.arange(W) + 0.5) * dx
    x_front = (us - up) * max(t1 - 0.5 * ramp, 0.0)
    w = 0.5 * (1.0 - np.tanh((x - x_front) / (front_width * dx)))  # 1 behind the front
    p_amb, T_amb = ph["ambient"]["p"], ph["ambient"]["T"]
    T = T_amb + (float(hugoniot_temperature(ps, hmx)) - T_amb) * w
    P = p_amb + (float(ps) - p_amb) * w
    floor = ph["alpha_floor"]
    mu = np.clip(1.0 - gas_fraction, floor, 1.0 - floor)
    rows = {"T": T, "P": P}
    out = np.empty((len(fields), H, W), np.float32)
    for c, name in enumerate(fields):
        if name == "mu":
            out[c] = mu
        elif name == "lam":
            out[c] = 0.0
        elif name in rows:
            lo, hi = NORM_RANGES[name]
            out[c] = ((rows[name] - lo) / (hi - lo))[None, :]
        else:
            raise ValueError(f"fields: {name!r} is not one of {list(CHANNELS)}")
    return out


def shifted_gas_fraction(pores: list[dict], ps: float, grid: tuple[int, int] = DEFAULT_GRID,
                         dx: float | None = None, t1: float | None = None,
                         hmx: dict | None = None, cfg: dict | None = None) -> np.ndarray:
    """Gas fraction (H, W) of ``pores`` moved by ``-u_p(ps) * t1`` (see module docstring)."""
    cfg = cfg or _meso_cfg()
    H, W = grid
    dx = cfg["grid"]["dx"] if dx is None else dx
    t1 = cfg["time"]["frame_dt"] if t1 is None else t1
    up = float(particle_velocity(ps, hmx))
    shifted = [dict(p, x=p["x"] - up * t1) for p in pores]
    if not shifted:
        return np.zeros((H, W))
    from closure.data import geometry

    return geometry.gas_fraction(shifted, W, H, dx)

