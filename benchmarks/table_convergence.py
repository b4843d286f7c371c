"""How the closure table's interpolation error falls with the Ps node spacing (issue 5, 1% rule).

    python benchmarks/table_convergence.py [--n 129] [--threads 1] [--json OUT]

Runs the shipped model's online response (ensemble mean over the runner's microstructure bank,
deterministic decode, every meso step to the horizon) at ``n`` uniform shock pressures over the
envelope, then, for node spacings of 2^k grid steps, interpolates every midpoint from its two
neighbours (linear, as the table does; PCHIP, Akima and cubic splines for comparison) and scores
it with the table builder's error measure (:func:`closure.table.heldout_error`). Prints a table
and writes benchmarks/results/table_convergence.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=129, help="uniform pressures (2^k + 1)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" /
                                          "table_convergence.json"))
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numpy as np
    import torch
    from scipy.interpolate import Akima1DInterpolator, CubicSpline, PchipInterpolator

    from closure.api import Closure
    from closure.table import evaluate_many, heldout_error
    from closure.training.checkpoint import atomic_write_bytes

    torch.set_num_threads(args.threads)
    c = Closure.load(table=False)
    run = c.runner
    lo, hi = run.envelope
    ps = np.linspace(lo, hi, args.n)
    t0 = time.perf_counter()
    A, T = [], []
    for s in range(0, args.n, 8):
        r = evaluate_many(run, ps[s:s + 8])
        A.append(r["A"].mean(1))
        T.append(r["T"].mean(1))
    A, T = np.concatenate(A), np.concatenate(T)
    seconds = time.perf_counter() - t0
    floor = 0.01
    rows = []
    stride = 2
    while stride < args.n:
        idx = np.arange(0, args.n, stride)
        if idx[-1] != args.n - 1:
            break
        mid = idx[:-1] + stride // 2
        row = {"spacing_GPa": float(ps[stride] - ps[0]) / 1e9, "nodes": int(idx.size)}
        for name, interp in (("linear", None), ("pchip", PchipInterpolator),
                             ("akima", Akima1DInterpolator), ("cubic", CubicSpline)):
            if interp is None:
                a_i, t_i = 0.5 * (A[idx[:-1]] + A[idx[1:]]), 0.5 * (T[idx[:-1]] + T[idx[1:]])
            elif idx.size >= 3:
                a_i = interp(ps[idx], A[idx], axis=0)(ps[mid])
                t_i = interp(ps[idx], T[idx], axis=0)(ps[mid])
            else:
                continue
            err = np.array([heldout_error(a_i[k], t_i[k], A[m], T[m], floor)
                            for k, m in enumerate(mid)])
            row[name] = {"max": float(err.max()), "median": float(np.median(err)),
                         "failing": int((err > 0.01).sum()), "midpoints": int(err.size)}
        rows.append(row)
        stride *= 2
    out = {"n_pressures": args.n, "envelope_Pa": [lo, hi], "n_micro": run.n_micro,
           "horizon": run.horizon, "area_floor": floor, "threads": args.threads,
           "seconds": seconds, "rows": rows}
    print(f"{args.n} pressures, {run.n_micro} microstructures, {seconds:.0f} s")
    print(f"{'spacing GPa':>12s}{'nodes':>7s}" + "".join(f"{m:>16s}" for m in
                                                          ("linear", "pchip", "akima", "cubic")))
    for row in rows:
        print(f"{row['spacing_GPa']:12.3f}{row['nodes']:7d}" + "".join(
            f"{row[m]['max']:9.4f} ({row[m]['failing']:2d})" if m in row else f"{'':>16s}"
            for m in ("linear", "pchip", "akima", "cubic")))
    print("(max held-out error at the midpoints; in brackets: midpoints over 1%)")
    path = Path(args.json)
    atomic_write_bytes(path, (json.dumps(out, indent=1) + "\n").encode())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
