"""A solver rank's block of a decomposed grid: the seams of :class:`macro.domain.Domain` over MPI.

**Hydro without touching the fused kernels.** Each solver rank runs an ordinary
:class:`~macro.solver.Solver` on its block plus an *overlap* of ``W = 2 x (RK stages)`` cells on
every internal side, with transmissive ghosts there. The false boundary spoils at most 2 cells
(the MUSCL stencil radius) per stage, so after one step the owned cells are exactly what the
serial run computes; the overlap is refreshed from the neighbours before the next step (one
exchange of W layers per step instead of one per stage). The CFL wave rate is the global max
(every cell of the serial grid, ghosts included, is some rank's cell, and max is exact), taken
before the step with an Allreduce and passed as ``dt_max = cfl / rate``, so every rank takes the
serial dt bit for bit and the fields agree bitwise with the serial run.

**Errors.** A failure inside a rank's step is recorded, not raised; every solver rank learns it
at the next agreement point (the per-step reduction of the CFL rate carries an error flag, and
so does the reduction before every gather), then all ranks raise the same
:class:`~macro.parallel.comm.ParallelRunError` (or :class:`~macro.solver.NonPhysicalStateError`
with global cell indices, the last good state gathered to ``last_good_path``) and the closure
workers are told to stop with the message.

**Output and checkpoints** are gathered to rank 0 into plain arrays of the whole grid (the
serial output and checkpoint layouts); a restart reads a checkpoint on rank 0 and scatters the
blocks (with their overlap), the adapters' and the workers' rate states.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import checkpoint
from ..boundary import NG, PERIODIC, SIDES, Boundaries, bc_code
from ..domain import Domain
from ..grid import GridSpec
from ..io import save_checkpoint
from ..problem import build_grid
from ..solver import NonPhysicalStateError, Solver, output_fields
from .comm import (
    DEFAULT_TIMEOUT,
    TAG_HALO,
    TAG_SCATTER,
    CommTimeout,
    ParallelRunError,
    allreduce_max,
    format_exc,
    poll,
    wait_all,
)
from .decomposition import Decomposition
from .workers import WorkerProxy

__all__ = ["DistributedDomain", "GatheredView"]


class _CollectiveNonPhysical(NonPhysicalStateError):
    collective = True


class GatheredView:
    """What a per-step callback (the shock tracker) reads on rank 0: the whole grid, the time
    and the gathered fields it asked for (``callback.fields_read``; all without it)."""

    def __init__(self, grid: GridSpec, t: float, step: int, model, fields: dict):
        self.grid, self.t, self.step, self.model, self._fields = grid, t, step, model, fields

    def fields(self) -> dict[str, np.ndarray]:
        return self._fields


class DistributedDomain(Domain):
    """A solver rank's part of a decomposed run: its block (owned cells + overlap), the overlap
    exchange, the global dt, gathers to rank 0 and errors every rank raises together.

    ``comm`` holds the solver ranks (a Cartesian communicator is made from it); ``proxy`` is
    the :class:`~macro.parallel.workers.WorkerProxy` when closure workers hold the provider and
    ``world`` the communicator they share with the solver ranks. ``timeout`` bounds a wait on
    a worker's reply; waits between solver ranks get twice that, so that the innermost wait
    expires first and its message names the rank that hung.
    """

    def __init__(self, comm, grid: GridSpec, periodic: tuple[bool, bool], order: int, *,
                 proxy: WorkerProxy | None = None, timeout: float = DEFAULT_TIMEOUT,
                 dims: tuple[int, int] | None = None, world=None):
        if order not in (2, 3):
            raise ValueError(f"numerics.order={order!r} must be 2 or 3")
        self.timeout, self.proxy = 2.0 * timeout, proxy
        self.comm_world = world if world is not None else comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.is_root = self.rank == 0
        self.grid = grid
        self.width = 2 * order  # MUSCL reaches 2 cells per RK stage
        self.dec = Decomposition(grid.nx, grid.ny, self.size, periodic, self.width, dims)
        # the Cartesian communicator (no reordering: its ranks are the solver ranks) must see
        # the neighbours of the block layout
        self.comm = comm.Create_cart(dims=list(self.dec.dims), periods=list(self.dec.periods),
                                     reorder=False)
        self.block = self.dec.blocks[self.rank]
        self.nbr = self.dec.neighbours(self.rank)
        for axis, lo, hi in ((1, "x_low", "x_high"), (0, "y_low", "y_high")):
            src, dst = self.comm.Shift(axis, 1)
            src, dst = max(src, -1), max(dst, -1)
            if (src, dst) != (self.nbr[lo], self.nbr[hi]):
                raise RuntimeError(f"Cartesian neighbours {(src, dst)} differ from the block "
                                   f"layout {(self.nbr[lo], self.nbr[hi])}")
        self.is2d = grid.ny > 1
        blk = self.block
        # owned cells within the local interior (owned + overlap)
        self._own = (slice(blk.ylo, blk.ylo + blk.j1 - blk.j0) if self.is2d else slice(0, 1),
                     slice(blk.xlo, blk.xlo + blk.i1 - blk.i0))
        self._error: tuple[str, Any] | None = None  # recorded here, raised at the next agreement
        self._stopped = False
        self._whole: Boundaries | None = None  # boundaries of the whole grid (ghost fill, root)
        self._Ug: np.ndarray | None = None  # rank 0: the whole grid's U, gathered into
        self.solver: Solver | None = None

    @classmethod
    def from_config(cls, cfg: dict, comm, **kwargs) -> DistributedDomain:
        """The decomposition of a config's grid (its periodic axes and RK order)."""
        b = cfg.get("boundary", {})
        codes = [bc_code(b.get(s, "transmissive"), s) for s in SIDES]
        periodic = (codes[0] == PERIODIC, codes[2] == PERIODIC)
        return cls(comm, build_grid(cfg["grid"]), periodic, int(cfg["numerics"]["order"]),
                   **kwargs)

    # -- the block --------------------------------------------------------------------------
    def localize(self, model, grid: GridSpec, prim: dict, bc: dict, piston_velocity: dict,
                 inflow: dict) -> tuple[GridSpec, dict, dict, dict, dict]:
        """This rank's block with its overlap: grid, primitive fields and boundaries
        (transmissive on internal sides; physical boundaries where the block has them)."""
        if grid != self.grid:
            raise ValueError(f"grid {grid} is not the decomposed grid {self.grid}")
        self._whole = Boundaries(model, bc, piston_velocity, inflow)
        blk = self.block
        jj, ii = blk.local_indices(grid.ny, grid.nx, self.is2d)
        local_prim = {k: np.ascontiguousarray(v[np.ix_(jj, ii)]) for k, v in prim.items()}
        lgrid = GridSpec(nx=ii.size, ny=jj.size if self.is2d else 1, dx=grid.dx, dy=grid.dy,
                         x0=grid.x0 + (blk.i0 - blk.xlo) * grid.dx,
                         y0=grid.y0 + (blk.j0 - blk.ylo) * grid.dy if self.is2d else grid.y0)
        lbc = {s: ("transmissive" if self.nbr[s] >= 0 else bc.get(s, "transmissive"))
               for s in SIDES}
        piston = {s: v for s, v in piston_velocity.items() if self.nbr[s] < 0}
        inflow = {s: v for s, v in inflow.items() if self.nbr[s] < 0}
        return lgrid, local_prim, lbc, piston, inflow

    def attach(self, solver: Solver) -> None:
        """Global cell ids for the rate model, which of them it is asked about (the owned
        ones), and the exchange buffers."""
        if self._whole is None:
            raise RuntimeError("build the solver of a DistributedDomain from localize()'s "
                               "block (macro.problem.build_solver does)")
        self.solver = solver
        jj, ii = self.block.local_indices(self.grid.ny, self.grid.nx, self.is2d)
        solver.cell_ids = (jj[:, None] * self.grid.nx + ii[None, :]).ravel().astype(np.int64)
        mask = np.zeros((jj.size, ii.size), dtype=bool)
        mask[self._own] = True
        solver.rate_cells = mask.ravel()
        self._U_prev = np.empty_like(solver.U)
        self._setup_exchange(solver.U)

    # -- overlap exchange -------------------------------------------------------------------
    def _setup_exchange(self, U: np.ndarray) -> None:
        """Send/receive slices and buffers, x first then y (the y exchange carries the x
        overlap columns, which fills the corners)."""
        blk, W = self.block, self.width
        _, NY, NX = U.shape
        rows = slice(NG, NY - NG) if self.is2d else slice(0, 1)
        cols = slice(NG, NX - NG)
        self._phases = []
        for axis, lo, hi in ((1, "x_low", "x_high"), (0, "y_low", "y_high")):
            if self.nbr[lo] < 0 and self.nbr[hi] < 0:
                continue
            if axis == 1:
                def sl(a, b, rows=rows):
                    return (slice(None), rows, slice(a, b))
                own0, nown = NG + blk.xlo, blk.i1 - blk.i0
            else:
                def sl(a, b, cols=cols):
                    return (slice(None), slice(a, b), cols)
                own0, nown = NG + blk.ylo, blk.j1 - blk.j0
            # (neighbour, send slice, receive slice, send tag, receive tag); the tag says
            # which way the data travels, so two-rank periodic axes pair up correctly
            items = []
            if self.nbr[lo] >= 0:
                items.append((self.nbr[lo], sl(own0, own0 + W), sl(own0 - W, own0),
                              TAG_HALO + 2 * axis, TAG_HALO + 2 * axis + 1))
            if self.nbr[hi] >= 0:
                items.append((self.nbr[hi], sl(own0 + nown - W, own0 + nown),
                              sl(own0 + nown, own0 + nown + W),
                              TAG_HALO + 2 * axis + 1, TAG_HALO + 2 * axis))
            bufs = [(np.empty(U[it[1]].shape), np.empty(U[it[2]].shape)) for it in items]
            self._phases.append((items, bufs))

    def exchange(self, U: np.ndarray) -> None:
        """Refresh the overlap cells of ``U`` from the neighbours' owned cells."""
        for items, bufs in self._phases:
            reqs = [self.comm.Irecv(rb, source=it[0], tag=it[4])
                    for it, (_, rb) in zip(items, bufs, strict=True)]
            for it, (sb, _) in zip(items, bufs, strict=True):
                np.copyto(sb, U[it[1]])
                reqs.append(self.comm.Isend(sb, dest=it[0], tag=it[3]))
            wait_all(reqs, self.timeout, "exchanging overlap cells with the neighbour ranks")
            for it, (_, rb) in zip(items, bufs, strict=True):
                U[it[2]] = rb

    # -- stepping and errors ----------------------------------------------------------------
    def step(self, solver: Solver, dt_max: float) -> float:
        """Exchange, the global dt (the serial kernel's arithmetic on the global rate), the
        local step. A local failure is recorded; the next agreement raises it everywhere."""
        self.exchange(solver.U)
        grate = self.agree(solver.wave_rate() if self._error is None else 0.0)
        dt = solver.cfl / grate if grate > 0.0 else dt_max
        if dt > dt_max:
            dt = dt_max
        if solver.last_good_path is not None:
            np.copyto(self._U_prev, solver.U)
        try:
            dt_local = solver.step_local(dt)
        except CommTimeout:
            raise
        except NonPhysicalStateError as exc:
            self._defer_guard(exc, solver)
        except ParallelRunError as exc:
            self._error = ("exception", str(exc))
        except Exception as exc:
            self._error = ("exception", format_exc(exc))
        else:
            if dt_local != dt:
                self._error = ("exception", f"RuntimeError: local dt {dt_local!r} differs from "
                                            f"the global dt {dt!r}")
            return dt
        solver.step += 1  # the failed step counts on every rank alike: same branches after it
        return dt

    def check_state(self, solver: Solver) -> None:
        """Guard the local cells; an error is raised on every rank by the agreement."""
        self.exchange(solver.U)  # the overlap went stale during the last step
        if self._error is None:
            if solver.last_good_path is not None:  # what a failure here writes as last good
                np.copyto(self._U_prev, solver.U)
            try:
                solver.check_local()
            except NonPhysicalStateError as exc:
                self._defer_guard(exc, solver)
        self.agree()

    def _defer_guard(self, exc: NonPhysicalStateError, solver: Solver) -> None:
        self._error = ("guard", (str(exc), exc.variable, self._global_cell(exc.cell),
                                 solver.step, solver.t))

    def _global_cell(self, cell: tuple) -> tuple:
        blk, g = self.block, self.grid
        i = (cell[0] - blk.xlo + blk.i0) % g.nx
        if not self.is2d:
            return (i,)
        return (i, (cell[1] - blk.ylo + blk.j0) % g.ny)

    def agree(self, rate: float = 0.0) -> float:
        """Allreduce MAX of (rate, error flag); if any rank recorded an error, every solver
        rank raises it together. Returns the global rate."""
        vals = np.array([rate, 1.0 if self._error is not None else 0.0])
        out = allreduce_max(self.comm, vals, self.timeout, "agreeing on the time step")
        if out[1] > 0.0:
            self._raise_collective()
        return float(out[0])

    def _raise_collective(self):
        errors = self.comm.allgather(self._error)
        r = next(k for k, e in enumerate(errors) if e is not None)
        kind, payload = errors[r]
        text = payload[0] if kind == "guard" else payload
        self.stop_workers(f"solver rank {r}: {text}")
        if kind == "guard":
            _, variable, cell, step, t = payload
            path = self.solver.last_good_path
            if path is not None:
                self._write_last_good(path, step, t)
            raise _CollectiveNonPhysical(variable, cell, step, t, path, None)
        raise ParallelRunError(f"solver rank {r}: {text}")

    def _write_last_good(self, path: Path, step: int, t: float) -> None:
        """The state before the failing step (every rank kept a copy), written by rank 0."""
        s = self.solver
        U = self._global_U(self._U_prev)
        if self.is_root:
            save_checkpoint(path, {"U": U}, {"t": t, "step": step, "config": s.config,
                                             "model": s.model.to_dict()})

    def on_root(self, fn: Callable[[], Any], what: str = "failed") -> Any:
        """``fn()`` on rank 0; its error is recorded (raised everywhere at the next
        agreement). None elsewhere."""
        if not self.is_root:
            return None
        try:
            return fn()
        except Exception as exc:
            self._error = ("exception", f"rank 0 {what}: {format_exc(exc)}")
            return None

    def collective_error(self, message: str) -> Exception:
        return ParallelRunError(message)

    def stop_workers(self, message: str | None) -> None:
        """Tell every closure worker this solver rank is done (with the error, if any)."""
        if self._stopped or self.proxy is None:
            return
        self._stopped = True
        self.proxy.stop(message)

    # -- gathers to rank 0 ------------------------------------------------------------------
    def _gather(self, local: np.ndarray) -> np.ndarray | None:
        """The owned part of a local (k, ny, nx) interior array from every rank, as a
        (k, ny, nx) array of the whole grid on rank 0 (None elsewhere)."""
        from mpi4py import MPI

        mine = np.ascontiguousarray(local[(slice(None), *self._own)])
        k = mine.shape[0]
        shapes = [(b.j1 - b.j0 if self.is2d else 1, b.i1 - b.i0) for b in self.dec.blocks]
        counts = [k * a * c for a, c in shapes]
        flat = None
        if self.is_root:
            flat = np.empty(sum(counts))
            displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            req = self.comm.Igatherv(mine, [flat, counts, displs, MPI.DOUBLE], root=0)
        else:
            req = self.comm.Igatherv(mine, None, root=0)
        poll(req.Test, self.timeout, "gathering on rank 0")
        if not self.is_root:
            return None
        out = np.empty((k, self.grid.ny, self.grid.nx))
        off = 0
        for b, c, (a, w) in zip(self.dec.blocks, counts, shapes, strict=True):
            js = slice(b.j0, b.j1) if self.is2d else slice(0, 1)
            out[:, js, b.i0:b.i1] = flat[off:off + c].reshape(k, a, w)
            off += c
        return out

    def _interior(self, U: np.ndarray) -> np.ndarray:
        return U[:, NG:-NG, NG:-NG] if self.is2d else U[:, :, NG:-NG]

    def _global_U(self, U: np.ndarray) -> np.ndarray | None:
        """The whole grid's conserved state on rank 0, ghosts filled as a stage fills them
        (what a serial checkpoint holds); None elsewhere."""
        Ui = self._gather(self._interior(U))
        if not self.is_root:
            return None
        if self._Ug is None:
            g = self.grid
            self._Ug = np.zeros((U.shape[0], g.ny + 2 * NG if self.is2d else 1, g.nx + 2 * NG))
        self._interior(self._Ug)[:] = Ui
        self._whole.fill(self._Ug)
        return self._Ug

    def gather_fields(self, solver: Solver) -> dict | None:
        """Output fields of the whole grid on rank 0 (None elsewhere); collective."""
        self.agree()
        U = self._global_U(solver.U)
        return output_fields(solver.model, U, self.grid.ny) if self.is_root else None

    def write_frame(self, solver: Solver, writer) -> None:
        fields = self.gather_fields(solver)
        if writer is not None:
            writer.write_frame(solver.t, solver.step, fields)

    def call(self, solver: Solver, callback: Callable) -> None:
        """The callback on rank 0 with the fields it reads (``callback.fields_read``, all
        without it) gathered from the ranks' own diagnostics; collective."""
        self.agree()
        local = solver.fields()
        names = getattr(callback, "fields_read", None) or tuple(local)
        stack = np.stack([np.reshape(local[n], solver.interior.shape[1:]) for n in names])
        g = self._gather(stack)
        if self.is_root:
            gathered = {n: (g[k, 0] if not self.is2d else g[k]) for k, n in enumerate(names)}
            callback(GatheredView(self.grid, solver.t, solver.step, solver.model, gathered))

    # -- checkpoints ------------------------------------------------------------------------
    def _rate_states(self, solver: Solver) -> tuple[list, list]:
        """(adapter state of every solver rank, provider state of every worker) on rank 0,
        ([], []) elsewhere; collective. With M = 0 the providers' states are inside the
        adapters' (as in the serial run)."""
        sd = getattr(solver.rate, "state_dict", None)
        if not callable(sd):
            return [], []
        ranks = self.comm.gather(sd(), root=0)
        workers = []
        if self.proxy is not None and self.is_root:
            workers = self.proxy.state_dicts()
        return (ranks, workers) if self.is_root else ([], [])

    def save_checkpoint(self, solver: Solver, path: str | Path) -> None:
        """The serial layout plus the closure holders' states, written atomically by rank 0
        (:mod:`macro.checkpoint`); collective."""
        self.agree()
        U = self._global_U(solver.U)
        ranks, workers = self._rate_states(solver)
        if self.is_root:
            layout = (self.size, 0 if self.proxy is None else len(self.proxy.workers))
            save_checkpoint(path, *checkpoint.compose(
                U, solver.t, solver.step, solver.config, solver.model.to_dict(),
                rate_states=ranks, worker_states=workers,
                extras=checkpoint.extra_states(solver), layout=layout))
        self.agree()

    def load_checkpoint(self, solver: Solver, path: str | Path) -> None:
        """Read a checkpoint (this layout or a serial one) on rank 0 and scatter the state and
        the rate/closure states to their holders; collective."""
        meta, saved = None, None
        if self.is_root:
            try:
                saved = checkpoint.read(path)
                g = self.grid
                shape = (solver.U.shape[0], g.ny + 2 * NG if self.is2d else 1, g.nx + 2 * NG)
                if saved.U.shape != shape:
                    raise ValueError(f"checkpoint {path} holds U of shape {saved.U.shape}, "
                                     f"this run has {shape}")
                meta = (saved.t, saved.step, saved.solver_ranks, saved.closure_workers,
                        saved.serial, len(saved.rank_states), None)
            except Exception as exc:
                meta = (0.0, 0, 0, 0, False, 0, format_exc(exc))
        t, step, saved_s, saved_m, serial, count, err = self.comm.bcast(meta, root=0)
        if err is not None:
            raise ParallelRunError(f"rank 0 could not read checkpoint {path}: {err}")
        stateful = callable(getattr(solver.rate, "load_state_dict", None))
        nworkers = 0 if self.proxy is None else len(self.proxy.workers)
        # the same checks on every rank, so that every rank raises together
        if stateful:
            if count == 0:
                raise ParallelRunError(f"checkpoint {path} holds no reaction-rate state but "
                                       "this run's rate is stateful")
            same = (saved_s == self.size and saved_m == nworkers) or (
                serial and self.size == 1 and nworkers <= 1)
            if not same:
                raise ParallelRunError(
                    f"checkpoint {path} holds the rate state of {saved_s} solver rank(s) and "
                    f"{saved_m} closure worker(s); this run has {self.size} and {nworkers}: "
                    "the per-cell closure state restarts on the same layout")
        elif count:
            raise ParallelRunError(f"checkpoint {path} holds reaction-rate state but this run's "
                                   "rate has no load_state_dict()")
        solver.t, solver.step = t, step
        interior = solver.interior
        if self.is_root:
            Ug = self._interior(saved.U)
            reqs, bufs = [], []
            for b in self.dec.blocks:
                jj, ii = b.local_indices(self.grid.ny, self.grid.nx, self.is2d)
                part = np.ascontiguousarray(Ug[:, jj][:, :, ii])
                if b.rank == 0:
                    interior[:] = part
                else:
                    bufs.append(part)
                    reqs.append(self.comm.Isend(part, dest=b.rank, tag=TAG_SCATTER))
            wait_all(reqs, self.timeout, "scattering the checkpoint")
            for name, state in saved.extras.items():
                if name in solver.extra_state:
                    solver.extra_state[name].load_state_dict(state)
        else:
            buf = np.empty(interior.shape)
            wait_all([self.comm.Irecv(buf, source=0, tag=TAG_SCATTER)], self.timeout,
                     "receiving the checkpoint from rank 0")
            interior[:] = buf
        if stateful:
            ranks = saved.rank_states if self.is_root else None
            if self.proxy is not None and self.is_root:
                workers = saved.worker_states
                if serial and not workers:  # a serial checkpoint: its provider -> worker 0
                    workers = [ranks[0].pop("provider", None)]
                self.proxy.load_state_dicts(workers)
            solver.rate.load_state_dict(self.comm.scatter(ranks, root=0))
        self.agree()

    def last_good(self, solver: Solver) -> Path | None:
        """Nothing yet: the agreement that raises the failure everywhere gathers it."""
        return None
