"""Command line: ``python -m closure.train CONFIG.toml [--stage S ...] [--restart]``
(= ``closure train``).

Runs the configured training stages (vae, micro-dynamics, meso-finetune, parc) in pipeline
order. An interrupted stage resumes from its checkpoint unless ``--restart`` is given. Each stage
writes a model directory ``<run.out_dir>/<stage>/`` with ``model.pt`` and ``model_card.json``.
"""

from __future__ import annotations

import os

# Before torch loads: idle OpenMP threads sleep instead of spinning. With spinning threads a
# 2-thread run on a 2-core machine where another process holds one core was measured 12-180x
# slower than one thread; with PASSIVE it is not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 for a bad config or a missing file)."""
    from closure.cli import run_module
    from closure.training.config import ConfigError

    return run_module("train", argv, "python -m closure.train",
                      [((ConfigError, FileNotFoundError), 2)])


if __name__ == "__main__":
    sys.exit(main())
