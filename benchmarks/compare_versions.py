"""Two checkouts of this repository side by side: hydro and coupled throughput, cold compile.

Runs ``bench_hydro.py`` and ``bench_coupled.py`` of each checkout (each against its own
``macro``, its own warm Numba cache) in one session, alternating the order every round so that
a shared machine's load penalises both alike, and reports medians and the speed ratios
new/old (> 1: the new code is faster). On a shared machine read the per-CPU-second figures:
other jobs taking the cores (time slicing) scale wall time, not CPU time. The cold-compile
time is the wall time of
``python -m macro run examples/detonation_1d_ig.toml --no-plots`` with an empty Numba cache,
minus the same command with the cache it left (the run itself).

The in-process comparison copies the old ``macro`` as ``macro_old`` and steps the same problems
with both in one process, in alternating blocks: on a shared machine, where whole benchmark
runs of the same code differ by 10-30 %, it is the measurement that resolves a few percent.

    python benchmarks/compare_versions.py --old ../old-checkout --new . [--rounds 3]
        [--json benchmarks/results/refactor_vs_<commit>.json]

The results file names the checkouts by their git commits, not their paths.
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

HYDRO = {  # metric -> path in bench_hydro's JSON (M cell-updates/s: higher is faster)
    "hydro_1d_sod20000_mcups": ("mcups_1d",),
    "hydro_1d_sod2000_mcups": ("small_1d", "mcups_1d_2000"),
    "hydro_2d_quadrant512_1thread_mcups": ("mcups_2d",),
    "hydro_2d_quadrant512_2threads_mcups": ("mcups_2d_2threads",),
    # per process CPU second: insensitive to other jobs taking the cores (time slicing)
    "hydro_1d_sod20000_mcups_per_cpu_s": ("per_cpu_second", "mcups_1d"),
    "hydro_1d_sod2000_mcups_per_cpu_s": ("runs", "ours", "sod2000", 0, "mcups_per_cpu_s"),
    "hydro_2d_quadrant512_1thread_mcups_per_cpu_s": ("per_cpu_second", "mcups_2d"),
    "hydro_2d_quadrant512_2threads_mcups_per_cpu_s": ("per_cpu_second",
                                                      "mcups_2d_2threads_per_thread"),
}
COUPLED = {  # metric -> path in bench_coupled's JSON (seconds or ms per step: lower is faster)
    "coupled_table_step_ms": ("closure_share", 0, "step_ms"),
    "coupled_table_hydro_ms": ("closure_share", 0, "hydro_ms"),
    "coupled_online_step_ms": ("closure_share", 1, "step_ms"),
    "coupled_table_via_worker_step_ms": ("closure_share_via_worker", 0, "step_ms"),
    "coupled_online_via_worker_step_ms": ("closure_share_via_worker", 1, "step_ms"),
    "scaling_serial_step_s": ("scaling", "median_step_s", "serial"),
    "scaling_1rank_step_s": ("scaling", "median_step_s", "1 rank"),
    "scaling_2ranks_step_s": ("scaling", "median_step_s", "2 ranks"),
    # step time x the ranks' mean CPU share (CPU time / wall): what a core of its own takes
    "scaling_serial_cpu_step_s": ("scaling", "runs", "serial", 0, "cpu_step_s"),
    "scaling_1rank_cpu_step_s": ("scaling", "runs", "1 rank", 0, "cpu_step_s"),
    "scaling_2ranks_cpu_step_s": ("scaling", "runs", "2 ranks", 0, "cpu_step_s"),
}


def _cpu_steps(doc: dict) -> dict:
    """Add ``cpu_step_s`` (median step time x mean CPU share of the ranks) to each scaling
    run of a bench_coupled result."""
    for runs in doc.get("scaling", {}).get("runs", {}).values():
        for r in runs:
            share = r["cpu_share_per_rank"]
            r["cpu_step_s"] = r["median_step_s"] * sum(share) / len(share)
    return doc


def _get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _env(root: Path, cache: Path) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
    return env


def _commit(root: Path) -> str:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "macro",
                            "benchmarks"], capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+dirty" if dirty else "")


def _bench(root: Path, cache: Path, script: str, args: list[str], metrics: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, str(root / "benchmarks" / script), *args, "--json", str(out)]
        proc = subprocess.run(cmd, env=_env(root, cache), capture_output=True, text=True,
                              cwd=tmp, timeout=7200)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"{script} of {root.name} failed:\n{proc.stderr[-3000:]}")
        doc = _cpu_steps(json.loads(out.read_text()))
    return {m: float(_get(doc, p)) for m, p in metrics.items()}


def _macro_run(root: Path, cache: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "macro", "run",
               str(root / "examples" / "detonation_1d_ig.toml"), "--no-plots",
               "--no-progress", "--output", str(Path(tmp) / "det.h5")]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=_env(root, cache), capture_output=True, text=True,
                              cwd=tmp, timeout=3600)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"macro run of {root.name} failed:\n{proc.stderr[-3000:]}")
    return wall


def _compile(root: Path) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        cold = _macro_run(root, Path(cache))
        warm = _macro_run(root, Path(cache))
    return {"cold_s": cold, "warm_s": warm, "compile_s": cold - warm}


_INPROCESS = r"""
import json, statistics, sys, time
sys.path[:0] = [{tmp!r}, {new!r}]
import numba, numpy as np
import macro_old.simulation as so, macro.simulation as sn

def quadrant(mod, n):
    cfg = mod.load_config({new!r} + "/examples/quadrant.toml")
    cfg["grid"].update(nx=n, ny=n)
    cfg["time"]["n_frames"] = 0
    cfg["boundary"] = dict.fromkeys(("x_low", "x_high", "y_low", "y_high"), "transmissive")
    return cfg

def sod(mod, n):
    cfg = mod.load_config({new!r} + "/examples/sod.toml")
    cfg["grid"]["nx"] = n
    cfg["time"]["n_frames"] = 0
    return cfg

def coupled(mod, n):
    cfg = mod.load_config({new!r} + "/examples/detonation_1d.toml")
    cfg["grid"]["nx"] = n
    cfg["time"]["n_frames"] = 0
    cfg.pop("detonation", None)
    return cfg

out = {{}}
cases = [("sod20000", sod, 20000, 1, 150), ("sod2000", sod, 2000, 1, 1000),
         ("quadrant512_1thread", quadrant, 512, 1, 8),
         ("quadrant512_2threads", quadrant, 512, 2, 8),
         ("coupled_table400", coupled, 400, 1, 20)]
for name, build, n, threads, steps in cases:
    numba.set_num_threads(threads)
    if name.startswith("coupled"):
        import torch
        torch.set_num_threads(1)
    s = {{"old": so.Simulation(build(so, n)).solver, "new": sn.Simulation(build(sn, n)).solver}}
    for v in s:
        s[v].step_once(1e-12)
    res = {{"old": [], "new": []}}
    for r in range({rounds}):
        for v in (("old", "new") if r % 2 == 0 else ("new", "old")):
            clock = time.perf_counter if threads > 1 else time.process_time
            t0 = clock()
            for _ in range(steps):
                s[v].step_once(1.0)
            res[v].append((clock() - t0) / steps)
    out[name] = {{"old_step_s": res["old"], "new_step_s": res["new"],
                 "same_state": bool(np.array_equal(s["old"].U, s["new"].U))}}
print(json.dumps(out))
"""


def _inprocess(old: Path, new: Path, rounds: int) -> dict:
    """Both versions in one process (the old package copied as ``macro_old``), stepping the
    same problems in alternating blocks: load swings hit both alike within seconds. Per-step
    times (CPU time for one thread, wall time for two) and whether the states stayed equal."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / "macro_old"
        shutil.copytree(old / "macro", dst, ignore=shutil.ignore_patterns("__pycache__"))
        for f in dst.glob("*.py"):  # the package's own absolute imports
            text = f.read_text()
            if "from macro." in text or "import macro." in text:
                f.write_text(text.replace("from macro.", "from macro_old.")
                             .replace("import macro.", "import macro_old."))
        code = _INPROCESS.format(tmp=tmp, new=str(new), rounds=rounds)
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "cache"), MPLBACKEND="Agg")
        env.pop("PYTHONPATH", None)
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, cwd=tmp, timeout=7200)
        if proc.returncode != 0:
            raise RuntimeError(f"in-process comparison failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True, help="checkout of the reference code")
    ap.add_argument("--new", type=Path, required=True, help="checkout of the code to compare")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of each bench")
    ap.add_argument("--compile-rounds", type=int, default=3)
    ap.add_argument("--hydro-reps", type=int, default=1, help="bench_hydro --reps per round")
    ap.add_argument("--skip-coupled", action="store_true")
    ap.add_argument("--inprocess-rounds", type=int, default=16,
                    help="alternating blocks per version in the in-process comparison (0: none)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    roots = {"old": args.old.resolve(), "new": args.new.resolve()}
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    runs: dict = {v: {"hydro": [], "coupled": [], "compile": []} for v in roots}
    with tempfile.TemporaryDirectory() as caches:
        cache = {v: Path(caches) / v for v in roots}
        for r in range(args.rounds):
            order = ("old", "new") if r % 2 == 0 else ("new", "old")
            for v in order:
                print(f"round {r + 1}/{args.rounds}: bench_hydro {v}", flush=True)
                runs[v]["hydro"].append(_bench(roots[v], cache[v], "bench_hydro.py",
                                               ["--no-pyclaw", "--reps", str(args.hydro_reps)],
                                               HYDRO))
            if args.skip_coupled:
                continue
            for v in order:
                print(f"round {r + 1}/{args.rounds}: bench_coupled {v}", flush=True)
                runs[v]["coupled"].append(_bench(roots[v], cache[v], "bench_coupled.py",
                                                 ["--reps", "1"], COUPLED))
    for r in range(args.compile_rounds):
        for v in (("old", "new") if r % 2 == 0 else ("new", "old")):
            print(f"round {r + 1}/{args.compile_rounds}: cold compile {v}", flush=True)
            runs[v]["compile"].append(_compile(roots[v]))

    inproc = {}
    if args.inprocess_rounds:
        print("in-process comparison", flush=True)
        inproc = _inprocess(roots["old"], roots["new"], args.inprocess_rounds)

    def med(v, kind, m):
        vals = [x[m] for x in runs[v][kind]]
        return statistics.median(vals) if vals else None

    def speed(o, n, higher_is_faster):
        return (n / o) if higher_is_faster else (o / n)

    # besides the ratio of the medians: the median of the per-round ratios (old and new of a
    # round ran next to each other, under about the same load) and the ratio of the best runs
    summary = {}
    for kind, metrics, higher_is_faster in (("hydro", HYDRO, True), ("coupled", COUPLED, False)):
        for m in metrics:
            o, n = med("old", kind, m), med("new", kind, m)
            if o is None or n is None:
                continue
            old_runs = [x[m] for x in runs["old"][kind]]
            new_runs = [x[m] for x in runs["new"][kind]]
            best = max if higher_is_faster else min
            summary[m] = {
                "old": o, "new": n,
                "speed_ratio_new_over_old": speed(o, n, higher_is_faster),
                "paired_speed_ratio_median": statistics.median(
                    speed(a, b, higher_is_faster) for a, b in zip(old_runs, new_runs,
                                                                   strict=True)),
                "best_speed_ratio": speed(best(old_runs), best(new_runs), higher_is_faster)}
    for name, r in inproc.items():
        o, n = statistics.median(r["old_step_s"]), statistics.median(r["new_step_s"])
        summary[f"inprocess_{name}_step_s"] = {
            "old": o, "new": n, "speed_ratio_new_over_old": o / n,
            "paired_speed_ratio_median": statistics.median(
                a / b for a, b in zip(r["old_step_s"], r["new_step_s"], strict=True)),
            "best_speed_ratio": min(r["old_step_s"]) / min(r["new_step_s"]),
            "same_state": r["same_state"]}
    for m in ("cold_s", "warm_s", "compile_s"):
        o, n = med("old", "compile", m), med("new", "compile", m)
        if o is not None:
            pairs = zip(runs["old"]["compile"], runs["new"]["compile"], strict=True)
            summary[f"detonation_1d_ig_{m}"] = {
                "old": o, "new": n, "new_over_old": n / o,
                "paired_new_over_old_median": statistics.median(b[m] / a[m] for a, b in pairs),
                "best_new_over_old": min(x[m] for x in runs["new"]["compile"])
                / min(x[m] for x in runs["old"]["compile"])}
    doc = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
           "old": _commit(roots["old"]), "new": _commit(roots["new"]),
           "cpus": os.cpu_count(), "python": platform.python_version(),
           "load_average_before": [round(x, 2) for x in load0],
           "load_average_after": [round(x, 2) for x in os.getloadavg()],
           "seconds": round(time.perf_counter() - t_start, 1),
           "settings": {"rounds": args.rounds, "compile_rounds": args.compile_rounds,
                        "hydro": f"bench_hydro.py --no-pyclaw --reps {args.hydro_reps}",
                        "coupled": "bench_coupled.py --reps 1",
                        "inprocess_rounds": args.inprocess_rounds,
                        "statistic": "median over rounds, order alternating"},
           "summary": summary, "runs": runs, "inprocess": inproc}
    print(f"{'':46s} {'old':>9s} {'new':>9s} ratio: medians, paired, best (speed new/old; "
          "compile: time new/old)")
    for m, s in summary.items():
        r = [v for k, v in s.items() if k not in ("old", "new", "same_state")]
        print(f"{m:46s} {s['old']:9.4g} {s['new']:9.4g} " + " ".join(f"{x:6.3f}" for x in r))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
