"""Seconds per pore-collapse sample (micro 64x96, meso 128x192) on one core, chemistry included.

Targets (issue 3): at most 3 s per micro and 30 s per meso sample at the default sizes. The
prototype measured ~3.3 M cell-updates/s for the five-equation RK2 step on one thread.

    python benchmarks/bench_datagen.py [--micro 3] [--meso 1] [--threads 1] [--allaire]

Prints a table and writes benchmarks/results/datagen.json. The first (compile) run is excluded;
s/sample is the median (the machine is shared: the JSON records the load average).
Samples are the first ones of the default data sets (seeds 0 and 1), so the numbers are those of
real data generation. Without a kernel that runs the Kapila model the default physics cannot run;
``--allaire`` then benchmarks the Allaire model instead (its time step collapses when the gas
is over-compressed, so it is much slower; see docs/data.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--micro", type=int, default=3, help="micro samples (default 3)")
    ap.add_argument("--meso", type=int, default=1, help="meso samples (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="Numba threads (default 1)")
    ap.add_argument("--allaire", action="store_true", help="benchmark the Allaire model")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "datagen.json"))
    args = ap.parse_args()

    from closure.data import load_data_config, run_sample
    from closure.data.collapse import simulate

    numba.set_num_threads(args.threads)
    overrides = ["physics.kapila=False"] if args.allaire else []
    cfgs = {s: load_data_config(s, ROOT / "configs" / "data" / f"{s}.toml", overrides)
            for s in ("micro", "meso")}
    t = time.perf_counter()
    warm = load_data_config("micro", ROOT / "configs" / "data" / "micro_lowres.toml",
                            [*overrides, "time.n_frames=1"])
    simulate(warm, 1000.0, [{"shape": "circle", "x": 1.5e-6, "y": 2e-6, "r": 0.5e-6}])
    compile_s = time.perf_counter() - t
    rows = []
    for scale, n, seed in (("micro", args.micro, 0), ("meso", args.meso, 1)):
        cfg = cfgs[scale]
        cells = cfg["grid"]["nx"] * cfg["grid"]["ny"]
        for i in range(n):
            t = time.perf_counter()
            res = run_sample(cfg, seed, i)
            wall = time.perf_counter() - t
            m = res.meta
            rows.append({"scale": scale, "index": i, "u_p": m["u_p"], "n_pores": m["n_pores"],
                         "steps": m["steps"], "wall_s": wall, "cells": cells,
                         "mcells_per_s": m["steps"] * cells / wall / 1e6,
                         "peak_T": m["peak_T"]})
            r = rows[-1]
            print(f"{scale:5s} #{i}: u_p {r['u_p']:6.0f} m/s, {r['n_pores']} pore(s), "
                  f"{r['steps']:5d} steps, {wall:6.2f} s, "
                  f"{r['mcells_per_s']:.2f} M cell-steps/s", flush=True)
    summary = {}
    print(f"\n{'scale':6s} {'grid':>8s} {'samples':>7s} {'s/sample':>9s} {'target':>7s} "
          f"{'steps':>6s} {'Mcell-steps/s':>13s}")
    for scale, target in (("micro", 3.0), ("meso", 30.0)):
        sel = [r for r in rows if r["scale"] == scale]
        if not sel:
            continue
        g = cfgs[scale]["grid"]
        per = float(np.median([r["wall_s"] for r in sel]))
        summary[scale] = {"seconds_per_sample": per, "statistic": "median",
                          "mean_s": float(np.mean([r["wall_s"] for r in sel])),
                          "target_s": target,
                          "steps": float(np.mean([r["steps"] for r in sel])),
                          "mcells_per_s": float(np.mean([r["mcells_per_s"] for r in sel]))}
        print(f"{scale:6s} {g['ny']:>3d}x{g['nx']:<4d} {len(sel):7d} {per:9.2f} {target:7.1f} "
              f"{summary[scale]['steps']:6.0f} {summary[scale]['mcells_per_s']:13.2f}")
    doc = {"threads": args.threads, "loadavg_at_end": os.getloadavg(),
           "model": "allaire" if args.allaire else "kapila",
           "compile_and_warmup_s": compile_s, "machine": platform.processor() or
           platform.machine(), "python": platform.python_version(),
           "numba": numba.__version__, "summary": summary, "samples": rows,
           "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {out} (compile + warm-up {compile_s:.1f} s excluded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
