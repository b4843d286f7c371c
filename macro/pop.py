"""Pop plots: run distance to detonation against input pressure, one 1D SDT run per pressure.

The driver sits above :mod:`macro.simulation`: it takes a shock-to-detonation config (a 1D
piston-driven problem with a ``[detonation]`` section), and for each input pressure P sets

* the piston pressure (``[boundary] piston_pressure.x_low = P``),
* the domain length ``L = max(length_factor * x*_exp(P), min_length)`` from the experimental
  Pop-plot line of :mod:`macro.materials` (so a transition at up to ``length_factor - 1`` times
  the experimental run distance still leaves a steady detonation to fit),
* the cell size ``dx(P) = min(dx, x*_exp(P) / cells_per_run)``: at most ``dx``, and at least
  ``cells_per_run`` cells over the experimental run distance (high pressures run short
  distances and need finer cells for the same relative accuracy),
* ``nx = L / dx(P)`` and ``t_end = time_factor * L / Us(P)`` (Us the inert shock speed, the
  slowest the lead shock can run),

all from the config's ``[pop]`` section (``dx``, ``cells_per_run``, ``length_factor``,
``min_length``, ``time_factor``); an explicit ``dx`` argument replaces the rule (convergence
studies). Each run reports x* by the wedge-test construction (the Pop plot's) and by
the speed criterion (:mod:`macro.detonation`). A run whose lead shock never becomes a
detonation inside its domain is reported as not detonated; :func:`require_detonated` turns
that into an error naming the pressure and the setting to change.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .materials import POP_PBX9501, pop_plot_run_distance  # noqa: F401 (re-exported)

__all__ = [
    "POP_DEFAULTS",
    "PopPoint",
    "pressure_config",
    "run_pressure",
    "pop_sweep",
    "fit_pop",
    "require_detonated",
    "pop_document",
    "parse_pressures",
]

#: [pop] keys and defaults: largest cell size (m), cells over the experimental x*, domain
#: length over the experimental x*, shortest domain (m), end time over the inert shock's
#: transit time.
POP_DEFAULTS = {"dx": 15.0e-6, "cells_per_run": 150.0, "length_factor": 2.5,
                "min_length": 3.0e-3, "time_factor": 1.0}


@dataclass(frozen=True)
class PopPoint:
    """One Pop-plot run (SI): input pressure, run distance and time by the wedge construction
    (NaN when not detonated), by the speed criterion, the domain and cell size used."""

    pressure: float
    x_star: float
    t_star: float
    detonated: bool
    x_star_speed: float
    t_star_speed: float
    length: float
    dx: float
    wall_s: float

    @property
    def exp_x_star(self) -> float:
        """Run distance (m) of the experimental Pop-plot line at this pressure."""
        return float(pop_plot_run_distance(self.pressure / 1e9)) * 1e-3


def parse_pressures(text: str) -> list[float]:
    """``"3,4,5"`` (GPa) -> [3e9, 4e9, 5e9] Pa; rejects non-numbers, NaN and P <= 0."""
    out = []
    for k, item in enumerate(text.split(",")):
        try:
            v = float(item)
        except ValueError:
            raise ValueError(f"--pressures item {k} = {item.strip()!r} is not a number "
                             "(give GPa, comma separated, e.g. 3,4,5)") from None
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"--pressures item {k} = {item.strip()!r}: input pressures must "
                             "be finite and > 0 GPa")
        out.append(v * 1e9)
    return out


def _pop_options(cfg: dict) -> dict:
    opts = {**POP_DEFAULTS, **cfg.get("pop", {})}
    unknown = set(opts) - set(POP_DEFAULTS)
    if unknown:
        raise ValueError(f"[pop] has unknown keys {sorted(unknown)}; allowed: "
                         f"{sorted(POP_DEFAULTS)}")
    for key in POP_DEFAULTS:
        v = opts[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or not (np.isfinite(v)
                                                                        and v > 0):
            raise ValueError(f"[pop] {key}={v!r} must be a finite number > 0")
    if opts["length_factor"] <= 1.0:
        raise ValueError(f"[pop] length_factor={opts['length_factor']!r} must be > 1 "
                         "(the domain must hold the transition and some detonation run)")
    return opts


def pressure_config(config, pressure: float, *, dx: float | None = None) -> dict:
    """The resolved config of the run at ``pressure`` (Pa): piston, domain, grid, end time."""
    from .config import load_config
    from .materials import piston_velocity_for, shock_state
    from .problem import build_model

    if not (np.isfinite(pressure) and pressure > 0):
        raise ValueError(f"pressure={pressure!r} must be finite and > 0 Pa")
    cfg = copy.deepcopy(load_config(config))
    if "detonation" not in cfg:
        raise ValueError("a Pop-plot config needs a [detonation] section (shock tracking)")
    if int(cfg["grid"].get("ny", 1)) != 1:
        raise ValueError("Pop-plot runs are 1D: [grid] ny must be 1")
    opts = _pop_options(cfg)
    x_exp = pressure_length(pressure)
    if dx is None:
        dx = min(opts["dx"], x_exp / opts["cells_per_run"])
    elif not (np.isfinite(dx) and dx > 0):
        raise ValueError(f"dx={dx!r} must be finite and > 0 m")
    length = max(opts["length_factor"] * x_exp, opts["min_length"])
    nx = int(np.ceil(length / dx))
    length = nx * dx
    eos = build_model(cfg["model"]).eos
    _, us = shock_state(piston_velocity_for(pressure, eos), eos)
    x0 = float(cfg["grid"].get("x_min", 0.0))
    cfg["grid"].update(nx=nx, x_min=x0, x_max=x0 + length)
    cfg["time"]["t_end"] = opts["time_factor"] * length / us
    cfg["time"]["n_frames"] = 0
    b = cfg.setdefault("boundary", {})
    b["x_low"] = "piston"
    b.setdefault("piston_pressure", {})["x_low"] = float(pressure)
    b.get("piston_velocity", {}).pop("x_low", None)
    cfg.setdefault("output", {})["plots"] = False
    cfg["pop"] = {**opts, "dx": float(dx)}
    return cfg


def pressure_length(pressure: float) -> float:
    """Experimental run distance (m) at ``pressure`` (Pa) from the Pop-plot line."""
    return float(pop_plot_run_distance(pressure / 1e9)) * 1e-3


def run_pressure(config, pressure: float, *, dx: float | None = None, rate=None) -> PopPoint:
    """Run the SDT problem of ``config`` at ``pressure`` (Pa) and measure x*."""
    from .simulation import Simulation

    cfg = pressure_config(config, pressure, dx=dx)
    t0 = time.perf_counter()
    res = Simulation.from_config(cfg, rate=rate).run(None, plots=False)
    wedge = res.run_distance(criterion="wedge")
    speed = res.run_distance(criterion="speed")
    return PopPoint(float(pressure), wedge.x_star, wedge.t_star, wedge.detonated,
                    speed.x_star, speed.t_star, float(cfg["grid"]["x_max"]
                                                      - cfg["grid"]["x_min"]),
                    float(cfg["pop"]["dx"]), time.perf_counter() - t0)


def _run_one(args) -> PopPoint:
    config, pressure, dx = args
    return run_pressure(config, pressure, dx=dx)


def _one_thread() -> None:
    """Pool workers run one Numba thread each: the pool is the parallelism."""
    import numba

    numba.set_num_threads(1)


def pop_sweep(config, pressures: Sequence[float], *, dx: float | None = None,
              workers: int = 1, progress: bool = False,
              rate_factory: Callable[[], object] | None = None) -> list[PopPoint]:
    """One run per input pressure (Pa), in ``workers`` processes (a ``rate_factory`` gives each
    run a fresh rate provider and runs serially: providers hold per-run cell state)."""
    from .config import load_config

    cfg = load_config(config)
    pressures = [float(p) for p in pressures]
    for k, p in enumerate(pressures):
        if not (np.isfinite(p) and p > 0):
            raise ValueError(f"pressures[{k}] = {p!r} must be finite and > 0 Pa")
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"workers={workers!r} must be an integer >= 1")
    for p in pressures:  # fail before any run on a bad setting
        pressure_config(cfg, p, dx=dx)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pressures), desc="pop plot", unit="run")
    out: list[PopPoint] = []
    try:
        if rate_factory is not None or workers == 1 or len(pressures) == 1:
            for p in pressures:
                rate = rate_factory() if rate_factory is not None else None
                out.append(run_pressure(cfg, p, dx=dx, rate=rate))
                if bar is not None:
                    bar.update()
        else:
            # largest domains first, so the pool ends with short runs
            order = sorted(range(len(pressures)), key=lambda k: pressures[k])
            res: dict[int, PopPoint] = {}
            with ProcessPoolExecutor(max_workers=min(workers, len(pressures)),
                                     initializer=_one_thread) as ex:
                futs = {ex.submit(_run_one, (cfg, pressures[k], dx)): k for k in order}
                from concurrent.futures import as_completed

                for f in as_completed(futs):
                    res[futs[f]] = f.result()
                    if bar is not None:
                        bar.update()
            out = [res[k] for k in range(len(pressures))]
    finally:
        if bar is not None:
            bar.close()
    return out


def require_detonated(points: Sequence[PopPoint]) -> None:
    """Raise naming every pressure whose run did not reach a measurable detonation."""
    bad = [p for p in points if not p.detonated]
    if bad:
        lst = ", ".join(f"{p.pressure / 1e9:g} GPa (domain {p.length * 1e3:.2f} mm)"
                        for p in bad)
        raise RuntimeError(f"no detonation with a steady run to fit at {lst}: the transition "
                           "does not fit the domain; raise [pop] length_factor (and "
                           "time_factor) or check the rate")


def fit_pop(points: Sequence[PopPoint]) -> dict[str, float]:
    """Least-squares Pop line ``log10(P/GPa) = a - b log10(x*/mm)`` through detonated points
    (NaN with fewer than 2)."""
    det = [p for p in points if p.detonated]
    if len(det) < 2:
        return {"a": float("nan"), "b": float("nan")}
    slope, a = np.polyfit(np.log10([p.x_star * 1e3 for p in det]),
                          np.log10([p.pressure / 1e9 for p in det]), 1)
    return {"a": float(a), "b": float(-slope)}


def pop_document(points: Sequence[PopPoint], extra: dict | None = None) -> dict:
    """JSON document: points (GPa, mm, us), the fit and the experimental line."""
    pts = []
    for p in points:
        d = {"pressure_GPa": p.pressure / 1e9, "x_star_mm": p.x_star * 1e3,
             "t_star_us": p.t_star * 1e6, "exp_x_star_mm": p.exp_x_star * 1e3,
             "ratio": (p.x_star / p.exp_x_star) if p.detonated else float("nan"),
             "x_star_speed_mm": p.x_star_speed * 1e3, "t_star_speed_us": p.t_star_speed * 1e6,
             "detonated": p.detonated, "length_mm": p.length * 1e3, "dx_um": p.dx * 1e6,
             "wall_s": p.wall_s}
        pts.append({k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                    for k, v in d.items()})
    doc = {"points": pts, "fit": fit_pop(points),
           "experiment": {"a": POP_PBX9501["a"], "b": POP_PBX9501["b"],
                          "source": "PBX 9501 at 1.844 g/cc, Gibbs & Popolato (1980) p. 115 "
                                    "(LANL EOSlib HOM.data)"},
           "x_star_definition": "wedge-test construction (macro.detonation."
                                "wedge_run_distance)"}
    doc.update(extra or {})
    return doc


def write_json(doc: dict, path: str | Path) -> Path:
    from .io import atomic_write_bytes

    path = Path(path)
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())
    return path


def __getattr__(name: str):
    """The Pop plot moved to :mod:`macro.plotting` (imported on demand: the sweep's worker
    processes do not load matplotlib)."""
    if name == "plot_pop":
        from .plotting import plot_pop

        return plot_pop
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
