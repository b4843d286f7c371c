"""Online mode on one backend, per-cell rate against the batch size: does a call's cost per cell
grow with the batch? Times ``Closure.query(mode="online")`` (dt = dt_meso) at each batch, after
the call that creates the cells' tokens, and splits each call into the runner's work (latent
steps + decodes) and the rest (validation, state gathering and commit in Python).

    python benchmarks/bench_online_scaling.py [--backend cpp] [--batches 1024,16384]
        [--calls 1] [--json benchmarks/results/online_scaling.json]

A batch of 16384 takes ~15 min on the C++ path on 2 cores (the call creating the tokens,
then the timed call).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

from closure.api import Closure  # noqa: E402
from closure.training.checkpoint import atomic_write_bytes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cpp")
    ap.add_argument("--batches", default="1024,16384")
    ap.add_argument("--calls", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default="benchmarks/results/online_scaling.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    res: dict = {"backend": a.backend, "threads": a.threads, "calls": a.calls,
                 "load_avg_start": os.getloadavg(), "batches": {}}
    for n in [int(s) for s in a.batches.split(",") if s]:
        c = Closure.load(backend=a.backend, table=False)
        lo, hi = c.envelope
        ids = np.arange(n, dtype=np.int64)
        p = np.random.default_rng(0).uniform(lo, hi, n)
        c.query(ids, p, 1e-11, mode="online")
        run = c.runner
        spent = {"step": 0.0, "stats": 0.0}
        step, stats = run.step, run.stats

        def timed(name, fn, spent=spent):
            def wrapper(*args, **kw):
                t0 = time.perf_counter()
                out = fn(*args, **kw)
                spent[name] += time.perf_counter() - t0
                return out
            return wrapper

        run.step, run.stats = timed("step", step), timed("stats", stats)
        totals = []
        for _ in range(a.calls):
            t0 = time.perf_counter()
            c.query(ids, p, run.dt_meso, mode="online")
            totals.append(time.perf_counter() - t0)
        total = float(np.median(totals))
        row = {"s_per_call": total, "cells_per_s": n / total,
               "runner_step_s": spent["step"] / a.calls, "runner_stats_s": spent["stats"] / a.calls,
               "rest_s": total - (spent["step"] + spent["stats"]) / a.calls}
        res["batches"][n] = row
        ms = {k: row[k] / n * 1e3 for k in ("runner_step_s", "runner_stats_s", "rest_s")}
        print(f"batch {n:6d}: {row['cells_per_s']:.1f} cells/s; per cell: steps "
              f"{ms['runner_step_s']:.2f} ms, decodes {ms['runner_stats_s']:.2f} ms, rest "
              f"{ms['rest_s']:.3f} ms", flush=True)
        del c
    res["load_avg_end"] = os.getloadavg()
    atomic_write_bytes(Path(a.json), (json.dumps(res, indent=1) + "\n").encode())
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
