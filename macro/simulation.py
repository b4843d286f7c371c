"""Problems as data: a TOML config becomes a Solver, a run, HDF5/XDMF output and PNG plots.

Config layout (every key optional unless marked)::

    title = "..."
    [model]      type = "euler" | "five_equation"; eos = {type = "IdealGas", gamma = 1.4};
                 products = {...}; Q = 0.0 | eos1, eos2, kapila = false
    [reaction]   type = "Arrhenius" | "LeeTarver" and its parameters
    [grid]       nx (required), ny = 1, x_min = 0, x_max = 1, y_min = 0, y_max = 1
    [numerics]   cfl = 0.8, order = 2, limiter = "mc", riemann = "hllc"
    [time]       t_end (required), n_frames = 10
    [boundary]   x_low/x_high/y_low/y_high = "transmissive" | "reflective" | "periodic" |
                 "piston" | "inflow"; piston_velocity = {x_low = ...}; inflow = {x_low = {...}}
    [problem]    type = "riemann": left = {...}, right = {...}, x0 = 0.5 (1D two-state problems)
                 type = "regions": background = {...}, [[problem.regions]] with shape = "box"
                 (x = [a, b], y = [c, d]) or "circle" (center = [x, y], radius = r) and state
    [output]     plots = true, checkpoint_every = 0

States name the model's primitive fields (euler: rho, u, v, p, lam; five_equation: rho1, rho2,
alpha1, u, v, p, lam) in SI units. Cells cut by a region boundary get the area-weighted average
of the states (sub-cell sampling), which gives the diffuse interface its initial volume fraction.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .eos import eos_from_dict
from .io import GridSpec, OutputWriter
from .models import EulerModel, FiveEquationModel
from .reaction import rate_from_dict
from .solver import Solver

SUBSAMPLES = 8  # per axis, for area fractions of cut cells

DEFAULTS = {
    "numerics": {"cfl": 0.8, "order": 2, "limiter": "mc", "riemann": "hllc"},
    "time": {"n_frames": 10},
    "output": {"plots": True, "checkpoint_every": 0},
}


def load_config(source: str | Path | dict) -> dict:
    """Read a TOML file (or take a dict) and fill defaults: the resolved config."""
    if isinstance(source, dict):
        cfg = copy.deepcopy(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        with path.open("rb") as fh:
            cfg = tomllib.load(fh)
    for section, values in DEFAULTS.items():
        cfg.setdefault(section, {})
        for k, v in values.items():
            cfg[section].setdefault(k, v)
    for section, key in (("grid", "nx"), ("time", "t_end"), ("model", "type")):
        if key not in cfg.get(section, {}):
            raise ValueError(f"config [{section}] needs {key!r}")
    return cfg


def build_model(mcfg: dict):
    kind = mcfg["type"]
    if kind == "euler":
        products = mcfg.get("products")
        return EulerModel(eos_from_dict(mcfg["eos"]),
                          eos_from_dict(products) if products else None, mcfg.get("Q", 0.0))
    if kind == "five_equation":
        return FiveEquationModel(eos_from_dict(mcfg["eos1"]), eos_from_dict(mcfg["eos2"]),
                                 mcfg.get("Q", 0.0), mcfg.get("kapila", False))
    raise ValueError(f"model type={kind!r} is not one of ['euler', 'five_equation']")


def build_grid(gcfg: dict) -> GridSpec:
    nx, ny = int(gcfg["nx"]), int(gcfg.get("ny", 1))
    x0, x1 = float(gcfg.get("x_min", 0.0)), float(gcfg.get("x_max", 1.0))
    y0, y1 = float(gcfg.get("y_min", 0.0)), float(gcfg.get("y_max", 1.0))
    if nx < 4 or ny < 1 or (ny > 1 and ny < 4):
        raise ValueError(f"grid nx={nx}, ny={ny}: need nx >= 4 and ny == 1 or ny >= 4")
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"grid extent x=[{x0}, {x1}], y=[{y0}, {y1}] must be increasing")
    return GridSpec(nx=nx, ny=ny, dx=(x1 - x0) / nx, dy=(y1 - y0) / ny, x0=x0, y0=y0)


def _region_fraction(region: dict, grid: GridSpec) -> np.ndarray:
    """Area fraction of every cell covered by a region, shape (ny, nx)."""
    s = SUBSAMPLES
    offs = (np.arange(s) + 0.5) / s
    xs = grid.x0 + (np.arange(grid.nx)[:, None] + offs[None, :]).ravel() * grid.dx
    if grid.ny == 1:
        ys = np.array([grid.y0 + 0.5 * grid.dy])
        sy = 1
    else:
        ys = grid.y0 + (np.arange(grid.ny)[:, None] + offs[None, :]).ravel() * grid.dy
        sy = s
    X, Y = np.meshgrid(xs, ys)
    shape = region.get("shape", "box")
    if shape == "box":
        xa, xb = region.get("x", [-np.inf, np.inf])
        ya, yb = region.get("y", [-np.inf, np.inf])
        inside = (X >= xa) & (X < xb) & (Y >= ya) & (Y < yb)
    elif shape == "circle":
        cx, cy = region["center"]
        inside = (X - cx) ** 2 + (Y - cy) ** 2 < region["radius"] ** 2
    else:
        raise ValueError(f"region shape={shape!r} is not one of ['box', 'circle']")
    frac = inside.reshape(grid.ny, sy, grid.nx, s).mean(axis=(1, 3))
    return frac


def initial_primitives(cfg: dict, model, grid: GridSpec) -> dict[str, np.ndarray]:
    pcfg = cfg.get("problem", {})
    kind = pcfg.get("type", "regions")
    if kind == "riemann":
        x0 = float(pcfg.get("x0", 0.5 * (grid.x0 + grid.x0 + grid.nx * grid.dx)))
        background = pcfg["right"]
        regions = [{"shape": "box", "x": [-np.inf, x0], "state": pcfg["left"]}]
    elif kind == "regions":
        background = pcfg.get("background")
        if background is None:
            raise ValueError("config [problem] of type 'regions' needs a background state")
        regions = pcfg.get("regions", [])
    else:
        raise ValueError(f"problem type={kind!r} is not one of ['riemann', 'regions']")
    names = model.primitive_names
    for st in (background, *(r["state"] for r in regions)):
        unknown = set(st) - set(names)
        if unknown:
            raise ValueError(f"state keys {sorted(unknown)} are not fields of this model "
                             f"({list(names)})")
    prim = {n: np.full((grid.ny, grid.nx), float(background.get(n, 0.0))) for n in names}
    for region in regions:
        frac = _region_fraction(region, grid)
        for n in names:
            v = float(region["state"].get(n, 0.0))
            prim[n] = (1.0 - frac) * prim[n] + frac * v
    return prim


def build_solver(cfg: dict, rate=None, last_good_path=None) -> Solver:
    model = build_model(cfg["model"])
    grid = build_grid(cfg["grid"])
    prim = initial_primitives(cfg, model, grid)
    if rate is None and "reaction" in cfg:
        rate = rate_from_dict(cfg["reaction"])
    b = cfg.get("boundary", {})
    sides = {k: v for k, v in b.items() if k in ("x_low", "x_high", "y_low", "y_high")}
    num = cfg["numerics"]
    return Solver(model, grid, model.conserved(prim), bc=sides,
                  piston_velocity=b.get("piston_velocity"), inflow=b.get("inflow"),
                  cfl=num["cfl"], order=num["order"], limiter=num["limiter"],
                  riemann=num["riemann"], rate=rate, config=cfg,
                  last_good_path=last_good_path)


@dataclass
class Result:
    """Fields at the end of a run (1D arrays in 1D, (ny, nx) in 2D) plus where output went."""

    t: float
    steps: int
    x: np.ndarray
    y: np.ndarray
    fields: dict[str, np.ndarray]
    output: Path | None = None
    plots: list[Path] = field(default_factory=list)

    def __getattr__(self, name):
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)


class Simulation:
    """A configured run: ``Simulation.from_config("examples/sod.toml").run(output="sod.h5")``."""

    def __init__(self, cfg: dict, rate=None):
        self.config = cfg
        self.rate = rate
        self.solver = build_solver(cfg, rate=rate)

    @classmethod
    def from_config(cls, source: str | Path | dict, rate=None, **overrides) -> Simulation:
        cfg = load_config(source)
        for dotted, value in overrides.items():
            section, key = dotted.split("__", 1) if "__" in dotted else ("time", dotted)
            cfg.setdefault(section, {})[key] = value
        return cls(cfg, rate=rate)

    def run(self, output: str | Path | None = None, *, progress: bool = False,
            restart: str | Path | None = None, checkpoint: str | Path | None = None,
            plots: bool | None = None) -> Result:
        """Run to t_end writing frames to ``output`` (HDF5 + .xmf sidecar) and PNG plots."""
        s = self.solver
        tcfg = self.config["time"]
        t_end = float(tcfg["t_end"])
        n_frames = int(tcfg["n_frames"])
        frame_times = [t_end * (k + 1) / n_frames for k in range(n_frames)] if n_frames else []
        if output is not None:
            output = Path(output)
            s.last_good_path = output.with_name(output.stem + "_last_good.h5")
        if restart is not None:
            s.load_state(restart)
        writer = None
        if output is not None:
            writer = OutputWriter(output, s.grid, self.config,
                                  mode="a" if restart is not None and output.exists() else "w")
            if restart is None:
                writer.write_frame(s.t, s.step, s.fields())
        ckpt_every = int(self.config["output"].get("checkpoint_every", 0))
        if checkpoint is None and output is not None and ckpt_every:
            checkpoint = output.with_name(output.stem + "_checkpoint.h5")
        try:
            s.advance(t_end, frame_times=frame_times, writer=writer, progress=progress,
                      checkpoint_path=checkpoint, checkpoint_every=ckpt_every)
            fields = s.fields()
            if writer is not None:
                writer.write_final(s.t, s.step, fields)
        finally:
            if writer is not None:
                writer.close()
        x, y = s.grid.cell_centers()
        result = Result(t=s.t, steps=s.step, x=x, y=y, fields=fields, output=output)
        if output is not None:
            do_plots = self.config["output"]["plots"] if plots is None else plots
            if do_plots:
                from .plotting import plot_result

                result.plots = plot_result(result, self.config, output.with_suffix(""))
        return result
