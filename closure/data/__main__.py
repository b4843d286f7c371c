"""Command line: ``python -m closure.data {generate,show,manifest} ...`` (= ``closure data``).

Examples::

    python -m closure.data generate --scale micro --n 200 --seed 0 --out data/micro.h5 --workers 2
    python -m closure.data generate --scale meso --n 24 --seed 1 --out data/meso.h5 \\
        --config configs/data/meso.toml
    python -m closure.data show data/micro.h5              # summary + data/micro.png
    python -m closure.data manifest data/micro.h5          # (re)write data/micro.h5.manifest.json

Re-running ``generate`` with the same options on an existing file resumes it: finished samples
are kept, pending and failed ones are (re)computed. Exit status: 1 for a bad config or file,
3 when samples failed (their errors are in the file), as this entry point always had; the
``closure`` command exits 2 on any error.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    from closure.cli import run_module

    from .generate import GenerationError

    return run_module("data", argv, "python -m closure.data",
                      [(GenerationError, 3), ((ValueError, OSError, RuntimeError), 1)])


if __name__ == "__main__":
    sys.exit(main())
