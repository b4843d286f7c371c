"""The Solver owns the state and the run loop of serial and decomposed runs alike: stepping,
reaction splitting, guard, frames, checkpoints (where the two differ: :mod:`macro.domain`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numba as nb
import numpy as np
from tqdm.auto import tqdm

from .boundary import NG, Boundaries
from .domain import Domain
from .grid import GridSpec
from .io import OutputWriter
from .limiters import limiter_code
from .reaction import NONE, RATE_PARAMS, RateModel
from .riemann import riemann_code

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


def output_fields(model, U: np.ndarray, ny: int) -> dict[str, np.ndarray]:
    """The model's output fields (rho, u, v, p, T, ...) of the interior cells of ``U`` (ghosts
    included), 1D arrays in 1D (``ny == 1``)."""
    js = slice(NG, -NG) if ny > 1 else slice(0, 1)
    diag = model.diagnostics(U)[:, js, NG:-NG]
    out = {}
    for k, name in enumerate(model.output_names):
        a = np.ascontiguousarray(diag[k])
        out[name] = a[0] if ny == 1 else a
    return out


class Solver:
    """Finite-volume solver on a uniform 1D (ny == 1) or 2D grid.

    ``U`` is the conserved state (nv, ny, nx) without ghosts. ``bc`` maps side names
    (x_low, x_high, y_low, y_high) to boundary kinds; ``piston_velocity`` gives the wall's normal
    velocity (m/s, positive along +x/+y) per piston side; ``inflow`` a primitive state per inflow
    side. ``rate`` is a built-in rate (Arrhenius, LeeTarver) or any :class:`RateModel`.
    ``domain`` says where the cells live (:class:`macro.domain.Domain`: all in this process,
    the default; :class:`macro.parallel.DistributedDomain`: a block of a decomposed grid, then
    ``grid``, ``U`` and the boundaries are the block's).
    """

    def __init__(self, model, grid: GridSpec, U: np.ndarray, *, bc: dict | None = None,
                 piston_velocity: dict | None = None, inflow: dict | None = None,
                 cfl: float = 0.8, order: int = 2, limiter: str = "mc", riemann: str = "hllc",
                 rate=None, t: float = 0.0, step: int = 0, config: dict | None = None,
                 last_good_path: str | Path | None = None, domain: Domain | None = None):
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
        self._C = model.source_scratch(self.U.shape)
        self._rowstat = np.zeros((NY, 3))
        self._rate_scratch = None  # wave_rate()'s (one work share)
        self.boundaries = Boundaries(model, bc or {}, piston_velocity or {}, inflow or {})
        # ids of the interior cells (C order) given to a Python rate model; a decomposed run
        # replaces them with the cells' global ids so a closure keyed by id sees the same cells
        self.cell_ids = np.arange(nx * ny, dtype=np.int64)
        # which interior cells (flat boolean mask) a Python rate model is asked about; None:
        # all. A decomposed run asks only for its owned cells (its overlap cells belong to a
        # neighbour and are refreshed from it), so each cell is queried once per step
        self.rate_cells: np.ndarray | None = None
        # diagnostics that must survive a restart (name -> object with state_dict and
        # load_state_dict, e.g. a lead-shock tracker); stored in checkpoints beside U
        self.extra_state: dict = {}
        self._set_rate(rate)
        self.t, self.step = float(t), int(step)
        self.domain = domain if domain is not None else Domain()
        if getattr(model, "transport", None) is not None and type(self.domain) is not Domain:
            raise NotImplementedError("conduction/viscosity (macro.transport) run on serial "
                                      "domains only: their sub-cycles need fresh halos")
        self.transport_substeps = 0  # sub-steps of the last step's transport (0: none)
        self.domain.attach(self)

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
    @property
    def bc(self) -> dict[str, str]:
        """Boundary kind per side."""
        return self.boundaries.kinds

    def set_inflow(self, side: str, state: dict) -> None:
        """Change the ghost state of an inflow side between steps (e.g. a loading ramp).

        ``state`` holds the model's primitive variables (as for the ``inflow`` argument).
        """
        self.boundaries.set_inflow(side, state)

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
        """Primitive output fields (rho, u, v, p, T, ... ) on interior cells, 1D arrays in 1D
        (this process's cells; :meth:`macro.domain.Domain.gather_fields` for the whole grid)."""
        return output_fields(self.model, self.U, self.grid.ny)

    def totals(self) -> np.ndarray:
        """Domain integrals of every conserved variable (cell volume included)."""
        vol = self.grid.dx * (self.grid.dy if self.grid.ny > 1 else 1.0)
        return self.interior.sum(axis=(1, 2)) * vol

    def wave_rate(self) -> float:
        """The CFL wave rate the next step's first stage will take (ghosts filled, guard pass;
        the state is not changed): a decomposed run reduces it over its ranks."""
        if self._rate_scratch is None:
            self._rate_scratch = self.model.scratch(1)
        b, g = self.boundaries, self.grid
        return self.model.wave_rate(self.U, self._W, self._rate_scratch, g.dx, g.dy, b.codes,
                                    b.uwall, b.inflow, self._rowstat)

    # -- stepping -------------------------------------------------------------------------
    def step_once(self, dt_max: float) -> float:
        """One step of the whole grid (at most dt_max: hydro, then reaction); returns dt."""
        return self.domain.step(self, dt_max)

    def step_local(self, dt_max: float) -> float:
        """One hydro step (at most dt_max) of this solver's cells followed by conduction and
        viscosity (models with transport) and the reaction step; returns dt. A guard failure
        restores the state at the start of the step and
        raises :class:`NonPhysicalStateError`."""
        m, g, b = self.model, self.grid, self.boundaries
        # the step's scratch, for the current thread count, is allocated per step: a kept
        # array measured 2 % slower on 20000 cells (allocating costs ~1 us)
        S = m.scratch(nb.get_num_threads(), self.U.shape)
        status, bj, bi, dt = m.step(
            self.U, self._U0, self._W, self._dU, S, self.solver_code, self.lim,
            self.order, self.cfl, dt_max, g.dx, g.dy, b.codes, b.uwall, b.inflow,
            self._rowstat)
        if status != 0:
            self._fail(m.guard_names.get(status, f"status {status}"), bj, bi, restore=True)
        self.transport_substeps = m.sources(self.U, self._W, self._dU, self._C, dt, g.dx, g.dy,
                                            b.codes, b.uwall, b.inflow, self._rate_kind,
                                            self._rate_params)
        if self._rate_kind == NONE and self._rate_py is not None:
            self._python_rate(dt)
        self.step += 1
        return dt

    def _python_rate(self, dt: float) -> None:
        f = self.fields()
        lam = f["lam"].ravel()
        p, rho, T = f["p"].ravel(), f["rho"].ravel(), f["T"].ravel()
        m = self.rate_cells
        if m is None:
            r = self._rate_py.rate(cell_ids=self.cell_ids, pressure=p, density=rho,
                                   temperature=T, lam=lam, dt=dt)
        else:  # the other cells keep their lambda (rate 0)
            r = np.zeros(lam.shape)
            r[m] = self._rate_py.rate(cell_ids=self.cell_ids[m], pressure=p[m], density=rho[m],
                                      temperature=T[m], lam=lam[m], dt=dt)
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
        path = self.domain.last_good(self)
        raise NonPhysicalStateError(variable, cell, self.step, self.t, path, self.U.copy())

    def check_state(self) -> None:
        """Guard the current state of the whole grid (initial data, after external edits)."""
        self.domain.check_state(self)

    def check_local(self) -> None:
        """Guard the current state of this solver's cells."""
        status, bj, bi, _ = self.model.guard(self.U, self._W, self.grid.dx, self.grid.dy,
                                             self._rowstat)
        if status != 0:
            self._fail(self.model.guard_names.get(status, f"status {status}"), bj, bi,
                       restore=False)

    def advance(self, t_end: float, *, frame_times: Sequence[float] = (),
                writer: OutputWriter | None = None, progress: bool = False,
                callback: Callable[[Solver], None] | None = None,
                checkpoint_path: str | Path | None = None, checkpoint_every: int = 0,
                max_steps: int | None = None) -> None:
        """Advance to ``t_end``, landing exactly on each frame time (written to ``writer``).

        The run loop of serial and decomposed runs alike: the domain does what differs
        (exchange, global dt, gathers; the writer and the callback act on the root process)."""
        if not (math.isfinite(t_end) and t_end >= self.t):
            raise ValueError(f"t_end={t_end!r} must be finite and >= current time {self.t!r}")
        dom = self.domain
        self.check_state()
        frames = sorted(float(f) for f in frame_times if f > self.t)
        bar = time_bar(self.t, t_end, disable=not progress or not dom.is_root)
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
                    raise dom.collective_error(f"time step collapsed to {dt_taken!r} at step "
                                               f"{self.step}, t={self.t!r}")
                bar.update(dt_taken / bar.seconds)
                if frames and self.t >= frames[0]:
                    frames.pop(0)
                    dom.write_frame(self, writer)
                if callback is not None:
                    dom.call(self, callback)
                if checkpoint_path and checkpoint_every and self.step % checkpoint_every == 0:
                    self.save_checkpoint(checkpoint_path)
                if max_steps is not None and self.step >= max_steps:
                    break
        finally:
            bar.close()
        self.check_state()

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> None:
        """Atomic checkpoint of the whole state (ghosts included) plus time, step, config, the
        rate's and the extra state (:mod:`macro.checkpoint`)."""
        self.domain.save_checkpoint(self, path)

    def load_state(self, path: str | Path) -> None:
        """Restore U, t, step (and the rate's and extra state) from a checkpoint written by
        :meth:`save_checkpoint`."""
        self.domain.load_checkpoint(self, path)
