"""Command line: ``python -m closure.data {generate,show,manifest} ...``.

Examples::

    python -m closure.data generate --scale micro --n 200 --seed 0 --out data/micro.h5 --workers 2
    python -m closure.data generate --scale meso --n 24 --seed 1 --out data/meso.h5 \\
        --config configs/data/meso.toml
    python -m closure.data show data/micro.h5              # summary + data/micro.png
    python -m closure.data manifest data/micro.h5          # (re)write data/micro.h5.manifest.json

Re-running ``generate`` with the same options on an existing file resumes it: finished samples
are kept, pending and failed ones are (re)computed.
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import load_data_config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m closure.data",
                                description="Pore-collapse training data sets (HDF5).")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate or resume a data set")
    g.add_argument("--scale", choices=("micro", "meso"), required=True)
    g.add_argument("--n", type=int, required=True, help="number of samples")
    g.add_argument("--seed", type=int, required=True, help="data-set seed")
    g.add_argument("--out", required=True, help="output HDF5 file (resumed if it exists)")
    g.add_argument("--config", help="TOML file overriding the scale's defaults")
    g.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="override one config value (repeatable)")
    g.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    g.add_argument("--threads", type=int, default=1,
                   help="Numba threads per worker process when --workers > 1 (default 1)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-manifest", action="store_true", help="do not write the manifest")
    g.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    s = sub.add_parser("show", help="print a summary and write a PNG of sample frames")
    s.add_argument("file")
    s.add_argument("--png", help="PNG path (default: FILE with .png)")
    s.add_argument("--samples", type=int, default=3, help="samples to plot (default 3)")
    s.add_argument("--frames", type=int, default=6, help="frames per sample (default 6)")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    m = sub.add_parser("manifest", help="(re)write FILE.manifest.json")
    m.add_argument("file")
    m.add_argument("--out", help="manifest path (default FILE.manifest.json)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "generate":
        from .generate import GenerationError, generate

        try:
            cfg = load_data_config(args.scale, args.config, args.overrides)
            generate(cfg, args.n, args.seed, args.out, workers=args.workers,
                     threads_per_worker=args.threads, progress=not args.no_progress,
                     stop_after=args.stop_after, manifest=not args.no_manifest)
        except (ValueError, FileNotFoundError, RuntimeError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1 if not isinstance(exc, GenerationError) else 3
        return 0
    if args.cmd == "show":
        from .show import show

        try:
            summ, png = show(args.file, png=args.png, n_samples=args.samples,
                             n_frames=args.frames, echo=not args.json)
        except (ValueError, FileNotFoundError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(summ, indent=1, default=str))
        print(f"wrote {png}", file=sys.stderr)
        return 0
    if args.cmd == "manifest":
        from .dataset import write_manifest

        print(write_manifest(args.file, args.out))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
