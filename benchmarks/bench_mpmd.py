"""MPMD round trip of the C API: latency and throughput of closure_query through one
``closure serve`` worker, for one C client, table mode, the shipped model.

    python benchmarks/bench_mpmd.py [--json benchmarks/results/mpmd.json] [--min-calls 20]

Runs ``mpiexec -n 1 <C client> : -n 1 python -m closure serve --device cpu`` once: the client
(tests/capi_mpmd_client.c, built with ``python -m closure.capi --mpi --cflags --libs``) creates
each batch's cells with a first query (not timed), then times each of ``reps`` identical calls
with ``clock_gettime`` in C (the steady state of a hydrocode: the same cells every call, every
output requested, dt = 1e-16 s so the cells stay inside the table's horizon) and releases the
cells. Batches 1, 4, ..., 65536. The same calls on an in-process ``Closure.query(...,
mode="table")`` (what the worker runs for each request) are timed afterwards, so that the
difference is the cost of the protocol: encoding, two MPI messages, decoding, polling.

Quoted: median seconds per call (latency) and batch / median (cell-queries/s). The record names
the CPU model, the core count and the load average; no machine paths.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
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
sys.path.insert(0, str(ROOT / "tests"))
from capi_mpmd_support import ALL, Calls, read_record  # noqa: E402

DT = 1e-16
BATCHES = [4**k for k in range(9)]


def reps_for(n: int, min_calls: int) -> int:
    return max(min_calls, min(2000, 4_000_000 // (n + 2000)))


def cells(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n, dtype=np.int64), rng.uniform(5e9, 14e9, n)


def run_mpmd(tmp: Path, min_calls: int) -> dict[int, np.ndarray]:
    bindir = Path(sys.executable).parent
    cc = os.environ.get("MPICC") or shutil.which("mpicc") or str(bindir / "mpicc")
    exe = tmp / "capi_mpmd_client"
    subprocess.run([cc, "-O2", str(ROOT / "tests" / "capi_mpmd_client.c"),
                    *shlex.split(capi.cflags(mpi=True)), "-o", str(exe),
                    *shlex.split(capi.libs(mpi=True))], check=True)
    calls = Calls()
    rng = np.random.default_rng(0)
    for n in BATCHES:
        ids, p = cells(n, rng)
        calls.query(ids, p, DT, mask=0)  # creates the cells
        calls.bench(ids, p, DT, reps_for(n, min_calls), ALL)
        calls.release(ids)
    calls.write(tmp / "in0.bin")
    mpiexec = shutil.which("mpiexec") or str(bindir / "mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    subprocess.run([mpiexec, "-n", "1", str(exe), "table", "600", str(tmp), ":", "-n", "1",
                    sys.executable, "-m", "closure", "serve", "--device", "cpu"], check=True,
                   env=env, cwd=tmp)
    _, recs = read_record(tmp / "out0.bin", calls)
    times = [r["seconds"] for r in recs if r["op"] == "bench"]
    assert all(r["rc"] == 0 for r in recs), [r for r in recs if r["rc"]]
    return dict(zip(BATCHES, times, strict=True))


def run_python(min_calls: int) -> dict[int, np.ndarray]:
    c = Closure.load(backend="cpp")
    rng = np.random.default_rng(0)
    out = {}
    for n in BATCHES:
        ids, p = cells(n, rng)
        c.query(ids, p, DT, mode="table")
        t = []
        for _ in range(reps_for(n, min_calls)):
            t0 = time.perf_counter()
            c.query(ids, p, DT, mode="table", deterministic=True)
            t.append(time.perf_counter() - t0)
        c.release(ids)
        out[n] = np.array(t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "mpmd.json"))
    ap.add_argument("--min-calls", type=int, default=20, help="fewest timed calls per batch")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        mpmd = run_mpmd(Path(d), a.min_calls)
    py = run_python(a.min_calls)
    res = {"what": "closure_query through MPMD closure workers: 1 C client + 1 closure serve "
                   "worker (table mode, shipped model, --device cpu), median seconds per call "
                   "timed in C; python = Closure.query(..., mode='table') in process",
           "cpu_model": calibrate.cpu_model(), "cpus": os.cpu_count(),
           "machine": platform.machine(), "loadavg": list(os.getloadavg()), "rows": []}
    print(f"CPU: {res['cpu_model']} ({res['cpus']} cpus); load {res['loadavg'][0]:.1f}")
    print(f"{'batch':>6} {'calls':>5} {'MPMD s/call':>12} {'MPMD cells/s':>13} "
          f"{'Python s/call':>14} {'protocol s/call':>16}")
    for n in BATCHES:
        m, q = statistics.median(mpmd[n]), statistics.median(py[n])
        row = {"batch": n, "calls": int(mpmd[n].size), "mpmd_s_per_call": m,
               "mpmd_cells_per_s": n / m, "mpmd_best_s": float(mpmd[n].min()),
               "python_s_per_call": q, "protocol_s_per_call": m - q}
        res["rows"].append(row)
        print(f"{n:>6} {row['calls']:>5} {m:>12.3e} {n / m:>13.3e} {q:>14.3e} {m - q:>16.3e}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
