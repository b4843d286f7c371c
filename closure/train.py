"""Command line: ``python -m closure.train CONFIG.toml [--stage S ...] [--restart]``.

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

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

from closure.training.config import STAGES, ConfigError, load_config  # noqa: E402
from closure.training.stages import run_stages  # noqa: E402

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(prog="python -m closure.train",
                                 description="Train the closure models (stages: vae, "
                                 "micro-dynamics, meso-finetune, parc).")
    ap.add_argument("config", help="TOML training config (see configs/train/)")
    ap.add_argument("--stage", action="append", choices=STAGES,
                    help="run only this stage (repeatable); default: run.stages of the config")
    ap.add_argument("--restart", action="store_true",
                    help="ignore existing checkpoints and train the stages from scratch")
    ap.add_argument("--out-dir", help="override run.out_dir")
    ap.add_argument("--seed", type=int, help="override run.seed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.out_dir:
            cfg["run"]["out_dir"] = str(Path(args.out_dir).resolve())
        if args.seed is not None:
            cfg["run"]["seed"] = args.seed
        if args.no_progress:
            cfg["run"]["progress"] = False
        dirs = run_stages(cfg, args.stage, resume=not args.restart)
    except (ConfigError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for stage, d in dirs.items():
        metrics = json.loads((d / "model_card.json").read_text())["metrics"]
        parts = [f"{name}.{m}={v:.4g}" for name, block in metrics.items()
                 if name.startswith(("micro_val", "meso_test")) and isinstance(block, dict)
                 for m, v in block.items() if m.startswith("rmse") and isinstance(v, float)]
        print(f"{stage}: {d}" + "".join(f"\n  {p}" for p in parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
