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

import numpy as np

from .config import (  # noqa: F401 - load_config, ConfigError, DEFAULTS: re-exported
    DEFAULTS,
    DETONATION_KEYS,
    ConfigError,
    load_config,
)
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

    def _need_history(self):
        if self.history is None:
            raise ValueError("this run did not track the lead shock: add a [detonation] "
                             "section (track = true) to the config")
        return self.history

    def cj_reference(self):
        """JWL CJ state of the model for the unreacted background state of the problem."""
        return _cj_for(self.config, self.model)

    def run_distance(self, criterion: str | None = None, fraction: float | None = None):
        """Run distance to detonation (:func:`macro.detonation.run_distance`), measured from
        the driven face x_min; criterion/fraction default to the [detonation] config."""
        from .detonation import run_distance

        h = self._need_history()
        dcfg = self.config.get("detonation", {})
        cj = self.cj_reference()
        dx = float(self.x[1] - self.x[0])
        return run_distance(h["t"], h["x"], h["p_lead"], D_cj=cj.D, p_cj=cj.p, dx=dx,
                            x_face=float(self.x[0] - 0.5 * dx),
                            criterion=criterion or dcfg.get("criterion", "speed"),
                            fraction=fraction or dcfg.get("fraction", 0.9))

    def shock_speed(self, window_cells: float = 10.0) -> np.ndarray:
        """Lead-shock speed (m/s) at each tracked step (backward least-squares window)."""
        from .detonation import shock_speed

        h = self._need_history()
        dx = float(self.x[1] - self.x[0])
        return shock_speed(h["t"], h["x"], window_cells * dx / self.cj_reference().D)

    def measure_cj(self, late_fraction: float = 0.3):
        """Sonic-point (CJ) pressure behind the final lead shock of a 1D run; the front speed
        is the least-squares slope of the last ``late_fraction`` of the trajectory."""
        from .detonation import measure_cj

        h = self._need_history()
        n = len(h["t"])
        if n < 3:
            raise ValueError("too few lead-shock samples to measure a front speed")
        if h["t"][-1] < self.t:
            raise ValueError(f"the lead shock left the domain at t={h['t'][-1]:.4g} s, before "
                             f"the end of the run (t={self.t:.4g} s): shorten [time] t_end or "
                             "lengthen the grid to measure the CJ state")
        k0 = min(int((1.0 - late_fraction) * n), n - 3)
        D = float(np.polyfit(h["t"][k0:], h["x"][k0:], 1)[0])
        f = self.fields
        if f["p"].ndim == 2:
            f = {k: v[v.shape[0] // 2] for k, v in f.items()}
        return measure_cj(self.model, self.x, f, float(h["x"][-1]), D)

    def summary(self) -> str:
        """One line on the detonation (JWL CJ reference and run distance) of a tracked run,
        "" otherwise (used by the CLI)."""
        if self.history is None:
            return ""
        try:
            cj = self.cj_reference()
        except ValueError:
            return ""
        rd = self.run_distance()
        where = (f"run distance x* = {rd.x_star * 1e3:.3f} mm at t* = {rd.t_star * 1e6:.3f} us"
                 f" (lead shock >= {self.config.get('detonation', {}).get('fraction', 0.9)}"
                 " D_CJ)" if rd.detonated else "no detonation (lead shock never reached the "
                 "run-distance criterion)")
        line = f"JWL CJ {cj.p / 1e9:.2f} GPa, {cj.D:.0f} m/s; {where}"
        counts = getattr(self.rate, "status_counts", None)
        if counts is not None and counts.sum():
            shocked = counts[0] + counts[2] + counts[3]
            line += (f"; closure cell-steps: {shocked} shocked, {counts[2]} of them outside "
                     f"its envelope (fallback), {counts[3]} other status")
        return line


def _cj_for(cfg: dict, model):
    from .materials import cj_state

    if model is None or getattr(model, "products", None) is None:
        raise ValueError("CJ reference needs a reactive euler model with a products EOS")
    bg = cfg.get("problem", {}).get("background", {})
    rho0 = float(bg.get("rho", getattr(model.eos, "rho0", np.nan)))
    p0 = float(bg.get("p", 1.0e5))
    return cj_state(model.eos, model.products, model.Q, rho0=rho0, p0=p0)


class Simulation:
    """A configured run: ``Simulation.from_config("examples/sod.toml").run(output="sod.h5")``.

    ``rate`` overrides the config's [reaction]: a built-in rate, any RateModel, or a closure
    provider (an object with ``query``), which is wrapped in :class:`macro.coupling.QueryRate`.
    """

    def __init__(self, cfg: dict, rate=None):
        self.config = cfg
        self.solver = build_solver(cfg, rate=rate)
        self.rate = self.solver.rate
        self.tracker = None
        dcfg = cfg.get("detonation")
        if dcfg is not None:
            unknown = set(dcfg) - DETONATION_KEYS
            if unknown:
                raise ValueError(f"[detonation] has unknown keys {sorted(unknown)}; allowed: "
                                 f"{sorted(DETONATION_KEYS)}")
            if dcfg.get("track", True):
                from .detonation import ShockTracker

                pf = dcfg.get("front_pressure")
                if pf is None:
                    pin = cfg.get("boundary", {}).get("piston_pressure", {}).get("x_low")
                    pf = 0.5 * pin if pin else 1.0e9
                nxt = int(dcfg.get("xt_frames", 400))
                self.tracker = ShockTracker(
                    float(pf), int(dcfg.get("lead_window_cells", 20)),
                    float(cfg["time"]["t_end"]) / max(nxt, 1))
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
            plots: bool | None = None) -> Result:
        """Run to t_end writing frames to ``output`` (HDF5 + .xmf sidecar) and PNG plots."""
        import time

        wall0 = time.perf_counter()
        s = self.solver
        tcfg = self.config["time"]
        t_end = float(tcfg["t_end"])
        n_frames = int(tcfg["n_frames"])
        frame_times = [t_end * (k + 1) / n_frames for k in range(n_frames)] if n_frames else []
        if output is not None:
            output = Path(output)
            output.parent.mkdir(parents=True, exist_ok=True)
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
        x, y = s.grid.cell_centers()
        result = None
        try:
            s.advance(t_end, frame_times=frame_times, writer=writer, progress=progress,
                      callback=self.tracker, checkpoint_path=checkpoint,
                      checkpoint_every=ckpt_every)
            fields = s.fields()
            result = Result(t=s.t, steps=s.step, x=x, y=y, fields=fields, output=output,
                            history=self.tracker.arrays() if self.tracker else None,
                            config=self.config, model=s.model, rate=s.rate)
            if writer is not None:
                writer.write_final(s.t, s.step, fields)
                if result.history is not None:
                    writer.write_group("detonation", result.history,
                                       self._detonation_attrs(result))
        finally:
            if writer is not None:
                writer.close()
        result.wall_s = time.perf_counter() - wall0
        if output is not None:
            do_plots = self.config["output"]["plots"] if plots is None else plots
            if do_plots:
                from .plotting import plot_result

                result.plots = plot_result(result, self.config, output.with_suffix(""))
                if result.history is not None:
                    result.plots += self._detonation_plots(result, output.with_suffix(""))
        return result

    def _detonation_attrs(self, result: Result) -> dict:
        attrs = {}
        try:
            cj = result.cj_reference()
        except ValueError:
            return attrs
        attrs.update(D_CJ=cj.D, p_CJ=cj.p)
        for crit in ("speed", "pressure"):
            rd = result.run_distance(criterion=crit)
            attrs[f"x_star_{crit}"] = rd.x_star
            attrs[f"t_star_{crit}"] = rd.t_star
        return attrs

    def _detonation_plots(self, result: Result, stem: Path) -> list[Path]:
        from .detonation import plot_shock_history, plot_xt

        try:
            cj = result.cj_reference()
        except ValueError:
            return []
        title = self.config.get("title", stem.name)
        rd = result.run_distance()
        dx = float(result.x[1] - result.x[0])
        out = [plot_xt(result.history, result.x, stem.with_name(stem.name + "_xt.png"),
                       title=title, run=rd)]
        if len(result.history["t"]) > 3:
            out.append(plot_shock_history(result.history,
                                          stem.with_name(stem.name + "_shock.png"),
                                          D_cj=cj.D, p_cj=cj.p, dx=dx, title=title))
        return out
