"""Distributed-solver step time of two checkouts, alternating, under mpiexec.

Each round runs ``bench_coupled.py --scaling dist N STEPS BLOCKS`` of the old checkout, then of
the new one (each with its own package and Numba cache), on ``--ranks`` ranks with one thread
each, and records the median step time of the blocks. Reports medians over the rounds, the
median of the per-round ratios (the runs of one round saw the same load) and the best-of ratio.

    python benchmarks/ab_scaling.py --old ../old-checkout --new . [--rounds 8] [--ranks 1]
        [--json benchmarks/results/ab_scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def _commit(root: Path) -> str:
    return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "unknown"


def _run(root: Path, ranks: int, n: int, steps: int, blocks: int) -> float:
    mpiexec = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               NUMBA_CACHE_DIR=str(root / ".numba_cache"),
               PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.json"
        cmd = [mpiexec, "-n", str(ranks), sys.executable,
               str(root / "benchmarks" / "bench_coupled.py"), "--scaling", "dist", str(n),
               str(steps), str(blocks), str(out)]
        subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=900, cwd=tmp)
        return statistics.median(json.loads(out.read_text())["step_s"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--n", type=int, default=512, help="2D quadrant grid side")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    load0 = os.getloadavg()
    old, new = [], []
    print(f"{'round':>5} {'old s/step':>11} {'new s/step':>11} {'new/old speed':>14}")
    for r in range(a.rounds):
        old.append(_run(a.old.resolve(), a.ranks, a.n, a.steps, a.blocks))
        new.append(_run(a.new.resolve(), a.ranks, a.n, a.steps, a.blocks))
        print(f"{r:5d} {old[-1]:11.4g} {new[-1]:11.4g} {old[-1] / new[-1]:14.3f}")
    res = {
        "what": f"distributed solver, 2D quadrant {a.n}^2, {a.ranks} rank(s), 1 thread each: "
                "median step time of each run, old and new checkout alternating",
        "old": _commit(a.old), "new": _commit(a.new), "cpus": os.cpu_count(),
        "python": platform.python_version(), "load_average_before": load0,
        "load_average_after": os.getloadavg(), "rounds": a.rounds,
        "old_step_s": old, "new_step_s": new,
        "speed_ratio_new_over_old": statistics.median(old) / statistics.median(new),
        "paired_speed_ratio_median": statistics.median(o / n for o, n in zip(old, new,
                                                                              strict=True)),
        "best_speed_ratio": min(old) / min(new),
    }
    print(f"speed new/old: medians {res['speed_ratio_new_over_old']:.3f}, paired "
          f"{res['paired_speed_ratio_median']:.3f}, best {res['best_speed_ratio']:.3f}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
