"""Command line: ``python -m macro run CONFIG.toml [--output FILE.h5]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    args = parser.parse_args(argv)

    if args.threads is not None:
        import numba

        if not (1 <= args.threads <= numba.config.NUMBA_NUM_THREADS):
            parser.error(f"--threads={args.threads} must be in [1, "
                         f"{numba.config.NUMBA_NUM_THREADS}]")
        numba.set_num_threads(args.threads)

    from .simulation import Simulation

    sim = Simulation.from_config(args.config)
    output = args.output or Path(args.config.stem + ".h5")
    result = sim.run(output, progress=not args.no_progress, restart=args.restart,
                     checkpoint=args.checkpoint, plots=False if args.no_plots else None)
    print(f"t = {result.t:.6g} s after {result.steps} steps; output {result.output} "
          f"(+ {result.output.with_suffix('.xmf').name})")
    for p in result.plots:
        print(f"plot {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
