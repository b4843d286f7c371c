"""The Solver owns the state and the time loop: stepping, reaction splitting, guard, output."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numba as nb
import numpy as np
from tqdm.auto import tqdm

from .boundary import INFLOW, NG, PISTON, bc_code, check_periodic_pairs
from .grid import GridSpec
from .io import (
    OutputWriter,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)
from .limiters import limiter_code
from .reaction import NONE, RATE_PARAMS, RateModel
from .riemann import riemann_code

SIDES = ("x_low", "x_high", "y_low", "y_high")
RATE_STATE = "rate_state"  # checkpoint array prefix of a stateful rate model's state_dict()


TIME_UNITS = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9))


def time_unit(t_end: float) -> tuple[str, float]:
    """The run's natural time unit and its length in seconds: the largest of s, ms, us, ns in
    which ``t_end`` is at least 1 (so between 1 and 1000 of it unless beyond the ends; s for 0)."""
    for name, seconds in TIME_UNITS:
        if abs(t_end) >= seconds:
            return name, seconds
    return TIME_UNITS[-1] if t_end else TIME_UNITS[0]


def time_bar(t: float, t_end: float, *, disable: bool = False, **kwargs) -> tqdm:
    """Progress bar over simulated time in the run's unit (``t = 0.34/1.30 us``), so that its
    rate (us/s or s/us) and ETA read naturally; advance it with ``bar.update(dt / bar.seconds)``.
    """
    unit, seconds = time_unit(t_end)
    total = t_end / seconds
    digits = max(0, 2 - math.floor(math.log10(total))) if total > 0 else 2  # 3 significant
    bar = tqdm(total=total, initial=t / seconds, unit=unit, disable=disable,
               desc=kwargs.pop("desc", "simulating"), leave=kwargs.pop("leave", False),
               bar_format=(f"{{desc}}: {{percentage:3.0f}}%|{{bar}}| t = {{n:.{digits}f}}/"
                           f"{{total:.{digits}f}} {unit} [{{elapsed}}<{{remaining}}, "
                           "{rate_fmt}]"), **kwargs)
    bar.seconds = seconds
    return bar


class NonPhysicalStateError(RuntimeError):
    """Raised when a cell's density, pressure, energy or sound speed goes non-physical or NaN.

    Attributes: ``variable``, ``cell`` (interior index: (i,) in 1D, (i, j) in 2D), ``step``,
    ``time``, ``last_good_state`` (conserved state before the failing step, ghosts included) and
    ``last_good_path`` (the checkpoint it was written to, when the solver has one).
    """

    def __init__(self, variable: str, cell: tuple, step: int, time: float,
                 last_good_path: Path | None, last_good_state: np.ndarray | None = None):
        self.variable, self.cell, self.step, self.time = variable, cell, step, time
        self.last_good_path = last_good_path
        self.last_good_state = last_good_state
        where = f"; last good state written to {last_good_path}" if last_good_path else ""
        super().__init__(f"non-physical {variable} in cell {cell} at step {step}, t={time:.6e} s"
                         f"{where}")


class Solver:
    """Finite-volume solver on a uniform 1D (ny == 1) or 2D grid.

    ``U`` is the conserved state (nv, ny, nx) without ghosts. ``bc`` maps side names
    (x_low, x_high, y_low, y_high) to boundary kinds; ``piston_velocity`` gives the wall's normal
    velocity (m/s, positive along +x/+y) per piston side; ``inflow`` a primitive state per inflow
    side. ``rate`` is a built-in rate (Arrhenius, LeeTarver) or any :class:`RateModel`.
    """

    def __init__(self, model, grid: GridSpec, U: np.ndarray, *, bc: dict | None = None,
                 piston_velocity: dict | None = None, inflow: dict | None = None,
                 cfl: float = 0.8, order: int = 2, limiter: str = "mc", riemann: str = "hllc",
                 rate=None, t: float = 0.0, step: int = 0, config: dict | None = None,
                 last_good_path: str | Path | None = None):
        self.model, self.grid = model, grid
        if not (0.0 < cfl <= 1.0):
            raise ValueError(f"cfl={cfl!r} must be in (0, 1]")
        if order not in (2, 3):
            raise ValueError(f"order={order!r} must be 2 (SSP-RK2) or 3 (SSP-RK3)")
        self.cfl, self.order = float(cfl), int(order)
        self.limiter, self.lim = limiter, limiter_code(limiter)
        self.riemann, self.solver_code = riemann, riemann_code(riemann)
        self.config = config or {}
        self.last_good_path = Path(last_good_path) if last_good_path else None
        ny, nx = grid.ny, grid.nx
        expected = (model.nv, ny, nx)
        if U.shape != expected:
            raise ValueError(f"U has shape {U.shape}, expected {expected}")
        NY = ny + 2 * NG if ny > 1 else 1
        NX = nx + 2 * NG
        self._js = slice(NG, NG + ny) if ny > 1 else slice(0, 1)
        self._is = slice(NG, NG + nx)
        self.U = np.zeros((model.nv, NY, NX))
        self.U[:, self._js, self._is] = U
        self._pad_ghosts()
        self._U0 = np.empty_like(self.U)
        self._W = np.zeros((model.nw, NY, NX))
        self._dU = np.zeros_like(self.U)
        self._rowstat = np.zeros((NY, 3))
        self._scratch, self._scratch_threads = None, 0  # the step kernel's, per thread count
        # ids of the interior cells (C order) given to a Python rate model; a decomposed run
        # replaces them with the cells' global ids so a closure keyed by id sees the same cells
        self.cell_ids = np.arange(nx * ny, dtype=np.int64)
        # diagnostics that must survive a restart (name -> object with state_dict and
        # load_state_dict, e.g. a lead-shock tracker); stored in checkpoints beside U
        self.extra_state: dict = {}
        self._setup_boundaries(bc or {}, piston_velocity or {}, inflow or {})
        self._set_rate(rate)
        self.t, self.step = float(t), int(step)

    def _pad_ghosts(self) -> None:
        """Copy edge cells into the ghost layers so diagnostics on the full array (fields()
        before the first step) never see zero density; the stepper refills them every stage."""
        U = self.U
        U[:, :, :NG] = U[:, :, NG:NG + 1]
        U[:, :, -NG:] = U[:, :, -NG - 1:-NG]
        if self.grid.ny > 1:
            U[:, :NG, :] = U[:, NG:NG + 1, :]
            U[:, -NG:, :] = U[:, -NG - 1:-NG, :]

    # -- configuration --------------------------------------------------------------------
    def _setup_boundaries(self, bc, piston_velocity, inflow):
        for key in (*bc, *piston_velocity, *inflow):
            if key not in SIDES:
                raise ValueError(f"boundary side {key!r} is not one of {SIDES}")
        codes = np.array([bc_code(bc.get(s, "transmissive"), s) for s in SIDES], dtype=np.int64)
        check_periodic_pairs(codes)
        self.bc = {s: bc.get(s, "transmissive") for s in SIDES}
        self._codes = codes
        self._uwall = np.zeros(4)
        self._inflow = np.zeros((4, self.model.nv))
        for k, s in enumerate(SIDES):
            if codes[k] == PISTON:
                if s not in piston_velocity:
                    raise ValueError(f"piston boundary on {s} needs piston_velocity[{s!r}]")
                self._uwall[k] = float(piston_velocity[s])
            if codes[k] == INFLOW:
                if s not in inflow:
                    raise ValueError(f"inflow boundary on {s} needs inflow[{s!r}] (a state)")
                state = {n: np.full((1, 1), float(v)) for n, v in inflow[s].items()}
                self._inflow[k] = self.model.conserved(state)[:, 0, 0]

    def set_inflow(self, side: str, state: dict) -> None:
        """Change the ghost state of an inflow side between steps (e.g. a loading ramp).

        ``state`` holds the model's primitive variables (as for the ``inflow`` argument).
        """
        if side not in SIDES:
            raise ValueError(f"side={side!r} is not one of {SIDES}")
        k = SIDES.index(side)
        if self._codes[k] != INFLOW:
            raise ValueError(f"side {side!r} has boundary {self.bc[side]!r}, not 'inflow'")
        prim = {n: np.full((1, 1), float(v)) for n, v in state.items()}
        U = self.model.conserved(prim)[:, 0, 0]
        if not np.all(np.isfinite(U)):
            raise ValueError(f"inflow state for {side!r} is not finite: {state!r}")
        self._inflow[k] = U

    def _set_rate(self, rate):
        self.rate = rate
        self._rate_kind, self._rate_params, self._rate_py = NONE, np.zeros(RATE_PARAMS), None
        if rate is None:
            return
        if not self.model.reactive:
            raise ValueError("a rate model needs a reactive model (give products EOS or Q)")
        if hasattr(rate, "pack"):
            self._rate_kind, self._rate_params = rate.pack()
        elif isinstance(rate, RateModel):
            self._rate_py = rate
        else:
            raise TypeError(f"rate={rate!r} is neither a built-in rate nor has a rate() method")

    # -- state access ---------------------------------------------------------------------
    @property
    def interior(self) -> np.ndarray:
        """View of the conserved state without ghosts, shape (nv, ny, nx)."""
        return self.U[:, self._js, self._is]

    def fields(self) -> dict[str, np.ndarray]:
        """Primitive output fields (rho, u, v, p, T, ... ) on interior cells, 1D arrays in 1D."""
        diag = self.model.diagnostics(self.U)[:, self._js, self._is]
        out = {}
        for k, name in enumerate(self.model.output_names):
            a = np.ascontiguousarray(diag[k])
            out[name] = a[0] if self.grid.ny == 1 else a
        return out

    def totals(self) -> np.ndarray:
        """Domain integrals of every conserved variable (cell volume included)."""
        vol = self.grid.dx * (self.grid.dy if self.grid.ny > 1 else 1.0)
        return self.interior.sum(axis=(1, 2)) * vol

    # -- stepping -------------------------------------------------------------------------
    def step_once(self, dt_max: float) -> float:
        """One hydro step (at most dt_max) followed by the reaction step; returns dt."""
        m, g = self.model, self.grid
        nt = nb.get_num_threads()
        if nt != self._scratch_threads:  # Numba's thread count changed (or the first step)
            self._scratch, self._scratch_threads = m.scratch(nt, self.U.shape), nt
        status, bj, bi, dt = m.step(
            self.U, self._U0, self._W, self._dU, self._scratch, self.solver_code, self.lim,
            self.order, self.cfl, dt_max, g.dx, g.dy, self._codes, self._uwall, self._inflow,
            self._rowstat)
        if status != 0:
            self._fail(m.guard_names.get(status, f"status {status}"), bj, bi, restore=True)
        if self._rate_kind != NONE:
            self.model.react(self.U, self._rate_kind, self._rate_params, dt)
        elif self._rate_py is not None:
            self._python_rate(dt)
        self.step += 1
        return dt

    def _python_rate(self, dt: float) -> None:
        f = self.fields()
        lam = f["lam"].ravel()
        r = self._rate_py.rate(cell_ids=self.cell_ids,
                               pressure=f["p"].ravel(), density=f["rho"].ravel(),
                               temperature=f["T"].ravel(), lam=lam, dt=dt)
        r = np.asarray(r, dtype=float)
        if r.shape != lam.shape:
            raise ValueError(f"rate model returned shape {r.shape}, expected {lam.shape}")
        bad = ~np.isfinite(r) | (r < 0.0)
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(f"rate model returned rate[{k}] = {r[k]!r}; rates must be finite "
                             "and >= 0 (1/s)")
        new = np.minimum(lam + r * dt, 1.0)  # the reaction completes at lambda = 1
        mass = self.interior[self.model.mass_index]
        self.interior[self.model.lam_index] = mass * new.reshape(mass.shape)

    def _fail(self, variable: str, bj: int, bi: int, restore: bool):
        if restore:
            self.U[:] = self._U0
        i = bi - NG
        cell = (i,) if self.grid.ny == 1 else (i, bj - NG)
        path = None
        if self.last_good_path is not None:
            path = self.last_good_path
            self.save_checkpoint(path)
        raise NonPhysicalStateError(variable, cell, self.step, self.t, path, self.U.copy())

    def check_state(self) -> None:
        """Guard the current state (used for initial data and after external edits)."""
        m = self.model
        status, bj, bi, _ = m.guard(self.U, self._W, self.grid.dx, self.grid.dy, self._rowstat)
        if status != 0:
            self._fail(m.guard_names.get(status, f"status {status}"), bj, bi, restore=False)

    def advance(self, t_end: float, *, frame_times: Sequence[float] = (),
                writer: OutputWriter | None = None, progress: bool = False,
                callback: Callable[[Solver], None] | None = None,
                checkpoint_path: str | Path | None = None, checkpoint_every: int = 0,
                max_steps: int | None = None) -> None:
        """Advance to ``t_end``, landing exactly on each frame time (written to ``writer``)."""
        if not (math.isfinite(t_end) and t_end >= self.t):
            raise ValueError(f"t_end={t_end!r} must be finite and >= current time {self.t!r}")
        self.check_state()
        frames = sorted(float(f) for f in frame_times if f > self.t)
        bar = time_bar(self.t, t_end, disable=not progress)
        try:
            while self.t < t_end:
                target = frames[0] if frames and frames[0] < t_end else t_end
                dt = self.step_once(target - self.t)
                if dt >= target - self.t:
                    dt_taken = target - self.t
                    self.t = target
                else:
                    dt_taken = dt
                    self.t += dt
                if not (dt_taken > 0.0):
                    raise RuntimeError(f"time step collapsed to {dt_taken!r} at step "
                                       f"{self.step}, t={self.t!r}")
                bar.update(dt_taken / bar.seconds)
                if frames and self.t >= frames[0]:
                    frames.pop(0)
                    if writer is not None:
                        writer.write_frame(self.t, self.step, self.fields())
                if callback is not None:
                    callback(self)
                if checkpoint_path and checkpoint_every and self.step % checkpoint_every == 0:
                    self.save_checkpoint(checkpoint_path)
                if max_steps is not None and self.step >= max_steps:
                    break
        finally:
            bar.close()
        self.check_state()

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> None:
        """Atomic checkpoint of the full state (ghosts included) plus time, step and config."""
        arrays = {"U": self.U}
        attrs = {"t": self.t, "step": self.step, "config": self.config,
                 "model": self.model.to_dict()}
        state_dict = getattr(self.rate, "state_dict", None)
        if callable(state_dict):  # a stateful rate model (closure provider): restart needs it
            rate_arrays, tree = flatten_state(state_dict(), RATE_STATE)
            arrays.update(rate_arrays)
            attrs["rate_state_tree"] = tree
        trees = {}
        for name, obj in self.extra_state.items():
            extra_arrays, trees[name] = flatten_state(obj.state_dict(), f"extra_{name}")
            arrays.update(extra_arrays)
        if trees:
            attrs["extra_state_trees"] = trees
        save_checkpoint(path, arrays, attrs)

    def load_state(self, path: str | Path) -> None:
        """Restore U, t and step from a checkpoint written by :meth:`save_checkpoint`."""
        arrays, attrs = load_checkpoint(path)
        U = arrays["U"]
        if U.shape != self.U.shape:
            raise ValueError(f"checkpoint {path} holds U of shape {U.shape}, "
                             f"this solver has {self.U.shape}")
        load = getattr(self.rate, "load_state_dict", None)
        if "rate_state_tree" in attrs and not callable(load):
            raise ValueError(f"checkpoint {path} holds reaction-rate state but rate="
                             f"{self.rate!r} has no load_state_dict()")
        if callable(load):
            # a decomposed run's checkpoint splits the per-cell rate state over its ranks
            split = (int(attrs.get("solver_ranks", 1)), int(attrs.get("closure_workers", 0)))
            if "rate_state_tree" in attrs and (split[0] > 1 or split[1] > 1):
                raise ValueError(f"checkpoint {path} holds the rate state of {split[0]} solver "
                                 f"rank(s) and {split[1]} closure worker(s); restart it under "
                                 "MPI with the same layout (macro.parallel)")
            if "rate_state_tree" not in attrs:
                raise ValueError(f"checkpoint {path} holds no reaction-rate state but the rate "
                                 "model is stateful; the restart would not be identical")
            load(unflatten_state(arrays, attrs["rate_state_tree"], RATE_STATE))
        for name, tree in attrs.get("extra_state_trees", {}).items():
            if name in self.extra_state:
                self.extra_state[name].load_state_dict(
                    unflatten_state(arrays, tree, f"extra_{name}"))
        self.U[:] = U
        self.t, self.step = float(attrs["t"]), int(attrs["step"])
