"""Problems as data: a TOML config becomes a Solver, a run, HDF5/XDMF output and PNG plots.

Config layout (every key optional unless marked; :data:`macro.config.SCHEMA` holds the exact
keys, types and ranges, and :func:`load_config` rejects anything else)::

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
    [detonation] track = true, front_pressure (Pa), lead_window_cells = 20, criterion = "speed",
                 fraction = 0.9, xt_frames = 400 (shock tracking, run distance, x-t diagram)

Material presets (:mod:`macro.materials`): ``[model] material = "PBX9501"`` fills ``eos`` (unreacted
Mie-Grueneisen), ``products`` (JWL) and ``Q``; ``[reaction] type = "LeeTarver", material =
"PBX9501"`` fills the Lee-Tarver parameters. Explicit keys override the preset. ``[boundary]
piston_pressure = {x_low = 5e9}`` (Pa) sets the piston velocity that drives a shock of that
pressure into the unreacted material at rest (Mie-Grueneisen Us-up Hugoniot).

Closure coupling: ``[reaction] type = "closure", provider = "package.module:factory"`` names an
importable callable (``module:attr`` with dotted attributes, e.g. ``"closure:Closure.load"``)
that is called with ``provider_args = {...}`` and must return an object with a ``query`` method;
``mode`` ("table"), ``deterministic`` (true), ``seed`` (0), ``growth`` (Lee-Tarver growth
parameters or "PBX9501"), ``ignition_scale`` (1.0), ``ignition_max`` (1.0), ``shock_gate`` (true),
``gate_pressure`` (0.5e9 Pa) and ``rise_tol`` (0.01) configure
:class:`macro.coupling.QueryRate`. A provider object passed as ``rate=`` from Python replaces
the factory (the other keys still apply). ``macro`` never imports the closure itself.

States name the model's primitive fields (euler: rho, u, v, p, lam; five_equation: rho1, rho2,
alpha1, u, v, p, lam) in SI units. Cells cut by a region boundary get the area-weighted average
of the states (sub-cell sampling), which gives the diffuse interface its initial volume fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import detonation
from .config import (  # noqa: F401 - load_config, ConfigError, DEFAULTS: re-exported
    DEFAULTS,
    ConfigError,
    load_config,
)
from .domain import Domain
from .io import OutputWriter
from .problem import (  # noqa: F401 - the builders lived here: re-exported
    build_grid,
    build_model,
    build_rate,
    build_solver,
    initial_primitives,
    resolve_factory,
    resolve_piston_pressure,
)

if TYPE_CHECKING:
    from .materials import CJState


@dataclass
class Result:
    """Fields at the end of a run (1D arrays in 1D, (ny, nx) in 2D) plus where output went.

    Runs with shock tracking (a [detonation] section) also carry ``history`` (lead-shock
    trajectory and x-t record, see :class:`macro.detonation.ShockTracker`) and offer
    :meth:`run_distance`, :meth:`cj_reference` and :meth:`measure_cj`.
    """

    t: float
    steps: int
    x: np.ndarray
    y: np.ndarray
    fields: dict[str, np.ndarray]
    output: Path | None = None
    plots: list[Path] = field(default_factory=list)
    history: dict | None = None
    config: dict | None = None
    model: object | None = None
    rate: object | None = None
    wall_s: float = float("nan")

    def __getattr__(self, name):
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def cj_reference(self) -> CJState:
        """JWL CJ state of the model for the unreacted background state of the problem."""
        return detonation.cj_reference(self.config, self.model)

    def run_distance(self, criterion: str | None = None,
                     fraction: float | None = None) -> detonation.RunDistance:
        """Run distance to detonation (:func:`macro.detonation.run_distance`), measured from
        the driven face x_min; criterion/fraction default to the [detonation] config."""
        return detonation.result_run_distance(self, criterion, fraction)

    def shock_speed(self, window_cells: float = 10.0) -> np.ndarray:
        """Lead-shock speed (m/s) at each tracked step (backward least-squares window)."""
        return detonation.result_shock_speed(self, window_cells)

    def measure_cj(self, late_fraction: float = 0.3) -> detonation.CJMeasurement:
        """Sonic-point (CJ) pressure behind the final lead shock of a 1D run; the front speed
        is the least-squares slope of the last ``late_fraction`` of the trajectory."""
        return detonation.result_measure_cj(self, late_fraction)

    def summary(self) -> str:
        """One line on the detonation (JWL CJ reference and run distance) of a tracked run,
        "" otherwise (used by the CLI)."""
        return detonation.run_summary(self)


class Simulation:
    """A configured run: ``Simulation.from_config("examples/sod.toml").run(output="sod.h5")``.

    ``rate`` overrides the config's [reaction]: a built-in rate, any RateModel, or a closure
    provider (an object with ``query``), which is wrapped in :class:`macro.coupling.QueryRate`.
    ``domain`` places the cells (default: all in this process; a decomposed run passes its
    :class:`macro.parallel.DistributedDomain`, and :meth:`run` is then called on every solver
    rank: :func:`macro.parallel.run_distributed` does that).
    """

    def __init__(self, cfg: dict, rate=None, domain: Domain | None = None):
        self.config = cfg
        self.solver = build_solver(cfg, rate=rate, domain=domain)
        self.rate = self.solver.rate
        self.tracker = detonation.tracker_from_config(cfg)
        if self.tracker is not None:
            self.solver.extra_state["shock_tracker"] = self.tracker

    @classmethod
    def from_config(cls, source: str | Path | dict, rate=None, **overrides) -> Simulation:
        cfg = load_config(source)
        if overrides:
            for dotted, value in overrides.items():
                section, key = dotted.split("__", 1) if "__" in dotted else ("time", dotted)
                cfg.setdefault(section, {})[key] = value
            cfg = load_config(cfg)  # the overrides are validated too
        return cls(cfg, rate=rate)

    def run(self, output: str | Path | None = None, *, progress: bool = False,
            restart: str | Path | None = None, checkpoint: str | Path | None = None,
            plots: bool | None = None, max_steps: int | None = None) -> Result:
        """Run to t_end (or ``max_steps``) writing frames to ``output`` (HDF5 + .xmf sidecar)
        and PNG plots. In a decomposed run the root rank writes; the other ranks' Result has
        no fields and no history."""
        import time

        wall0 = time.perf_counter()
        s = self.solver
        dom = s.domain
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
            def open_writer() -> OutputWriter:
                output.parent.mkdir(parents=True, exist_ok=True)
                return OutputWriter(output, dom.grid, self.config,
                                    mode="a" if restart is not None and output.exists() else "w")

            writer = dom.on_root(open_writer, f"could not open {output}")
        dom.agree()
        ckpt_every = int(self.config["output"].get("checkpoint_every", 0))
        if checkpoint is None and output is not None and ckpt_every:
            checkpoint = output.with_name(output.stem + "_checkpoint.h5")
        x, y = dom.grid.cell_centers()
        result = None
        try:
            if restart is None:
                dom.write_frame(s, writer)
            s.advance(t_end, frame_times=frame_times, writer=writer, progress=progress,
                      callback=self.tracker, checkpoint_path=checkpoint,
                      checkpoint_every=ckpt_every, max_steps=max_steps)
            fields = dom.gather_fields(s)
            history = self.tracker.arrays() if self.tracker and dom.is_root else None
            result = Result(t=s.t, steps=s.step, x=x, y=y, fields=fields or {}, output=output,
                            history=history, config=self.config, model=s.model, rate=s.rate)
            if writer is not None:
                writer.write_final(s.t, s.step, fields)
                if result.history is not None:
                    writer.write_group("detonation", result.history,
                                       detonation.run_attrs(result))
        finally:
            if writer is not None:
                writer.close()
        result.wall_s = time.perf_counter() - wall0
        if output is not None and dom.is_root:
            do_plots = self.config["output"]["plots"] if plots is None else plots
            if do_plots:
                from .plotting import plot_detonation, plot_result

                result.plots = plot_result(result, self.config, output.with_suffix(""))
                if result.history is not None:
                    result.plots += plot_detonation(result, output.with_suffix(""))
        return result
