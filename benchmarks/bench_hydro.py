"""Hydro throughput: M cell-updates/s for 1D Sod and the 2D quadrant problem, vs PyClaw.

A cell-update is one cell advanced one full time step (all RK stages). Our default scheme:
HLLC + MUSCL (MC limiter, primitive variables) + SSP-RK2, CFL 0.8, unsplit in 2D.

* 1D Sod (ideal gas 1.4, [0, 1], transmissive) at 20000 cells (and 2000) to t = 0.2;
* 2D quadrant problem (Lax-Liu configuration 3, transmissive, [0, 1]^2) at 512^2 to t = 0.1,
  on 1 and 2 threads (``numba.set_num_threads``).

Only ``Solver.advance`` is timed, after a warm-up run that compiles everything. Each case runs
``--reps`` times (default 3) and the median is reported; the repetitions of all cases are
interleaved (ours, PyClaw, ours, ...) so that a noisy, shared machine penalises both sides
alike. The load average and the CPU share of our single-thread runs (process CPU time / wall
time: ~1 when a core was ours alone) are recorded with the results.

When clawpack is importable, PyClaw (``benchmarks/pyclaw_ref.py``: Fortran classic solvers,
MC limiter) runs the same problems at the same resolutions, single-threaded
(``OMP_NUM_THREADS=1``), in a subprocess started from a temporary directory (its pyclaw.log
goes there and is deleted). PyClaw's 1D solver reallocates its work arrays every step, which
glibc serves with mmap above ~2000 cells; it is therefore run twice, as is and with
``MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296``, both numbers are
reported, and the ratio uses the better one. Note that PyClaw 2D uses dimensional splitting with
a time step from the largest directional wave speed, ours an unsplit step from their sum, so
PyClaw needs about half as many steps for the same simulated time; the time-to-solution of
both is recorded too.

    python benchmarks/bench_hydro.py [--json OUT] [--quick] [--reps N] [--no-pyclaw]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from anywhere: use this checkout's macro

import numba  # noqa: E402
import numpy as np  # noqa: E402

from macro.eos import IdealGas  # noqa: E402
from macro.io import GridSpec  # noqa: E402
from macro.models import EulerModel  # noqa: E402
from macro.solver import Solver  # noqa: E402

GAMMA = 1.4
QUADRANT = {  # Lax-Liu configuration 3: (rho, u, v, p) per quadrant
    "ne": (1.5, 0.0, 0.0, 1.5),
    "nw": (0.5323, 1.206, 0.0, 0.3),
    "sw": (0.138, 1.206, 1.206, 0.029),
    "se": (0.5323, 0.0, 1.206, 0.3),
}
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def sod_solver(n: int) -> Solver:
    model = EulerModel(IdealGas(GAMMA))
    x = (np.arange(n) + 0.5) / n
    left = (x < 0.5)[None, :]
    prim = {"rho": np.where(left, 1.0, 0.125), "p": np.where(left, 1.0, 0.1)}
    return Solver(model, GridSpec(nx=n, ny=1, dx=1.0 / n, dy=1.0), model.conserved(prim),
                  cfl=0.8, order=2, limiter="mc", riemann="hllc")


def quadrant_solver(n: int) -> Solver:
    model = EulerModel(IdealGas(GAMMA))
    c = (np.arange(n) + 0.5) / n
    X, Y = np.meshgrid(c, c)
    prim = {k: np.empty((n, n)) for k in ("rho", "u", "v", "p")}
    for name, st in QUADRANT.items():
        sel = ((Y > 0.5) if name[0] == "n" else (Y <= 0.5)) & (
            (X > 0.5) if name[1] == "e" else (X <= 0.5))
        for k, v in zip(("rho", "u", "v", "p"), st, strict=True):
            prim[k][sel] = v
    return Solver(model, GridSpec(nx=n, ny=n, dx=1.0 / n, dy=1.0 / n), model.conserved(prim),
                  cfl=0.8, order=2, limiter="mc", riemann="hllc")


def ours(build, n: int, t_end: float, threads: int) -> dict:
    """One timed run of ours (after the warm-up done by the caller)."""
    numba.set_num_threads(threads)
    s = build(n)
    c0, t0 = time.process_time(), time.perf_counter()
    s.advance(t_end)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    cells = s.grid.nx * s.grid.ny
    return {"cells": cells, "steps": s.step, "seconds": wall, "cpu_seconds": cpu,
            "cpu_share": cpu / wall, "mcups": cells * s.step / wall / 1e6,
            "mcups_per_cpu_s": cells * s.step / cpu / 1e6}


_PYCLAW_RUNNER = """
import json, sys, time
sys.path.insert(0, {here!r})
import pyclaw_ref as r
if not r.available():
    print(json.dumps(None)); sys.exit()
marks = []
class _Clock:  # pyclaw_ref times evolve_to_time with time.perf_counter(): record CPU time too
    def perf_counter(self):
        marks.append(time.process_time())
        return time.perf_counter()
r.time = _Clock()
res = r.pyclaw_{kind}({n}, t_end={t_end!r})
res["cpu_seconds"] = marks[-1] - marks[-2]
print(json.dumps(res))
"""


def pyclaw(kind: str, n: int, t_end: float, tuned_malloc: bool, workdir: str) -> dict | None:
    """One PyClaw run (warm-up + timed evolve_to_time) in a fresh single-threaded subprocess."""
    code = _PYCLAW_RUNNER.format(here=str(HERE), kind=kind, n=n, t_end=t_end)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for k in TUNED_MALLOC:
        env.pop(k, None)
    if tuned_malloc:
        env.update(TUNED_MALLOC)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=3600, cwd=workdir)
    except subprocess.TimeoutExpired:
        print(f"PyClaw {kind} {n} timed out", file=sys.stderr)
        return None
    if out.returncode != 0:
        print(f"PyClaw {kind} {n} failed: {out.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res:
        res["cpu_share"] = res["cpu_seconds"] / res["seconds"]
        res["mcups_per_cpu_s"] = res["cells"] * res["steps"] / res["cpu_seconds"] / 1e6
    return res


def clawpack_available() -> bool:
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import pyclaw_ref as r; "
            "print(r.available())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=tempfile.gettempdir())
    return out.returncode == 0 and out.stdout.strip().endswith("True")


def median(runs: list[dict], key: str = "mcups") -> float | None:
    vals = [r[key] for r in runs if r]
    return statistics.median(vals) if vals else None


def best_of(runs: list[dict], key: str = "mcups") -> float | None:
    vals = [r[key] for r in runs if r]
    return max(vals) if vals else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None, help="write the results to this file")
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 reps (smoke test)")
    ap.add_argument("--reps", type=int, default=None, help="repetitions per case (default 3)")
    ap.add_argument("--no-pyclaw", action="store_true", help="skip the PyClaw reference")
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 3)
    n1d = [2000] if args.quick else [20000, 2000]  # the first one is the headline number
    n2d = 128 if args.quick else 512
    t1d, t2d = 0.2, (0.05 if args.quick else 0.1)
    threads2 = min(2, numba.config.NUMBA_NUM_THREADS)
    use_pyclaw = not args.no_pyclaw and clawpack_available()
    load_start = loadavg()
    started = time.perf_counter()

    # warm-up: compile the serial and the parallel drivers (cached afterwards)
    numba.set_num_threads(1)
    sod_solver(200).advance(0.05)
    quadrant_solver(64).advance(0.02)
    if threads2 > 1:
        numba.set_num_threads(threads2)
        quadrant_solver(max(n2d // 2, 128)).advance(0.002)

    cases = {f"sod{n}": [] for n in n1d}
    cases.update({"quadrant_1t": [], "quadrant_2t": []})
    claw = {f"sod{n}_{m}": [] for n in n1d for m in ("default", "tuned")}
    claw["quadrant"] = []
    with tempfile.TemporaryDirectory(prefix="bench_hydro_") as workdir:
        for rep in range(reps):
            print(f"rep {rep + 1}/{reps}", flush=True)
            for n in n1d:
                cases[f"sod{n}"].append(ours(sod_solver, n, t1d, 1))
                if use_pyclaw:
                    for m in ("default", "tuned"):
                        claw[f"sod{n}_{m}"].append(pyclaw("sod", n, t1d, m == "tuned", workdir))
            cases["quadrant_1t"].append(ours(quadrant_solver, n2d, t2d, 1))
            if threads2 > 1:
                cases["quadrant_2t"].append(ours(quadrant_solver, n2d, t2d, threads2))
            if use_pyclaw:
                claw["quadrant"].append(pyclaw("quadrant", n2d, t2d, True, workdir))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    m = {k: median(v) for k, v in cases.items()}
    p = {k: median(v) for k, v in claw.items()}
    n0 = n1d[0]
    best_claw_1d = max((v for v in (p.get(f"sod{n0}_default"), p.get(f"sod{n0}_tuned")) if v),
                       default=None)

    def ratio(a, b):
        return a / b if a and b else None

    speedup = ratio(m["quadrant_2t"], m["quadrant_1t"])
    res = {
        "mcups_1d": m[f"sod{n0}"],
        "mcups_2d": m["quadrant_1t"],
        "mcups_2d_2threads": m["quadrant_2t"],
        "pyclaw_mcups_1d": best_claw_1d,
        "pyclaw_mcups_2d": p["quadrant"],
        "ratio_1d_vs_pyclaw": ratio(m[f"sod{n0}"], best_claw_1d),
        "ratio_2d_vs_pyclaw": ratio(m["quadrant_1t"], p["quadrant"]),
        "speedup_2threads": speedup,
        "parallel_efficiency_2threads": speedup / threads2 if speedup else None,
        "pyclaw_mcups_1d_default_malloc": p.get(f"sod{n0}_default"),
        "pyclaw_mcups_1d_tuned_malloc": p.get(f"sod{n0}_tuned"),
        "best_of_reps": {
            "mcups_1d": best_of(cases[f"sod{n0}"]), "mcups_2d": best_of(cases["quadrant_1t"]),
            "mcups_2d_2threads": best_of(cases["quadrant_2t"]),
            "pyclaw_mcups_1d": max((v for v in (best_of(claw[f"sod{n0}_default"]),
                                                best_of(claw[f"sod{n0}_tuned"])) if v),
                                   default=None),
            "pyclaw_mcups_2d": best_of(claw["quadrant"])},
        "per_cpu_second": {  # cell updates / process CPU time: insensitive to time slicing
            "mcups_1d": median(cases[f"sod{n0}"], "mcups_per_cpu_s"),
            "mcups_2d": median(cases["quadrant_1t"], "mcups_per_cpu_s"),
            "mcups_2d_2threads_per_thread": median(cases["quadrant_2t"], "mcups_per_cpu_s"),
            "pyclaw_mcups_1d": max((v for v in (median(claw[f"sod{n0}_default"],
                                                       "mcups_per_cpu_s"),
                                                median(claw[f"sod{n0}_tuned"],
                                                       "mcups_per_cpu_s")) if v),
                                   default=None),
            "pyclaw_mcups_2d": median(claw["quadrant"], "mcups_per_cpu_s")},
        "time_to_solution_2d_s": {"ours_1thread": median(cases["quadrant_1t"], "seconds"),
                                  "ours_2threads": median(cases["quadrant_2t"], "seconds"),
                                  "pyclaw_1thread": median(claw["quadrant"], "seconds")},
        "small_1d": {f"mcups_1d_{n}": m[f"sod{n}"] for n in n1d[1:]}
        | {f"pyclaw_mcups_1d_{n}_{k}": p.get(f"sod{n}_{k}") for n in n1d[1:]
           for k in ("default", "tuned")},
        "settings": {
            "scheme": "HLLC (HLL fallback) + MUSCL on primitives (MC) + SSP-RK2, CFL 0.8, "
                      "unsplit 2D",
            "sod": {"cells": n1d, "t_end": t1d},
            "quadrant": {"cells": f"{n2d}x{n2d}", "t_end": t2d,
                         "config": "Lax-Liu 3, transmissive"},
            "reps": reps, "statistic": "median", "quick": args.quick,
            "threads_2d": [1, threads2],
            "pyclaw": "single thread (OMP_NUM_THREADS=1), subprocess; 1D with default and "
                      "tuned malloc, ratio uses the better; 2D with tuned malloc",
        },
        "machine": {
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "threading_layer": _threading_layer(),
            "loadavg_start": load_start, "loadavg_end": loadavg(),
            "cpu_share_1thread_runs": [round(r["cpu_share"], 3) for k in cases
                                       if k != "quadrant_2t" for r in cases[k]],
            "cpu_share_pyclaw_runs": [round(r["cpu_share"], 3) for v in claw.values()
                                      for r in v if r],
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "benchmark_seconds": round(time.perf_counter() - started, 1),
        "runs": {"ours": cases, "pyclaw": claw if use_pyclaw else None},
        "pyclaw_solvers": sorted({r["solver"] for v in claw.values() for r in v if r}),
    }

    def fmt(v, w=9):
        return f"{'n/a':>{w}}" if v is None else f"{v:{w}.2f}"

    print()
    print(f"{'case (M cell-updates/s, median)':<40}{'ours':>9}{'PyClaw':>9}{'ratio':>9}")
    for n in n1d:
        pd, pt = p.get(f"sod{n}_default"), p.get(f"sod{n}_tuned")
        best = max((v for v in (pd, pt) if v), default=None)
        print(f"{f'1D Sod {n}, 1 thread':<40}{fmt(m[f'sod{n}'])}{fmt(best)}"
              f"{fmt(ratio(m[f'sod{n}'], best))}   PyClaw default/tuned malloc: "
              f"{fmt(pd, 0).strip()} / {fmt(pt, 0).strip()}")
    print(f"{f'2D quadrant {n2d}^2, 1 thread':<40}{fmt(m['quadrant_1t'])}{fmt(p['quadrant'])}"
          f"{fmt(res['ratio_2d_vs_pyclaw'])}")
    print(f"{f'2D quadrant {n2d}^2, {threads2} threads':<40}{fmt(m['quadrant_2t'])}{'':>9}"
          f"{fmt(res['speedup_2threads'])}   (speed-up over 1 thread)")
    tts = res["time_to_solution_2d_s"]
    print(f"2D time to t={t2d}: ours {fmt(tts['ours_1thread'], 0).strip()} s (1 thread), "
          f"{fmt(tts['ours_2threads'], 0).strip()} s ({threads2} threads), PyClaw "
          f"{fmt(tts['pyclaw_1thread'], 0).strip()} s")
    pc = res["per_cpu_second"]
    print(f"per CPU-second (M cell-updates per CPU s, medians): 1D ours {fmt(pc['mcups_1d'], 0)}"
          f" PyClaw {fmt(pc['pyclaw_mcups_1d'], 0)}; 2D ours {fmt(pc['mcups_2d'], 0)} PyClaw "
          f"{fmt(pc['pyclaw_mcups_2d'], 0)}")
    print(f"load average start/end: {load_start} / {res['machine']['loadavg_end']}; CPU share "
          f"of 1-thread runs: ours {res['machine']['cpu_share_1thread_runs']}, PyClaw "
          f"{res['machine']['cpu_share_pyclaw_runs']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(res, indent=2) + "\n")
        os.replace(tmp, args.json)
        print(f"wrote {args.json}")
    return 0


def _threading_layer() -> str:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        return "?"


if __name__ == "__main__":
    sys.exit(main())
