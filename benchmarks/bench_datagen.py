"""Seconds per pore-collapse sample of the default configs on one core, chemistry included.

Targets (issue 3, set for the format-1 configs: micro 64x96 for 5 ns, meso 128x192 for 5 ns,
inviscid, no conduction): at most 3 s per micro and 30 s per meso sample. The format-2 defaults
(micro 64x96 for 10 ns, meso 256x384 for 20 ns, full physics) are reported against the same
numbers.

    python benchmarks/bench_datagen.py [--micro 3] [--meso 1] [--threads 1] [--allaire]

Prints a table and writes benchmarks/results/datagen.json. The first (compile) run is excluded;
s/sample is the median (the machine is shared: the JSON records the load average).
Samples are the first ones of the default data sets (seeds 0 and 1), so the numbers are those of
real data generation.

Kernel ratio (issue 17): the five-equation kernel with the full data-generation physics
(Kapila, Hayes HMX with JWL products, conduction, viscosity, Arrhenius chemistry; hydro step +
transport + chemistry, ``Solver.advance`` without frames) against the single-fluid Euler-2D
kernel (ideal gas, a 2D shock tube with a perturbed density) on a grid of the same size (96 x 64
interior cells), both in cell-steps per second on the same thread(s). The five-equation kernel
runs from two states of the default micro set, taken from their data-generation runs midway
(shocked, loading applied): sample 0 (inert) and sample 1 (a burning hotspot); the ratio is that
of their mean cost per step. Each repetition restarts every run from its saved state, and the
repetitions are interleaved (``--ratio-reps``); the Euler kernel runs 5x the steps per
repetition (about the same wall time). The ratio is the median over repetitions of each
repetition's ratio (robust to the machine's speed drifting between repetitions). JSON:
``kernel_rates``, with ``five_equation_over_euler_2d_ratio``, the paired ratios, the ratio of
the medians and the ratio of each state.

Without a kernel that runs the Kapila model the default physics cannot run; ``--allaire`` then
benchmarks the Allaire model instead (its time step collapses when the gas is over-compressed,
so it is much slower; see docs/data.md).
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
EULER_STEPS_FACTOR = 5


def _euler_2d(nx: int, ny: int):
    """Euler-2D reference: ideal gas, a shock tube along x with a density perturbation in y
    (periodic y), unit square cells."""
    from macro.eos import IdealGas
    from macro.io import GridSpec
    from macro.models import EulerModel
    from macro.solver import Solver

    model = EulerModel(IdealGas(1.4))
    X, Y = np.meshgrid((np.arange(nx) + 0.5) / nx, (np.arange(ny) + 0.5) / ny)
    left = X < 0.5
    prim = {"rho": np.where(left, 1.0, 0.125) * (1.0 + 0.1 * np.sin(2.0 * np.pi * Y)),
            "p": np.where(left, 1.0, 0.1)}
    return Solver(model, GridSpec(nx=nx, ny=ny, dx=1.0 / nx, dy=1.0 / nx),
                  model.conserved(prim), bc={"y_low": "periodic", "y_high": "periodic"})


def _timed_steps(solver, state, nsteps: int) -> tuple[float, int]:
    """(wall seconds, steps) of ``nsteps`` steps of ``solver`` from ``state`` = (U, t, step)."""
    U, t, step = state
    solver.U[:] = U
    solver.t, solver.step = t, step
    t0 = time.perf_counter()
    solver.advance(1.0, max_steps=step + nsteps)
    return time.perf_counter() - t0, solver.step - step


class _Reached(Exception):
    """Stops a data-generation run at the benchmark's start time."""


def _datagen_state(cfg: dict, index: int, frac: float):
    """Micro sample ``index`` (seed 0) as data generation has it at ``frac`` of its horizon:
    the solver of :func:`closure.data.collapse.simulate`, stopped by its step callback, with
    the loading ramp and the exit's inflow switch applied."""
    from closure.data.collapse import sample_geometry, sample_seed, simulate

    tm = cfg["time"]
    t_start = frac * tm["n_frames"] * tm["frame_dt"]
    u_p, pores, _ = sample_geometry(cfg, np.random.default_rng(sample_seed(0, index)))
    box = {}

    def stop(s) -> None:
        if s.t >= t_start:
            box["solver"] = s
            raise _Reached

    try:
        simulate(cfg, u_p, pores, callback=stop)
    except _Reached:
        pass
    s = box["solver"]
    return s, (s.U.copy(), s.t, s.step), u_p


def kernel_rates(cfg: dict, reps: int, nsteps: int) -> dict:
    """Cell-steps/s of the five-equation kernel (full data-generation physics) and of the
    Euler-2D kernel on a grid of the same size, interleaved repetitions, medians. The
    five-equation kernel runs from two states of the default micro set midway through their
    horizon: sample 0 (inert, ~2.5 GPa) and sample 1 (burning hotspot, ~15 GPa); the ratio is
    that of their mean cost per step (both states weighted alike)."""
    g = cfg["grid"]
    states = {}
    for name, index in (("inert", 0), ("burning", 1)):
        states[name] = _datagen_state(cfg, index, 0.5)
    euler = _euler_2d(g["nx"], g["ny"])
    euler_state = (euler.U.copy(), euler.t, euler.step)
    _timed_steps(euler, euler_state, 5)  # compile
    for s, st, _ in states.values():
        _timed_steps(s, st, 5)
    cells = g["nx"] * g["ny"]
    r_euler, r_five, paired = [], {k: [] for k in states}, []
    for _ in range(reps):
        # the Euler kernel takes EULER_STEPS_FACTOR x the steps, so that both run for about
        # the same wall time (a 0.1 s run measured the machine's frequency swings, not the
        # kernel)
        w, n = _timed_steps(euler, euler_state, EULER_STEPS_FACTOR * nsteps)
        r_euler.append(cells * n / w)
        for k, (s, st, _) in states.items():
            w, n = _timed_steps(s, st, nsteps)
            r_five[k].append(cells * n / w)
        paired.append(2.0 / sum(1.0 / v[-1] for v in r_five.values()) / r_euler[-1])
    euler_rate = float(np.median(r_euler))
    per = {k: float(np.median(v)) for k, v in r_five.items()}
    five_rate = 2.0 / sum(1.0 / r for r in per.values())  # mean cost per cell-step
    out = {"grid": f"{g['ny']}x{g['nx']}", "steps_per_rep": nsteps,
           "euler_steps_per_rep": EULER_STEPS_FACTOR * nsteps, "reps": reps,
           "statistic": "median", "five_equation_cell_steps_per_s": five_rate,
           "euler_2d_cell_steps_per_s": euler_rate,
           # the median over repetitions of each repetition's ratio (the two kernels measured
           # back to back): robust to the machine's speed changing between repetitions
           "five_equation_over_euler_2d_ratio": float(np.median(paired)),
           "paired_ratios": paired, "ratio_of_medians": five_rate / euler_rate,
           "states": {k: {"sample": i, "u_p": states[k][2], "t": states[k][1][1],
                          "cell_steps_per_s": per[k], "ratio": per[k] / euler_rate,
                          "reps": r_five[k]}
                      for k, i in (("inert", 0), ("burning", 1))},
           "euler_2d_reps": r_euler}
    print(f"{'kernel':34s} {'grid':>8s} {'M cell-steps/s':>15s} {'ratio':>6s}")
    print(f"{'euler 2D (ideal gas)':34s} {out['grid']:>8s} {euler_rate / 1e6:15.2f}")
    for k, r in per.items():
        label = f"five-equation ({k}, u_p {states[k][2]:.0f})"
        print(f"{label:34s} {out['grid']:>8s} {r / 1e6:15.2f} {r / euler_rate:6.3f}")
    print(f"five_equation_over_euler_2d_ratio = {out['five_equation_over_euler_2d_ratio']:.3f} "
          f"(median of {reps} paired repetitions, {min(paired):.3f}-{max(paired):.3f}; ratio of "
          f"medians {out['ratio_of_medians']:.3f})\n")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--micro", type=int, default=3, help="micro samples (default 3)")
    ap.add_argument("--meso", type=int, default=1, help="meso samples (default 1)")
    ap.add_argument("--threads", type=int, default=1, help="Numba threads (default 1)")
    ap.add_argument("--allaire", action="store_true", help="benchmark the Allaire model")
    ap.add_argument("--ratio-reps", type=int, default=7,
                    help="interleaved repetitions of the kernel-rate comparison (default 7)")
    ap.add_argument("--ratio-steps", type=int, default=200,
                    help="steps per repetition of the kernel-rate comparison (default 200)")
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
    rates = kernel_rates(cfgs["micro"], args.ratio_reps, args.ratio_steps)
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
           "numba": numba.__version__, "kernel_rates": rates,
           "five_equation_over_euler_2d_ratio": rates["five_equation_over_euler_2d_ratio"],
           "summary": summary, "samples": rows,
           "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"\nwrote {out} (compile + warm-up {compile_s:.1f} s excluded)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
