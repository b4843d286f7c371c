"""MPI distribution of a run: solver ranks on a Cartesian grid of blocks, closure worker ranks.

``mpiexec -n K python -m macro run CONFIG.toml --closure-workers M`` (or
:func:`run_distributed` from Python): world ranks ``0 .. K-M-1`` solve the hydro, ranks
``K-M .. K-1`` hold the rate provider (the closure) and answer the solver ranks' batched queries.

**Hydro without touching the fused kernels.** Each solver rank owns a block (1D slabs, 2D blocks
on a Cartesian communicator, periodic where the boundary is) and runs an ordinary
:class:`~macro.solver.Solver` on the block plus an *overlap* of ``W = 2 x (RK stages)`` cells on
every internal side, with transmissive ghosts there. The false boundary spoils at most 2 cells
(the MUSCL stencil radius) per stage, so after one step the owned cells are exactly what the
serial run computes; the overlap is refreshed from the neighbours before the next step (one
exchange of W layers per step instead of one per stage). The CFL wave rate is the global max
(every cell of the serial grid, ghosts included, is some rank's cell, and max is exact), taken
before the step with an Allreduce and passed as ``dt_max = cfl / rate``, so every rank takes the
serial dt bit for bit and the fields agree bitwise with the serial run.

**Closure workers.** A Python rate model (the coupling's ``QueryRate``) sees only the owned cells
(global ids). Given a :class:`WorkerProxy` as provider, its ``query`` sends each worker the
cells that worker owns (contiguous id ranges: a cell's state always lives on one worker) and
reassembles the replies; the provider object itself is built on the workers from an importable
factory (``"module:callable"``) so the hydro never imports the closure. Each request is answered
on its own: results do not depend on the rank count as long as a cell's answer does not depend
on the other cells in the batch (the closure's contract).

**Errors.** Receives, reductions and gathers are polled until a deadline (``timeout``). A
failing query makes the worker reply with the error instead of results; a guard failure or a
remote error is recorded and every solver rank learns it at the next agreement point (the
per-step reduction of the CFL rate carries an error flag), then all ranks raise the same
:class:`ParallelRunError` (or :class:`~macro.solver.NonPhysicalStateError` with global cell
indices) and the workers are told to stop with the message. Any other uncaught exception prints
and calls ``MPI_Abort`` (the exception hook, as PyFR does), so a dying rank never leaves the
others hanging.

**Output and restarts** are gathered to rank 0 (same HDF5/XDMF layout as the serial run);
checkpoints hold the global state (the layout of :meth:`Solver.save_checkpoint`) plus every
solver rank's rate-adapter state and every worker's provider ``state_dict()``, and a restart
reads them back and scatters them (same layout needed for a stateful rate). docs/mpi.md has
the details and the measured costs.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import detonation
from .boundary import NG, PERIODIC, bc_code
from .grid import GridSpec
from .io import (
    OutputWriter,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)
from .problem import build_grid, build_model, initial_primitives, resolve_piston_pressure
from .reaction import rate_from_dict
from .simulation import Result, load_config
from .solver import RATE_STATE, SIDES, NonPhysicalStateError, Solver

DEFAULT_TIMEOUT = 600.0  # s: longest wait for a peer before the run is aborted
TAG_REQ, TAG_REP, TAG_CTL = 11, 12, 13
TAG_HALO = 100  # + 2 * axis + direction
TAG_SCATTER = 200

__all__ = [
    "Decomposition",
    "ParallelRunError",
    "WorkerProxy",
    "run_distributed",
    "load_factory",
    "install_excepthook",
]


class ParallelRunError(RuntimeError):
    """An error every rank of a distributed run raises together (the message names its origin)."""

    collective = True


class _CollectiveValueError(ValueError):
    """A bad argument every rank sees alike (so every rank raises it, no abort needed)."""

    collective = True


ABORT_GRACE_S = 1.0  # s a failing rank leaves the launcher to forward stderr before MPI_Abort


class CommTimeout(RuntimeError):
    """A peer did not answer within the deadline (it hung or died)."""


# ---------------------------------------------------------------------------------------------
# exception hook, polling with deadlines
# ---------------------------------------------------------------------------------------------


def install_excepthook() -> None:
    """An uncaught exception prints (with the rank) and aborts the whole job.

    Errors that every rank raises together (``collective`` attribute) exit normally with status 1,
    so each rank gets to print its message before the job ends. Before aborting, a rank waits
    ``ABORT_GRACE_S``: MPI_Abort tears the launcher down at once, and stderr still in its pipes
    (this rank's message, or a peer's) would be lost, which happened with MPICH's hydra.
    """
    from mpi4py import MPI

    if getattr(sys.excepthook, "_macro_parallel", False):
        return
    rank = MPI.COMM_WORLD.Get_rank()

    def hook(exctype, value, tb):
        text = "".join(traceback.format_exception(exctype, value, tb))
        sys.stderr.write(f"[rank {rank}] uncaught {exctype.__name__}: {value}\n{text}")
        sys.stderr.flush()  # one write per rank: the ranks' lines do not interleave
        if not getattr(value, "collective", False) and MPI.COMM_WORLD.Get_size() > 1:
            time.sleep(ABORT_GRACE_S)
            MPI.COMM_WORLD.Abort(1)

    hook._macro_parallel = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _poll(test: Callable[[], Any], timeout: float, what: str) -> Any:
    """Call ``test()`` until it returns something truthy; CommTimeout after ``timeout`` s.

    Yields the core between tests at first (latency), then backs off to sleeps of up to
    0.5 ms so that ranks waiting on a slow peer leave the cores to the ranks that compute.
    """
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        r = test()
        if r:
            return r
        n += 1
        if n < 2000:
            os.sched_yield()
            continue
        time.sleep(min(5e-4, 1e-6 * (n - 2000)))
        if time.monotonic() > deadline:
            raise CommTimeout(f"no answer within {timeout:g} s while {what}")


def _wait_all(reqs: list, timeout: float, what: str) -> None:
    from mpi4py import MPI

    if reqs:
        _poll(lambda: MPI.Request.Testall(reqs), timeout, what)


def _recv_obj(comm, source: int, tag: int, timeout: float, what: str):
    """Receive a pickled object, polling with a deadline; returns (obj, source)."""
    from mpi4py import MPI

    msg = _poll(lambda: comm.improbe(source=source, tag=tag), timeout, what)
    st = MPI.Status()
    obj = msg.recv(status=st)
    return obj, st.Get_source()


def _any_source() -> int:
    from mpi4py import MPI

    return MPI.ANY_SOURCE


def _any_tag() -> int:
    from mpi4py import MPI

    return MPI.ANY_TAG


def _allreduce_max(comm, values: np.ndarray, timeout: float, what: str) -> np.ndarray:
    from mpi4py import MPI

    out = np.empty_like(values)
    req = comm.Iallreduce(values, out, op=MPI.MAX)
    _poll(req.Test, timeout, what)
    return out


def load_factory(spec: str) -> Callable[..., Any]:
    """Resolve ``"package.module:attr.attr"`` to the callable it names."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"provider factory {spec!r} must be a string 'module:callable'")
    mod_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(mod_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"provider factory {spec!r} is not callable")
    return obj


# ---------------------------------------------------------------------------------------------
# decomposition
# ---------------------------------------------------------------------------------------------


def _split(n: int, p: int, k: int) -> tuple[int, int]:
    base, extra = divmod(n, p)
    start = k * base + min(k, extra)
    return start, start + base + (1 if k < extra else 0)


@dataclass(frozen=True)
class Block:
    """One solver rank's cells: owned global ranges and overlap widths on each side."""

    rank: int
    cy: int
    cx: int
    j0: int
    j1: int
    i0: int
    i1: int
    ylo: int
    yhi: int
    xlo: int
    xhi: int

    def local_indices(self, ny: int, nx: int, is2d: bool) -> tuple[np.ndarray, np.ndarray]:
        """Global row and column indices of the local interior (owned + overlap, wrapped)."""
        jj = np.arange(self.j0 - self.ylo, self.j1 + self.yhi) % ny if is2d else np.zeros(1, int)
        ii = np.arange(self.i0 - self.xlo, self.i1 + self.xhi) % nx
        return jj, ii


class Decomposition:
    """Blocks of an (ny, nx) grid over ``nranks`` solver ranks, row-major rank order (y slowest).

    1D grids (ny == 1) are cut into x slabs; 2D grids into py x px blocks with the larger factor
    along the longer axis. ``width`` is the overlap on internal sides; every cut axis needs
    blocks of at least ``width`` cells.
    """

    def __init__(self, nx: int, ny: int, nranks: int, periodic: tuple[bool, bool], width: int,
                 dims: tuple[int, int] | None = None):
        if nranks < 1:
            raise ValueError(f"nranks={nranks} must be >= 1")
        self.nx, self.ny, self.nranks, self.width = nx, ny, nranks, width
        self.is2d = ny > 1
        if dims is None:
            dims = self.default_dims(nx, ny, nranks)
        py, px = dims
        if py * px != nranks or (not self.is2d and py != 1):
            raise ValueError(f"dims={dims} do not fit {nranks} ranks on a {ny} x {nx} grid")
        self.dims = (py, px)
        for n, p, axis in ((nx, px, "x"), (ny, py, "y")):
            if p > 1 and n // p < width:
                raise ValueError(
                    f"grid n{axis}={n} is too small for {p} ranks along {axis}: blocks need at "
                    f"least {width} cells (the overlap width); use fewer solver ranks")
        # an axis cut in one piece keeps its own periodic boundary; cut ones exchange across it
        self.periods = (bool(periodic[1]) and py > 1, bool(periodic[0]) and px > 1)
        self.blocks = []
        for r in range(nranks):
            cy, cx = divmod(r, px)
            j0, j1 = _split(ny, py, cy)
            i0, i1 = _split(nx, px, cx)
            w = width
            xlo = w if (cx > 0 or self.periods[1]) else 0
            xhi = w if (cx < px - 1 or self.periods[1]) else 0
            ylo = w if (cy > 0 or self.periods[0]) else 0
            yhi = w if (cy < py - 1 or self.periods[0]) else 0
            self.blocks.append(Block(r, cy, cx, j0, j1, i0, i1, ylo, yhi, xlo, xhi))

    @staticmethod
    def default_dims(nx: int, ny: int, nranks: int) -> tuple[int, int]:
        if ny == 1:
            return 1, nranks
        best = None
        for py in range(1, nranks + 1):
            if nranks % py:
                continue
            px = nranks // py
            halo = px * ny + py * nx  # cut length: exchanged cells scale with it
            # ties go to more y cuts: rows stay long (the kernels sweep rows) and contiguous
            if best is None or halo <= best[0]:
                best = (halo, py, px)
        return best[1], best[2]

    def neighbours(self, rank: int) -> dict[str, int]:
        """Ranks across each internal side (-1 where the side is a physical boundary)."""
        b = self.blocks[rank]
        py, px = self.dims
        out = {}
        for side, cut, d, axis in (("x_low", b.xlo, -1, 1), ("x_high", b.xhi, 1, 1),
                                   ("y_low", b.ylo, -1, 0), ("y_high", b.yhi, 1, 0)):
            if not cut:
                out[side] = -1
                continue
            cy, cx = b.cy, b.cx
            if axis == 1:
                cx = (cx + d) % px
            else:
                cy = (cy + d) % py
            out[side] = cy * px + cx
        return out


# ---------------------------------------------------------------------------------------------
# the closure side: proxy on solver ranks, server loop on worker ranks
# ---------------------------------------------------------------------------------------------


def worker_of(ids: np.ndarray, ncells: int, nworkers: int) -> np.ndarray:
    """Worker index owning each global cell id: contiguous id ranges (fixed for a grid)."""
    return (ids.astype(np.int64) * nworkers) // ncells


class WorkerProxy:
    """Stands in for the provider on a solver rank: ``query`` is answered by the worker ranks.

    Same call signature as the closure's ``query``; the result has the provider result's type
    with per-cell arrays reassembled in the order of ``cell_ids``.
    """

    def __init__(self, comm, workers: list[int], ncells: int, timeout: float = DEFAULT_TIMEOUT):
        self.comm, self.workers, self.ncells, self.timeout = comm, list(workers), ncells, timeout
        self.calls = 0

    def query(self, cell_ids, pressure, dt, *, mode: str = "table", deterministic: bool = True,
              seed: int | None = None, **kwargs):
        ids = np.asarray(cell_ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise TypeError(f"cell_ids must be a 1D integer array, got {ids.dtype} {ids.shape}")
        n = ids.size
        p = np.asarray(pressure)
        dt_arr = np.asarray(dt)
        per_cell_dt = dt_arr.ndim > 0
        if n and (ids.min() < 0 or ids.max() >= self.ncells):
            k = int(np.argmax((ids < 0) | (ids >= self.ncells)))
            raise ValueError(f"cell_ids[{k}] = {ids[k]} is outside [0, {self.ncells})")
        w_of = worker_of(ids, self.ncells, len(self.workers)) if n else np.zeros(0, np.int64)
        order = np.argsort(w_of, kind="stable")
        bounds = np.searchsorted(w_of[order], np.arange(len(self.workers) + 1))
        opts = dict(kwargs, mode=mode, deterministic=deterministic, seed=seed)
        self.calls += 1
        parts, sends = [], []
        for w, dest in enumerate(self.workers):
            sel = order[bounds[w]:bounds[w + 1]]
            if sel.size == 0 and not (n == 0 and w == 0):
                continue
            dt_w = dt_arr[sel] if per_cell_dt else dt
            sends.append(self.comm.isend(("query", self.calls, ids[sel], p[sel], dt_w, opts),
                                         dest=dest, tag=TAG_REQ))
            parts.append((dest, sel))
        results = {}
        for dest, _ in parts:
            reply, _src = _recv_obj(self.comm, dest, TAG_REP, self.timeout,
                                    f"waiting for closure worker rank {dest}")
            kind, call, payload = reply
            if kind == "error":
                raise ParallelRunError(f"closure worker rank {dest} failed: {payload}")
            if call != self.calls:
                raise RuntimeError(f"worker rank {dest} answered call {call}, expected "
                                   f"{self.calls}")
            results[dest] = payload
        for req in sends:  # answered, so received: completes at once
            _poll(lambda req=req: req.test()[0], self.timeout, "sending a query")
        return _merge_results([(results[d], sel) for d, sel in parts], n)

    def state_dicts(self) -> list:
        """Every worker's ``provider.state_dict()`` (collected by the caller on rank 0)."""
        out = []
        for dest in self.workers:
            self.comm.send(("state", None), dest=dest, tag=TAG_CTL)
        for dest in self.workers:
            reply, _ = _recv_obj(self.comm, dest, TAG_REP, self.timeout,
                                 f"waiting for the state of closure worker rank {dest}")
            if reply[0] == "error":
                raise ParallelRunError(f"closure worker rank {dest} failed: {reply[2]}")
            out.append(reply[2])
        return out

    def load_state_dicts(self, states: list) -> None:
        for dest, st in zip(self.workers, states, strict=True):
            self.comm.send(("load", st), dest=dest, tag=TAG_CTL)
        for dest in self.workers:
            reply, _ = _recv_obj(self.comm, dest, TAG_REP, self.timeout,
                                 f"waiting for closure worker rank {dest} to load its state")
            if reply[0] == "error":
                raise ParallelRunError(f"closure worker rank {dest} failed: {reply[2]}")


def _merge_results(parts: list, n: int):
    """One result object from per-worker results: per-cell arrays put back in request order."""
    first = parts[0][0]
    if len(parts) == 1 and parts[0][1].size == n and np.array_equal(parts[0][1], np.arange(n)):
        return first
    if dataclasses.is_dataclass(first):
        names = [f.name for f in dataclasses.fields(first)]
    else:
        names = list(vars(first))
    merged = {}
    for name in names:
        v0 = getattr(first, name)
        if isinstance(v0, np.ndarray) and v0.ndim >= 1 and v0.shape[0] == parts[0][1].size:
            out = np.empty((n, *v0.shape[1:]), dtype=v0.dtype)
            for res, sel in parts:
                out[sel] = getattr(res, name)
            merged[name] = out
    if dataclasses.is_dataclass(first):
        return dataclasses.replace(first, **merged)
    obj = object.__new__(type(first))
    obj.__dict__.update(vars(first))
    obj.__dict__.update(merged)
    return obj


def _format_exc(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def serve(comm, provider, nsolvers: int, timeout: float) -> str | None:
    """Worker loop: answer queries until every solver rank said stop. Returns the stop message
    (None on a clean stop). Gives up after 3 x ``timeout`` without a request (the solver ranks'
    own waits expire first)."""
    stopped = 0
    message = None
    while stopped < nsolvers:
        obj, src = _recv_obj(comm, _any_source(), _any_tag(), 3.0 * timeout,
                             "waiting for requests from the solver ranks")
        kind = obj[0]
        if kind == "query":
            _, call, ids, p, dt, opts = obj
            try:
                res = provider.query(ids, p, dt, **opts)
                reply = ("ok", call, res)
            except Exception as exc:  # the solver rank raises it on every rank
                reply = ("error", call, f"{_format_exc(exc)} in query call {call} from solver "
                                        f"rank {src}")
            comm.send(reply, dest=src, tag=TAG_REP)
        elif kind == "state":
            try:
                sd = getattr(provider, "state_dict", None)
                reply = ("ok", 0, sd() if callable(sd) else None)
            except Exception as exc:
                reply = ("error", 0, _format_exc(exc))
            comm.send(reply, dest=src, tag=TAG_REP)
        elif kind == "load":
            try:
                load = getattr(provider, "load_state_dict", None)
                if obj[1] is None and callable(load):
                    raise ValueError("the checkpoint holds no state for this stateful provider; "
                                     "the restart would not be identical")
                if obj[1] is not None:
                    if not callable(load):
                        raise TypeError(f"{type(provider).__name__} has no load_state_dict() "
                                        "for the checkpoint's provider state")
                    load(obj[1])
                reply = ("ok", 0, None)
            except Exception as exc:
                reply = ("error", 0, _format_exc(exc))
            comm.send(reply, dest=src, tag=TAG_REP)
        elif kind == "stop":
            stopped += 1
            if obj[1] is not None and message is None:
                message = obj[1]
        else:
            raise RuntimeError(f"worker got unknown request {kind!r} from rank {src}")
    return message


# ---------------------------------------------------------------------------------------------
# rates and providers (the coupling layer builds the rate object; macro never imports closure)
# ---------------------------------------------------------------------------------------------


def is_provider_config(cfg: dict) -> bool:
    """True when the config's rate comes from a ``query`` provider ([reaction] type closure)."""
    return (cfg.get("reaction") or {}).get("type") == "closure"


def make_provider(cfg: dict, provider=None):
    """The provider object on a holder rank: ``provider`` (an object with ``query``, or a
    zero-argument factory), else the config's ``[reaction] provider`` factory."""
    if provider is not None:
        obj = provider if hasattr(provider, "query") else provider()
    else:
        from . import simulation

        rcfg = cfg.get("reaction") or {}
        if "provider" not in rcfg:
            raise ValueError("[reaction] type = 'closure' needs provider = "
                             "'package.module:factory' (or pass provider= from Python)")
        args = rcfg.get("provider_args", {})
        if not isinstance(args, dict):
            raise ValueError(f"[reaction] provider_args={args!r} must be a table")
        resolve = getattr(simulation, "resolve_factory", load_factory)
        obj = resolve(rcfg["provider"])(**args)
    if not callable(getattr(obj, "query", None)):
        raise TypeError(f"provider {type(obj).__name__} has no query() method")
    return obj


def make_rate(cfg: dict, rate=None, provider=None):
    """The solver's rate: a provider (or proxy) wrapped like the serial run wraps it, else
    ``rate`` or the config's built-in rate."""
    from . import simulation

    build = getattr(simulation, "build_rate", None)
    if provider is not None:
        if build is not None:
            return build(cfg, provider)
        from .coupling import QueryRate

        opts = {k: v for k, v in (cfg.get("reaction") or {}).items()
                if k in ("mode", "deterministic", "seed", "growth", "ignition_scale",
                         "ignition_max")}
        return QueryRate(provider, **opts)
    if rate is not None:
        return rate
    if build is not None:
        return build(cfg, None)
    return rate_from_dict(cfg["reaction"]) if "reaction" in cfg else None


class _OwnedRate:
    """A Python rate model restricted to the owned cells of the local block (overlap cells get
    rate 0: they are overwritten by the next exchange), so each cell is queried once per step."""

    def __init__(self, inner, mask: np.ndarray):
        self.inner, self.mask = inner, mask

    def rate(self, *, cell_ids, pressure, density, temperature, lam, dt):
        m = self.mask
        out = np.zeros(np.shape(lam))
        out[m] = self.inner.rate(cell_ids=cell_ids[m], pressure=pressure[m], density=density[m],
                                 temperature=temperature[m], lam=lam[m], dt=dt)
        return out


def _serial_hook(name: str):
    from . import simulation

    return getattr(simulation, name, None)


# ---------------------------------------------------------------------------------------------
# the distributed solver
# ---------------------------------------------------------------------------------------------


class _CollectiveNonPhysical(NonPhysicalStateError):
    collective = True


class _View:
    """What a solver callback (the shock tracker) reads, for the gathered global pressure."""

    def __init__(self, grid, t, p):
        self.grid, self.t, self._p = grid, t, p

    def fields(self):
        return {"p": self._p}


class DistributedSolver:
    """A solver rank's part of the run: the local :class:`Solver` on owned + overlap cells, the
    overlap exchange, the global dt, gathers to rank 0 and collective error handling.

    ``rate`` is the run's rate object (built-in, or the coupling's adapter around a provider or
    a :class:`WorkerProxy`); ``proxy`` the proxy when closure workers hold the provider.
    """

    def __init__(self, cfg: dict, comm, *, rate=None, proxy: WorkerProxy | None = None,
                 timeout: float = DEFAULT_TIMEOUT, dims: tuple[int, int] | None = None,
                 world=None):
        # waits between solver ranks get twice the deadline of a wait on a worker's reply, so
        # that the innermost wait expires first and its message names the rank that hung
        self.cfg, self.timeout, self.proxy = cfg, 2.0 * timeout, proxy
        self.comm_world = world if world is not None else comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        model = build_model(cfg["model"])
        grid = build_grid(cfg["grid"])
        self.model, self.grid = model, grid
        prim = initial_primitives(cfg, model, grid)
        resolve_piston_pressure(cfg, model)
        num = cfg["numerics"]
        order = int(num["order"])
        if order not in (2, 3):
            raise ValueError(f"numerics.order={order!r} must be 2 or 3")
        self.W = 2 * order  # MUSCL reaches 2 cells per RK stage
        b = cfg.get("boundary", {})
        bc = {s: b.get(s, "transmissive") for s in SIDES}
        codes = [bc_code(bc[s], s) for s in SIDES]
        periodic = (codes[0] == PERIODIC, codes[2] == PERIODIC)
        self.dec = Decomposition(grid.nx, grid.ny, self.size, periodic, self.W, dims)
        # the Cartesian communicator (no reordering: its ranks are the solver ranks) must see
        # the neighbours of the block layout
        self.comm = comm.Create_cart(dims=list(self.dec.dims), periods=list(self.dec.periods),
                                     reorder=False)
        blk = self.dec.blocks[self.rank]
        self.block = blk
        self.nbr = self.dec.neighbours(self.rank)
        for axis, lo, hi in ((1, "x_low", "x_high"), (0, "y_low", "y_high")):
            src, dst = self.comm.Shift(axis, 1)
            src, dst = max(src, -1), max(dst, -1)
            if (src, dst) != (self.nbr[lo], self.nbr[hi]):
                raise RuntimeError(f"Cartesian neighbours {(src, dst)} differ from the block "
                                   f"layout {(self.nbr[lo], self.nbr[hi])}")
        is2d = grid.ny > 1
        self.is2d = is2d
        jj, ii = blk.local_indices(grid.ny, grid.nx, is2d)
        local_prim = {k: np.ascontiguousarray(v[np.ix_(jj, ii)]) for k, v in prim.items()}
        lgrid = GridSpec(nx=ii.size, ny=jj.size if is2d else 1, dx=grid.dx, dy=grid.dy,
                         x0=grid.x0 + (blk.i0 - blk.xlo) * grid.dx,
                         y0=grid.y0 + (blk.j0 - blk.ylo) * grid.dy if is2d else grid.y0)
        lbc = {s: ("transmissive" if self.nbr[s] >= 0 else bc[s]) for s in SIDES}
        piston = {s: v for s, v in (b.get("piston_velocity") or {}).items() if self.nbr[s] < 0}
        inflow = {s: v for s, v in (b.get("inflow") or {}).items() if self.nbr[s] < 0}
        own = (slice(blk.ylo, blk.ylo + blk.j1 - blk.j0) if is2d else slice(0, 1),
               slice(blk.xlo, blk.xlo + blk.i1 - blk.i0))
        self.rate = rate
        local_rate = rate
        if rate is not None and not hasattr(rate, "pack"):
            mask = np.zeros((jj.size, ii.size), dtype=bool)
            mask[own] = True
            local_rate = _OwnedRate(rate, mask.ravel())
        self.solver = Solver(model, lgrid, model.conserved(local_prim), bc=lbc,
                             piston_velocity=piston, inflow=inflow, cfl=num["cfl"],
                             order=order, limiter=num["limiter"], riemann=num["riemann"],
                             rate=local_rate, config=cfg)
        self.solver.cell_ids = (jj[:, None] * grid.nx + ii[None, :]).ravel().astype(np.int64)
        self._aown = (slice(NG + own[0].start, NG + own[0].stop) if is2d else slice(0, 1),
                      slice(NG + own[1].start, NG + own[1].stop))
        self._setup_exchange()
        self._U_prev = np.empty_like(self.solver.U)
        self._scratch = model.scratch(1)
        self._error: tuple[str, Any] | None = None  # recorded here, raised at the next agreement
        self._stopped = False
        self.last_good_path: Path | None = None
        self.t, self.step = self.solver.t, self.solver.step
        self.global_solver = None
        if self.rank == 0:  # global arrays for output, checkpoints and the final fields
            self.global_solver = Solver(model, grid, model.conserved(prim), bc=bc,
                                        piston_velocity=b.get("piston_velocity"),
                                        inflow=b.get("inflow"), cfl=num["cfl"], order=order,
                                        limiter=num["limiter"], riemann=num["riemann"],
                                        config=cfg)
        self.tracker = detonation.tracker_from_config(cfg) if self.rank == 0 else None
        self.tracking = detonation.tracker_from_config(cfg) is not None

    # -- overlap exchange -------------------------------------------------------------------
    def _setup_exchange(self):
        """Send/receive slices and buffers, x first then y (the y exchange carries the x
        overlap columns, which fills the corners)."""
        U = self.solver.U
        blk, W = self.block, self.W
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

    def exchange(self) -> None:
        """Refresh the overlap cells from the neighbours' owned cells."""
        U = self.solver.U
        for items, bufs in self._phases:
            reqs = [self.comm.Irecv(rb, source=it[0], tag=it[4])
                    for it, (_, rb) in zip(items, bufs, strict=True)]
            for it, (sb, _) in zip(items, bufs, strict=True):
                np.copyto(sb, U[it[1]])
                reqs.append(self.comm.Isend(sb, dest=it[0], tag=it[3]))
            _wait_all(reqs, self.timeout, "exchanging overlap cells with the neighbour ranks")
            for it, (_, rb) in zip(items, bufs, strict=True):
                U[it[2]] = rb

    # -- time stepping ------------------------------------------------------------------------
    def local_rate(self) -> float:
        """CFL wave rate over the local cells, ghosts filled first as the kernel does."""
        s = self.solver
        return self.model.wave_rate(s.U, s._W, self._scratch, self.grid.dx, self.grid.dy,
                                    s._codes, s._uwall, s._inflow, s._rowstat)

    def agree(self, rate: float = 0.0) -> float:
        """Allreduce MAX of (rate, error flag); if any rank recorded an error, every solver
        rank raises it together. Returns the global rate."""
        vals = np.array([rate, 1.0 if self._error is not None else 0.0])
        out = _allreduce_max(self.comm, vals, self.timeout, "agreeing on the time step")
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
            path = None
            if self.last_good_path is not None:
                path = self._write_last_good(step, t)
            raise _CollectiveNonPhysical(variable, cell, step, t, path, None)
        raise ParallelRunError(f"solver rank {r}: {text}")

    def stop_workers(self, message: str | None) -> None:
        """Tell every closure worker this solver rank is done (with the error, if any)."""
        if self._stopped or self.proxy is None:
            return
        self._stopped = True
        for dest in self.proxy.workers:
            self.comm_world.send(("stop", message), dest=dest, tag=TAG_REQ)

    def step_once(self, dt_max: float) -> float:
        """One step of the whole grid (exchange, global dt, local step); returns dt.

        Errors of the local step are recorded, not raised: the next :meth:`agree` raises them
        on every rank at once.
        """
        s = self.solver
        self.exchange()
        grate = self.agree(self.local_rate() if self._error is None else 0.0)
        # the serial kernel's arithmetic: dt = cfl / rate, at most dt_max
        dt = s.cfl / grate if grate > 0.0 else dt_max
        if dt > dt_max:
            dt = dt_max
        if self._error is None:
            if self.last_good_path is not None:
                np.copyto(self._U_prev, s.U)
            try:
                dt_local = s.step_once(dt)
                if dt_local != dt:
                    raise RuntimeError(f"local dt {dt_local!r} differs from the global dt "
                                       f"{dt!r}")
            except CommTimeout:
                raise
            except NonPhysicalStateError as exc:
                self._error = ("guard", (str(exc), exc.variable, self._global_cell(exc.cell),
                                         self.step, self.t))
            except ParallelRunError as exc:
                self._error = ("exception", str(exc))
            except Exception as exc:
                self._error = ("exception", _format_exc(exc))
        self.step += 1
        return dt

    def check_state(self) -> None:
        """Guard the local cells (as :meth:`Solver.check_state`); an error is raised on every
        rank by the agreement that follows."""
        self.exchange()  # the overlap went stale during the last step
        if self._error is None:
            try:
                self.solver.check_state()
            except NonPhysicalStateError as exc:
                self._error = ("guard", (str(exc), exc.variable, self._global_cell(exc.cell),
                                         self.step, self.t))
        self.agree()

    def _global_cell(self, cell: tuple) -> tuple:
        blk, g = self.block, self.grid
        i = (cell[0] - blk.xlo + blk.i0) % g.nx
        if not self.is2d:
            return (i,)
        return (i, (cell[1] - blk.ylo + blk.j0) % g.ny)

    # -- gathers to rank 0 ---------------------------------------------------------------------
    def _gather_owned(self, local: np.ndarray) -> np.ndarray | None:
        """Owned part of a local (k, NY, NX) array from every rank, as a global (k, ny, nx)
        interior array on rank 0 (None elsewhere)."""
        from mpi4py import MPI

        mine = np.ascontiguousarray(local[(slice(None), *self._aown)])
        k = mine.shape[0]
        shapes = [(b.j1 - b.j0 if self.is2d else 1, b.i1 - b.i0) for b in self.dec.blocks]
        counts = [k * a * c for a, c in shapes]
        flat = None
        if self.rank == 0:
            flat = np.empty(sum(counts))
            displs = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            req = self.comm.Igatherv(mine, [flat, counts, displs, MPI.DOUBLE], root=0)
        else:
            req = self.comm.Igatherv(mine, None, root=0)
        _poll(req.Test, self.timeout, "gathering on rank 0")
        if self.rank != 0:
            return None
        out = np.empty((k, self.grid.ny, self.grid.nx))
        off = 0
        for b, c, (a, w) in zip(self.dec.blocks, counts, shapes, strict=True):
            js = slice(b.j0, b.j1) if self.is2d else slice(0, 1)
            out[:, js, b.i0:b.i1] = flat[off:off + c].reshape(k, a, w)
            off += c
        return out

    def _global_U(self, prev: bool = False) -> np.ndarray | None:
        """Global conserved state (ghosts filled) on rank 0 in the global solver's U."""
        Ui = self._gather_owned(self._U_prev if prev else self.solver.U)
        if self.rank != 0:
            return None
        gs = self.global_solver
        gs.interior[:] = Ui
        self.model.fill_ghosts(gs.U, gs._codes, gs._uwall, gs._inflow)
        return gs.U

    def fields(self) -> dict | None:
        """Global output fields on rank 0 (None elsewhere); collective."""
        self.agree()
        self._global_U()
        return self.global_solver.fields() if self.rank == 0 else None

    def track(self) -> None:
        """Shock-tracker callback with the gathered pressure (collective, when tracking)."""
        if not self.tracking:
            return
        f = self.solver.fields()["p"]
        p = f[None, None, :] if f.ndim == 1 else f[None]
        full = np.zeros((1, *self.solver.U.shape[1:]))
        full[(slice(None), *self._aown)] = p[(slice(None), *(
            (slice(0, 1) if not self.is2d else slice(self._aown[0].start - NG,
                                                     self._aown[0].stop - NG)),
            slice(self._aown[1].start - NG, self._aown[1].stop - NG)))]
        g = self._gather_owned(full)
        if self.rank == 0:
            pg = g[0, 0] if not self.is2d else g[0]
            self.tracker(_View(self.grid, self.t, pg))

    # -- checkpoints ---------------------------------------------------------------------------
    def _rate_states(self) -> tuple[list, list]:
        """(adapter state of every solver rank, provider state of every worker) on rank 0,
        ([], []) elsewhere; collective. With M = 0 the providers' states are inside the
        adapters' (as in the serial run)."""
        sd = getattr(self.rate, "state_dict", None)
        if not callable(sd):
            return [], []
        ranks = self.comm.gather(sd(), root=0)
        workers = []
        if self.proxy is not None and self.rank == 0:
            workers = self.proxy.state_dicts()
        return (ranks, workers) if self.rank == 0 else ([], [])

    def save_checkpoint(self, path: str | Path) -> None:
        """Global checkpoint (serial layout plus the closure holders' states) written
        atomically by rank 0; collective."""
        self.agree()
        U = self._global_U()
        ranks, workers = self._rate_states()
        if self.rank == 0:
            self._write_checkpoint(path, U, self.step, self.t, ranks, workers)
        self.agree()

    def _write_checkpoint(self, path, U, step, t, ranks: list, workers: list):
        """Layout: ``rate_state.*`` = solver rank 0's adapter state with worker 0's provider
        state under ``provider`` (exactly the serial layout for one solver rank and at most
        one worker), ``rate_state_rank{k}.*`` for the other solver ranks and
        ``closure_state_{w}.*`` for the other workers."""
        arrays: dict[str, np.ndarray] = {"U": U}
        attrs: dict[str, Any] = {"t": t, "step": step, "config": self.cfg,
                                 "model": self.model.to_dict(),
                                 "solver_ranks": self.size,
                                 "closure_workers": 0 if self.proxy is None
                                 else len(self.proxy.workers)}
        if ranks:
            first = dict(ranks[0])
            if workers and workers[0] is not None:
                first["provider"] = workers[0]
            a, tree = flatten_state(first, RATE_STATE)
            arrays.update(a)
            attrs["rate_state_tree"] = tree
            rank_trees, worker_trees = [], []
            for k, st in enumerate(ranks[1:], start=1):
                a, tree = flatten_state(st, f"rate_state_rank{k}")
                arrays.update(a)
                rank_trees.append(tree)
            for w, st in enumerate(workers[1:], start=1):
                a, tree = flatten_state(st if st is not None else {}, f"closure_state_{w}")
                arrays.update(a)
                worker_trees.append(tree if st is not None else None)
            if rank_trees:
                attrs["rate_state_rank_trees"] = rank_trees
            if worker_trees:
                attrs["closure_state_trees"] = worker_trees
        if self.tracker is not None:
            a, tree = flatten_state(self.tracker.state_dict(), "extra_shock_tracker")
            arrays.update(a)
            attrs["extra_state_trees"] = {"shock_tracker": tree}
        save_checkpoint(path, arrays, attrs)

    def _write_last_good(self, step: int, t: float) -> Path:
        """The state before the failing step (every rank kept a copy), written by rank 0."""
        U = self._global_U(prev=True)
        if self.rank == 0:
            save_checkpoint(self.last_good_path, {"U": U},
                            {"t": t, "step": step, "config": self.cfg,
                             "model": self.model.to_dict()})
        return self.last_good_path

    def load_checkpoint(self, path: str | Path) -> None:
        """Read a checkpoint (this layout or a serial one) on rank 0 and scatter the state and
        the rate/closure states to their holders; collective."""
        meta, U, ranks, workers, extra = None, None, [], [], None
        if self.rank == 0:
            try:
                arrays, attrs = load_checkpoint(path)
                U = arrays["U"]
                if U.shape != self.global_solver.U.shape:
                    raise ValueError(f"checkpoint {path} holds U of shape {U.shape}, this run "
                                     f"has {self.global_solver.U.shape}")
                if "rate_state_tree" in attrs:
                    first = unflatten_state(arrays, attrs["rate_state_tree"], RATE_STATE)
                    ranks.append(first)
                    for k, tree in enumerate(attrs.get("rate_state_rank_trees", []), start=1):
                        ranks.append(unflatten_state(arrays, tree, f"rate_state_rank{k}"))
                saved_m = int(attrs.get("closure_workers", 0))
                if saved_m and ranks:
                    workers.append(ranks[0].pop("provider", None))
                    for w, tree in enumerate(attrs.get("closure_state_trees", []), start=1):
                        workers.append(None if tree is None else
                                       unflatten_state(arrays, tree, f"closure_state_{w}"))
                trees = attrs.get("extra_state_trees", {})
                if "shock_tracker" in trees:
                    extra = unflatten_state(arrays, trees["shock_tracker"],
                                            "extra_shock_tracker")
                # a serial checkpoint: one solver rank; its provider state (if any) serves a
                # single worker as well as a provider on the solver rank
                serial = "solver_ranks" not in attrs
                meta = (float(attrs["t"]), int(attrs["step"]),
                        int(attrs.get("solver_ranks", 1)), saved_m, serial, len(ranks), None)
            except Exception as exc:
                meta = (0.0, 0, 0, 0, False, 0, _format_exc(exc))
        t, step, saved_s, saved_m, serial, count, err = self.comm.bcast(meta, root=0)
        if err is not None:
            raise ParallelRunError(f"rank 0 could not read checkpoint {path}: {err}")
        stateful = callable(getattr(self.rate, "load_state_dict", None))
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
        self.t = self.solver.t = t
        self.step = self.solver.step = step
        interior = self.solver.interior
        if self.rank == 0:
            Ug = U[:, NG:-NG, NG:-NG] if self.is2d else U[:, :, NG:-NG]
            reqs, bufs = [], []
            for b in self.dec.blocks:
                jj, ii = b.local_indices(self.grid.ny, self.grid.nx, self.is2d)
                part = np.ascontiguousarray(Ug[:, jj][:, :, ii])
                if b.rank == 0:
                    interior[:] = part
                else:
                    bufs.append(part)
                    reqs.append(self.comm.Isend(part, dest=b.rank, tag=TAG_SCATTER))
            _wait_all(reqs, self.timeout, "scattering the checkpoint")
            if self.tracker is not None and extra is not None:
                self.tracker.load_state_dict(extra)
        else:
            buf = np.empty(interior.shape)
            _wait_all([self.comm.Irecv(buf, source=0, tag=TAG_SCATTER)], self.timeout,
                      "receiving the checkpoint from rank 0")
            interior[:] = buf
        if stateful:
            if self.proxy is not None and self.rank == 0:
                if serial and not workers:  # a serial checkpoint: its provider -> worker 0
                    workers = [ranks[0].pop("provider", None)]
                self.proxy.load_state_dicts(workers)
            self.rate.load_state_dict(self.comm.scatter(ranks if self.rank == 0 else None,
                                                        root=0))
        self.agree()


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


def _advance(ds: DistributedSolver, t_end: float, frame_times, writer, progress, checkpoint,
             checkpoint_every, max_steps=None):
    """:meth:`Solver.advance` on the distributed solver (the same time arithmetic)."""
    from .solver import time_bar

    frames = sorted(float(f) for f in frame_times if f > ds.t)
    bar = time_bar(ds.t, t_end, disable=not progress or ds.rank != 0)
    try:
        while ds.t < t_end:
            target = frames[0] if frames and frames[0] < t_end else t_end
            dt = ds.step_once(target - ds.t)
            if dt >= target - ds.t:
                dt_taken = target - ds.t
                ds.t = target
            else:
                dt_taken = dt
                ds.t += dt
            ds.solver.t = ds.t
            if not (dt_taken > 0.0):
                raise ParallelRunError(f"time step collapsed to {dt_taken!r} at step "
                                       f"{ds.step}, t={ds.t!r}")
            bar.update(dt_taken / bar.seconds)
            if frames and ds.t >= frames[0]:
                frames.pop(0)
                f = ds.fields()
                if writer is not None:
                    writer.write_frame(ds.t, ds.step, f)
            if ds.tracking:
                ds.agree()
                ds.track()
            if checkpoint and checkpoint_every and ds.step % checkpoint_every == 0:
                ds.save_checkpoint(checkpoint)
            if max_steps is not None and ds.step >= max_steps:
                break
    finally:
        bar.close()
    ds.check_state()  # the serial advance guards the final state too


def run_distributed(config: str | Path | dict, *, closure_workers: int = 0,
                    output: str | Path | None = None, restart: str | Path | None = None,
                    checkpoint: str | Path | None = None, progress: bool = False,
                    plots: bool | None = None, rate=None, provider=None, comm=None,
                    timeout: float | None = None, max_steps: int | None = None) -> Result | None:
    """Run a config on every rank of ``comm`` (default COMM_WORLD); call it on every rank.

    The last ``closure_workers`` ranks hold the rate provider (``provider``: an object with
    ``query`` or a zero-argument factory; else the config's ``[reaction] provider`` factory)
    and answer the other ranks' queries; with 0 every solver rank holds its own. ``rate``
    (a built-in rate) replaces the config's reaction. Returns the
    :class:`~macro.simulation.Result` on rank 0 (fields included), a Result without fields on
    the other solver ranks and None on workers. ``timeout`` (s, default MACRO_MPI_TIMEOUT or
    600) bounds a solver rank's wait for a worker's reply; waits between solver ranks get twice
    that and an idle worker three times, so the innermost wait expires first and names the
    rank that hung (then MPI_Abort ends the job).
    """
    from mpi4py import MPI

    install_excepthook()
    timeout = env_timeout() if timeout is None else float(timeout)
    world = comm if comm is not None else MPI.COMM_WORLD
    K, wrank = world.Get_size(), world.Get_rank()
    M = closure_workers
    if isinstance(M, bool) or not isinstance(M, int | np.integer) or not (0 <= M < K):
        raise _CollectiveValueError(
            f"closure_workers={closure_workers!r} must be an integer in [0, {K - 1}] with {K} "
            "MPI ranks (at least one solver rank)")
    S = K - M
    is_worker = wrank >= S
    sub = world.Split(1 if is_worker else 0, wrank)
    err = None
    ds = holder = cfg = None
    try:
        cfg = load_config(config)
        wants_provider = provider is not None or is_provider_config(cfg)
        if M > 0 and not wants_provider:
            raise ValueError("closure workers need a rate provider: [reaction] type = "
                             "'closure' with provider = 'module:factory' in the config")
        grid = build_grid(cfg["grid"])
        if is_worker:
            holder = make_provider(cfg, provider)
        else:
            if M > 0:
                run_rate = make_rate(cfg, provider=WorkerProxy(world, list(range(S, K)),
                                                               grid.nx * grid.ny, timeout))
            elif wants_provider:
                run_rate = make_rate(cfg, provider=make_provider(cfg, provider))
            else:
                run_rate = make_rate(cfg, rate=rate)
            ds = DistributedSolver(cfg, sub, rate=run_rate,
                                   proxy=getattr(run_rate, "provider", None) if M > 0 else None,
                                   timeout=timeout, world=world)
            if M > 0 and not isinstance(ds.proxy, WorkerProxy):
                raise TypeError("the rate adapter does not expose its provider (.provider)")
    except Exception as exc:
        err = _format_exc(exc)
    errors = world.allgather(err)
    bad = [(r, e) for r, e in enumerate(errors) if e is not None]
    if bad:
        r, e = bad[0]
        raise ParallelRunError(f"set-up failed on rank {r}: {e}")

    if is_worker:
        message = serve(world, holder, S, timeout)
        if message is not None:
            raise ParallelRunError(message)
        return None
    try:
        result = _run_solver(ds, cfg, output, restart, checkpoint, progress, plots, max_steps)
    except BaseException as exc:
        ds.stop_workers(f"solver rank {wrank}: {exc}")
        raise
    ds.stop_workers(None)
    return result


def _run_solver(ds: DistributedSolver, cfg, output, restart, checkpoint, progress, plots,
                max_steps):
    import time as _time

    wall0 = _time.perf_counter()
    tcfg = cfg["time"]
    t_end = float(tcfg["t_end"])
    n_frames = int(tcfg["n_frames"])
    frame_times = [t_end * (k + 1) / n_frames for k in range(n_frames)] if n_frames else []
    if output is not None:
        output = Path(output)
        ds.last_good_path = output.with_name(output.stem + "_last_good.h5")
    if restart is not None:
        ds.load_checkpoint(restart)
    writer = None
    if output is not None and ds.rank == 0:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            writer = OutputWriter(output, ds.grid, cfg,
                                  mode="a" if restart is not None and output.exists() else "w")
        except Exception as exc:
            ds._error = ("exception", f"rank 0 could not open {output}: {_format_exc(exc)}")
    ckpt_every = int(cfg["output"].get("checkpoint_every", 0))
    if checkpoint is None and output is not None and ckpt_every:
        checkpoint = output.with_name(output.stem + "_checkpoint.h5")
    x, y = ds.grid.cell_centers()
    try:
        if restart is None:
            f = ds.fields()
            if writer is not None:
                writer.write_frame(ds.t, ds.step, f)
        else:
            ds.agree()
        _advance(ds, t_end, frame_times, writer, progress, checkpoint, ckpt_every, max_steps)
        fields = ds.fields()
        extra = {}
        names = {f.name for f in dataclasses.fields(Result)}
        if ds.rank == 0:
            if "history" in names and ds.tracker is not None:
                extra["history"] = ds.tracker.arrays()
            extra.update({k: v for k, v in (("config", cfg), ("model", ds.model)) if k in names})
        result = Result(t=ds.t, steps=ds.step, x=x, y=y, fields=fields or {}, output=output,
                        **extra)
        if writer is not None:
            writer.write_final(ds.t, ds.step, fields)
            history = extra.get("history")
            if history is not None:
                writer.write_group("detonation", history, detonation.run_attrs(result))
    finally:
        if writer is not None:
            writer.close()
    if "wall_s" in {f.name for f in dataclasses.fields(Result)}:
        result.wall_s = _time.perf_counter() - wall0
    if output is not None and ds.rank == 0:
        do_plots = cfg["output"]["plots"] if plots is None else plots
        if do_plots:
            from .plotting import plot_detonation, plot_result

            result.plots = plot_result(result, cfg, output.with_suffix(""))
            if extra.get("history") is not None:
                result.plots += plot_detonation(result, output.with_suffix(""))
    return result


def env_timeout(default: float = DEFAULT_TIMEOUT) -> float:
    """The deadline for waits on other ranks: MACRO_MPI_TIMEOUT (seconds) if set."""
    v = os.environ.get("MACRO_MPI_TIMEOUT")
    if v is None:
        return default
    try:
        t = float(v)
    except ValueError:
        t = float("nan")
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"MACRO_MPI_TIMEOUT={v!r} must be a positive number of seconds")
    return t
