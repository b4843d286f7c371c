"""Command line: ``python -m macro run CONFIG.toml [--output FILE.h5]``.

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
    args = parser.parse_args(argv)
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

    from .solver import NonPhysicalStateError

    try:
        return _run_serial(args)
    except (ValueError, FileNotFoundError, NonPhysicalStateError) as exc:  # ConfigError too
        if args.debug:
            raise
        text = " ".join(str(exc).split())  # one line, whatever the message holds
        print(f"error: {text}", file=sys.stderr)
        return 2


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
