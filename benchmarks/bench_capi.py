"""Table-mode throughput of the C API (libporous_closure) against the Python table mode.

    python benchmarks/bench_capi.py [--json benchmarks/results/capi.json] [--pairs 5]
                                    [--min-time 0.3] [--rounds 3] [--orders sorted,shuffled]
                                    [--max-batch 65536]

C side: ``benchmarks/capi_bench.c``, compiled here with the flags ``python -m closure.capi
--cflags --libs`` prints and timed **in-process in C** (``clock_gettime`` around blocks of calls;
no Python and no ctypes in the timed path). Python side: ``Closure.load().query(ids, p, dt,
mode="table")`` timed the same way (``perf_counter`` around blocks of calls). Both: the shipped
model, batches 1, 4, ..., 65536, a first call that creates the cells (not timed), then the same
cells every call (a hydrocode's steady state) with every output requested, dt = 1e-16 s (the
cells stay inside the table's horizon however many calls are timed; the cost per call does not
depend on dt or the pressures, 5-14 GPa); blocks of k calls lasting about min-time / rounds.
The sides alternate, ``pairs`` times per batch and order (C: ``rounds`` blocks, then Python:
``rounds`` blocks), so a change of the machine's load hits both alike; the median block over
all pairs is quoted (cell-queries/s = batch / seconds per call), the best block is recorded.

Orders: ``sorted`` (ids ascending: the stored order; the C library's and Python's fused steady
path) and ``shuffled`` (one fixed permutation every call: a hydrocode's own order; Python's
general path, the C library's cached positions).

Targets (issue 20): C at least as fast as Python at every batch, and >= 1e7 cell-queries/s from
batch 1024 on, on 2 cores. The record names the CPU model, the core count, the load average and
the compiler; no machine paths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from closure import capi
from closure.api import Closure
from closure.kernels import calibrate

ROOT = Path(__file__).resolve().parents[1]
DT = 1e-16


def c_compiler() -> str:
    return os.environ.get("CC") or "cc"


def build_driver(tmp: Path) -> Path:
    exe = tmp / "capi_bench"
    cmd = [c_compiler(), "-O2", "-std=c99", str(ROOT / "benchmarks" / "capi_bench.c"),
           *shlex.split(capi.cflags()), "-o", str(exe), *shlex.split(capi.libs())]
    subprocess.run(cmd, check=True)
    return exe


def time_c(exe: Path, n: int, order: str, min_time: float, rounds: int) -> list[float]:
    out = subprocess.run([str(exe), "-", str(min_time), str(rounds), order, str(n)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) == n
    return [float(v) for v in out[2:]]


def time_py(base: Closure, n: int, order: str, min_time: float, rounds: int) -> list[float]:
    rng = np.random.default_rng(n)
    ids = np.arange(n, dtype=np.int64) * 3 + 7
    if order == "shuffled":
        ids = rng.permutation(ids)
    p = rng.uniform(5e9, 14e9, n)
    c = Closure(base.runner, base.table)  # fresh state, the same model and table
    c.query(ids, p, 3e-10)  # past the Ps window (0.25 ns): Ps frozen, as in most of a run

    def block(k: int) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            c.query(ids, p, DT, mode="table")
        return time.perf_counter() - t0

    k = 1
    while True:
        el = block(k)
        if el >= min_time / rounds or k >= 1 << 24:
            break
        k *= int(1.2 * (min_time / rounds) / el) + 1 if el > 0 else 10
    return [block(k) / k for _ in range(rounds)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "capi.json"))
    ap.add_argument("--pairs", type=int, default=5,
                    help="C then Python, this many times per batch and order (default 5)")
    ap.add_argument("--min-time", type=float, default=0.3,
                    help="seconds of timed calls per side and pair (default 0.3)")
    ap.add_argument("--rounds", type=int, default=3, help="timed blocks per side and pair")
    ap.add_argument("--orders", default="sorted,shuffled")
    ap.add_argument("--max-batch", type=int, default=65536)
    a = ap.parse_args(argv)
    orders = [o for o in a.orders.split(",") if o]
    sizes = [4 ** k for k in range(9) if 4 ** k <= a.max_batch]
    base = Closure.load()
    cc = subprocess.run([c_compiler(), "--version"], capture_output=True,
                        text=True).stdout.splitlines()[0]
    res: dict = {
        "what": "table-mode cell-queries/s, C API in-process (C timer) vs Closure.query "
                "(Python), the shipped model, steady state, all outputs",
        "command": "python benchmarks/bench_capi.py " + " ".join(argv if argv is not None
                                                                 else sys.argv[1:]),
        "cpu_model": calibrate.cpu_model(), "cpus": os.cpu_count(), "machine": platform.machine(),
        "compiler": cc, "python": platform.python_version(), "numpy": np.__version__,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "c_timing": "in-process in C: clock_gettime around blocks of k calls (no ctypes)",
        "python_timing": "perf_counter around blocks of k calls of Closure.query",
        "dt": DT, "pairs": a.pairs, "min_time": a.min_time, "rounds": a.rounds,
        "load_avg_start": os.getloadavg()[0], "rows": {},
    }
    print(f"CPU: {res['cpu_model']} ({res['cpus']} cpus); compiler: {cc}; load "
          f"{res['load_avg_start']:.2f}")
    print(f"{'batch':>7s} {'order':>9s} {'C q/s':>11s} {'Python q/s':>11s} {'C/Python':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_driver(Path(tmp))
        for n in sizes:
            row = res["rows"].setdefault(str(n), {})
            for order in orders:
                tc, tp = [], []
                for _ in range(a.pairs):
                    tc += time_c(exe, n, order, a.min_time, a.rounds)
                    tp += time_py(base, n, order, a.min_time, a.rounds)
                qc, qp = n / statistics.median(tc), n / statistics.median(tp)
                row[order] = {"c": qc, "python": qp, "c_over_python": qc / qp,
                              "c_best": n / min(tc), "python_best": n / min(tp),
                              "c_seconds_per_call": tc, "python_seconds_per_call": tp}
                print(f"{n:7d} {order:>9s} {qc:11.3e} {qp:11.3e} {qc / qp:9.1f}", flush=True)
    res["load_avg_end"] = os.getloadavg()[0]
    rows = [(int(n), o, r) for n, d in res["rows"].items() for o, r in d.items()]
    res["summary"] = {
        "c_min_over_python": min(r["c_over_python"] for _, _, r in rows),
        "c_min_queries_per_s_batch_ge_1024": min((r["c"] for n, _, r in rows if n >= 1024),
                                                 default=None),
        "targets": "C >= Python at every batch; C >= 1e7 cell-queries/s from batch 1024 on",
    }
    s = res["summary"]
    s["targets_met"] = bool(s["c_min_over_python"] >= 1.0 and
                            (s["c_min_queries_per_s_batch_ge_1024"] or 0) >= 1e7)
    print(f"C/Python min {s['c_min_over_python']:.1f}; C min from 1024 on "
          f"{s['c_min_queries_per_s_batch_ge_1024']:.3e}; targets met: {s['targets_met']}; "
          f"load {res['load_avg_end']:.2f}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
