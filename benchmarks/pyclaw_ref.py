"""PyClaw (clawpack) reference timings for side-by-side cell-update rates.

Only the time stepping (``solver.evolve_to_time``) is timed; setup and a
one-step warm-up on a separate copy of the problem are not. Cell updates are
cells x accepted steps (``solver.status["numsteps"]``); time spent on steps
PyClaw rejects (CFL > cfl_max) is inside "seconds" but not counted as updates.
The initial dt is half the CFL dt of the initial data (PyClaw's default
dt_initial=0.1 would be rejected), and max_steps is raised above PyClaw's 10000.

Caveat: the 1D Fortran step (``classic1.step1``) lets f2py allocate its work
arrays on every step; past ~2000 cells glibc serves them with mmap, and the
page faults can take half the run (Sod at 20000 cells: ~7 Mcups as is, ~15 with
``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296``).
The 2D solver passes preallocated work arrays and is unaffected.

Single thread: set ``OMP_NUM_THREADS=1`` (and ``OPENBLAS_NUM_THREADS=1``)
before numpy/clawpack are first imported; that is the caller's job, the
``__main__`` block below does it for itself.

Install: ``apt-get install -y gfortran``, ``pip install meson-python meson
ninja``, ``pip install --no-build-isolation clawpack``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

GAMMA = 1.4


def available() -> bool:
    """Return True if clawpack (pyclaw and riemann) can be imported."""
    try:
        from clawpack import pyclaw, riemann  # noqa: F401
    except ImportError:
        return False
    return True


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("clawpack")
    except PackageNotFoundError:
        return "?"


def _max_signal(rho: np.ndarray, vel: np.ndarray, p: np.ndarray) -> float:
    return float(np.max(np.abs(vel) + np.sqrt(GAMMA * p / rho)))


def _timed(build: Callable[[], tuple[Any, Any, int]], t_end: float) -> dict:
    """Warm up on one copy of the problem, then time evolve_to_time on a fresh one."""
    solver, solution, _ = build()
    solver.setup(solution)
    solver.evolve_to_time(solution)  # one untimed step: warm-up

    solver, solution, cells = build()
    solver.setup(solution)
    attempts = 0

    def count(_solver: Any, _state: Any) -> None:
        nonlocal attempts
        attempts += 1

    solver.before_step = count
    t0 = time.perf_counter()
    status = solver.evolve_to_time(solution, t_end)
    seconds = time.perf_counter() - t0
    if abs(solution.t - t_end) > 1e-9 * max(1.0, t_end):
        raise RuntimeError(f"PyClaw stopped at t={solution.t}, not {t_end}")
    steps = int(status["numsteps"])
    return {
        "cells": cells,
        "steps": steps,
        "rejected": attempts - steps,
        "seconds": seconds,
        "mcups": cells * steps / seconds / 1e6,
    }


def pyclaw_sod(n_cells: int, t_end: float = 0.2, cfl: float = 0.8) -> dict:
    """Time PyClaw classic 1D on Sod's shock tube ([0,1], n_cells, transmissive ends)."""
    from clawpack import pyclaw, riemann

    rp = getattr(riemann, "euler_hllc_1D", None)
    rp_name = "euler_hllc_1D"
    if rp is None:
        rp, rp_name = riemann.euler_with_efix_1D, "euler_with_efix_1D (Roe + entropy fix)"

    def build() -> tuple[Any, Any, int]:
        solver = pyclaw.ClawSolver1D(rp)
        solver.kernel_language = "Fortran"
        solver.limiters = pyclaw.limiters.tvd.MC
        solver.order = 2
        solver.cfl_desired = cfl
        solver.cfl_max = 1.0
        solver.max_steps = 10**8
        solver.bc_lower[0] = pyclaw.BC.extrap
        solver.bc_upper[0] = pyclaw.BC.extrap

        domain = pyclaw.Domain([pyclaw.Dimension(0.0, 1.0, n_cells, name="x")])
        state = pyclaw.State(domain, 3)
        state.problem_data["gamma"] = GAMMA
        x = state.grid.x.centers
        left = x < 0.5
        rho = np.where(left, 1.0, 0.125)
        p = np.where(left, 1.0, 0.1)
        state.q[0, :] = rho
        state.q[1, :] = 0.0
        state.q[2, :] = p / (GAMMA - 1.0)
        solver.dt_initial = solver.dt = 0.5 * cfl / n_cells / _max_signal(rho, 0.0 * rho, p)
        return solver, pyclaw.Solution(state, domain), n_cells

    out = _timed(build, t_end)
    out["solver"] = (
        f"PyClaw {_version()} ClawSolver1D, Fortran kernels, riemann.{rp_name}, "
        f"MC limiter, order 2, cfl_desired {cfl}, cfl_max 1.0"
    )
    return out


def pyclaw_quadrant(n: int, t_end: float = 0.25, cfl: float = 0.8) -> dict:
    """Time PyClaw classic 2D on Lax-Liu configuration 3 ([0,1]^2, n x n, extrapolation)."""
    from clawpack import pyclaw, riemann

    for rp_name in ("euler_hlle_2D", "euler_4wave_2D"):
        rp = getattr(riemann, rp_name, None)
        if rp is not None:
            break
    else:
        raise ImportError("no Euler 2D Riemann solver in clawpack.riemann")

    def build() -> tuple[Any, Any, int]:
        solver = pyclaw.ClawSolver2D(rp)
        solver.kernel_language = "Fortran"
        solver.limiters = pyclaw.limiters.tvd.MC
        solver.cfl_desired = cfl
        solver.cfl_max = 1.0
        solver.max_steps = 10**8
        solver.all_bcs = pyclaw.BC.extrap

        domain = pyclaw.Domain([0.0, 0.0], [1.0, 1.0], [n, n])
        solution = pyclaw.Solution(4, domain)
        solution.problem_data["gamma"] = GAMMA
        xx, yy = domain.grid.p_centers
        right, top = xx > 0.5, yy > 0.5
        rho = np.select([right & top, ~right & top, ~right & ~top], [1.5, 0.5323, 0.138], 0.5323)
        u = np.where(right, 0.0, 1.206)
        v = np.where(top, 0.0, 1.206)
        p = np.select([right & top, ~right & ~top], [1.5, 0.029], 0.3)
        solution.q[0, ...] = rho
        solution.q[1, ...] = rho * u
        solution.q[2, ...] = rho * v
        solution.q[3, ...] = p / (GAMMA - 1.0) + 0.5 * rho * (u**2 + v**2)
        speed = max(_max_signal(rho, u, p), _max_signal(rho, v, p))
        solver.dt_initial = solver.dt = 0.5 * cfl / n / speed
        return solver, solution, n * n

    probe = pyclaw.ClawSolver2D(rp)
    out = _timed(build, t_end)
    out["solver"] = (
        f"PyClaw {_version()} ClawSolver2D, Fortran kernels, riemann.{rp_name}, "
        f"MC limiter, order 2, dimensional_split={probe.dimensional_split} "
        f"(PyClaw default; Godunov x-then-y sweeps, so transverse_waves="
        f"{probe.transverse_waves} is unused), cfl_desired {cfl}, cfl_max 1.0"
    )
    return out


if __name__ == "__main__":
    import os
    import sys

    if os.environ.get("OMP_NUM_THREADS") != "1":
        # numpy is already imported above, so re-exec with the variables set.
        os.environ["OMP_NUM_THREADS"] = "1"
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    if not available():
        sys.exit("clawpack is not importable")
    for res in (pyclaw_sod(2000), pyclaw_sod(20000)):
        print(
            f"sod      {res['cells']:>8} cells {res['steps']:>6} steps "
            f"{res['seconds']:8.3f} s {res['mcups']:7.2f} Mcups ({res['rejected']} rejected)"
        )
    for m in (256, 512):
        res = pyclaw_quadrant(m)
        print(
            f"quadrant {m:>4}^2 cells {res['steps']:>6} steps "
            f"{res['seconds']:8.3f} s {res['mcups']:7.2f} Mcups ({res['rejected']} rejected)"
        )
    print(pyclaw_sod(100)["solver"])
    print(pyclaw_quadrant(16)["solver"])
