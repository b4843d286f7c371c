"""Where a solver's cells live: the seams between the run loop and its distribution.

:meth:`macro.solver.Solver.advance` and :meth:`macro.simulation.Simulation.run` are the one
run loop of serial and decomposed runs. Everything that differs between the two goes through
the solver's :class:`Domain`, as in PyClaw, where the same ``evolve_to_time`` runs serially and
under PETSc and MPI enters only through the ghost exchange and the global CFL reduction:

* :meth:`Domain.step`: one step of the grid (a decomposed run refreshes its overlap, agrees
  on the global dt and defers a local failure to the next agreement);
* :meth:`Domain.check_state`, :meth:`Domain.agree`, :meth:`Domain.on_root` and
  :meth:`Domain.collective_error`: errors that every process raises together;
* :meth:`Domain.gather_fields`, :meth:`Domain.write_frame`, :meth:`Domain.call`: output
  fields of the whole grid (on the root process);
* :meth:`Domain.save_checkpoint`, :meth:`Domain.load_checkpoint`, :meth:`Domain.last_good`:
  checkpoints of the whole grid.

This module is the serial domain, where each seam is the solver acting on its own cells;
:class:`macro.parallel.DistributedDomain` is the decomposed one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import checkpoint

if TYPE_CHECKING:
    from .grid import GridSpec
    from .solver import Solver

__all__ = ["Domain"]


class Domain:
    """The whole grid in this process (a serial run)."""

    is_root = True  # this process writes output and checkpoints
    grid: GridSpec  # the whole grid (the solver's own grid here)

    def localize(self, model, grid: GridSpec, prim: dict, bc: dict, piston_velocity: dict,
                 inflow: dict) -> tuple[GridSpec, dict, dict, dict, dict]:
        """The part of a problem (grid, primitive fields, boundaries) this process solves:
        all of it."""
        return grid, prim, bc, piston_velocity, inflow

    def attach(self, solver: Solver) -> None:
        """Called by the solver it serves, once it is built."""
        self.grid = solver.grid

    # -- stepping and errors ----------------------------------------------------------------
    def step(self, solver: Solver, dt_max: float) -> float:
        """One step of the whole grid, at most ``dt_max``; returns dt."""
        return solver.step_local(dt_max)

    def check_state(self, solver: Solver) -> None:
        """Guard the current state of the whole grid."""
        solver.check_local()

    def agree(self) -> None:
        """Raise, on every process, an error one of them deferred (none to raise here)."""

    def on_root(self, fn: Callable[[], Any], what: str = "failed") -> Any:
        """``fn()`` on the root process (its error, described by ``what``, raised on every
        process at the next agreement in a decomposed run); None elsewhere."""
        return fn()

    def collective_error(self, message: str) -> Exception:
        """The exception for an error that every process detects at the same point."""
        return RuntimeError(message)

    # -- fields of the whole grid -----------------------------------------------------------
    def gather_fields(self, solver: Solver) -> dict | None:
        """Output fields of the whole grid on the root process (None elsewhere)."""
        return solver.fields()

    def write_frame(self, solver: Solver, writer) -> None:
        """Write the current fields of the whole grid as a frame (root's ``writer``)."""
        if writer is not None:
            writer.write_frame(solver.t, solver.step, solver.fields())

    def call(self, solver: Solver, callback: Callable) -> None:
        """Run a per-step callback (the shock tracker) on the whole grid."""
        callback(solver)

    # -- checkpoints ------------------------------------------------------------------------
    def save_checkpoint(self, solver: Solver, path: str | Path) -> None:
        """Atomic checkpoint of the whole state (:mod:`macro.checkpoint`)."""
        checkpoint.save(path, solver)

    def load_checkpoint(self, solver: Solver, path: str | Path) -> None:
        """Restore the state written by :meth:`save_checkpoint`."""
        checkpoint.restore(path, solver)

    def last_good(self, solver: Solver) -> Path | None:
        """On a guard failure: write the last good state (already restored in the solver) to
        ``solver.last_good_path`` and return the path (None without one)."""
        if solver.last_good_path is None:
            return None
        self.save_checkpoint(solver, solver.last_good_path)
        return solver.last_good_path
