"""Command line: ``python -m macro run CONFIG.toml [--output FILE.h5]`` and
``python -m macro pop CONFIG.toml --pressures 3,4,5 [--dx M] [--json OUT] [--png OUT]``.

A bad config, a missing file or a run that goes non-physical ends with one line ``error: ...``
on stderr and exit status 2 (``--debug``: the full traceback instead).

Under MPI: ``mpiexec -n K python -m macro run CONFIG.toml --closure-workers M`` runs K - M
solver ranks and M closure worker ranks (:mod:`macro.parallel`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _mpi_launched() -> bool:
    """True when started by an MPI launcher with more than one rank (no mpi4py import)."""
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        if int(os.environ.get(var, "1") or 1) > 1:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m macro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a simulation from a TOML config")
    run.add_argument("config", type=Path)
    run.add_argument("--output", type=Path, default=None,
                     help="HDF5 output file (default: <config stem>.h5 in the current directory)")
    run.add_argument("--restart", type=Path, default=None, help="checkpoint to continue from")
    run.add_argument("--checkpoint", type=Path, default=None,
                     help="checkpoint file written every [output] checkpoint_every steps")
    run.add_argument("--threads", type=int, default=None, help="Numba threads")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--debug", action="store_true",
                     help="show the full traceback of an error (default: one line)")
    run.add_argument("--closure-workers", type=int, default=None, metavar="M",
                     help="under mpiexec: the last M ranks hold the closure provider and answer "
                          "the solver ranks' queries (0: each solver rank holds its own)")
    pop = sub.add_parser("pop", help="Pop plot: run distance against input pressure "
                                      "(one 1D run per pressure, macro.pop)")
    pop.add_argument("config", type=Path)
    pop.add_argument("--pressures", default="3,4,5,6,8,10,12,15,20",
                     help="input pressures in GPa, comma separated (default: %(default)s)")
    pop.add_argument("--dx", type=float, default=None,
                     help="cell size (m) for every pressure (default: the config's [pop] rule)")
    pop.add_argument("--json", type=Path, default=None, help="write the points and fit (JSON)")
    pop.add_argument("--png", type=Path, default=None, help="write the Pop plot (PNG)")
    pop.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                     help="parallel processes (default: %(default)s)")
    pop.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    pop.add_argument("--debug", action="store_true",
                     help="show the full traceback of an error (default: one line)")
    args = parser.parse_args(argv)
    if args.command == "pop":
        return _guarded(args, _pop)
    if args.closure_workers is not None and args.closure_workers < 0:
        parser.error(f"--closure-workers={args.closure_workers} must be >= 0")

    if args.threads is not None:
        import numba

        if not (1 <= args.threads <= numba.config.NUMBA_NUM_THREADS):
            parser.error(f"--threads={args.threads} must be in [1, "
                         f"{numba.config.NUMBA_NUM_THREADS}]")
        numba.set_num_threads(args.threads)

    if args.closure_workers is not None or _mpi_launched():
        return _run_mpi(args)

    return _guarded(args, _run_serial)


def _guarded(args, fn) -> int:
    """Run ``fn(args)``; user errors end as one ``error: ...`` line and status 2."""
    from .solver import NonPhysicalStateError

    try:
        return fn(args)
    except (ValueError, FileNotFoundError, RuntimeError, NonPhysicalStateError) as exc:
        if args.debug:
            raise
        text = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"error: {text}", file=sys.stderr)
        return 2


def _pop(args) -> int:
    from . import pop

    pressures = pop.parse_pressures(args.pressures)
    if args.dx is not None and not (args.dx > 0 and args.dx < float("inf")):
        raise ValueError(f"--dx={args.dx!r} must be finite and > 0 (m)")
    if args.workers < 1:
        raise ValueError(f"--workers={args.workers} must be >= 1")
    points = pop.pop_sweep(args.config, pressures, dx=args.dx, workers=args.workers,
                           progress=not args.no_progress)
    print(f"{'P (GPa)':>8} {'x* (mm)':>9} {'t* (us)':>8} {'exp x* (mm)':>11} {'ratio':>6} "
          f"{'x*_speed (mm)':>13} {'dx (um)':>8}")
    for p in points:
        ratio = p.x_star / p.exp_x_star if p.detonated else float("nan")
        print(f"{p.pressure / 1e9:8.3g} {p.x_star * 1e3:9.4g} {p.t_star * 1e6:8.4g} "
              f"{p.exp_x_star * 1e3:11.4g} {ratio:6.3f} {p.x_star_speed * 1e3:13.4g} "
              f"{p.dx * 1e6:8.3g}")
    fit = pop.fit_pop(points)
    print(f"fit: log10(P/GPa) = {fit['a']:.3f} - {fit['b']:.3f} log10(x*/mm) "
          f"(experiment: {pop.POP_PBX9501['a']} - {pop.POP_PBX9501['b']})")
    if args.json is not None:
        from .config import load_config

        doc = pop.pop_document(points, {"config": load_config(args.config)})
        print(f"wrote {pop.write_json(doc, args.json)}")
    if args.png is not None:
        print(f"wrote {pop.plot_pop([(args.config.stem, points)], args.png)}")
    pop.require_detonated(points)
    return 0


def _run_serial(args) -> int:
    from .simulation import Simulation

    sim = Simulation.from_config(args.config)
    output = args.output or Path(args.config.stem + ".h5")
    result = sim.run(output, progress=not args.no_progress, restart=args.restart,
                     checkpoint=args.checkpoint, plots=False if args.no_plots else None)
    print(f"t = {result.t:.6g} s after {result.steps} steps; output {result.output} "
          f"(+ {result.output.with_suffix('.xmf').name})")
    for p in result.plots:
        print(f"plot {p}")
    if result.summary():
        print(result.summary())
    return 0


def _run_mpi(args) -> int:
    from mpi4py import MPI

    from .parallel import run_distributed
    from .solver import NonPhysicalStateError

    rank = MPI.COMM_WORLD.Get_rank()
    output = args.output or Path(args.config.stem + ".h5")
    try:
        result = run_distributed(args.config, closure_workers=args.closure_workers or 0,
                                 output=output, restart=args.restart,
                                 checkpoint=args.checkpoint, progress=not args.no_progress,
                                 plots=False if args.no_plots else None)
    except (NonPhysicalStateError, RuntimeError, ValueError) as exc:
        if not getattr(exc, "collective", False):
            raise  # the MPI exception hook prints it and aborts every rank
        sys.stderr.write(f"[rank {rank}] error: {exc}\n")  # one write: lines stay whole
        sys.stderr.flush()
        return 1
    if rank == 0:
        print(f"t = {result.t:.6g} s after {result.steps} steps on "
              f"{MPI.COMM_WORLD.Get_size() - (args.closure_workers or 0)} solver rank(s) and "
              f"{args.closure_workers or 0} closure worker(s); output {result.output} "
              f"(+ {result.output.with_suffix('.xmf').name})")
        for p in result.plots:
            print(f"plot {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
